//! The kustomization of `kubernetes/`, and the injection Component (`kubernetes/inject/`):
//! strategic-merge patches that add to every Deployment, StatefulSet, DaemonSet, Job, CronJob
//! and bare Pod with the injection label the init container (iptables rules) and the sidecar,
//! which picks its identity's config through the downward API — one patch per kind. The
//! sidecar is a native sidecar (an init container with `restartPolicy: Always`, after
//! `egressc-init` and before the app's own init containers: a strategic merge puts the
//! patch's entries first) or, with `--sidecar-mode classic`, a plain container.

use crate::emit::kubernetes::objects::{
    CONFIGS, MESHED_LABEL, METRICS_PORT, SIDECAR, env, field, metrics_probe, parts_volume,
    proxy_security, requests, scrape_annotations, tls_mount, tls_volume, with_memory_limit,
};
use crate::emit::kubernetes::{KubeOptions, SidecarMode};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, PodSpec, PodTemplateSpec, Probe, SecurityContext,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;
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
        // init.sh refuses a pod on the node's network (hostNetwork: the two are equal).
        env: Some(vec![
            field("status.podIP", "EGRESSC_POD_IP"),
            field("status.hostIP", "EGRESSC_HOST_IP"),
        ]),
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
    let native = opts.sidecar_mode == SidecarMode::Native;
    Container {
        // Native: the kubelet starts the next init container (and the app) once the probe
        // passes — up to a minute (a large config) — and stops the sidecar after the app.
        restart_policy: native.then(|| "Always".to_owned()),
        startup_probe: native.then(|| Probe {
            period_seconds: Some(1),
            failure_threshold: Some(60),
            ..metrics_probe()
        }),
        ports: Some(vec![ContainerPort {
            name: Some("egressc-metrics".into()),
            container_port: i32::from(METRICS_PORT),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
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
    let sidecar = sidecar_container(opts, sizing.memory_limit_mib, sizing.tls);
    let native = opts.sidecar_mode == SidecarMode::Native;
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
            init_containers: Some(
                std::iter::once(init_container(opts))
                    .chain(native.then(|| sidecar.clone()))
                    .collect(),
            ),
            containers: if native { Vec::new() } else { vec![sidecar] },
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

/// The kinds the Component patches: kind, apiVersion, patch file.
const KINDS: [(&str, &str, &str); 6] = [
    ("Deployment", "apps/v1", "deployment.yaml"),
    ("StatefulSet", "apps/v1", "statefulset.yaml"),
    ("DaemonSet", "apps/v1", "daemonset.yaml"),
    ("Job", "batch/v1", "job.yaml"),
    ("CronJob", "batch/v1", "cronjob.yaml"),
    ("Pod", "v1", "pod.yaml"),
];

/// A patch document: the kind's pod template (or, for a Pod, its metadata and spec) as the
/// kind nests it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchDoc {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Nest {
    /// `spec.template`.
    Template(Value),
    /// `spec.jobTemplate.spec.template`.
    JobTemplate { spec: Box<Nest> },
}

/// The patch of one kind: the pod template where the kind keeps it (a Pod is its own). The
/// name is a placeholder: the target decides which objects the patch applies to.
fn patch(kind: &'static str, api: &'static str, pod: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(pod).expect("json");
    // Native: no `containers` in the patch (the app's stay as they are).
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut)
        && spec
            .get("containers")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        spec.remove("containers");
    }
    let named = |mut m: ObjectMeta| {
        m.name = Some("egressc-injected".into());
        m
    };
    let nest = |n: Nest| serde_json::to_value(n).expect("json");
    let (metadata, spec) = match kind {
        "Pod" => (
            named(pod.metadata.clone().unwrap_or_default()),
            template["spec"].take(),
        ),
        "CronJob" => (
            named(ObjectMeta::default()),
            nest(Nest::JobTemplate {
                spec: Box::new(Nest::Template(template)),
            }),
        ),
        _ => (named(ObjectMeta::default()), nest(Nest::Template(template))),
    };
    let doc = PatchDoc {
        api_version: api,
        kind,
        metadata,
        spec,
    };
    serde_json::to_value(doc).expect("json")
}

/// The Component and its patches: (file name, document).
pub fn component(opts: &KubeOptions, sizing: &Sizing) -> Vec<(String, Value)> {
    let template = pod_template(opts, sizing);
    let (key, value) = &opts.inject_label;
    let selector = format!("{key}={value}");
    let patches: Vec<Patch> = KINDS
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
    for (kind, api, file) in KINDS {
        out.push((file.to_owned(), patch(kind, api, &template)));
    }
    out
}
