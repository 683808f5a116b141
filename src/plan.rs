//! Lowering: checked inputs → a plan per workload identity (design §3), in decision order:
//! in-mesh destinations (mesh-wide), the identity's allowed egress, passthrough, gateway.
//! Everything here is sorted so that the plan does not depend on input order.

use crate::check::{self, Protocol};
use crate::load::{Inputs, Res};
use crate::net::{self, Cidr, HostPattern};
use crate::resources::*;
use std::collections::{BTreeMap, BTreeSet};

pub const DEFAULT_IDENTITY: &str = "_default";

/// Mesh-wide settings, with FSM's defaults written out.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub enable_egress: bool,
    pub enable_egress_policy: bool,
    pub log_level: String,
    pub sidecar_timeout: i64,
    pub gateway_mode: &'static str,
    pub gateway_port: u16,
    pub outbound_ip_range_exclusions: Vec<Cidr>,
    pub outbound_ip_range_inclusions: Vec<Cidr>,
    pub outbound_port_exclusions: Vec<u16>,
}

/// Where a rule came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Provenance {
    /// `namespace/name` of the Egress policy.
    pub policy: String,
    pub file: String,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// The path regex, matched against the whole path (anchored by the sidecar).
    pub path: String,
    /// Empty means any method.
    pub methods: Vec<String>,
    pub headers: BTreeMap<String, String>,
    /// `namespace/name` of the HTTPRouteGroup and the match name.
    pub route_group: Option<String>,
}

/// One allowed egress of an identity, from one port entry of one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub port: u16,
    pub protocol: Protocol,
    /// Empty: any destination address.
    pub cidrs: Vec<Cidr>,
    /// Empty: any host (https) — http rules always have hosts.
    pub hosts: Vec<HostPattern>,
    /// http only: the routes that must hold (one of them); `None` means any request.
    pub routes: Option<Vec<Route>>,
    pub connection_settings: Option<serde_json::Value>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdentityPlan {
    /// `namespace/name`, or `_default`.
    pub name: String,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub rules: Vec<Rule>,
}

impl IdentityPlan {
    /// FSM's ServiceIdentity: `<sa>.<namespace>`.
    pub fn service_identity(&self) -> String {
        match (&self.service_account, &self.namespace) {
            (Some(sa), Some(ns)) => format!("{sa}.{ns}"),
            _ => DEFAULT_IDENTITY.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeshDestination {
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    /// `namespace/name` of the Service.
    pub service: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    /// FSM's cluster name: `<service>.<namespace>`.
    pub cluster: String,
    /// `<service>.<namespace>.svc.cluster.local`
    pub host: String,
    pub port: u16,
    /// The port the gateway listens on (the Service's targetPort).
    pub listen_port: u16,
    pub weight: u32,
    pub mode: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub settings: Settings,
    pub mesh: Vec<MeshDestination>,
    /// Sorted by name; `_default` first.
    pub identities: Vec<IdentityPlan>,
    pub gateways: Vec<Gateway>,
}

/// The values that parse, sorted and without duplicates (invalid ones were reported by check).
fn parsed_set<S, T: Ord, E>(items: &[S], parse: impl Fn(&S) -> Result<T, E>) -> Vec<T> {
    let mut v: Vec<T> = items.iter().filter_map(|i| parse(i).ok()).collect();
    v.sort();
    v.dedup();
    v
}

fn settings(inputs: &Inputs) -> Settings {
    let m = inputs.mesh_configs.first().map(|r| &r.spec);
    let traffic = m.and_then(|m| m.traffic.as_ref());
    let cidrs = |l: Option<&Vec<String>>| {
        parsed_set(l.map_or(&[][..], Vec::as_slice), |c| net::parse_cidr(c))
    };
    let mut ports: Vec<u16> = traffic
        .and_then(|t| t.outbound_port_exclusion_list.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| u16::try_from(p.0).ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let gw = m.and_then(|m| m.egress_gateway.as_ref());
    Settings {
        enable_egress: traffic.and_then(|t| t.enable_egress).unwrap_or(true),
        enable_egress_policy: m
            .and_then(|m| m.feature_flags.as_ref())
            .and_then(|f| f.enable_egress_policy)
            .unwrap_or(true),
        log_level: m
            .and_then(|m| m.sidecar.as_ref())
            .and_then(|s| s.log_level.clone())
            .unwrap_or_else(|| "error".to_owned()),
        sidecar_timeout: m
            .and_then(|m| m.sidecar.as_ref())
            .and_then(|s| s.sidecar_timeout)
            .unwrap_or(60),
        gateway_mode: gw
            .and_then(|g| g.mode.as_deref())
            .and_then(check::parse_mode)
            .unwrap_or("http2tunnel"),
        gateway_port: gw
            .and_then(|g| g.port)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(1080),
        outbound_ip_range_exclusions: cidrs(
            traffic.and_then(|t| t.outbound_ip_range_exclusion_list.as_ref()),
        ),
        outbound_ip_range_inclusions: cidrs(
            traffic.and_then(|t| t.outbound_ip_range_inclusion_list.as_ref()),
        ),
        outbound_port_exclusions: ports,
    }
}

fn mesh(inputs: &Inputs) -> Vec<MeshDestination> {
    let mut out = Vec::new();
    for s in &inputs.services {
        let Some(ip) = s.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()) else {
            continue;
        };
        for p in s.spec.ports.iter().flatten() {
            if let Ok(port) = u16::try_from(p.port) {
                out.push(MeshDestination {
                    ip,
                    port,
                    service: format!("{}/{}", s.ns(), s.name()),
                });
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
    out
}

fn gateways(inputs: &Inputs, settings: &Settings) -> Vec<Gateway> {
    let Some(g) = inputs.gateways.iter().find(|g| !g.spec.global().is_empty()) else {
        return Vec::new();
    };
    let mut out: Vec<Gateway> = g
        .spec
        .global()
        .iter()
        .map(|b| {
            let svc = inputs
                .services
                .iter()
                .find(|s| s.name() == b.service && s.ns() == b.namespace);
            let first_port = svc.and_then(|s| s.spec.ports.as_ref()?.first());
            let port = first_port
                .and_then(|p| u16::try_from(p.port).ok())
                .unwrap_or(settings.gateway_port);
            let listen_port = match first_port.and_then(|p| p.target_port.as_ref()) {
                Some(IntOrString::Int(i)) => u16::try_from(*i).unwrap_or(port),
                _ => port,
            };
            let mode = svc
                .and_then(|s| s.meta.annotation(check::MODE_ANNOTATION))
                .and_then(check::parse_mode)
                .unwrap_or(settings.gateway_mode);
            let weight = match b.weight {
                Some(w) if w > 0 => u32::try_from(w).unwrap_or(u32::MAX),
                _ => 100,
            };
            Gateway {
                cluster: format!("{}.{}", b.service, b.namespace),
                host: format!("{}.{}.svc.cluster.local", b.service, b.namespace),
                port,
                listen_port,
                weight,
                mode,
            }
        })
        .collect();
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out.dedup_by(|a, b| a.cluster == b.cluster);
    out
}

fn routes(inputs: &Inputs, e: &Res<EgressSpec>) -> Option<Vec<Route>> {
    let mut out = Vec::new();
    let mut any = false;
    for m in e.spec.matches() {
        if m.kind != "HTTPRouteGroup" {
            continue;
        }
        any = true;
        let Some(g) = inputs
            .route_groups
            .iter()
            .find(|g| g.ns() == e.ns() && g.name() == m.name)
        else {
            continue;
        };
        for hm in &g.spec.matches {
            let methods: Vec<String> = match &hm.methods {
                Some(ms) if !ms.contains(&HttpMethod::Any) => {
                    let mut v: Vec<String> = ms.iter().map(|m| m.as_str().to_owned()).collect();
                    v.sort();
                    v.dedup();
                    v
                }
                _ => Vec::new(),
            };
            let headers = hm
                .headers
                .as_ref()
                .map(|h| {
                    h.entries()
                        .into_iter()
                        .map(|(_, k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Route {
                path: hm
                    .path_regex
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| ".*".to_owned()),
                methods,
                headers,
                route_group: Some(format!("{}/{}#{}", g.ns(), g.name(), hm.name)),
            });
        }
    }
    if !any {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn connection_settings(inputs: &Inputs, e: &Res<EgressSpec>) -> Option<serde_json::Value> {
    let m = e
        .spec
        .matches()
        .iter()
        .find(|m| m.kind == "UpstreamTrafficSetting")?;
    let u = inputs
        .upstream_settings
        .iter()
        .find(|u| u.ns() == e.ns() && u.name() == m.name)?;
    let cs = u.spec.connection_settings.as_ref()?;
    Some(crate::emit::connection_settings_json(cs))
}

/// Lower checked inputs (without errors) into the plan.
pub fn lower(inputs: &Inputs, sources: &crate::source::Sources) -> Plan {
    let settings = settings(inputs);
    let mut identities: BTreeMap<(String, String), Vec<Rule>> = BTreeMap::new();
    for sa in &inputs.service_accounts {
        identities
            .entry((sa.ns().to_owned(), sa.name().to_owned()))
            .or_default();
    }
    let mut egresses: Vec<&Res<EgressSpec>> = inputs.egresses.iter().collect();
    egresses.sort_by(|a, b| (a.ns(), a.name()).cmp(&(b.ns(), b.name())));
    for e in egresses {
        let sources_of: BTreeSet<(String, String)> = e
            .spec
            .sources
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        for s in &sources_of {
            identities.entry(s.clone()).or_default();
        }
        if !settings.enable_egress_policy {
            continue;
        }
        let doc = inputs.doc(e);
        let provenance = Provenance {
            policy: format!("{}/{}", e.ns(), e.name()),
            file: sources.get(doc.file).name.clone(),
            line: doc.root.loc.line,
        };
        let hosts: Vec<HostPattern> = parsed_set(e.spec.hosts(), |h| net::parse_host(h));
        let cidrs: Vec<Cidr> = parsed_set(e.spec.ip_addresses(), |c| net::parse_cidr(c));
        let routes = routes(inputs, e);
        let conn = connection_settings(inputs, e);
        for p in &e.spec.ports {
            let (Ok(port), Some(protocol)) =
                (u16::try_from(p.number), Protocol::parse(&p.protocol))
            else {
                continue;
            };
            let rule = Rule {
                port,
                protocol,
                cidrs: cidrs.clone(),
                hosts: if protocol.class() == "tcp" {
                    Vec::new()
                } else {
                    hosts.clone()
                },
                routes: if protocol == Protocol::Http {
                    routes.clone()
                } else {
                    None
                },
                connection_settings: conn.clone(),
                provenance: provenance.clone(),
            };
            for s in &sources_of {
                identities
                    .get_mut(s)
                    .expect("inserted above")
                    .push(rule.clone());
            }
        }
    }
    let mut plans = vec![IdentityPlan {
        name: DEFAULT_IDENTITY.to_owned(),
        namespace: None,
        service_account: None,
        rules: Vec::new(),
    }];
    for ((ns, sa), mut rules) in identities {
        rules.sort_by(|a, b| {
            (a.port, a.protocol, &a.provenance.policy).cmp(&(
                b.port,
                b.protocol,
                &b.provenance.policy,
            ))
        });
        plans.push(IdentityPlan {
            name: format!("{ns}/{sa}"),
            namespace: Some(ns),
            service_account: Some(sa),
            rules,
        });
    }
    let gateways = gateways(inputs, &settings);
    Plan {
        mesh: mesh(inputs),
        identities: plans,
        gateways,
        settings,
    }
}
