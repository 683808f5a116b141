//! The kustomization of `kubernetes/`, and the injection Component (`kubernetes/inject/`):
//! strategic-merge patches that add to every Deployment, StatefulSet, DaemonSet and CronJob
//! with the injection label the init container (iptables rules) and the sidecar container,
//! which picks its identity's config through the downward API — one patch for every workload.

use crate::emit::kubernetes::KubeOptions;
use crate::emit::kubernetes::objects::{
    CONFIGS, MESHED_LABEL, SIDECAR, env, field, parts_volume, proxy_security, requests,
    scrape_annotations, tls_mount, tls_volume, with_memory_limit,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, PodSpec, PodTemplateSpec, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const CODEBASE_DIR: &str = "/etc/egressc/sidecar";
const CONFIG_DIR: &str = "/etc/egressc/configs";

/// A kustomization file: the base's `Kustomization` (its resources) or the injection
/// `Component` (its patches). Fields in sorted order, as every manifest is written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kustomize<'a> {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    patches: &'a [Patch],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    resources: &'a [String],
}

/// A patch of the Component: its file, and the objects it applies to.
#[derive(Serialize)]
struct Patch {
    path: &'static str,
    target: Target,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    kind: &'static str,
    label_selector: String,
}

fn document(k: &Kustomize) -> Value {
    serde_json::to_value(k).expect("json")
}

/// `kubernetes/kustomization.yaml`: every file of the base.
pub fn kustomization(resources: &[String]) -> Value {
    document(&Kustomize {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        patches: &[],
        resources,
    })
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

fn init_container(opts: &KubeOptions) -> Container {
    let mut add = vec!["NET_ADMIN".to_owned()];
    if opts.iptables_legacy {
        add.push("NET_RAW".into());
    }
    // init.sh applies both rule files (IPv6 where the pod has it) and the resolv.conf DNS
    // rules.
    Container {
        name: "egressc-init".into(),
        image: Some(opts.init_image.clone()),
        command: Some(vec!["sh".into(), format!("{CODEBASE_DIR}/init.sh")]),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(add),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        resources: Some(requests("10m", "16Mi")),
        volume_mounts: Some(vec![mount("egressc-sidecar", CODEBASE_DIR)]),
        ..Default::default()
    }
}

/// What the patches depend on beyond the options: how many ConfigMaps the volumes take at
/// most, and the sidecar's memory limit.
pub struct Sizing {
    /// The sidecar reaches a gateway over mTLS: it mounts its certificate.
    pub tls: bool,
    pub sidecar_parts: usize,
    pub config_parts: usize,
    pub memory_limit_mib: u32,
}

fn sidecar_container(opts: &KubeOptions, memory_limit_mib: u32, tls: bool) -> Container {
    Container {
        name: "egressc-sidecar".into(),
        image: Some(opts.pipy_image.clone()),
        command: Some(vec!["pipy".into()]),
        args: Some(vec![
            "--admin-port-off".into(),
            format!("{CODEBASE_DIR}/main.js"),
        ]),
        env: Some(vec![
            env("EGRESSC_CODEBASE", CODEBASE_DIR),
            env("EGRESSC_CONFIG_DIR", CONFIG_DIR),
            field("spec.serviceAccountName", "EGRESSC_SERVICE_ACCOUNT"),
            field("metadata.namespace", "EGRESSC_NAMESPACE"),
            field("status.podIPs", "EGRESSC_POD_IPS"),
        ]),
        resources: Some(with_memory_limit(requests("50m", "64Mi"), memory_limit_mib)),
        security_context: Some(proxy_security()),
        volume_mounts: Some(
            [
                mount("egressc-sidecar", CODEBASE_DIR),
                mount("egressc-configs", CONFIG_DIR),
            ]
            .into_iter()
            .chain(tls.then(tls_mount))
            .collect(),
        ),
        ..Default::default()
    }
}

/// The pod template every patch adds: the meshed label, the two containers, the volumes (every
/// part of the codebase, and of the configs, each optional — namespaces may have fewer).
fn pod_template(opts: &KubeOptions, sizing: &Sizing) -> PodTemplateSpec {
    let (sidecar_parts, config_parts) = (sizing.sidecar_parts, sizing.config_parts);
    // Every configs part is optional (a namespace whose identities all run `_default` has
    // none); the codebase's first part is required.
    let configs = parts_volume("egressc-configs", CONFIGS, config_parts, 1);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([(
                MESHED_LABEL.to_owned(),
                "true".to_owned(),
            )])),
            annotations: Some(scrape_annotations()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(vec![init_container(opts)]),
            containers: vec![sidecar_container(opts, sizing.memory_limit_mib, sizing.tls)],
            // The certificate goes to the sidecar container only (the app never sees its key).
            volumes: Some(
                [
                    parts_volume("egressc-sidecar", SIDECAR, sidecar_parts, 2),
                    configs,
                ]
                .into_iter()
                .chain(sizing.tls.then(tls_volume))
                .collect(),
            ),
            ..Default::default()
        }),
    }
}

/// The Component and its patches: (file name, document).
pub fn component(opts: &KubeOptions, sizing: &Sizing) -> Vec<(String, Value)> {
    let template = serde_json::to_value(pod_template(opts, sizing)).expect("json");
    let (key, value) = &opts.inject_label;
    let selector = format!("{key}={value}");
    let kinds = [
        ("Deployment", "apps/v1", "deployment.yaml"),
        ("StatefulSet", "apps/v1", "statefulset.yaml"),
        ("DaemonSet", "apps/v1", "daemonset.yaml"),
        ("CronJob", "batch/v1", "cronjob.yaml"),
    ];
    let patches: Vec<Patch> = kinds
        .iter()
        .map(|(kind, _, file)| Patch {
            path: file,
            target: Target {
                kind,
                label_selector: selector.clone(),
            },
        })
        .collect();
    let mut out = vec![(
        "kustomization.yaml".to_owned(),
        document(&Kustomize {
            api_version: "kustomize.config.k8s.io/v1alpha1",
            kind: "Component",
            patches: &patches,
            resources: &[],
        }),
    )];
    for (kind, api, file) in kinds {
        // The name is a placeholder: the target decides which objects the patch applies to.
        let spec = if kind == "CronJob" {
            json!({"jobTemplate": {"spec": {"template": template}}})
        } else {
            json!({"template": template})
        };
        out.push((
            file.to_owned(),
            json!({
                "apiVersion": api,
                "kind": kind,
                "metadata": {"name": "egressc-injected"},
                "spec": spec,
            }),
        ));
    }
    out
}
