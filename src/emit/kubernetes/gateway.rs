//! The gateway's objects, typed: per gateway a ServiceAccount, a Deployment that stays up
//! through a node drain (replicas spread across nodes, a PodDisruptionBudget that lets one go
//! at a time, probes, requests and limits), a Service when the inputs have none, and a
//! NetworkPolicy that lets only meshed pods in.

use crate::emit::kubernetes::KubeOptions;
use crate::emit::kubernetes::objects::{
    GATEWAY_MAP, METRICS_PORT, env, field, gateway_pod_labels, meshed_pods, meta, metrics_probe,
    parts_volume, proxy_security, requests, scrape_annotations, tcp_port, tls_mount, tls_volume,
    with_limits,
};
use crate::model::AuthMode;
use crate::plan::{Gateway, Plan};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, Service,
    ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, TopologySpreadConstraint,
    VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// What the gateway's objects depend on beyond the plan and the options.
pub struct GatewaySizing {
    /// The ConfigMaps its codebase takes.
    pub parts: usize,
    /// Its container's memory limit.
    pub memory_limit_mib: u32,
}

/// The gateway's memory limit for a config of `config_bytes`: as the sidecar's
/// ([`super::sidecar_memory_limit_mib`]), and at least 256 MiB for the tunnels it carries
/// (its connections are capped: `Limits.MaxConnections`).
pub fn gateway_memory_limit_mib(config_bytes: usize) -> u32 {
    super::sidecar_memory_limit_mib(config_bytes).max(256)
}

fn selector(g: &Gateway) -> LabelSelector {
    LabelSelector {
        match_labels: Some(gateway_pod_labels(g)),
        ..Default::default()
    }
}

fn component(g: &Gateway, name: &str) -> ObjectMeta {
    meta(
        name,
        &g.namespace,
        &[("app.kubernetes.io/component", "gateway")],
    )
}

/// Replicas spread across nodes (and zones where there are any), as far as the scheduler can:
/// `ScheduleAnyway`, so that a one-node cluster still runs them all.
fn spread(g: &Gateway) -> Vec<TopologySpreadConstraint> {
    ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            label_selector: Some(selector(g)),
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        })
        .collect()
}

fn gateway_container(
    g: &Gateway,
    opts: &KubeOptions,
    sizing: &GatewaySizing,
    tls: bool,
) -> Container {
    let dir = "/etc/egressc/gateway";
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(number),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    Container {
        name: "gateway".into(),
        image: Some(opts.pipy_image.clone()),
        command: Some(vec!["pipy".into()]),
        args: Some(vec!["--admin-port-off".into(), format!("{dir}/main.js")]),
        env: Some(vec![
            env("EGRESSC_CONFIG", &format!("{dir}/config.json")),
            // The gateway refuses its own addresses as targets.
            field("status.podIPs", "EGRESSC_POD_IPS"),
        ]),
        ports: Some(vec![
            port("tunnel", g.listen_port),
            port("metrics", METRICS_PORT),
        ]),
        // Ready: the tunnel port accepts. Alive: the metrics listener answers (a wedged Pipy
        // is restarted; a config that fails to load keeps the old one and stays alive).
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(g.listen_port)),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        liveness_probe: Some(Probe {
            period_seconds: Some(10),
            failure_threshold: Some(3),
            timeout_seconds: Some(2),
            ..metrics_probe()
        }),
        resources: Some(with_limits(
            requests("100m", "128Mi"),
            "2",
            sizing.memory_limit_mib,
        )),
        security_context: Some(proxy_security()),
        volume_mounts: Some(
            std::iter::once(VolumeMount {
                name: "codebase".into(),
                mount_path: dir.into(),
                read_only: Some(true),
                ..Default::default()
            })
            .chain(tls.then(tls_mount))
            .collect(),
        ),
        ..Default::default()
    }
}

fn gateway_deployment(
    g: &Gateway,
    opts: &KubeOptions,
    sizing: &GatewaySizing,
    tls: bool,
) -> Deployment {
    let codebase = parts_volume("codebase", GATEWAY_MAP, sizing.parts, usize::MAX);
    Deployment {
        metadata: component(g, &g.service),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::from(opts.gateway_replicas)),
            selector: selector(g),
            // A rollout adds a new pod before it takes an old one away.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(gateway_pod_labels(g)),
                    annotations: Some(scrape_annotations()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![gateway_container(g, opts, sizing, tls)],
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        ..Default::default()
                    }),
                    // Its SPIFFE ID (mtls) names this ServiceAccount, which the sidecars
                    // check: named after the gateway's Service.
                    service_account_name: Some(g.service.clone()),
                    topology_spread_constraints: Some(spread(g)),
                    volumes: Some(
                        std::iter::once(codebase)
                            .chain(tls.then(tls_volume))
                            .collect(),
                    ),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A drain takes one gateway pod at a time, and is never blocked (even with one replica).
fn disruption_budget(g: &Gateway) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: component(g, &g.service),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(g)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn gateway_service(g: &Gateway) -> Service {
    Service {
        metadata: component(g, &g.service),
        spec: Some(ServiceSpec {
            selector: Some(gateway_pod_labels(g)),
            ports: Some(vec![ServicePort {
                name: Some("tunnel".into()),
                port: i32::from(g.port),
                target_port: Some(IntOrString::Int(i32::from(g.listen_port))),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Only meshed pods (their sidecars, as the proxy uid) may reach the gateway.
fn gateway_policy(g: &Gateway) -> NetworkPolicy {
    NetworkPolicy {
        metadata: component(g, &format!("{}-ingress", g.service)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(g)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector::default()),
                    pod_selector: Some(meshed_pods()),
                    ..Default::default()
                }]),
                ports: Some(vec![tcp_port(g.listen_port)]),
            }]),
            ..Default::default()
        }),
    }
}

/// The gateway's objects after its codebase's ConfigMaps, in a fixed order: per gateway its
/// ServiceAccount (named after its Service: E0324 keeps the inputs from having one), a
/// Deployment, its PodDisruptionBudget, a Service when the inputs have none, and its
/// NetworkPolicy.
pub fn gateway(plan: &Plan, sizing: &GatewaySizing, opts: &KubeOptions) -> Vec<serde_json::Value> {
    let tls = plan.auth.mode == AuthMode::Mtls;
    let json = |v: Result<serde_json::Value, _>| v.expect("json");
    let mut docs = Vec::new();
    for g in &plan.gateways {
        let account = ServiceAccount {
            metadata: component(g, &g.service),
            automount_service_account_token: Some(false),
            ..Default::default()
        };
        docs.push(json(serde_json::to_value(account)));
        docs.push(json(serde_json::to_value(gateway_deployment(
            g, opts, sizing, tls,
        ))));
        docs.push(json(serde_json::to_value(disruption_budget(g))));
        if !g.service_in_inputs {
            docs.push(json(serde_json::to_value(gateway_service(g))));
        }
        docs.push(json(serde_json::to_value(gateway_policy(g))));
    }
    docs
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_gateway_limit_covers_its_config_and_its_tunnels() {
        assert_eq!(super::gateway_memory_limit_mib(0), 256);
        let big = 40 << 20;
        assert_eq!(
            super::gateway_memory_limit_mib(big),
            super::super::sidecar_memory_limit_mib(big)
        );
    }
}
