//! What is asked of the evaluator (a connection, and an HTTP request on it) and what it
//! answers (a verdict with its reasons).

use crate::model::{GatewayMode, Identity, ProtocolClass};
use crate::net::{self, HostPattern};
use serde::Serialize;
use std::net::Ipv4Addr;

/// A query that cannot be asked: a malformed destination, identity or case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

/// Where a connection goes, as the client dialled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Ip(Ipv4Addr),
    /// A name: offline there is no DNS, so rules that need the address cannot decide.
    Name(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The Host header; defaults to the destination name.
    pub host: Option<String>,
    /// HTTP/2's `:authority`: a request that has one is HTTP/2 (cleartext, on an http port).
    pub authority: Option<String>,
    pub method: String,
    /// The request target: a path with optional query (origin-form), or any other form.
    pub path: String,
    /// (lower-case name, value), in order, repeated names included.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// A request with the defaults of `explain` and `test`: method GET, path `/`; header names
    /// are lower-cased.
    pub fn new(
        host: Option<String>,
        method: Option<String>,
        path: Option<String>,
        headers: Vec<(String, String)>,
    ) -> HttpRequest {
        HttpRequest {
            host,
            authority: None,
            method: method.unwrap_or_else(|| "GET".into()),
            path: path.unwrap_or_else(|| "/".into()),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// An identity not in the plan runs the `_default` config.
    pub identity: Identity,
    pub dest: Dest,
    pub port: u16,
    pub sni: Option<String>,
    pub http: Option<HttpRequest>,
}

impl Query {
    pub fn destination(&self) -> String {
        match &self.dest {
            Dest::Ip(ip) => format!("{ip}:{}", self.port),
            Dest::Name(n) => format!("{n}:{}", self.port),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The iptables rules never send it to the sidecar: it goes out directly, no policy applies.
    NotIntercepted,
    InMesh,
    Allowed,
    Passthrough,
    Denied,
    /// A rule would decide on the destination address, which a name does not give offline.
    NeedsAddress,
    /// Allowed in audit mode: no rule allows it, it goes out as passthrough would, logged.
    Audit,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotIntercepted => "not-intercepted",
            Outcome::InMesh => "in-mesh",
            Outcome::Allowed => "allowed",
            Outcome::Passthrough => "passthrough",
            Outcome::Denied => "denied",
            Outcome::NeedsAddress => "needs-address",
            Outcome::Audit => "audit",
        }
    }
    /// Whether the connection leaves (or reaches its in-mesh destination).
    pub fn is_allowed(self) -> bool {
        matches!(
            self,
            Outcome::NotIntercepted
                | Outcome::InMesh
                | Outcome::Allowed
                | Outcome::Passthrough
                | Outcome::Audit
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub policy: String,
    pub file: String,
    pub line: u32,
    pub protocol: ProtocolClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Miss {
    #[serde(flatten)]
    pub rule: RuleRef,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Via {
    Direct,
    Gateway {
        address: String,
        mode: GatewayMode,
        /// Whose allow-list the gateway applies: `certificate` (the identity's own, read from
        /// its mTLS certificate), `header` (the identity's own, as its header names it: a
        /// label), `union` (every identity's: SOCKS5 under `--gateway-auth header`).
        identity: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub identity: String,
    pub destination: String,
    pub verdict: Outcome,
    /// The rule that allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<RuleRef>,
    /// The in-mesh Service, for in-mesh destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Where the sidecar connects (`host:port`), when the connection leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Direct, or through the gateways (picked by weight; the first is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Vec<Via>>,
    pub reason: String,
    /// Rules of this identity on this port that did not match, and why.
    pub misses: Vec<Miss>,
    /// Rules of other identities that would have allowed this connection.
    pub other_identities: Vec<(String, RuleRef)>,
}

/// Parse `HOST_OR_IP:PORT`.
pub fn parse_destination(s: &str) -> Result<(Dest, u16), QueryError> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| QueryError(format!("`{s}` has no port; write HOST:PORT")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| QueryError(format!("`{port}` is not a port number")))?;
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((Dest::Ip(ip), port));
    }
    match net::parse_host(host) {
        Ok(HostPattern::Exact(h)) => Ok((Dest::Name(h), port)),
        _ => Err(QueryError(format!(
            "`{host}` is not an IPv4 address or a host name"
        ))),
    }
}
