//! Semantic rules over the typed inputs. Each rule has a stable code (see `diagnostic::CODES`);
//! every problem is reported, none stops the others.

use crate::diagnostic::{Diagnostic, Span};
use crate::load::{Document, Inputs, Res};
use crate::net::{self, CidrError, HostError, HostPattern};
use crate::path;
use crate::resources::*;
use crate::yaml::Seg;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// (namespace, name) of a ServiceAccount.
pub type Identity<'a> = (&'a str, &'a str);

pub const MODE_ANNOTATION: &str = "flomesh.io/egress-gateway-mode";

/// Egress protocols, normalised (FSM lower-cases them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    TcpServerFirst,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Protocol::Http),
            "https" => Some(Protocol::Https),
            "tcp" => Some(Protocol::Tcp),
            "tcp-server-first" => Some(Protocol::TcpServerFirst),
            _ => None,
        }
    }
    /// `tcp` and `tcp-server-first` are one protocol for the per-port rule.
    pub fn class(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp | Protocol::TcpServerFirst => "tcp",
        }
    }
}

/// Gateway modes as FSM spells them in the config (`sock5`).
pub fn parse_mode(s: &str) -> Option<&'static str> {
    match s {
        "http2tunnel" => Some("http2tunnel"),
        "sock5" | "socks5" => Some("sock5"),
        _ => None,
    }
}

const HTTPROUTEGROUP_GROUP: &str = "specs.smi-spec.io/v1alpha4";
const UTS_GROUP: &str = "policy.flomesh.io/v1alpha1";

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

pub fn check(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    check_names(inputs, diags);
    check_singletons(inputs, diags);
    check_services(inputs, diags);
    check_mesh_config(inputs, diags);
    check_route_groups(inputs, diags);
    check_upstream_settings(inputs, diags);
    check_gateways(inputs, diags);
    let valid = check_egresses(inputs, diags);
    check_port_protocols(inputs, &valid, diags);
    check_redundant(inputs, &valid, diags);
}

// ------------------------------------------------------------------ names and duplicates

/// The naming rules Kubernetes applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// Most object names: DNS-1123 subdomain.
    Subdomain,
    /// Namespaces: DNS-1123 label.
    Label,
    /// Service names: DNS-1035 label (a label that starts with a letter).
    ServiceName,
}

impl NameRule {
    fn allows(self, s: &str) -> bool {
        match self {
            NameRule::Subdomain => is_dns1123_subdomain(s),
            NameRule::Label => is_dns1123_label(s),
            NameRule::ServiceName => {
                is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NameRule::Subdomain => {
                "a DNS-1123 subdomain (lower-case letters, digits, `-` and `.`, at most 253 characters)"
            }
            NameRule::Label => {
                "a DNS-1123 label (lower-case letters, digits and `-`, at most 63 characters)"
            }
            NameRule::ServiceName => {
                "a DNS-1035 label (lower-case letters, digits and `-`, starting with a letter, at most 63 characters)"
            }
        }
    }

    fn suggest(self, s: &str) -> String {
        let mut out: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric()
                    || c == '-'
                    || (c == '.' && self == NameRule::Subdomain)
                {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        out = out.trim_matches(|c| c == '-' || c == '.').to_owned();
        if out.is_empty() {
            out = "name".into();
        }
        if self == NameRule::ServiceName && !out.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert_str(0, "svc-");
        }
        out
    }
}

/// E0310 when `value` breaks `rule`.
fn check_name(what: &str, value: &str, rule: NameRule, span: Span) -> Option<Diagnostic> {
    if rule.allows(value) {
        return None;
    }
    Some(
        Diagnostic::new(
            "E0310",
            format!("{what} `{value}` is not {}", rule.describe()),
        )
        .at(span)
        .help(format!(
            "Kubernetes rejects this {what}; try `{}`",
            rule.suggest(value)
        )),
    )
}

fn check_meta<T>(inputs: &Inputs, r: &Res<T>, diags: &mut Vec<Diagnostic>) {
    let doc = inputs.doc(r);
    let rule = if doc.kind == Kind::Service {
        NameRule::ServiceName
    } else {
        NameRule::Subdomain
    };
    diags.extend(check_name(
        "name",
        &r.meta.name,
        rule,
        doc.span(path!["metadata", "name"]),
    ));
    if let Some(ns) = &r.meta.namespace {
        diags.extend(check_name(
            "namespace",
            ns,
            NameRule::Label,
            doc.span(path!["metadata", "namespace"]),
        ));
    }
}

fn check_names<'a>(inputs: &'a Inputs, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(Kind, &'a str, &'a str), usize> = HashMap::new();
    let mut visit = |doc_idx: usize, meta: &'a ObjectMeta, diags: &mut Vec<Diagnostic>| {
        let doc = &inputs.docs[doc_idx];
        let key = (doc.kind, meta.ns(), meta.name.as_str());
        match seen.get(&key) {
            Some(first) => diags.push(
                Diagnostic::new(
                    "E0311",
                    format!(
                        "{} `{}/{}` is defined twice",
                        doc.kind.name(),
                        meta.ns(),
                        meta.name
                    ),
                )
                .at(doc.span(path!["metadata", "name"]))
                .related(
                    inputs.docs[*first].span(path!["metadata", "name"]),
                    "first defined here",
                )
                .help("remove one of the two, or rename it"),
            ),
            None => {
                seen.insert(key, doc_idx);
            }
        }
    };
    macro_rules! all {
        ($($field:ident),*) => {$(
            for r in &inputs.$field {
                check_meta(inputs, r, diags);
                visit(r.doc, &r.meta, diags);
            }
        )*};
    }
    all!(
        mesh_configs,
        egresses,
        gateways,
        upstream_settings,
        route_groups,
        services,
        service_accounts
    );
}

fn check_singletons(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    if let Some((first, rest)) = inputs.mesh_configs.split_first() {
        for r in rest {
            diags.push(
                Diagnostic::new(
                    "E0312",
                    format!(
                        "a second MeshConfig `{}/{}`: the mesh has exactly one",
                        r.ns(),
                        r.name()
                    ),
                )
                .at(inputs.doc(r).span(path!["metadata", "name"]))
                .related(
                    inputs.doc(first).span(path!["metadata", "name"]),
                    "the first MeshConfig",
                )
                .help("keep one MeshConfig (FSM reads `fsm-mesh-config` in its own namespace)"),
            );
        }
    }
    let globals: Vec<_> = inputs
        .gateways
        .iter()
        .filter(|g| !g.spec.global().is_empty())
        .collect();
    if let Some((first, rest)) = globals.split_first() {
        for r in rest {
            diags.push(
                Diagnostic::new(
                    "E0313",
                    format!(
                        "EgressGateway `{}/{}` redefines the global egress gateways",
                        r.ns(),
                        r.name()
                    ),
                )
                .at(inputs.doc(r).key_span(path!["spec", "global"]))
                .related(
                    inputs.doc(first).key_span(path!["spec", "global"]),
                    "global gateways are already defined here",
                )
                .help("list every global gateway in one EgressGateway; FSM's webhook rejects a second one"),
            );
        }
    }
}

// ------------------------------------------------------------------ Services, MeshConfig

fn check_services(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    for s in &inputs.services {
        let doc = inputs.doc(s);
        if let Some(mode) = s.meta.annotation(MODE_ANNOTATION)
            && parse_mode(mode).is_none()
        {
            diags.push(
                Diagnostic::new("E0314", format!("unknown egress gateway mode `{mode}`"))
                    .at(doc.span(path!["metadata", "annotations", MODE_ANNOTATION]))
                    .label("FSM would silently use http2tunnel")
                    .help("use `http2tunnel` or `sock5` (`socks5` is accepted as the same)"),
            );
        }
        if s.spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        match s.spec.cluster_ip.as_deref() {
            Some("None") => diags.push(
                Diagnostic::new(
                    "W0407",
                    format!(
                        "Service `{}/{}` is headless: in-mesh traffic to it goes to pod addresses egressc cannot know",
                        s.ns(),
                        s.name()
                    ),
                )
                .at(doc.span(path!["spec", "clusterIP"]))
                .help("traffic to its pods is treated as egress; allow it with an Egress policy or passthrough"),
            ),
            None | Some("") => diags.push(
                Diagnostic::new(
                    "W0407",
                    format!(
                        "Service `{}/{}` has no clusterIP: in-mesh traffic to it cannot be recognised",
                        s.ns(),
                        s.name()
                    ),
                )
                .at(doc.span(path!["metadata", "name"]))
                .help("add `spec.clusterIP` as the cluster assigned it (`kubectl get svc -o yaml`), or traffic to it is treated as egress"),
            ),
            Some(ip) => match ip.parse::<std::net::Ipv4Addr>() {
                Ok(_) => {}
                Err(_) if ip.parse::<std::net::Ipv6Addr>().is_ok() => diags.push(
                    Diagnostic::new("E0317", format!("IPv6 clusterIP `{ip}` is not supported"))
                        .at(doc.span(path!["spec", "clusterIP"]))
                        .help("egressc supports IPv4 only for now (Pipy decodes IPv4 original destinations)"),
                ),
                Err(_) => diags.push(
                    Diagnostic::new("E0201", format!("clusterIP `{ip}` is not an IPv4 address"))
                        .at(doc.span(path!["spec", "clusterIP"]))
                        .help("write the address as the cluster assigned it, e.g. `10.96.0.10`"),
                ),
            },
        }
    }
}

fn cidr_diag(doc: &Document, p: &[Seg], value: &str) -> Option<Diagnostic> {
    match net::parse_cidr(value) {
        Ok(_) => None,
        Err(CidrError::Ipv6) => Some(
            Diagnostic::new("E0317", format!("IPv6 CIDR `{value}` is not supported"))
                .at(doc.span(p))
                .help(
                    "egressc supports IPv4 only for now (Pipy decodes IPv4 original destinations)",
                ),
        ),
        Err(CidrError::Invalid { reason, help }) => Some(
            Diagnostic::new("E0303", format!("invalid CIDR `{value}`: {reason}"))
                .at(doc.span(p))
                .help(help),
        ),
    }
}

fn check_mesh_config(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    for m in &inputs.mesh_configs {
        let doc = inputs.doc(m);
        if let Some(t) = &m.spec.traffic {
            for (field, list) in [
                (
                    "outboundIPRangeExclusionList",
                    &t.outbound_ip_range_exclusion_list,
                ),
                (
                    "outboundIPRangeInclusionList",
                    &t.outbound_ip_range_inclusion_list,
                ),
            ] {
                for (i, c) in list.iter().flatten().enumerate() {
                    diags.extend(cidr_diag(doc, path!["spec", "traffic", field, i], c));
                }
            }
        }
        if let Some(mode) = m
            .spec
            .egress_gateway
            .as_ref()
            .and_then(|g| g.mode.as_deref())
            && parse_mode(mode).is_none()
        {
            diags.push(
                Diagnostic::new("E0314", format!("unknown egress gateway mode `{mode}`"))
                    .at(doc.span(path!["spec", "egressGateway", "mode"]))
                    .help("use `http2tunnel` or `sock5` (`socks5` is accepted as the same)"),
            );
        }
    }
    if inputs.egresses.is_empty() {
        return;
    }
    let Some(m) = inputs.mesh_configs.first() else {
        diags.push(
            Diagnostic::new(
                "W0402",
                "Egress policies restrict nothing: there is no MeshConfig, and FSM's default `traffic.enableEgress: true` lets every destination through",
            )
            .help("add the MeshConfig with `traffic.enableEgress: false` to enforce the policies"),
        );
        return;
    };
    let doc = inputs.doc(m);
    if m.spec
        .feature_flags
        .as_ref()
        .and_then(|f| f.enable_egress_policy)
        == Some(false)
    {
        diags.push(
            Diagnostic::new(
                "W0401",
                format!(
                    "{} Egress polic{} will be ignored: `featureFlags.enableEgressPolicy` is false",
                    inputs.egresses.len(),
                    if inputs.egresses.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                ),
            )
            .at(doc.span(path!["spec", "featureFlags", "enableEgressPolicy"]))
            .help("set it to true to apply the policies, or remove the policies"),
        );
    }
    if m.spec.traffic.as_ref().and_then(|t| t.enable_egress) != Some(false) {
        let span = match m.spec.traffic.as_ref().and_then(|t| t.enable_egress) {
            Some(_) => doc.span(path!["spec", "traffic", "enableEgress"]),
            None => doc.span(path!["spec"]),
        };
        diags.push(
            Diagnostic::new(
                "W0402",
                "Egress policies restrict nothing while `traffic.enableEgress` is true: every destination is let through",
            )
            .at(span)
            .help("set `traffic.enableEgress: false` to enforce the policies"),
        );
    }
}

// ------------------------------------------------------------------ HTTPRouteGroup, UTS

fn regex_diag(doc: &Document, p: &[Seg], pattern: &str) -> Option<Diagnostic> {
    let e = crate::regex_subset::check(pattern).err()?;
    let mut span = doc.span(p);
    // Point into the pattern when the scalar is written plainly on one line.
    let node_text_len = span.loc.end.saturating_sub(span.loc.start);
    if node_text_len == pattern.len() && e.end <= pattern.len() {
        span.loc.start += e.start;
        span.loc.end = span.loc.start + (e.end - e.start).max(1);
        span.loc.col += pattern[..e.start].chars().count() as u32;
    }
    Some(
        Diagnostic::new("E0316", format!("regex `{pattern}`: {}", e.reason))
            .at(span)
            .help("route regexes run as RE2 in FSM and as ECMAScript in Pipy; write one that means the same in both"),
    )
}

fn check_route_groups(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    for g in &inputs.route_groups {
        let doc = inputs.doc(g);
        for (i, m) in g.spec.matches.iter().enumerate() {
            if let Some(re) = &m.path_regex {
                diags.extend(regex_diag(
                    doc,
                    path!["spec", "matches", i, "pathRegex"],
                    re,
                ));
            }
            if let Some(h) = &m.headers {
                for (idx, name, value) in h.entries() {
                    let d = match idx {
                        Some(j) => {
                            regex_diag(doc, path!["spec", "matches", i, "headers", j, name], value)
                        }
                        None => {
                            regex_diag(doc, path!["spec", "matches", i, "headers", name], value)
                        }
                    };
                    diags.extend(d);
                }
            }
        }
    }
}

fn check_upstream_settings(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    for u in &inputs.upstream_settings {
        let doc = inputs.doc(u);
        for (field, present) in [
            ("rateLimit", u.spec.rate_limit.is_some()),
            ("httpRoutes", u.spec.http_routes.is_some()),
        ] {
            if present {
                diags.push(
                    Diagnostic::new(
                        "W0408",
                        format!("`{field}` is accepted but egressc does not act on it"),
                    )
                    .at(doc.key_span(path!["spec", field]))
                    .help(
                        "only `connectionSettings` is carried into the sidecar config for egress",
                    ),
                );
            }
        }
    }
}

fn check_gateways(inputs: &Inputs, diags: &mut Vec<Diagnostic>) {
    for g in &inputs.gateways {
        let doc = inputs.doc(g);
        for (i, b) in g.spec.global().iter().enumerate() {
            diags.extend(check_name(
                "service name",
                &b.service,
                NameRule::ServiceName,
                doc.span(path!["spec", "global", i, "service"]),
            ));
            diags.extend(check_name(
                "namespace",
                &b.namespace,
                NameRule::Label,
                doc.span(path!["spec", "global", i, "namespace"]),
            ));
            let found = inputs
                .services
                .iter()
                .any(|s| s.name() == b.service && s.ns() == b.namespace);
            if !found {
                diags.push(
                    Diagnostic::new(
                        "W0406",
                        format!(
                            "gateway Service `{}/{}` is not in the inputs: its DNS name `{}.{}.svc.cluster.local` and the default port will be used",
                            b.namespace, b.service, b.service, b.namespace
                        ),
                    )
                    .at(doc.span(path!["spec", "global", i, "service"]))
                    .help("add the gateway's Service manifest to the inputs so its port and mode annotation are known"),
                );
            }
        }
    }
}

// ------------------------------------------------------------------ Egress

/// What the later rules need of a policy that passed its own checks.
pub struct ValidEgress<'a> {
    pub res: &'a Res<EgressSpec>,
    /// (index in ports, number, protocol)
    pub ports: Vec<(usize, u16, Protocol)>,
    pub hosts: Vec<HostPattern>,
    pub cidrs: Vec<net::Cidr>,
    /// (namespace, name) of ServiceAccount sources
    pub sources: BTreeSet<(&'a str, &'a str)>,
    pub matches: BTreeSet<(&'a str, &'a str)>,
    out_of_range: bool,
}

fn check_egresses<'a>(inputs: &'a Inputs, diags: &mut Vec<Diagnostic>) -> Vec<ValidEgress<'a>> {
    let mut out = Vec::new();
    for e in &inputs.egresses {
        let before = diags.len();
        let v = check_egress(inputs, e, diags);
        let new_errors = diags[before..]
            .iter()
            .any(|d| d.severity == crate::diagnostic::Severity::Error);
        if !new_errors && !v.out_of_range {
            out.push(v);
        }
    }
    out
}

fn check_egress<'a>(
    inputs: &'a Inputs,
    e: &'a Res<EgressSpec>,
    diags: &mut Vec<Diagnostic>,
) -> ValidEgress<'a> {
    let doc = inputs.doc(e);
    let spec = &e.spec;
    let mut v = ValidEgress {
        res: e,
        ports: Vec::new(),
        hosts: Vec::new(),
        cidrs: Vec::new(),
        sources: BTreeSet::new(),
        matches: BTreeSet::new(),
        out_of_range: false,
    };

    for (i, s) in spec.sources.iter().enumerate() {
        if s.kind != "ServiceAccount" {
            diags.push(
                Diagnostic::new(
                    "E0309",
                    format!("source kind `{}` is not supported", s.kind),
                )
                .at(doc.span(path!["spec", "sources", i, "kind"]))
                .label("FSM only matches `ServiceAccount`; this source would select nothing")
                .help("write `kind: ServiceAccount`"),
            );
        }
        diags.extend(check_name(
            "service account name",
            &s.name,
            NameRule::Subdomain,
            doc.span(path!["spec", "sources", i, "name"]),
        ));
        diags.extend(check_name(
            "namespace",
            &s.namespace,
            NameRule::Label,
            doc.span(path!["spec", "sources", i, "namespace"]),
        ));
        if s.mtls.is_some() {
            diags.push(
                Diagnostic::new("W0408", "`mtls` is accepted but egressc does not act on it")
                    .at(doc.key_span(path!["spec", "sources", i, "mtls"]))
                    .help("egress connections leave without a source certificate; originate TLS in the application"),
            );
        }
        v.sources.insert((s.namespace.as_str(), s.name.as_str()));
    }

    let mut has_http = false;
    let mut all_tcp = !spec.ports.is_empty();
    for (i, p) in spec.ports.iter().enumerate() {
        // Out-of-range numbers were reported by the schema check (E0301).
        let Some(number) = u16::try_from(p.number).ok().filter(|n| *n > 0) else {
            v.out_of_range = true;
            if Protocol::parse(&p.protocol).map(Protocol::class) != Some("tcp") {
                all_tcp = false;
            }
            continue;
        };
        let Some(proto) = Protocol::parse(&p.protocol) else {
            diags.push(
                Diagnostic::new("E0302", format!("unsupported protocol `{}`", p.protocol))
                    .at(doc.span(path!["spec", "ports", i, "protocol"]))
                    .label("FSM silently drops this port")
                    .help("use `http`, `https`, `tcp` or `tcp-server-first` (gRPC is `http` on its port, or `tcp`)"),
            );
            all_tcp = false;
            continue;
        };
        v.ports.push((i, number, proto));
        match proto {
            Protocol::Http => {
                has_http = true;
                all_tcp = false;
                if spec.hosts().is_empty() {
                    diags.push(
                        Diagnostic::new("E0305", format!("http port {} has no hosts", p.number))
                            .at(doc.span(path!["spec", "ports", i]))
                            .help("add the host names this port may reach to `hosts`; http egress is decided by the Host header"),
                    );
                }
            }
            Protocol::Https => {
                all_tcp = false;
                if spec.hosts().is_empty() && spec.ip_addresses().is_empty() {
                    diags.push(
                        Diagnostic::new(
                            "W0403",
                            format!("https port {} lists neither hosts nor ipAddresses: every destination on this port is allowed", p.number),
                        )
                        .at(doc.span(path!["spec", "ports", i]))
                        .help("list the server names in `hosts` or the networks in `ipAddresses`"),
                    );
                }
            }
            Protocol::Tcp | Protocol::TcpServerFirst => {
                if spec.ip_addresses().is_empty() {
                    diags.push(
                        Diagnostic::new(
                            "W0403",
                            format!("tcp port {} has no ipAddresses: every address on this port is allowed", p.number),
                        )
                        .at(doc.span(path!["spec", "ports", i]))
                        .help("list the networks this port may reach in `ipAddresses`"),
                    );
                }
            }
        }
    }

    for (i, h) in spec.hosts().iter().enumerate() {
        let span = doc.span(path!["spec", "hosts", i]);
        match net::parse_host(h) {
            Ok(p) => {
                if let HostPattern::Wildcard(s) = &p
                    && net::is_public_suffix(s)
                {
                    diags.push(
                        Diagnostic::new(
                            "W0404",
                            format!("`{h}` admits every domain under the public suffix `{s}`"),
                        )
                        .at(span)
                        .help("name the domains you mean, e.g. `*.example.com`"),
                    );
                }
                v.hosts.push(p);
            }
            Err(HostError::Ipv6) => diags.push(
                Diagnostic::new("E0317", format!("IPv6 host `{h}` is not supported"))
                    .at(span)
                    .help("egressc supports IPv4 only for now"),
            ),
            Err(HostError::Invalid { reason, help }) => diags.push(
                Diagnostic::new("E0304", format!("invalid host `{h}`: {reason}"))
                    .at(span)
                    .help(help),
            ),
        }
    }
    if all_tcp && !spec.hosts().is_empty() {
        diags.push(
            Diagnostic::new("W0408", "`hosts` has no effect on tcp ports")
                .at(doc.key_span(path!["spec", "hosts"]))
                .help("tcp egress is decided by address and port; use `ipAddresses`"),
        );
    }

    for (i, c) in spec.ip_addresses().iter().enumerate() {
        match cidr_diag(doc, path!["spec", "ipAddresses", i], c) {
            Some(d) => diags.push(d),
            None => v.cidrs.extend(net::parse_cidr(c).ok()),
        }
    }

    let mut uts = Vec::new();
    for (i, m) in spec.matches().iter().enumerate() {
        let group = m.api_group.as_deref().unwrap_or("");
        let target_exists = match (group, m.kind.as_str()) {
            (HTTPROUTEGROUP_GROUP, "HTTPRouteGroup") => {
                if !has_http {
                    diags.push(
                        Diagnostic::new("W0408", "HTTPRouteGroup routes apply only to http ports, and this policy has none")
                            .at(doc.span(path!["spec", "matches", i]))
                            .help("add an http port, or remove the match"),
                    );
                }
                inputs
                    .route_groups
                    .iter()
                    .any(|g| g.ns() == e.ns() && g.name() == m.name)
            }
            (UTS_GROUP, "UpstreamTrafficSetting") => {
                uts.push(i);
                inputs
                    .upstream_settings
                    .iter()
                    .any(|u| u.ns() == e.ns() && u.name() == m.name)
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
                    Diagnostic::new("E0307", message)
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
                    "E0306",
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
        v.matches.insert((m.kind.as_str(), m.name.as_str()));
    }
    for &i in uts.iter().skip(1) {
        diags.push(
            Diagnostic::new("E0308", "more than one UpstreamTrafficSetting in `matches`")
                .at(doc.span(path!["spec", "matches", i]))
                .related(doc.span(path!["spec", "matches", uts[0]]), "the first one")
                .help("keep one UpstreamTrafficSetting per policy"),
        );
    }
    v
}

// ------------------------------------------------------------------ cross-policy rules

fn check_port_protocols(inputs: &Inputs, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
    // (identity, port) -> (protocol, policy index, port index)
    type Seen<'a> = BTreeMap<(Identity<'a>, u16), (Protocol, usize, usize)>;
    let mut seen: Seen = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (pi, v) in valid.iter().enumerate() {
        for &(idx, number, proto) in &v.ports {
            for &src in &v.sources {
                match seen.get(&(src, number)) {
                    None => {
                        seen.insert((src, number), (proto, pi, idx));
                    }
                    Some(&(other, opi, oidx)) if other.class() != proto.class() => {
                        if !reported.insert((pi, idx)) {
                            continue;
                        }
                        let first = &valid[opi];
                        diags.push(
                            Diagnostic::new(
                                "E0315",
                                format!(
                                    "identity `{}/{}` gets two protocols on port {number}: {} here and {} in `{}/{}`",
                                    src.0, src.1, proto.class(), other.class(), first.res.ns(), first.res.name()
                                ),
                            )
                            .at(inputs.doc(v.res).span(path!["spec", "ports", idx, "protocol"]))
                            .related(
                                inputs.doc(first.res).span(path!["spec", "ports", oidx, "protocol"]),
                                "the other protocol",
                            )
                            .help("a sidecar decides one protocol per port; use one protocol for this port, or another port"),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// Whether every connection `a` allows is also allowed by `b` (same protocol per port,
/// same matches; routes not compared).
fn contained(a: &ValidEgress, b: &ValidEgress) -> bool {
    if !a.sources.is_subset(&b.sources) || a.matches != b.matches {
        return false;
    }
    let b_ports: BTreeSet<(u16, Protocol)> = b.ports.iter().map(|p| (p.1, p.2)).collect();
    if !a.ports.iter().all(|p| b_ports.contains(&(p.1, p.2))) {
        return false;
    }
    let only_tcp = a.ports.iter().all(|p| p.2.class() == "tcp");
    let hosts_ok = only_tcp
        || b.hosts.is_empty()
        || (!a.hosts.is_empty()
            && a.hosts
                .iter()
                .all(|h| b.hosts.iter().any(|bh| h.is_covered_by(bh))));
    let cidrs_ok = b.cidrs.is_empty()
        || (!a.cidrs.is_empty()
            && a.cidrs
                .iter()
                .all(|c| b.cidrs.iter().any(|bc| c.is_within(bc))));
    hosts_ok && cidrs_ok
}

fn check_redundant(inputs: &Inputs, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
    // Candidates share a source and a port: index by (source, port).
    let mut by_key: HashMap<((&str, &str), u16), Vec<usize>> = HashMap::new();
    for (i, v) in valid.iter().enumerate() {
        for &s in &v.sources {
            for p in &v.ports {
                by_key.entry((s, p.1)).or_default().push(i);
            }
        }
    }
    for (i, a) in valid.iter().enumerate() {
        let (Some(&s), Some(p)) = (a.sources.iter().next(), a.ports.first()) else {
            continue;
        };
        let mut candidates: Vec<usize> = by_key.get(&(s, p.1)).cloned().unwrap_or_default();
        candidates.dedup();
        for j in candidates {
            if i == j || !contained(a, &valid[j]) {
                continue;
            }
            let b = &valid[j];
            let same = contained(b, a);
            // Of two equal policies, report the later one only.
            if same && j > i {
                continue;
            }
            let (an, bn) = (
                format!("{}/{}", a.res.ns(), a.res.name()),
                format!("{}/{}", b.res.ns(), b.res.name()),
            );
            let msg = if same {
                format!("Egress `{an}` duplicates `{bn}`")
            } else {
                format!("Egress `{an}` allows nothing that `{bn}` does not already allow")
            };
            diags.push(
                Diagnostic::new("W0405", msg)
                    .at(inputs.doc(a.res).span(path!["metadata", "name"]))
                    .related(
                        inputs.doc(b.res).span(path!["metadata", "name"]),
                        "the wider policy",
                    )
                    .help("remove the redundant policy, or narrow the wider one"),
            );
            break;
        }
    }
}
