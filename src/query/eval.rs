//! The one evaluator: the decision the generated sidecar makes (the order is at `evaluate`),
//! computed offline over the plan, with the reasons. `explain` and `test` use it; the e2e suite compares it
//! with what Pipy does.

use crate::model::{MatchMode, Matchers, Protocol, REQUEST_LIMITS, Route, SIDECAR_PORT};
use crate::net::{HostPattern, service_names};
use crate::plan::{IdentityPlan, Plan, Rule};
use crate::query::question::*;
use crate::query::request::{
    normalize_host, normalize_name, pipy_headers, printable_path, printable_value, request_problem,
    suspicious,
};
use crate::query::{gateway, intercept};

pub fn rule_ref(r: &Rule, route_group: Option<&Route>) -> RuleRef {
    RuleRef {
        policy: r.provenance.policy.clone(),
        file: r.provenance.file.clone(),
        line: r.provenance.line,
        protocol: r.protocol.class(),
        route_group: route_group.and_then(|g| g.route_group.clone()),
    }
}

/// Why a route does not admit the request; `None` when it does. In the sidecar's order
/// (`routeAllows`): the method, then (for a route of an HTTPRouteGroup) a printable path
/// without dot segments that its matcher admits, then each header's value.
pub fn route_miss(
    route: &Route,
    req: &HttpRequest,
    path: &str,
    matchers: &Matchers,
) -> Option<String> {
    if !route.methods.is_empty() && !route.methods.contains(&req.method) {
        return Some(format!(
            "method {} is not one of {}",
            req.method,
            route.methods.join(", ")
        ));
    }
    if route.route_group.is_some() {
        if !printable_path(path) {
            return Some(format!(
                "path `{}` has characters outside printable ASCII",
                path.escape_debug()
            ));
        }
        if suspicious(path) {
            return Some(format!(
                "path `{path}` has dot-segments or encoded separators"
            ));
        }
        match matchers.get(&MatchMode::WholePath.key(&route.path)) {
            Some(m) if m.matches(path) => {}
            Some(_) => return Some(format!("path `{path}` does not match `{}`", route.path)),
            None => return Some(format!("route regex `{}` has no matcher", route.path)),
        }
    }
    let headers = pipy_headers(&req.headers);
    for (name, pattern) in &route.headers {
        let value = headers.iter().find(|(n, _)| n == name).map(|(_, v)| &v[..]);
        let value = match value {
            None => return Some(format!("header {name} is missing")),
            Some([one]) => *one,
            Some(_) => return Some(format!("header {name} is a list of values")),
        };
        if !printable_value(value) {
            return Some(format!(
                "header {name} has characters outside printable ASCII"
            ));
        }
        match matchers.get(&MatchMode::Anywhere.key(pattern)) {
            Some(m) if m.matches(value) => {}
            Some(_) => {
                return Some(format!(
                    "header {name}: `{value}` does not match `{pattern}`"
                ));
            }
            None => return Some(format!("header regex `{pattern}` has no matcher")),
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

fn eval_rule<'r>(rule: &'r Rule, q: &Query, matchers: &Matchers) -> RuleResult<'r> {
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
            let Some(sni) = sni.map(|s| normalize_name(&s)) else {
                return RuleResult::Misses("no SNI (give --sni)".into());
            };
            if !crate::net::is_dns_name(&sni) {
                return RuleResult::Misses(format!(
                    "SNI `{}` is not a valid DNS name",
                    sni.escape_debug()
                ));
            }
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
            let host = http_host(req).or_else(|| match &q.dest {
                Dest::Name(n) => Some(n.clone()),
                Dest::Ip(_) => None,
            });
            let Some(host) = host.map(|h| normalize_host(&h)) else {
                return RuleResult::Misses("no Host (give --http-host)".into());
            };
            if !crate::net::is_dns_name(&host) {
                return RuleResult::Misses(format!(
                    "Host `{}` is not a valid DNS name",
                    host.escape_debug()
                ));
            }
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
            for r in routes.iter() {
                match route_miss(r, req, path, matchers) {
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

/// The Service a name destination names, if any (`svc.ns.svc.cluster.local`, `svc.ns.svc`,
/// `svc.ns`).
fn in_mesh_by_name(plan: &Plan, name: &str, port: u16) -> Option<String> {
    plan.mesh.iter().find_map(|d| {
        let (ns, svc) = d.service.split_once('/')?;
        (d.port == port && service_names(svc, ns).iter().any(|n| n == name))
            .then(|| d.service.clone())
    })
}

/// The gateway leg: a connection the sidecar lets out through a gateway is denied when the
/// gateway refuses its target (the first gateway's mode decides which allow-list applies).
fn through_gateway(plan: &Plan, id: &IdentityPlan, q: &Query, mut v: Verdict) -> Verdict {
    let (Some(g), Some(target)) = (plan.gateways.first(), &v.target) else {
        return v;
    };
    if let Err(why) = gateway::admits(plan, id, g.mode, target) {
        // The sidecar tunnels the address the client dialled, which a name does not give
        // offline: the gateway decides on it, not on the name.
        if matches!(q.dest, Dest::Name(_)) && *target == q.destination() {
            v.reason = format!(
                "the sidecar tunnels the dialled address to the gateway {}:{}, which decides on the address (give an IP): by the name it would refuse: {why}",
                g.host, g.port
            );
            v.verdict = Outcome::NeedsAddress;
            return v;
        }
        v.reason = format!(
            "the sidecar tunnels it to the gateway {}:{}, which refuses it: {why}",
            g.host, g.port
        );
        v.verdict = Outcome::Denied;
    }
    v
}

/// Decide one connection as the sidecar would, in the sidecar's order (the same numbers and
/// words as `templates/sidecar/main.js`):
///   0. the sidecar's own listener (its port at a loopback address; at the pod's addresses,
///      known only in the pod, `EGRESSC_POD_IPS`) is refused, whatever a policy names; not
///      intercepted: the iptables rules never send it to the sidecar;
///   1. a gateway Service's address: denied (only the sidecar's own tunnels reach a gateway);
///   2. in-mesh (a Service clusterIP:port): forwarded unchanged, never through a gateway;
///   3. the identity's Egress rules for that port (an http request with ambiguous framing is
///      refused before any rule);
///   4. passthrough when `traffic.enableEgress` is true, but never to a loopback address;
///   5. otherwise denied (or, offline, undecidable without the address).
pub fn evaluate(plan: &Plan, q: &Query) -> Verdict {
    let mut v = decide(plan, q, true);
    intercept::note_pod_resolvers(plan, q, &mut v);
    v
}

/// [`evaluate`] without the search for other identities a denied connection would be allowed
/// for (`test --replay` decides many connections of a large mesh).
pub fn verdict(plan: &Plan, q: &Query) -> Verdict {
    decide(plan, q, false)
}

/// [`evaluate`] but the note on the pod's resolvers; `others`: name the identities a denied
/// connection would be allowed for.
fn decide(plan: &Plan, q: &Query, others: bool) -> Verdict {
    let id = plan.identity(&q.identity);
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
    // 0. The sidecar's own listener; not intercepted (the iptables rules return it before the
    //    redirect); the pod itself.
    if let Dest::Ip(ip) = &q.dest
        && ip.is_loopback()
        && q.port == SIDECAR_PORT
    {
        v.reason = format!("{ip}:{SIDECAR_PORT} is the sidecar's own listener: refused");
        return v;
    }
    if let Some(why) = intercept::not_intercepted(&plan.settings, &plan.dns, q) {
        let reason = format!("not intercepted: {why}; it goes out directly and no policy applies");
        return directly(v, Outcome::NotIntercepted, reason, q);
    }
    // 1. A gateway Service's address.
    if let Some(service) = gateway_address(plan, q) {
        v.reason = format!(
            "{} is the egress gateway {service}: a workload's own connection to it is denied; \
             only the sidecar's tunnels reach it",
            q.destination()
        );
        return v;
    }
    // 2. In-mesh.
    if let Some(service) = in_mesh(plan, q) {
        let reason = format!("{} is the in-mesh Service {service}", q.destination());
        v.service = Some(service);
        return directly(v, Outcome::InMesh, reason, q);
    }
    // 3. The identity's rules on this port.
    if let Some(why) = refused_request(id, q) {
        v.reason = format!("request refused: {why}");
        return v;
    }
    if q.http.is_some() && first_candidate(id, q).is_some_and(|r| r.protocol == Protocol::Https) {
        // The sidecar reads a TLS ClientHello on this port and closes anything else.
        v.reason = "not a TLS ClientHello: an https rule decides this port, and the sidecar closes an HTTP request on it".into();
        return v;
    }
    let needs_address = match apply_rules(plan, id, q, &mut v) {
        Ok(()) => return through_gateway(plan, id, q, v),
        Err(needs_address) => needs_address,
    };
    // 4. Passthrough, but never to the pod itself.
    if let Dest::Ip(ip) = &q.dest
        && ip.is_loopback()
        && plan.settings.enable_egress
    {
        v.reason =
            format!("passthrough never relays to a loopback address ({ip} is the pod itself)");
        return v;
    }
    if plan.settings.enable_egress {
        v.verdict = Outcome::Passthrough;
        v.reason = "passthrough: traffic.enableEgress is true".into();
        v.target = Some(q.destination());
        v.via = Some(gateway::via(plan));
        return through_gateway(plan, id, q, v);
    }
    // 5. Denied, or undecidable offline; in audit mode let through as passthrough would.
    let v = denied(plan, id, q, v, needs_address, others);
    if !id.observe.audit || matches!(&q.dest, Dest::Ip(ip) if ip.is_loopback()) {
        return v;
    }
    audited(plan, id, q, v)
}

/// Audit mode: what step 5 would deny goes out as passthrough routes it (through the gateway,
/// which admits the identity as under passthrough, refused ranges still refused).
fn audited(plan: &Plan, id: &IdentityPlan, q: &Query, mut v: Verdict) -> Verdict {
    let was = std::mem::replace(&mut v.verdict, Outcome::Audit);
    v.reason = match was {
        Outcome::NeedsAddress => format!("allowed in audit mode, or by a rule: {}", v.reason),
        _ => format!(
            "allowed in audit mode: would be denied because {}",
            v.reason
        ),
    };
    (v.target, v.via) = (Some(q.destination()), Some(gateway::via(plan)));
    through_gateway(plan, id, q, v)
}

/// A verdict for a connection that goes out directly to its original destination.
fn directly(mut v: Verdict, outcome: Outcome, reason: String, q: &Query) -> Verdict {
    v.verdict = outcome;
    v.reason = reason;
    v.target = Some(q.destination());
    v.via = Some(vec![Via::Direct]);
    v
}

/// The gateway Service whose address the connection dials, if any.
fn gateway_address(plan: &Plan, q: &Query) -> Option<String> {
    let dest = match &q.dest {
        Dest::Name(n) => Dest::Name(normalize_name(n)),
        d => d.clone(),
    };
    gateway::gateway_service(plan, &dest, q.port)
}

/// The in-mesh Service the connection dials, if any.
fn in_mesh(plan: &Plan, q: &Query) -> Option<String> {
    match &q.dest {
        Dest::Ip(ip) => plan
            .mesh
            .iter()
            .find(|d| d.ip == *ip && d.port == q.port)
            .map(|d| d.service.clone()),
        Dest::Name(n) => in_mesh_by_name(plan, &normalize_name(n), q.port),
    }
}

/// Why the sidecar refuses the request before any rule: it decides this connection per
/// request (an http rule of this port admits the address), and the request is one it refuses
/// whatever the rules say (`request::request_problem`).
fn refused_request(id: &IdentityPlan, q: &Query) -> Option<&'static str> {
    let per_request = id
        .rules
        .iter()
        .any(|r| r.protocol == Protocol::Http && candidate(r, q));
    if !per_request {
        return None;
    }
    request_problem(q.http.as_ref()?, &REQUEST_LIMITS)
}

/// The first rule the sidecar considers for the connection (`rules.candidates`): on its
/// port, and admitting its address (a name, offline: the first on the port). Its protocol
/// decides how the sidecar reads the connection.
fn first_candidate<'p>(id: &'p IdentityPlan, q: &Query) -> Option<&'p Rule> {
    id.rules.iter().find(|r| candidate(r, q)).map(|r| &**r)
}

/// Whether the sidecar considers a rule for the connection: its port, and its address
/// ranges admit the destination (a name, offline: any rule of the port).
fn candidate(r: &Rule, q: &Query) -> bool {
    r.port == q.port
        && match &q.dest {
            Dest::Ip(ip) => r.cidrs.is_empty() || r.cidrs.iter().any(|c| c.contains(*ip)),
            Dest::Name(_) => true,
        }
}

/// The Host a request names: its `host` field (explain's `--http-host`), else its last Host
/// header (as Pipy keeps it).
fn http_host(req: &HttpRequest) -> Option<String> {
    req.host.clone().or_else(|| {
        req.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
    })
}

/// The identity's rules on the query's port, in order: `Ok` when one allows (`v` says which),
/// else `Err` with the first rule that needs the destination address, if any (each miss is
/// recorded in `v`).
fn apply_rules<'p>(
    plan: &Plan,
    id: &'p IdentityPlan,
    q: &Query,
    v: &mut Verdict,
) -> Result<(), Option<&'p Rule>> {
    let mut needs_address = None;
    for rule in id.rules.iter().filter(|r| r.port == q.port) {
        match eval_rule(rule, q, &plan.matchers) {
            RuleResult::Allows(target, route) => {
                v.verdict = Outcome::Allowed;
                v.allowed_by = Some(rule_ref(rule, route));
                v.reason = format!("allowed by Egress {}", rule.provenance.policy);
                v.target = Some(target);
                v.via = Some(gateway::via(plan));
                return Ok(());
            }
            RuleResult::Misses(why) => v.misses.push(Miss {
                rule: rule_ref(rule, None),
                why,
            }),
            RuleResult::NeedsAddress => {
                needs_address.get_or_insert(&**rule);
                v.misses.push(Miss {
                    rule: rule_ref(rule, None),
                    why: "needs the address: the rule restricts ipAddresses and the destination is a name".into(),
                });
            }
        }
    }
    Err(needs_address)
}

/// Denied (or, when a rule needs the address, undecidable offline); with the other
/// identities whose rules would allow it.
fn denied(
    plan: &Plan,
    id: &IdentityPlan,
    q: &Query,
    mut v: Verdict,
    needs_address: Option<&Rule>,
    others: bool,
) -> Verdict {
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
    for other in plan
        .identities
        .iter()
        .filter(|o| others && o.name != id.name)
    {
        for rule in other.rules.iter().filter(|r| r.port == q.port) {
            if let RuleResult::Allows(_, route) = eval_rule(rule, q, &plan.matchers) {
                v.other_identities
                    .push((other.name.clone(), rule_ref(rule, route)));
            }
        }
    }
    v
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
