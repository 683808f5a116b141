//! Questions asked of the plan: the one evaluator (the sidecar's decision, offline), `explain`
//! and `test` cases.

pub mod cases;
pub mod eval;
pub mod explain;
pub mod gateway;
pub mod intercept;
pub mod question;
pub mod reach;
pub mod replay;
pub mod request;
pub mod suggest;
