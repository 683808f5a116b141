//! The objects of `kubernetes/`, typed, and their parts: ConfigMaps, volumes, containers'
//! security, resources and probes, and the optional egress pin (the gateway's objects are in
//! `gateway.rs`, the injection's in `inject.rs`).

use crate::emit::output::Output;
use crate::plan::{Gateway, Plan};
use k8s_openapi::api::core::v1::{
    CSIVolumeSource, Capabilities, ConfigMap, ConfigMapProjection, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, Probe, ProjectedVolumeSource, ResourceRequirements,
    SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The ConfigMap of the sidecar codebase, in every identity namespace.
pub const SIDECAR: &str = "egressc-sidecar";
/// The ConfigMaps of the identities' configs: `egressc-configs`, `egressc-configs-2`, ….
pub const CONFIGS: &str = "egressc-configs";
pub const GATEWAY_MAP: &str = "egressc-gateway";
/// The label the injection puts on meshed pods (NetworkPolicies select them by it).
pub const MESHED_LABEL: &str = "egressc.io/meshed";
pub const PROXY_UID: i64 = crate::emit::scripts::PROXY_UID as i64;

fn labels(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_owned(),
        "egressc".to_owned(),
    )]);
    for (k, v) in extra {
        l.insert((*k).to_owned(), (*v).to_owned());
    }
    l
}

pub fn meta(name: &str, namespace: &str, extra: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(extra)),
        ..Default::default()
    }
}

fn text(out: &Output, path: &str) -> String {
    String::from_utf8_lossy(&out.files[path]).into_owned()
}

/// The files of the sidecar's volume: the codebase (scripts, mesh data, the `_default`
/// config), the iptables rules and the init container's script.
pub fn sidecar_files(out: &Output) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = out
        .files
        .iter()
        .filter_map(|(path, bytes)| {
            let name = path.strip_prefix("sidecar/")?;
            Some((name.to_owned(), String::from_utf8_lossy(bytes).into_owned()))
        })
        .collect();
    for f in ["outbound.rules", "outbound6.rules", "init.sh"] {
        files.push((f.to_owned(), text(out, &format!("iptables/{f}"))));
    }
    files.sort();
    files
}

/// The gateway's codebase.
pub fn gateway_files(out: &Output) -> Vec<(String, String)> {
    out.files
        .iter()
        .filter_map(|(path, bytes)| {
            let name = path.strip_prefix("gateway/")?;
            Some((name.to_owned(), String::from_utf8_lossy(bytes).into_owned()))
        })
        .collect()
}

/// The name of part `n` (from 1) of a volume's ConfigMaps: `base`, `base-2`, ….
pub fn part_name(base: &str, n: usize) -> String {
    if n == 1 {
        base.to_owned()
    } else {
        format!("{base}-{n}")
    }
}

/// One ConfigMap of a volume.
pub fn config_map(
    base: &str,
    n: usize,
    namespace: &str,
    component: &str,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    ConfigMap {
        metadata: meta(
            &part_name(base, n),
            namespace,
            &[("app.kubernetes.io/component", component)],
        ),
        data: Some(data),
        ..Default::default()
    }
}

/// The namespace of the gateway objects: the first gateway's.
pub fn gateway_namespace(plan: &Plan) -> &str {
    &plan.gateways[0].namespace
}

/// The labels of a gateway's pods: its Service's selector when the inputs have the Service.
pub fn gateway_pod_labels(g: &Gateway) -> BTreeMap<String, String> {
    if g.service_in_inputs && !g.selector.is_empty() {
        g.selector.clone()
    } else {
        BTreeMap::from([("app.kubernetes.io/name".to_owned(), g.service.clone())])
    }
}

/// The security context of egressc's Pipy containers: uid 1500, nothing more.
pub fn proxy_security() -> SecurityContext {
    SecurityContext {
        run_as_user: Some(PROXY_UID),
        run_as_group: Some(PROXY_UID),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn requests(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
        ])),
        ..Default::default()
    }
}

/// `r` with a memory limit.
pub fn with_memory_limit(mut r: ResourceRequirements, mib: u32) -> ResourceRequirements {
    r.limits = Some(BTreeMap::from([(
        "memory".to_owned(),
        Quantity(format!("{mib}Mi")),
    )]));
    r
}

/// `r` with a CPU and a memory limit.
pub fn with_limits(r: ResourceRequirements, cpu: &str, mib: u32) -> ResourceRequirements {
    let mut r = with_memory_limit(r, mib);
    if let Some(limits) = r.limits.as_mut() {
        limits.insert("cpu".to_owned(), Quantity(cpu.into()));
    }
    r
}

pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// An environment variable from the downward API (`status.podIPs`: the pod's addresses,
/// comma-separated).
pub fn field(path: &str, name: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The port the sidecar and the gateway serve their metrics on (`EGRESSC_METRICS_PORT`).
pub const METRICS_PORT: u16 = 15010;

/// The usual Prometheus scrape annotations of a pod that serves metrics on [`METRICS_PORT`].
pub fn scrape_annotations() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

/// A probe of the metrics listener (`GET /metrics` on [`METRICS_PORT`], every address): it
/// answers once the proxy's script has loaded, and so its listeners are open. The kubelet
/// probes the pod's address; the sidecar's own listener is on loopback only.
pub fn metrics_probe() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/metrics".into()),
            port: IntOrString::Int(i32::from(METRICS_PORT)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where the sidecar and the gateway read their certificate (`EGRESSC_TLS_DIR`'s default).
pub const TLS_DIR: &str = "/var/run/egressc/tls";
pub const TLS_VOLUME: &str = "egressc-tls";

/// The pod's certificate from cert-manager's csi-driver-spiffe: its SPIFFE ID names the pod's
/// ServiceAccount (the approver checks it); its files belong to the proxy's group.
pub fn tls_volume() -> Volume {
    Volume {
        name: TLS_VOLUME.into(),
        csi: Some(CSIVolumeSource {
            driver: "spiffe.csi.cert-manager.io".into(),
            read_only: Some(true),
            volume_attributes: Some(BTreeMap::from([(
                "spiffe.csi.cert-manager.io/fs-group".to_owned(),
                PROXY_UID.to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The certificate's folder, read-only.
pub fn tls_mount() -> VolumeMount {
    VolumeMount {
        name: TLS_VOLUME.into(),
        mount_path: TLS_DIR.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// A volume of every part of a ConfigMap volume (`base`, `base-2`, …), in one folder; the parts
/// from number `optional_from` on are optional (a namespace may have fewer of them, or none).
pub fn parts_volume(name: &str, base: &str, parts: usize, optional_from: usize) -> Volume {
    let sources = (1..=parts)
        .map(|n| VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: part_name(base, n),
                optional: (n >= optional_from).then_some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pods the injection marks as meshed.
pub fn meshed_pods() -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            MESHED_LABEL.to_owned(),
            "true".to_owned(),
        )])),
        ..Default::default()
    }
}

pub fn tcp_port(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// `--pin-egress`: meshed pods of `namespace` may send only to the gateways and cluster DNS.
pub fn pin_egress(plan: &Plan, namespace: &str) -> NetworkPolicy {
    let mut rules: Vec<NetworkPolicyEgressRule> = plan
        .gateways
        .iter()
        .map(|g| NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_owned(),
                        g.namespace.clone(),
                    )])),
                    ..Default::default()
                }),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(gateway_pod_labels(g)),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![tcp_port(g.listen_port)]),
        })
        .collect();
    let dns = |protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(53)),
        protocol: Some(protocol.into()),
        ..Default::default()
    };
    rules.push(NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    "kube-system".to_owned(),
                )])),
                ..Default::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "k8s-app".to_owned(),
                    "kube-dns".to_owned(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(vec![dns("UDP"), dns("TCP")]),
    });
    NetworkPolicy {
        metadata: meta(
            "egressc-pin-egress",
            namespace,
            &[("app.kubernetes.io/component", "sidecar")],
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(meshed_pods()),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(rules),
            ..Default::default()
        }),
    }
}
