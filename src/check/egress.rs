//! One Egress policy at a time: sources, ports and protocols, hosts, CIDRs and `matches`
//! (`matches.rs`), resolved into a `model::Policy`.

use crate::check::common::{cidr, ipv6_unsupported, not_acted_on, sorted};
use crate::check::matches::{Targets, check_matches, one_upstream_setting};
use crate::check::names::{NameRule, check_reference};
use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::EgressSpec;
use crate::load::loaded::{Document, Loaded, Res};
use crate::model::{Identity, Policy, PolicyPort, Protocol, ProtocolClass, Provenance};
use crate::net::{self, Cidr, HostError, HostPattern};
use crate::path;
use crate::span::Span;
use std::sync::Arc;

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
    inputs: &'a Loaded,
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
    inputs: &'a Loaded,
    e: &'a Res<EgressSpec>,
    targets: &Targets<'a>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ValidEgress<'a>> {
    let doc = inputs.doc(e);
    let spec = &e.spec;
    let sources = check_sources(doc, spec, diags);
    let ports = check_ports(doc, spec, diags);
    let hosts = check_hosts(doc, spec, ports.all_tcp, diags);
    let cidrs = check_cidrs(doc, spec, diags);
    check_not_empty(doc, spec, diags);
    let matches = check_matches(doc, e, ports.has_http, targets, diags);
    let connection_settings = one_upstream_setting(doc, &matches.upstream_settings, diags);
    if ports.out_of_range {
        return None;
    }
    Some(ValidEgress {
        res: e,
        port_index: ports.index,
        matches: sorted(matches.names),
        policy: Policy {
            provenance: Provenance {
                policy: format!("{}/{}", e.ns(), e.name()),
                file: inputs.file_name(doc.file).to_owned(),
                line: doc.start.line,
            },
            sources: sorted(sources),
            ports: ports.ports,
            hosts: sorted(hosts),
            cidrs: sorted(cidrs),
            routes: matches.route_groups.map(|g| match g[..] {
                [one] => Arc::clone(one),
                _ => Arc::new(sorted(g.iter().flat_map(|r| r.iter().cloned()).collect())),
            }),
            connection_settings,
        },
    })
}

/// `sources`: ServiceAccounts with valid names (E0309, E0310); `mtls` is not acted on (W0408).
fn check_sources(doc: &Document, spec: &EgressSpec, diags: &mut Vec<Diagnostic>) -> Vec<Identity> {
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
    sources
}

/// What `ports` resolved to.
struct Ports {
    ports: Vec<PolicyPort>,
    /// The index in `spec.ports` of each of `ports`.
    index: Vec<usize>,
    /// A port number was out of range (reported by the schema check, E0301).
    out_of_range: bool,
    has_http: bool,
    /// Every port is tcp (and there is one).
    all_tcp: bool,
}

/// `ports`: known protocols (E0302); an http port needs hosts (E0305); an https port without
/// hosts or CIDRs, or a tcp port without CIDRs, lets everything through (W0403).
fn check_ports(doc: &Document, spec: &EgressSpec, diags: &mut Vec<Diagnostic>) -> Ports {
    let mut out = Ports {
        ports: Vec::new(),
        index: Vec::new(),
        out_of_range: false,
        has_http: false,
        all_tcp: !spec.ports.is_empty(),
    };
    for (i, p) in spec.ports.iter().enumerate() {
        let proto = Protocol::parse(&p.protocol);
        if proto.map(Protocol::class) != Some(ProtocolClass::Tcp) {
            out.all_tcp = false;
        }
        // Out-of-range numbers were reported by the schema check (E0301).
        let Some(number) = u16::try_from(p.number).ok().filter(|n| *n > 0) else {
            out.out_of_range = true;
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
        out.ports.push(PolicyPort {
            number,
            protocol: proto,
        });
        out.index.push(i);
        let span = doc.span(path!["spec", "ports", i]);
        match proto.class() {
            ProtocolClass::Http => {
                out.has_http = true;
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
    out
}

/// `hosts`: valid names (E0304, E0317), no wildcard over a public suffix (W0404), and no
/// effect on a policy of tcp ports only (W0408).
fn check_hosts(
    doc: &Document,
    spec: &EgressSpec,
    all_tcp: bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<HostPattern> {
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
    hosts
}

/// `ipAddresses`: valid IPv4 CIDRs (E0303, E0317); `/0` restricts nothing (W0403).
fn check_cidrs(doc: &Document, spec: &EgressSpec, diags: &mut Vec<Diagnostic>) -> Vec<Cidr> {
    let mut cidrs = Vec::new();
    for (i, c) in spec.ip_addresses().iter().enumerate() {
        let p = path!["spec", "ipAddresses", i];
        let parsed = cidr(doc, p, c, diags);
        if parsed.is_some_and(|c| c.0.network_length() == 0) {
            diags.push(allows_everything(
                doc.span(p),
                format!(
                    "`{c}` contains every address: it restricts nothing, and through an egress gateway it also names loopback, link-local (cloud metadata at 169.254.169.254) and the other ranges the gateway refuses unless a policy names them"
                ),
                "list the networks the policy may reach; leaving `ipAddresses` out allows every address but those ranges",
            ));
        }
        cidrs.extend(parsed);
    }
    cidrs
}

/// W0410: a policy without sources or ports allows nothing.
fn check_not_empty(doc: &Document, spec: &EgressSpec, diags: &mut Vec<Diagnostic>) {
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
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{egress, enforced, places, plan};

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
    fn sources_are_service_accounts_with_valid_names() {
        let yaml = enforced(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources:\n  - {kind: Group, name: a, namespace: ns}\n  - {kind: ServiceAccount, name: A_b, namespace: ns}\n  - {kind: ServiceAccount, name: c, namespace: ns, mtls: {}}\n  ipAddresses: [10.0.0.0/8]\n  ports: [{number: 5432, protocol: tcp}]\n",
        );
        assert_eq!(places(&yaml), ["E0309 11:12", "E0310 12:34", "W0408 13:52"]);
    }

    #[test]
    fn cidrs_parse_and_restrict_something() {
        let yaml = egress(
            "  ipAddresses: [10.0.0.1/8, 0.0.0.0/0, 'fd00::/8']\n  ports: [{number: 5432, protocol: tcp}]\n",
        );
        assert_eq!(places(&yaml), ["E0303 11:17", "W0403 11:29", "E0317 11:40"]);
    }

    #[test]
    fn a_policy_without_sources_or_ports_allows_nothing() {
        let yaml = enforced(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: []\n  ports: []\n",
        );
        assert_eq!(places(&yaml), ["W0410 10:3", "W0410 11:3"]);
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
