//! egressc: an offline compiler for Flomesh Service Mesh egress configuration.
//!
//! The pipeline runs one way, one folder per stage (see the README's "How the code is laid
//! out"): `input` (sources, spanned YAML) → `load` (kinds, schemas, typed resources) →
//! `check` (semantic rules, returning the resolved `model::Checked`) → `plan` (per-identity
//! lowering) → `emit` (the output tree) → `write` (atomically to disk). `query` (explain,
//! test) reads the plan; `diff` compares two plans; `diagnostics::render` turns diagnostics
//! into text; `cli` runs it all.

mod check;
mod cli;
mod diagnostics;
mod diff;
mod emit;
mod input;
mod load;
mod model;
mod net;
mod pipeline;
mod plan;
mod publish;
mod query;
mod span;
mod spiffe;
mod write;

pub use cli::run;
pub use diagnostics::codes::readme_tables;
pub use diagnostics::render::{render_human, render_json, render_sarif};
pub use diagnostics::{Code, Diagnostic, Severity};
pub use emit::decision_log::{DECISION_LOG_VERSION, DecisionLine};
pub use emit::kubernetes::KubeOptions;
pub use emit::output::Output;
pub use input::source::Sources;
pub use input::yaml::{parse_documents, yaml_as_json};
pub use model::{AuthMode, DnsResolvers, GatewayAuth, Identity};
pub use net::Cidr;
pub use pipeline::{
    Analysis, BuildOutcome, BuildRequest, Built, Findings, Gate, Judgement, ReadOptions, Written,
    analyze, analyze_texts, build, check, route_matcher, schema_files, write_output,
};
pub use plan::Plan;
pub use query::eval::evaluate;
pub use query::question::{
    Dest, HttpRequest, Outcome, Query, QueryError, Verdict, parse_destination,
};
pub use spiffe::{certificate_identity, uri_sans};
pub use write::{Change, WriteError};
