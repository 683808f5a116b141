//! `egressc suggest`: from the connections of decision logs that the inputs do not let through
//! (logged `deny` or `audit`, and denied by the evaluator now) to the Egress policies that,
//! added to the inputs, allow them and nothing else that is new: one policy per identity and
//! port, exact hosts (SNI for tls, Host for http) or `/32` addresses, the ports and protocols
//! seen, with a comment on how many lines each covers and when they were seen.

use crate::model::Identity;
use crate::net::is_dns_name;
use crate::plan::Plan;
use crate::query::eval::verdict;
use crate::query::question::Dest;
use crate::query::replay::{Observed, Tally};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// An Egress policy as `suggest` writes it (the fields `check` reads, in the usual order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EgressDoc<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Meta<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Meta<'a> {
    name: String,
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    sources: [Source<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip_addresses: Vec<String>,
    ports: [Port<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<[Match<'a>; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Match<'a> {
    api_group: &'static str,
    kind: &'static str,
    name: &'a str,
}

/// `--routes exact`: an HTTPRouteGroup of the paths seen, each with its methods.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteGroupDoc<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Meta<'a>,
    spec: RouteGroupSpec,
}

#[derive(Serialize)]
struct RouteGroupSpec {
    matches: Vec<RouteMatch>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteMatch {
    name: String,
    path_regex: String,
    methods: Vec<String>,
}

/// A path as a regex that matches exactly it (the sidecar anchors a route's path regex).
fn exact(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if ".+*?()|[]{}^$\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Serialize)]
struct Source<'a> {
    kind: &'static str,
    name: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
struct Port<'a> {
    number: u16,
    protocol: &'a str,
}

/// What `suggest` writes: the YAML, and what it says on standard error.
#[derive(Debug, Default)]
pub struct Suggestion {
    pub yaml: String,
    pub policies: usize,
    pub notes: Vec<String>,
}

/// The connections of one identity to one port that the inputs do not allow.
#[derive(Default)]
struct Group {
    protocols: BTreeSet<&'static str>,
    names: BTreeSet<String>,
    addresses: BTreeSet<Ipv4Addr>,
    lines: u64,
    first: Option<String>,
    last: Option<String>,
    /// A tls or http connection without a DNS name (no SNI, an IP literal as Host): only an
    /// address rule expresses it.
    unnamed: bool,
    /// http: path → methods seen; `None` once a request's path is unknown or was cut.
    paths: Option<BTreeMap<String, BTreeSet<String>>>,
}

fn add_time(g: &mut Group, t: &Tally) {
    g.lines += t.lines;
    if let Some(f) = &t.first
        && g.first.as_ref().is_none_or(|x| f < x)
    {
        g.first = Some(f.clone());
    }
    if let Some(l) = &t.last
        && g.last.as_ref().is_none_or(|x| l > x)
    {
        g.last = Some(l.clone());
    }
}

/// The suggestion for the connections of `observed` that `plan` does not let through.
pub fn suggest(plan: &Plan, observed: &Observed, exact_routes: bool) -> Suggestion {
    let mut groups: BTreeMap<(Identity, u16), Group> = BTreeMap::new();
    let mut out = Suggestion::default();
    for (c, tally) in observed.connections() {
        let Ok(q) = c.query() else {
            out.notes.push(format!(
                "skipped {} → {}: not an identity and address:port",
                c.identity, c.destination
            ));
            continue;
        };
        // Connection::query gives an address destination.
        let Dest::Ip(ip) = q.dest else { continue };
        let (identity, port) = (q.identity.clone(), q.port);
        let v = verdict(plan, &q);
        if v.verdict.is_allowed() {
            continue;
        }
        // What is refused whatever the rules say: no policy allows it.
        let refused = [
            "request refused",
            "not a TLS ClientHello",
            "the sidecar's own listener",
        ];
        if ip.is_loopback()
            || refused.iter().any(|r| v.reason.starts_with(r))
            || v.reason.contains("egress gateway")
        {
            out.notes.push(format!(
                "no policy can allow {} → {} ({}): left out",
                c.identity, c.destination, v.reason
            ));
            continue;
        }
        let g = groups.entry((identity, port)).or_insert_with(|| Group {
            paths: Some(BTreeMap::new()),
            ..Group::default()
        });
        add_time(g, tally);
        match (&c.method, &c.path, &mut g.paths) {
            (Some(m), Some(p), Some(paths)) if p.len() < 256 => {
                paths.entry(p.clone()).or_default().insert(m.clone());
            }
            _ => g.paths = None,
        }
        g.addresses.insert(ip);
        g.protocols.insert(c.protocol);
        let name = match c.protocol {
            "tls" => c.sni.clone(),
            "http" => c.host.clone(),
            _ => None,
        };
        match name.map(|n| n.to_ascii_lowercase()) {
            Some(n) if is_dns_name(&n) => {
                g.names.insert(n);
            }
            _ if c.protocol != "tcp" => g.unnamed = true,
            _ => {}
        }
    }
    for ((identity, port), g) in &groups {
        out.yaml.push_str(&policy(
            plan,
            identity,
            *port,
            g,
            exact_routes,
            &mut out.notes,
        ));
        out.policies += 1;
    }
    out
}

/// One Egress policy (a YAML document with its comment).
fn policy(
    plan: &Plan,
    id: &Identity,
    port: u16,
    g: &Group,
    exact_routes: bool,
    notes: &mut Vec<String>,
) -> String {
    let existing: BTreeSet<&str> = plan
        .identity(id)
        .rules
        .iter()
        .filter(|r| r.port == port)
        .map(|r| r.protocol.class().as_str())
        .collect();
    let (protocol, why) = protocol_of(id, port, g);
    if let Some(w) = &why {
        notes.push(w.clone());
    }
    if existing.iter().any(|p| *p != protocol) {
        notes.push(format!(
            "{id} already has a rule for port {port} with another protocol ({}): the suggested {protocol} policy would be E0315; review it",
            existing.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    let cidrs: Vec<String> = if protocol == "tcp" {
        g.addresses.iter().map(|a| format!("{a}/32")).collect()
    } else {
        Vec::new()
    };
    let name = format!("egressc-suggested-{}-{port}", id.name);
    let routes = route_group(g, &name, &id.namespace, protocol, exact_routes);
    let doc = EgressDoc {
        api_version: "policy.flomesh.io/v1alpha1",
        kind: "Egress",
        metadata: Meta {
            name: name.clone(),
            namespace: &id.namespace,
        },
        spec: Spec {
            sources: [Source {
                kind: "ServiceAccount",
                name: &id.name,
                namespace: &id.namespace,
            }],
            hosts: if protocol == "tcp" {
                Vec::new()
            } else {
                g.names.iter().map(String::as_str).collect()
            },
            ip_addresses: cidrs,
            ports: [Port {
                number: port,
                protocol,
            }],
            matches: routes.as_ref().map(|_| {
                [Match {
                    api_group: "specs.smi-spec.io/v1alpha4",
                    kind: "HTTPRouteGroup",
                    name: &name,
                }]
            }),
        },
    };
    let mut text = format!(
        "---\n# suggested by egressc: covers {} logged decision line{} of {id} to port {port}, first seen {}, last seen {}\n",
        g.lines,
        if g.lines == 1 { "" } else { "s" },
        g.first.as_deref().unwrap_or("?"),
        g.last.as_deref().unwrap_or("?")
    );
    if let Some(w) = why {
        text.push_str(&format!("# {w}\n"));
    }
    text.push_str(&serde_saphyr::to_string(&doc).expect("a policy serialises"));
    if let Some(r) = routes {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&r).expect("a route group serialises"));
    }
    text
}

/// `--routes exact`: the paths seen, each with its methods, when every request's is known.
fn route_group<'a>(
    g: &Group,
    name: &str,
    namespace: &'a str,
    protocol: &str,
    exact_routes: bool,
) -> Option<RouteGroupDoc<'a>> {
    match (&g.paths, protocol) {
        (Some(paths), "http") if exact_routes && !paths.is_empty() => Some(RouteGroupDoc {
            api_version: "specs.smi-spec.io/v1alpha4",
            kind: "HTTPRouteGroup",
            metadata: Meta {
                name: name.to_owned(),
                namespace,
            },
            spec: RouteGroupSpec {
                matches: paths
                    .iter()
                    .enumerate()
                    .map(|(i, (path, methods))| RouteMatch {
                        name: format!("seen-{i}"),
                        path_regex: exact(path),
                        methods: methods.iter().cloned().collect(),
                    })
                    .collect(),
            },
        }),
        _ => None,
    }
}

/// The protocol one policy of the group can have, and why it is tcp when the group mixes
/// what one policy cannot hold.
fn protocol_of(id: &Identity, port: u16, g: &Group) -> (&'static str, Option<String>) {
    let one = |p: &str| g.protocols.len() == 1 && g.protocols.contains(p);
    if one("tls") && !g.unnamed {
        ("https", None)
    } else if one("http") && !g.unnamed {
        ("http", None)
    } else if one("tcp") {
        ("tcp", None)
    } else {
        (
            "tcp",
            Some(format!(
                "{} on port {port} carried {} (or a name a policy cannot hold): one policy cannot express that, so this allows tcp to the addresses seen",
                id,
                g.protocols
                    .iter()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        )
    }
}
