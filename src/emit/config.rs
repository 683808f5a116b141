//! The per-identity sidecar config: serde structs with FSM's field names and shapes, and the
//! output schema generated from them. The sidecar template reads exactly these fields.

use crate::model::{
    AuthMode, ConnectionSettings, GatewayMode, MatchMode, Matcher, Protocol, ProtocolClass,
    REQUEST_LIMITS, RequestLimits,
};
use crate::net::HostPattern;
use crate::plan::{IdentityPlan, Plan, Rule};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A set written as FSM writes it: an object whose values are all `null`.
pub type NullSet = BTreeMap<String, ()>;

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SidecarConfig {
    /// A hash of the rest of the document.
    pub version: Option<String>,
    pub spec: Spec,
    /// `null` when the identity has no rules.
    pub outbound: Option<Outbound>,
    /// `null` when no gateway is configured.
    pub forward: Option<Forward>,
    /// What the sidecar refuses of an HTTP request before any rule, by length.
    pub limits: RequestLimits,
    /// The matcher of each route regex of `Outbound` (`path:REGEX`, `value:REGEX`): a DFA the
    /// sidecar walks instead of running a regex on request input.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, Arc<Matcher>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Spec {
    /// `<serviceaccount>.<namespace>`, or `_default`.
    pub service_identity: String,
    pub sidecar_log_level: String,
    /// Seconds.
    pub sidecar_timeout: i64,
    pub traffic: Traffic,
    pub feature_flags: FeatureFlags,
    /// Audit mode (`egressc.io/enforcement: audit`): what no rule allows goes out as
    /// passthrough would route it, logged `audit`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
    /// `egressc.io/log-allowed: "true"`: allow decisions are logged too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub log_allowed: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Traffic {
    pub enable_egress: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FeatureFlags {
    pub enable_egress_policy: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Outbound {
    /// Port → its traffic matches.
    pub traffic_matches: BTreeMap<String, Vec<TrafficMatch>>,
    /// `host:port` → cluster; `null` when there are none.
    pub clusters_configs: Option<BTreeMap<String, ClusterConfig>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TrafficMatch {
    pub port: u16,
    pub protocol: ProtocolClass,
    /// `null`: any destination address.
    #[serde(rename = "DestinationIPRanges")]
    pub destination_ip_ranges: Option<NullSet>,
    /// http: host (and `host:port`) → rule name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_host_port2_service: Option<BTreeMap<String, RuleName>>,
    /// http: host pattern → its routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_service_route_rules: Option<BTreeMap<String, HostRoutes>>,
    /// https: allowed server names → the policies that allow them; `null`: any name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_names: Option<ServerNames>,
    /// tcp and https.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_service_route_rules: Option<TcpRouteRules>,
}

#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ServerNames {
    Names(BTreeMap<String, Vec<String>>),
    Any(()),
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RuleName {
    pub rule_name: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct HostRoutes {
    pub route_rules: Vec<RouteRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_forward_gateway: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RouteRule {
    /// Matched against the whole path, query excluded.
    pub path: String,
    /// Always `Regex`.
    #[serde(rename = "Type")]
    pub type_: String,
    pub target_clusters: BTreeMap<String, u32>,
    /// `namespace/name` of the Egress policy.
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_group: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TcpRouteRules {
    /// Always `null`: the target is the original destination (or the SNI).
    pub target_clusters: Option<()>,
    pub allowed_egress_traffic: bool,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_forward_gateway: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterConfig {
    /// `null` for a wildcard host: the endpoint is the request's own Host.
    pub endpoints: Option<BTreeMap<String, Weight>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_settings: Option<ConnectionSettings>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Weight {
    pub weight: u32,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Forward {
    /// `*` → gateway cluster → weight.
    pub forward_matches: BTreeMap<String, BTreeMap<String, u32>>,
    pub egress_gateways: BTreeMap<String, GatewayConfig>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayConfig {
    pub endpoints: BTreeMap<String, Weight>,
    pub mode: GatewayMode,
    /// Under `--gateway-auth mtls`: the tunnel is TLS with the sidecar's certificate, and the
    /// gateway must present this SPIFFE ID (its ServiceAccount is named after its Service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
}

fn ranges(rule: &Rule) -> Option<NullSet> {
    (!rule.cidrs.is_empty()).then(|| rule.cidrs.iter().map(|c| (c.to_string(), ())).collect())
}

fn http_match(
    port: u16,
    rules: &[&Rule],
    gateway: bool,
    clusters: &mut BTreeMap<String, ClusterConfig>,
    m: &mut TrafficMatch,
) {
    let mut host2svc = BTreeMap::new();
    let mut route_rules: BTreeMap<String, Vec<RouteRule>> = BTreeMap::new();
    for r in rules {
        for h in &r.hosts {
            let name = h.to_string();
            let cluster = format!("{name}:{port}");
            for key in [name.clone(), cluster.clone()] {
                host2svc.insert(
                    key,
                    RuleName {
                        rule_name: name.clone(),
                    },
                );
            }
            let entry = route_rules.entry(name.clone()).or_default();
            let rule = |path: &str| RouteRule {
                path: path.to_owned(),
                type_: "Regex".into(),
                target_clusters: BTreeMap::from([(cluster.clone(), 100)]),
                policy: r.provenance.policy.clone(),
                methods: None,
                headers: None,
                route_group: None,
            };
            match &r.routes {
                None => entry.push(rule(".*")),
                Some(routes) => entry.extend(routes.iter().map(|rt| RouteRule {
                    methods: (!rt.methods.is_empty()).then(|| rt.methods.clone()),
                    headers: (!rt.headers.is_empty()).then(|| rt.headers.clone()),
                    route_group: rt.route_group.clone(),
                    ..rule(&rt.path)
                })),
            }
            let endpoints = match h {
                HostPattern::Exact(_) => {
                    Some(BTreeMap::from([(cluster.clone(), Weight { weight: 100 })]))
                }
                HostPattern::Wildcard(_) => None,
            };
            clusters.insert(
                cluster,
                ClusterConfig {
                    endpoints,
                    connection_settings: r.connection_settings.clone(),
                },
            );
        }
    }
    let rr = route_rules
        .into_iter()
        .map(|(host, rules)| {
            // Sorted by their JSON text, as FSM's tooling compares them.
            let mut keyed: Vec<(String, RouteRule)> = rules
                .into_iter()
                .map(|r| (serde_json::to_value(&r).expect("json").to_string(), r))
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed.dedup_by(|a, b| a.0 == b.0);
            let routes = HostRoutes {
                route_rules: keyed.into_iter().map(|(_, r)| r).collect(),
                egress_forward_gateway: gateway.then(|| "*".to_owned()),
            };
            (host, routes)
        })
        .collect();
    m.http_host_port2_service = Some(host2svc);
    m.http_service_route_rules = Some(rr);
}

/// Rules of one port grouped into TrafficMatch entries: one per protocol, range set and (for
/// https) whether server names are restricted.
fn traffic_matches(
    port: u16,
    rules: &[&Rule],
    gateway: bool,
    clusters: &mut BTreeMap<String, ClusterConfig>,
) -> Vec<TrafficMatch> {
    // Grouped (and ordered) by protocol, the JSON text of the range set, and whether any
    // server name is allowed.
    type Key = (ProtocolClass, String, bool);
    let mut groups: BTreeMap<Key, Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        let key = (
            r.protocol.class(),
            serde_json::to_string(&ranges(r)).expect("json"),
            r.protocol == Protocol::Https && r.hosts.is_empty(),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((class, _, any_sni), rules) in groups {
        let mut m = TrafficMatch {
            port,
            protocol: class,
            destination_ip_ranges: ranges(rules[0]),
            http_host_port2_service: None,
            http_service_route_rules: None,
            server_names: None,
            tcp_service_route_rules: None,
        };
        if class == ProtocolClass::Http {
            http_match(port, &rules, gateway, clusters, &mut m);
            out.push(m);
            continue;
        }
        if class == ProtocolClass::Https {
            m.server_names = Some(if any_sni {
                ServerNames::Any(())
            } else {
                let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for r in &rules {
                    for h in &r.hosts {
                        names
                            .entry(h.to_string())
                            .or_default()
                            .push(r.provenance.policy.clone());
                    }
                }
                for v in names.values_mut() {
                    v.sort_unstable();
                    v.dedup();
                }
                ServerNames::Names(names)
            });
        }
        let mut policies: Vec<String> = rules.iter().map(|r| r.provenance.policy.clone()).collect();
        policies.sort_unstable();
        policies.dedup();
        m.tcp_service_route_rules = Some(TcpRouteRules {
            target_clusters: None,
            allowed_egress_traffic: true,
            policies,
            egress_forward_gateway: gateway.then(|| "*".to_owned()),
        });
        out.push(m);
    }
    out
}

fn forward(plan: &Plan) -> Option<Forward> {
    if plan.gateways.is_empty() {
        return None;
    }
    let weights = plan
        .gateways
        .iter()
        .map(|g| (g.cluster.clone(), g.weight))
        .collect();
    let gateways = plan
        .gateways
        .iter()
        .map(|g| {
            let endpoint = format!("{}:{}", g.host, g.port);
            (
                g.cluster.clone(),
                GatewayConfig {
                    endpoints: BTreeMap::from([(endpoint, Weight { weight: 100 })]),
                    mode: g.mode,
                    spiffe_id: (plan.auth.mode == AuthMode::Mtls).then(|| {
                        crate::spiffe::id_of(&plan.auth.trust_domain, &g.namespace, &g.service)
                    }),
                },
            )
        })
        .collect();
    Some(Forward {
        forward_matches: BTreeMap::from([("*".to_owned(), weights)]),
        egress_gateways: gateways,
    })
}

/// The config of one identity (`Version` not yet set).
pub fn identity_config(plan: &Plan, id: &IdentityPlan) -> SidecarConfig {
    let s = &plan.settings;
    let gateway = !plan.gateways.is_empty();
    let outbound = (!id.rules.is_empty()).then(|| {
        let mut by_port: BTreeMap<u16, Vec<&Rule>> = BTreeMap::new();
        for r in &id.rules {
            by_port.entry(r.port).or_default().push(r);
        }
        let mut clusters = BTreeMap::new();
        let traffic_matches = by_port
            .into_iter()
            .map(|(port, rules)| {
                let matches = traffic_matches(port, &rules, gateway, &mut clusters);
                (port.to_string(), matches)
            })
            .collect();
        Outbound {
            traffic_matches,
            clusters_configs: (!clusters.is_empty()).then_some(clusters),
        }
    });
    SidecarConfig {
        version: None,
        spec: Spec {
            service_identity: id.service_identity(),
            sidecar_log_level: s.log_level.clone(),
            sidecar_timeout: s.sidecar_timeout,
            traffic: Traffic {
                enable_egress: s.enable_egress,
            },
            feature_flags: FeatureFlags {
                enable_egress_policy: s.enable_egress_policy,
            },
            audit: id.observe.audit,
            log_allowed: id.observe.log_allowed,
        },
        outbound,
        forward: forward(plan),
        limits: REQUEST_LIMITS,
        matchers: matchers_of(plan, id),
    }
}

/// The matchers of the regexes of an identity's routes.
fn matchers_of(plan: &Plan, id: &IdentityPlan) -> BTreeMap<String, Arc<Matcher>> {
    let mut out = BTreeMap::new();
    let routes = id.rules.iter().filter_map(|r| r.routes.as_deref());
    for route in routes.flatten().filter(|r| r.route_group.is_some()) {
        let keys = std::iter::once(MatchMode::WholePath.key(&route.path))
            .chain(route.headers.values().map(|v| MatchMode::Anywhere.key(v)));
        for key in keys {
            if let Some(m) = plan.matchers.get(&key) {
                out.insert(key, Arc::clone(m));
            }
        }
    }
    out
}

/// The JSON Schema of the sidecar config, generated from the structs above.
pub fn config_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<SidecarConfig>(
        "egressc:sidecar-config.schema.json",
        "The per-identity sidecar config egressc writes (configs/<ns>/<sa>.json, sidecar/config.json).",
    )
}
