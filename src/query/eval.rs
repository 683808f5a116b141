//! The one evaluator: the decision the generated sidecar makes (design §3), computed offline
//! over the plan, with the reasons. `explain` and `test` use it; the e2e suite compares it
//! with what Pipy does.

use crate::model::{GatewayMode, Protocol, ProtocolClass, Route};
use crate::net::{self, HostPattern};
use crate::plan::{IdentityPlan, Plan, Rule};
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
    pub method: String,
    /// Path with optional query.
    pub path: String,
    /// (lower-case name, value)
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
    /// `namespace/name`; an identity not in the plan runs the `_default` config.
    pub identity: String,
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
    InMesh,
    Allowed,
    Passthrough,
    Denied,
    /// A rule would decide on the destination address, which a name does not give offline.
    NeedsAddress,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::InMesh => "in-mesh",
            Outcome::Allowed => "allowed",
            Outcome::Passthrough => "passthrough",
            Outcome::Denied => "denied",
            Outcome::NeedsAddress => "needs-address",
        }
    }
    /// Whether the connection leaves (or reaches its in-mesh destination).
    pub fn is_allowed(self) -> bool {
        matches!(
            self,
            Outcome::InMesh | Outcome::Allowed | Outcome::Passthrough
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
    Gateway { address: String, mode: GatewayMode },
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

pub fn rule_ref(r: &Rule, route_group: Option<&Route>) -> RuleRef {
    RuleRef {
        policy: r.provenance.policy.clone(),
        file: r.provenance.file.clone(),
        line: r.provenance.line,
        protocol: r.protocol.class(),
        route_group: route_group.and_then(|g| g.route_group.clone()),
    }
}

pub fn identity<'p>(plan: &'p Plan, name: &str) -> &'p IdentityPlan {
    plan.identities
        .iter()
        .find(|i| i.name == name)
        .unwrap_or(&plan.identities[0])
}

/// Same normalisation as the sidecar: lower-case, port and trailing dots removed.
pub fn normalize_host(h: &str) -> String {
    let mut s = h.to_ascii_lowercase();
    if let Some(colon) = s.rfind(':')
        && !s[colon..].contains(']')
    {
        s.truncate(colon);
    }
    while s.ends_with('.') {
        s.pop();
    }
    s
}

/// Dot-segments or encoded `.`, `/`, `\`: such a path never passes a route of an HTTPRouteGroup.
pub fn suspicious(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains('\\')
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// Why a route does not admit the request; `None` when it does.
fn route_miss(route: &Route, req: &HttpRequest, path: &str) -> Option<String> {
    if !route.methods.is_empty() && !route.methods.contains(&req.method) {
        return Some(format!(
            "method {} is not one of {}",
            req.method,
            route.methods.join(", ")
        ));
    }
    if route.route_group.is_some() && suspicious(path) {
        return Some(format!(
            "path `{path}` has dot-segments or encoded separators"
        ));
    }
    let re = match regex::Regex::new(&format!("^(?:{})$", route.path)) {
        Ok(re) => re,
        Err(e) => return Some(format!("route regex does not compile: {e}")),
    };
    if !re.is_match(path) {
        return Some(format!("path `{path}` does not match `{}`", route.path));
    }
    for (name, pattern) in &route.headers {
        let value = req
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let re = match regex::Regex::new(pattern) {
            Ok(re) => re,
            Err(e) => return Some(format!("header regex: {e}")),
        };
        match value {
            Some(v) if re.is_match(v) => {}
            Some(v) => return Some(format!("header {name}: `{v}` does not match `{pattern}`")),
            None => return Some(format!("header {name} is missing")),
        }
    }
    None
}

/// One rule against the query: Ok(target, route) when it allows, Err(why) when not, and
/// Err with `needs_address` when it cannot decide without the address.
enum RuleResult<'r> {
    Allows(String, Option<&'r Route>),
    Misses(String),
    NeedsAddress,
}

fn eval_rule<'r>(rule: &'r Rule, q: &Query) -> RuleResult<'r> {
    if rule.port != q.port {
        return RuleResult::Misses(format!("port {} is not {}", q.port, rule.port));
    }
    if !rule.cidrs.is_empty() {
        match &q.dest {
            Dest::Ip(ip) => {
                if !rule.cidrs.iter().any(|c| c.contains(*ip)) {
                    let list: Vec<String> = rule.cidrs.iter().map(|c| c.to_string()).collect();
                    return RuleResult::Misses(format!("{ip} is outside {}", list.join(", ")));
                }
            }
            Dest::Name(_) => return RuleResult::NeedsAddress,
        }
    }
    let original = q.destination();
    match rule.protocol {
        Protocol::Tcp | Protocol::TcpServerFirst => RuleResult::Allows(original, None),
        Protocol::Https => {
            if rule.hosts.is_empty() {
                return RuleResult::Allows(original, None);
            }
            let sni = q.sni.clone().or_else(|| match &q.dest {
                Dest::Name(n) => Some(n.clone()),
                Dest::Ip(_) => None,
            });
            let Some(sni) = sni.map(|s| normalize_host(&s)) else {
                return RuleResult::Misses("no SNI (give --sni)".into());
            };
            if rule.hosts.iter().any(|h| h.matches(&sni)) {
                RuleResult::Allows(format!("{sni}:{}", q.port), None)
            } else {
                RuleResult::Misses(format!("SNI {sni} is not in {}", hosts_list(&rule.hosts)))
            }
        }
        Protocol::Http => {
            let Some(req) = &q.http else {
                return RuleResult::Misses("http is decided per request (give --path)".into());
            };
            let host = req.host.clone().or_else(|| match &q.dest {
                Dest::Name(n) => Some(n.clone()),
                Dest::Ip(_) => None,
            });
            let Some(host) = host.map(|h| normalize_host(&h)) else {
                return RuleResult::Misses("no Host (give --http-host)".into());
            };
            if !rule.hosts.iter().any(|h| h.matches(&host)) {
                return RuleResult::Misses(format!(
                    "Host {host} is not in {}",
                    hosts_list(&rule.hosts)
                ));
            }
            let path = req.path.split('?').next().unwrap_or("");
            let target = format!("{host}:{}", q.port);
            let Some(routes) = &rule.routes else {
                return RuleResult::Allows(target, None);
            };
            let mut why = Vec::new();
            for r in routes {
                match route_miss(r, req, path) {
                    None => return RuleResult::Allows(target, Some(r)),
                    Some(e) => why.push(format!(
                        "{}: {e}",
                        r.route_group.as_deref().unwrap_or("route")
                    )),
                }
            }
            if why.is_empty() {
                why.push("the referenced HTTPRouteGroup has no matches".into());
            }
            RuleResult::Misses(why.join("; "))
        }
    }
}

fn hosts_list(hosts: &[HostPattern]) -> String {
    hosts
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn via(plan: &Plan) -> Vec<Via> {
    if plan.gateways.is_empty() {
        vec![Via::Direct]
    } else {
        plan.gateways
            .iter()
            .map(|g| Via::Gateway {
                address: format!("{}:{}", g.host, g.port),
                mode: g.mode,
            })
            .collect()
    }
}

/// The Service a name destination names, if any (`svc.ns.svc.cluster.local`, `svc.ns.svc`,
/// `svc.ns`).
fn in_mesh_by_name(plan: &Plan, name: &str, port: u16) -> Option<String> {
    plan.mesh.iter().find_map(|d| {
        let (ns, svc) = d.service.split_once('/')?;
        let base = format!("{svc}.{ns}");
        let names = [
            format!("{base}.svc.cluster.local"),
            format!("{base}.svc"),
            base,
        ];
        (d.port == port && names.iter().any(|n| n == name)).then(|| d.service.clone())
    })
}

/// Decide one connection as the sidecar would.
pub fn evaluate(plan: &Plan, q: &Query) -> Verdict {
    let id = identity(plan, &q.identity);
    let mut v = Verdict {
        identity: id.name.clone(),
        destination: q.destination(),
        verdict: Outcome::Denied,
        allowed_by: None,
        service: None,
        target: None,
        via: None,
        reason: String::new(),
        misses: Vec::new(),
        other_identities: Vec::new(),
    };
    // 1. In-mesh.
    let mesh = match &q.dest {
        Dest::Ip(ip) => plan
            .mesh
            .iter()
            .find(|d| d.ip == *ip && d.port == q.port)
            .map(|d| d.service.clone()),
        Dest::Name(n) => in_mesh_by_name(plan, &normalize_host(n), q.port),
    };
    if let Some(service) = mesh {
        v.verdict = Outcome::InMesh;
        v.reason = format!("{} is the in-mesh Service {service}", q.destination());
        v.service = Some(service);
        v.target = Some(q.destination());
        v.via = Some(vec![Via::Direct]);
        return v;
    }
    // 2. The identity's rules on this port.
    let mut needs_address = None;
    for rule in id.rules.iter().filter(|r| r.port == q.port) {
        match eval_rule(rule, q) {
            RuleResult::Allows(target, route) => {
                v.verdict = Outcome::Allowed;
                v.allowed_by = Some(rule_ref(rule, route));
                v.reason = format!("allowed by Egress {}", rule.provenance.policy);
                v.target = Some(target);
                v.via = Some(via(plan));
                return v;
            }
            RuleResult::Misses(why) => v.misses.push(Miss {
                rule: rule_ref(rule, None),
                why,
            }),
            RuleResult::NeedsAddress => {
                needs_address.get_or_insert(rule);
                v.misses.push(Miss {
                    rule: rule_ref(rule, None),
                    why: "needs the address: the rule restricts ipAddresses and the destination is a name".into(),
                });
            }
        }
    }
    // 3. Passthrough.
    if plan.settings.enable_egress {
        v.verdict = Outcome::Passthrough;
        v.reason = "passthrough: traffic.enableEgress is true".into();
        v.target = Some(q.destination());
        v.via = Some(via(plan));
        return v;
    }
    // 4. Denied, or undecidable offline.
    if let Some(rule) = needs_address {
        v.verdict = Outcome::NeedsAddress;
        v.reason = format!(
            "Egress {} decides on the destination address; give an IP to --to",
            rule.provenance.policy
        );
        return v;
    }
    v.reason = if id.rules.iter().any(|r| r.port == q.port) {
        "no rule of this identity matches".into()
    } else {
        format!(
            "no rule of this identity for port {}, and passthrough is off",
            q.port
        )
    };
    for other in plan.identities.iter().filter(|o| o.name != id.name) {
        for rule in other.rules.iter().filter(|r| r.port == q.port) {
            if let RuleResult::Allows(_, route) = eval_rule(rule, q) {
                v.other_identities
                    .push((other.name.clone(), rule_ref(rule, route)));
            }
        }
    }
    v
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

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
