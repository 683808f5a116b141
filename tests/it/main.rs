//! The one integration-test binary (one link on two cores).

mod build;
mod check;
mod diff;
mod diff_git;
mod e2e;
mod explain;
mod gitops;
mod kubernetes;
mod layout;
mod robustness;
mod schema;
mod support;
mod toolchain;
