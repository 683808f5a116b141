//! One Egress policy at a time: sources, ports and protocols, hosts, CIDRs and `matches`,
//! resolved into a `model::Policy`.

use crate::check::common::{cidr, ipv6_unsupported, not_acted_on, sorted};
use crate::check::names::{NameRule, check_reference};
use crate::check::routes::Key;
use crate::diagnostics::{Code, Diagnostic};
use crate::load::inputs::{Inputs, Res};
use crate::load::kinds::EgressSpec;
use crate::model::{
    ConnectionSettings, Identity, Policy, PolicyPort, Protocol, ProtocolClass, Provenance, Route,
};
use crate::net::{self, HostError, HostPattern};
use crate::path;
use crate::span::Span;
use std::collections::HashMap;
use std::sync::Arc;

const HTTPROUTEGROUP_GROUP: &str = "specs.smi-spec.io/v1alpha4";
const UTS_GROUP: &str = "policy.flomesh.io/v1alpha1";

/// What the cross-policy rules need of a policy that passed its own checks.
pub struct ValidEgress<'a> {
    pub res: &'a Res<EgressSpec>,
    /// The index in `spec.ports` of each of `policy.ports`.
    pub port_index: Vec<usize>,
    /// (kind, name) of the `matches`.
    /// Sorted, without duplicates.
    pub matches: Vec<(&'a str, &'a str)>,
    pub policy: Policy,
}

/// The resources that `matches` may name, by (namespace, name).
pub struct Targets<'a> {
    pub route_groups: HashMap<Key<'a>, Arc<Vec<Route>>>,
    pub upstream_settings: HashMap<Key<'a>, Option<ConnectionSettings>>,
}

/// W0403: a rule that lets every address through.
fn allows_everything(span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(Code::W0403, message).at(span).help(help)
}

fn open_port(span: Span, protocol: &str, port: u16, what: &str, help: &str) -> Diagnostic {
    let every = if protocol == "tcp" {
        "address"
    } else {
        "destination"
    };
    allows_everything(
        span,
        format!("{protocol} port {port} {what}: every {every} on this port is allowed"),
        help,
    )
}

/// The policies without errors, in input order.
pub fn check_egresses<'a>(
    inputs: &'a Inputs,
    targets: &Targets<'a>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ValidEgress<'a>> {
    let mut out = Vec::with_capacity(inputs.egresses.len());
    for e in &inputs.egresses {
        let before = diags.len();
        let v = check_egress(inputs, e, targets, diags);
        let new_errors = diags[before..].iter().any(Diagnostic::is_error);
        if let Some(v) = v.filter(|_| !new_errors) {
            out.push(v);
        }
    }
    out
}

/// One policy; `None` when a port is out of range (reported by the schema check).
fn check_egress<'a>(
    inputs: &'a Inputs,
    e: &'a Res<EgressSpec>,
    targets: &Targets<'a>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ValidEgress<'a>> {
    let doc = inputs.doc(e);
    let spec = &e.spec;
    let mut sources = Vec::with_capacity(spec.sources.len());
    for (i, s) in spec.sources.iter().enumerate() {
        if s.kind != "ServiceAccount" {
            diags.push(
                Diagnostic::new(
                    Code::E0309,
                    format!("source kind `{}` is not supported", s.kind),
                )
                .at(doc.span(path!["spec", "sources", i, "kind"]))
                .label("FSM only matches `ServiceAccount`; this source would select nothing")
                .help("write `kind: ServiceAccount`"),
            );
        }
        check_reference(
            "service account name",
            (
                &s.name,
                NameRule::Subdomain,
                doc.span(path!["spec", "sources", i, "name"]),
            ),
            (
                &s.namespace,
                doc.span(path!["spec", "sources", i, "namespace"]),
            ),
            diags,
        );
        if s.mtls.is_some() {
            diags.push(not_acted_on(
                doc.key_span(path!["spec", "sources", i, "mtls"]),
                "`mtls` is accepted but egressc does not act on it",
                "egress connections leave without a source certificate; originate TLS in the application",
            ));
        }
        sources.push(Identity {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        });
    }

    let mut out_of_range = false;
    let mut ports = Vec::new();
    let mut port_index = Vec::new();
    let mut has_http = false;
    let mut all_tcp = !spec.ports.is_empty();
    for (i, p) in spec.ports.iter().enumerate() {
        let proto = Protocol::parse(&p.protocol);
        if proto.map(Protocol::class) != Some(ProtocolClass::Tcp) {
            all_tcp = false;
        }
        // Out-of-range numbers were reported by the schema check (E0301).
        let Some(number) = u16::try_from(p.number).ok().filter(|n| *n > 0) else {
            out_of_range = true;
            continue;
        };
        let Some(proto) = proto else {
            diags.push(
                Diagnostic::new(Code::E0302, format!("unsupported protocol `{}`", p.protocol))
                    .at(doc.span(path!["spec", "ports", i, "protocol"]))
                    .label("FSM silently drops this port")
                    .help("use `http`, `https`, `tcp` or `tcp-server-first` (gRPC is `http` on its port, or `tcp`)"),
            );
            continue;
        };
        ports.push(PolicyPort {
            number,
            protocol: proto,
        });
        port_index.push(i);
        let span = doc.span(path!["spec", "ports", i]);
        match proto.class() {
            ProtocolClass::Http => {
                has_http = true;
                if spec.hosts().is_empty() {
                    diags.push(
                        Diagnostic::new(Code::E0305, format!("http port {} has no hosts", p.number))
                            .at(span)
                            .help("add the host names this port may reach to `hosts`; http egress is decided by the Host header"),
                    );
                }
            }
            ProtocolClass::Https => {
                if spec.hosts().is_empty() && spec.ip_addresses().is_empty() {
                    diags.push(open_port(
                        span,
                        "https",
                        number,
                        "lists neither hosts nor ipAddresses",
                        "list the server names in `hosts` or the networks in `ipAddresses`",
                    ));
                }
            }
            ProtocolClass::Tcp => {
                if spec.ip_addresses().is_empty() {
                    diags.push(open_port(
                        span,
                        "tcp",
                        number,
                        "has no ipAddresses",
                        "list the networks this port may reach in `ipAddresses`",
                    ));
                }
            }
        }
    }

    let mut hosts = Vec::new();
    for (i, h) in spec.hosts().iter().enumerate() {
        let span = doc.span(path!["spec", "hosts", i]);
        match net::parse_host(h) {
            Ok(p) => {
                if let HostPattern::Wildcard(s) = &p
                    && net::is_public_suffix(s)
                {
                    diags.push(
                        Diagnostic::new(
                            Code::W0404,
                            format!("`{h}` admits every domain under the public suffix `{s}`"),
                        )
                        .at(span)
                        .help("name the domains you mean, e.g. `*.example.com`"),
                    );
                }
                hosts.push(p);
            }
            Err(HostError::Ipv6) => diags.push(ipv6_unsupported("host", h, span)),
            Err(HostError::Invalid { reason, help }) => diags.push(
                Diagnostic::new(Code::E0304, format!("invalid host `{h}`: {reason}"))
                    .at(span)
                    .help(help),
            ),
        }
    }
    if all_tcp && !spec.hosts().is_empty() {
        diags.push(not_acted_on(
            doc.key_span(path!["spec", "hosts"]),
            "`hosts` has no effect on tcp ports",
            "tcp egress is decided by address and port; use `ipAddresses`",
        ));
    }

    let mut cidrs = Vec::new();
    for (i, c) in spec.ip_addresses().iter().enumerate() {
        let p = path!["spec", "ipAddresses", i];
        let parsed = cidr(doc, p, c, diags);
        if parsed.is_some_and(|c| c.0.network_length() == 0) {
            diags.push(allows_everything(
                doc.span(p),
                format!("`{c}` contains every address: `ipAddresses` restricts nothing"),
                "list the networks the policy may reach, or leave `ipAddresses` out on purpose",
            ));
        }
        cidrs.extend(parsed);
    }
    for (field, empty) in [
        ("sources", spec.sources.is_empty()),
        ("ports", spec.ports.is_empty()),
    ] {
        if empty {
            diags.push(
                Diagnostic::new(
                    Code::W0410,
                    format!("`{field}` is empty: this policy allows nothing"),
                )
                .at(doc.key_span(path!["spec", field]))
                .help("list what the policy is for, or remove the policy"),
            );
        }
    }

    let mut uts = Vec::new();
    let mut matches = Vec::new();
    // The route lists of the HTTPRouteGroups it matches (`None`: it matches none).
    let mut groups: Option<Vec<&Arc<Vec<Route>>>> = None;
    let mut connection_settings = None;
    for (i, m) in spec.matches().iter().enumerate() {
        let group = m.api_group.as_deref().unwrap_or("");
        let key = (e.ns(), m.name.as_str());
        let target_exists = match (group, m.kind.as_str()) {
            (HTTPROUTEGROUP_GROUP, "HTTPRouteGroup") => {
                if !has_http {
                    diags.push(not_acted_on(
                        doc.span(path!["spec", "matches", i]),
                        "HTTPRouteGroup routes apply only to http ports, and this policy has none",
                        "add an http port, or remove the match",
                    ));
                }
                let found = targets.route_groups.get(&key);
                groups.get_or_insert_with(Vec::new).extend(found);
                found.is_some()
            }
            (UTS_GROUP, "UpstreamTrafficSetting") => {
                uts.push(i);
                let found = targets.upstream_settings.get(&key);
                if uts.len() == 1 {
                    connection_settings = found.cloned().flatten();
                }
                found.is_some()
            }
            _ => {
                let (span, message) = match m.api_group.as_deref() {
                    None => (
                        doc.span(path!["spec", "matches", i]),
                        format!("match `{}` has no apiGroup", m.kind),
                    ),
                    Some(g) if g == HTTPROUTEGROUP_GROUP || g == UTS_GROUP => (
                        doc.span(path!["spec", "matches", i, "kind"]),
                        format!("unsupported match kind `{}` in apiGroup `{g}`", m.kind),
                    ),
                    Some(g) => (
                        doc.span(path!["spec", "matches", i, "apiGroup"]),
                        format!("unsupported match `{}` in apiGroup `{g}`", m.kind),
                    ),
                };
                diags.push(
                    Diagnostic::new(Code::E0307, message)
                    .at(span)
                    .help(format!(
                        "use apiGroup `{HTTPROUTEGROUP_GROUP}` with kind HTTPRouteGroup, or `{UTS_GROUP}` with kind UpstreamTrafficSetting"
                    )),
                );
                continue;
            }
        };
        if !target_exists {
            diags.push(
                Diagnostic::new(
                    Code::E0306,
                    format!("{} `{}/{}` is not in the inputs", m.kind, e.ns(), m.name),
                )
                .at(doc.span(path!["spec", "matches", i, "name"]))
                .help(format!(
                    "add the {} to the inputs, in namespace `{}` (matches are looked up in the policy's namespace)",
                    m.kind,
                    e.ns()
                )),
            );
        }
        matches.push((m.kind.as_str(), m.name.as_str()));
    }
    for &i in uts.iter().skip(1) {
        diags.push(
            Diagnostic::new(
                Code::E0308,
                "more than one UpstreamTrafficSetting in `matches`",
            )
            .at(doc.span(path!["spec", "matches", i]))
            .related(doc.span(path!["spec", "matches", uts[0]]), "the first one")
            .help("keep one UpstreamTrafficSetting per policy"),
        );
    }
    if out_of_range {
        return None;
    }
    Some(ValidEgress {
        res: e,
        port_index,
        matches: sorted(matches),
        policy: Policy {
            provenance: Provenance {
                policy: format!("{}/{}", e.ns(), e.name()),
                file: inputs.file_name(doc.file).to_owned(),
                line: doc.start.line,
            },
            sources: sorted(sources),
            ports,
            hosts: sorted(hosts),
            cidrs: sorted(cidrs),
            routes: groups.map(|g| match g[..] {
                [one] => Arc::clone(one),
                _ => Arc::new(sorted(g.iter().flat_map(|r| r.iter().cloned()).collect())),
            }),
            connection_settings,
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{enforced, places, plan};

    fn egress(spec: &str) -> String {
        enforced(&format!(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: ns}}\nspec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: ns}}]\n{spec}"
        ))
    }

    #[test]
    fn ports_protocols_and_hosts() {
        let yaml = egress(
            "  hosts: [a..b, '*.com']\n  ports:\n  - {number: 80, protocol: grpc}\n  - {number: 81, protocol: http}\n",
        );
        assert_eq!(places(&yaml), ["E0304 11:11", "W0404 11:17", "E0302 13:28"]);
        let yaml = egress(
            "  ports:\n  - {number: 80, protocol: http}\n  - {number: 5432, protocol: tcp}\n",
        );
        assert_eq!(places(&yaml), ["E0305 12:5", "W0403 13:5"]);
    }

    #[test]
    fn matches_must_name_known_resources() {
        let yaml = egress(
            "  hosts: [a.example]\n  ports: [{number: 80, protocol: http}]\n  matches:\n  - {apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: nope}\n  - {kind: HTTPRoute, name: x}\n",
        );
        assert_eq!(places(&yaml), ["E0306 14:72", "E0307 15:5"]);
    }

    #[test]
    fn a_valid_policy_is_resolved_sorted() {
        let p = plan(&egress(
            "  hosts: [b.example, A.example, b.example]\n  ipAddresses: [10.0.0.0/8]\n  ports: [{number: 443, protocol: https}]\n",
        ));
        let id = p.identities.iter().find(|i| i.name == "ns/a").expect("n/a");
        let hosts: Vec<String> = id.rules[0].hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);
        assert_eq!(id.rules[0].provenance.policy, "ns/e");
        assert_eq!(id.rules[0].provenance.line, 6);
    }
}
