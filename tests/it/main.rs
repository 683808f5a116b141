//! The one integration-test binary (one link on two cores).

mod build;
mod check;
mod e2e;
mod explain;
mod kubernetes;
mod layout;
mod robustness;
mod schema;
mod support;
