//! Plan → output tree in memory: the per-identity Pipy config JSON (FSM's sidecar field names
//! and shapes), the mesh-wide data, and the manifest. Maps are sorted (serde_json's map is a
//! BTreeMap here); nothing depends on time or input order.

use crate::check::Protocol;
use crate::net::HostPattern;
use crate::plan::{IdentityPlan, Plan, Rule};
use crate::resources::ConnectionSettings;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Files by path relative to OUT (always `/`-separated, never absolute, never `..`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub files: BTreeMap<String, Vec<u8>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).expect("JSON serializes");
    s.push(b'\n');
    s
}

/// Set `Version` to a hash of the rest of the document.
fn with_version(mut doc: Value) -> Value {
    let hash = sha256_hex(&serde_json::to_vec(&doc).expect("JSON serializes"));
    doc["Version"] = json!(hash[..16]);
    doc
}

/// FSM's JSON for an UpstreamTrafficSetting's connectionSettings (Go field names; lower-case
/// `tcp`/`http`).
pub fn connection_settings_json(cs: &ConnectionSettings) -> Value {
    let mut out = Map::new();
    if let Some(t) = &cs.tcp {
        let mut m = Map::new();
        if let Some(v) = t.max_connections {
            m.insert("MaxConnections".into(), json!(v));
        }
        if let Some(v) = &t.connect_timeout {
            m.insert("ConnectTimeout".into(), json!(v));
        }
        out.insert("tcp".into(), Value::Object(m));
    }
    if let Some(h) = &cs.http {
        let mut m = Map::new();
        for (k, v) in [
            ("MaxRequests", h.max_requests),
            ("MaxRequestsPerConnection", h.max_requests_per_connection),
            ("MaxPendingRequests", h.max_pending_requests),
            ("MaxRetries", h.max_retries),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(cb) = &h.circuit_breaking {
            let mut c = Map::new();
            c.insert("StatTimeWindow".into(), json!(cb.stat_time_window));
            c.insert("MinRequestAmount".into(), json!(cb.min_request_amount));
            c.insert("DegradedTimeWindow".into(), json!(cb.degraded_time_window));
            let opt = [
                (
                    "SlowTimeThreshold",
                    cb.slow_time_threshold.as_ref().map(|v| json!(v)),
                ),
                (
                    "SlowAmountThreshold",
                    cb.slow_amount_threshold.map(|v| json!(v)),
                ),
                (
                    "SlowRatioThreshold",
                    cb.slow_ratio_threshold.map(|v| json!(v)),
                ),
                (
                    "ErrorAmountThreshold",
                    cb.error_amount_threshold.map(|v| json!(v)),
                ),
                (
                    "ErrorRatioThreshold",
                    cb.error_ratio_threshold.map(|v| json!(v)),
                ),
                (
                    "DegradedStatusCode",
                    cb.degraded_status_code.map(|v| json!(v)),
                ),
                (
                    "DegradedResponseContent",
                    cb.degraded_response_content.as_ref().map(|v| json!(v)),
                ),
            ];
            for (k, v) in opt {
                if let Some(v) = v {
                    c.insert(k.into(), v);
                }
            }
            m.insert("CircuitBreaking".into(), Value::Object(c));
        }
        out.insert("http".into(), Value::Object(m));
    }
    Value::Object(out)
}

fn protocol_name(p: Protocol) -> &'static str {
    // FSM writes tcp-server-first as tcp.
    match p {
        Protocol::Http => "http",
        Protocol::Https => "https",
        Protocol::Tcp | Protocol::TcpServerFirst => "tcp",
    }
}

fn ranges(rule: &Rule) -> Value {
    if rule.cidrs.is_empty() {
        Value::Null
    } else {
        Value::Object(
            rule.cidrs
                .iter()
                .map(|c| (c.to_string(), Value::Null))
                .collect(),
        )
    }
}

/// Rules of one port grouped into TrafficMatch entries: one per protocol, range set and (for
/// https) whether server names are restricted.
fn traffic_matches(
    port: u16,
    rules: &[&Rule],
    gateway: bool,
    clusters: &mut Map<String, Value>,
) -> Vec<Value> {
    let mut groups: BTreeMap<(String, String, bool), Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        let key = (
            protocol_name(r.protocol).to_owned(),
            serde_json::to_string(&ranges(r)).expect("json"),
            r.protocol == Protocol::Https && r.hosts.is_empty(),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((proto, _, any_sni), rules) in groups {
        let mut m = Map::new();
        m.insert("Port".into(), json!(port));
        m.insert("Protocol".into(), json!(proto));
        m.insert("DestinationIPRanges".into(), ranges(rules[0]));
        let mut policies: Vec<&str> = rules.iter().map(|r| r.provenance.policy.as_str()).collect();
        policies.sort_unstable();
        policies.dedup();
        match proto.as_str() {
            "http" => {
                let mut host2svc = Map::new();
                let mut route_rules: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                for r in &rules {
                    for h in &r.hosts {
                        let name = h.to_string();
                        let cluster = format!("{name}:{port}");
                        for key in [name.clone(), cluster.clone()] {
                            host2svc.insert(key, json!({"RuleName": name}));
                        }
                        let entry = route_rules.entry(name.clone()).or_default();
                        let target = json!({ cluster.clone(): 100 });
                        match &r.routes {
                            None => entry.push(json!({
                                "Path": ".*", "Type": "Regex", "TargetClusters": target,
                                "Policy": r.provenance.policy,
                            })),
                            Some(routes) => {
                                for rt in routes {
                                    let mut v = json!({
                                        "Path": rt.path, "Type": "Regex", "TargetClusters": target,
                                        "Policy": r.provenance.policy,
                                    });
                                    if !rt.methods.is_empty() {
                                        v["Methods"] = json!(rt.methods);
                                    }
                                    if !rt.headers.is_empty() {
                                        v["Headers"] = json!(rt.headers);
                                    }
                                    if let Some(g) = &rt.route_group {
                                        v["RouteGroup"] = json!(g);
                                    }
                                    entry.push(v);
                                }
                            }
                        }
                        let endpoints = match h {
                            HostPattern::Exact(_) => json!({ cluster.clone(): {"Weight": 100} }),
                            // A wildcard's endpoint is the request's own Host.
                            HostPattern::Wildcard(_) => Value::Null,
                        };
                        let mut c = json!({"Endpoints": endpoints});
                        if let Some(cs) = &r.connection_settings {
                            c["ConnectionSettings"] = cs.clone();
                        }
                        clusters.insert(cluster, c);
                    }
                }
                let rr: Map<String, Value> = route_rules
                    .into_iter()
                    .map(|(host, mut rules)| {
                        rules.sort_by_key(|v| v.to_string());
                        rules.dedup();
                        let mut v = json!({"RouteRules": rules});
                        if gateway {
                            v["EgressForwardGateway"] = json!("*");
                        }
                        (host, v)
                    })
                    .collect();
                m.insert("HttpHostPort2Service".into(), Value::Object(host2svc));
                m.insert("HttpServiceRouteRules".into(), Value::Object(rr));
            }
            _ => {
                if proto == "https" {
                    let names = if any_sni {
                        Value::Null
                    } else {
                        let mut names: BTreeMap<String, Vec<&str>> = BTreeMap::new();
                        for r in &rules {
                            for h in &r.hosts {
                                names
                                    .entry(h.to_string())
                                    .or_default()
                                    .push(&r.provenance.policy);
                            }
                        }
                        for v in names.values_mut() {
                            v.sort_unstable();
                            v.dedup();
                        }
                        json!(names)
                    };
                    m.insert("ServerNames".into(), names);
                }
                let mut t = json!({
                    "TargetClusters": null,
                    "AllowedEgressTraffic": true,
                    "Policies": policies,
                });
                if gateway {
                    t["EgressForwardGateway"] = json!("*");
                }
                m.insert("TcpServiceRouteRules".into(), t);
            }
        }
        out.push(Value::Object(m));
    }
    out
}

/// The config JSON of one identity.
pub fn identity_config(plan: &Plan, id: &IdentityPlan) -> Value {
    let s = &plan.settings;
    let gateway = !plan.gateways.is_empty();
    let outbound = if id.rules.is_empty() {
        Value::Null
    } else {
        let mut by_port: BTreeMap<u16, Vec<&Rule>> = BTreeMap::new();
        for r in &id.rules {
            by_port.entry(r.port).or_default().push(r);
        }
        let mut clusters = Map::new();
        let matches: Map<String, Value> = by_port
            .into_iter()
            .map(|(port, rules)| {
                (
                    port.to_string(),
                    Value::Array(traffic_matches(port, &rules, gateway, &mut clusters)),
                )
            })
            .collect();
        json!({
            "TrafficMatches": matches,
            "ClustersConfigs": if clusters.is_empty() { Value::Null } else { Value::Object(clusters) },
        })
    };
    let forward = if gateway {
        let matches: Map<String, Value> = plan
            .gateways
            .iter()
            .map(|g| (g.cluster.clone(), json!(g.weight)))
            .collect();
        let gws: Map<String, Value> = plan
            .gateways
            .iter()
            .map(|g| {
                (
                    g.cluster.clone(),
                    json!({
                        "Endpoints": { format!("{}:{}", g.host, g.port): {"Weight": 100} },
                        "Mode": g.mode,
                    }),
                )
            })
            .collect();
        json!({"ForwardMatches": {"*": matches}, "EgressGateways": gws})
    } else {
        Value::Null
    };
    with_version(json!({
        "Version": null,
        "Spec": {
            "ServiceIdentity": id.service_identity(),
            "SidecarLogLevel": s.log_level,
            "SidecarTimeout": s.sidecar_timeout,
            "Traffic": {"EnableEgress": s.enable_egress},
            "FeatureFlags": {"EnableEgressPolicy": s.enable_egress_policy},
        },
        "Outbound": outbound,
        "Forward": forward,
    }))
}

/// Mesh-wide data every sidecar needs: the in-mesh destinations.
pub fn mesh_json(plan: &Plan) -> Value {
    let dests: Map<String, Value> = plan
        .mesh
        .iter()
        .map(|d| (format!("{}:{}", d.ip, d.port), json!(d.service)))
        .collect();
    with_version(json!({"Version": null, "InMesh": dests}))
}

/// The path of an identity's config, relative to OUT.
pub fn identity_path(id: &IdentityPlan) -> String {
    match (&id.namespace, &id.service_account) {
        (Some(ns), Some(sa)) => format!("configs/{ns}/{sa}.json"),
        _ => "sidecar/config.json".to_owned(),
    }
}

/// The whole output tree. `inputs` are (path, bytes) of every input, for the manifest.
pub fn emit(plan: &Plan, inputs: &[(String, &[u8])]) -> Output {
    let mut out = Output::default();
    for id in &plan.identities {
        out.files
            .insert(identity_path(id), pretty(&identity_config(plan, id)));
    }
    out.files
        .insert("sidecar/mesh.json".into(), pretty(&mesh_json(plan)));
    out.files.extend(crate::scripts::sidecar_files());
    if !plan.gateways.is_empty() {
        out.files.extend(crate::scripts::gateway_files());
        let mut listen: Vec<u16> = plan.gateways.iter().map(|g| g.listen_port).collect();
        listen.sort_unstable();
        listen.dedup();
        out.files.insert(
            "gateway/config.json".into(),
            pretty(&json!({ "Listen": listen })),
        );
    }
    out.files.insert(
        "iptables/outbound.rules".into(),
        crate::iptables::outbound_rules(&plan.settings).into_bytes(),
    );
    let mut ins: Vec<Value> = inputs
        .iter()
        .map(|(p, b)| json!({"path": p, "sha256": sha256_hex(b)}))
        .collect();
    ins.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let files: Map<String, Value> = out
        .files
        .iter()
        .map(|(p, b)| (p.clone(), json!(sha256_hex(b))))
        .collect();
    let manifest = json!({
        "egressc": env!("CARGO_PKG_VERSION"),
        "inputs": ins,
        "files": files,
    });
    out.files.insert(MANIFEST.into(), pretty(&manifest));
    out
}

pub const MANIFEST: &str = "manifest.json";
