//! The decision log: one JSON line per decision of the generated proxies
//! (`templates/sidecar/decisions.js`; the gateway's `main.js`), in the proxy's output (a line
//! may carry Pipy's prefix before the `{`). `schemas/decision-log.schema.json` is generated
//! from [`DecisionLine`]; the e2e suite validates real lines against it. This is the contract
//! that `suggest` and `test --replay` read (README, "Decision logs").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the line format (`v`).
pub const DECISION_LOG_VERSION: u32 = 1;

/// What a line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A connection or request a rule allowed (with `egressc.io/log-allowed: "true"`).
    Allow,
    /// Denied: no rule matched (enforce mode), or a refusal whatever the rules say.
    Deny,
    /// Audit mode: no rule matched, let through as passthrough would route it.
    Audit,
    /// Decision lines over the per-second budget, counted.
    DenySuppressed,
    /// A new config was taken up.
    Reload,
    /// Something the proxy could not do (a config or TLS material that does not load).
    Error,
    /// TLS material was (re)loaded.
    Tls,
    /// The gateway opened a tunnel.
    TunnelOpen,
    /// The gateway closed a tunnel.
    TunnelClose,
    /// The gateway refused a tunnel.
    Refuse,
    /// The gateway ignored an `egressc-identity` header that names another identity (mtls).
    HeaderIgnored,
}

/// What a connection carried, as the sidecar read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Tls,
    Http,
}

/// One line of the decision log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionLine {
    /// The format's version: 1.
    pub v: u32,
    pub egressc: Event,
    /// `namespace/serviceaccount` (the sidecar's, or the tunnel's at the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `address:port` as the workload dialled it (the gateway: the tunnel's target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The TLS ClientHello's server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// An HTTP request's Host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Without the query, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The policy that allowed it (`namespace/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The gateway it leaves through (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// How many decisions the line stands for: 1, or the repeats of the same identity,
    /// destination and SNI or Host folded in the second that ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The gateway: the tunnel's mode (`http2tunnel`, `socks5`, `tls`, `plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The gateway: the address and port the tunnel came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `deny-suppressed`: lines left out in the second, and all denials so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<u64>,
    /// `reload`, `tls`: the generation of the config or material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `tls`: the leaf certificate's end of validity (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "notAfter")]
    pub not_after: Option<f64>,
}

/// The JSON Schema of a line.
pub fn decision_log_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<DecisionLine>(
        "egressc:decision-log.schema.json",
        "One line of the decision log the generated sidecar and gateway write (after Pipy's prefix, from the first `{`).",
    )
}
