//! The one integration-test binary (one link on two cores).

mod check;
mod robustness;
mod schema;
mod support;
