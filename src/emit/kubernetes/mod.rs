//! `OUT/kubernetes/`: a kustomize base that deploys the output as it is (design §5): per
//! identity namespace the sidecar codebase and the identities' configs as ConfigMaps, the
//! egress gateway (ConfigMap, Deployment, Service when the inputs have none, NetworkPolicy),
//! optionally a NetworkPolicy that pins meshed pods' egress, and the injection Component
//! (`inject/`). Objects are typed (`k8s-openapi`), serialised in a fixed order; no name has a
//! hash suffix (a changed ConfigMap is updated in place, which the sidecar reloads), and no
//! volume uses `subPath` (which never updates).

mod inject;
mod objects;

use crate::diagnostics::{Code, Diagnostic};
use crate::emit::output::Output;
use crate::plan::Plan;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

use objects::SIDECAR;

/// What the user chooses for the manifests (`build` flags, with documented defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct KubeOptions {
    /// The Pipy image of the sidecar and the gateway.
    pub pipy_image: String,
    /// The image of the init container that applies the iptables rules.
    pub init_image: String,
    /// The label (`key`, `value`) that selects the workloads to inject.
    pub inject_label: (String, String),
    /// The init container also gets NET_RAW (a legacy-backend iptables needs it).
    pub iptables_legacy: bool,
    /// Emit NetworkPolicies that pin meshed pods' egress to the gateway and cluster DNS.
    pub pin_egress: bool,
    /// The largest ConfigMap, in bytes of its JSON form (client-side `kubectl apply` copies the
    /// object into an annotation capped at 256 KiB).
    pub configmap_max_bytes: usize,
}

pub const DEFAULT_PIPY_IMAGE: &str = "flomesh/pipy:1.5.14";
pub const DEFAULT_INIT_IMAGE: &str = "flomesh/fsm-sidecar-init:1.6.0";
pub const DEFAULT_INJECT_LABEL: &str = "egressc.io/inject=true";
pub const DEFAULT_CONFIGMAP_MAX_KIB: u64 = 256;

impl Default for KubeOptions {
    fn default() -> KubeOptions {
        let (k, v) = DEFAULT_INJECT_LABEL.split_once('=').expect("key=value");
        KubeOptions {
            pipy_image: DEFAULT_PIPY_IMAGE.into(),
            init_image: DEFAULT_INIT_IMAGE.into(),
            inject_label: (k.into(), v.into()),
            iptables_legacy: false,
            pin_egress: false,
            configmap_max_bytes: (DEFAULT_CONFIGMAP_MAX_KIB as usize) << 10,
        }
    }
}

/// The size of a ConfigMap as `kubectl apply` stores it (compact JSON).
fn json_size(cm: &ConfigMap) -> usize {
    serde_json::to_vec(cm).map_or(usize::MAX, |v| v.len())
}

fn too_large(what: String, size: usize, max: usize) -> Diagnostic {
    Diagnostic::new(
        Code::E0601,
        format!(
            "{what} would be {} KiB, over the ConfigMap limit of {} KiB",
            size.div_ceil(1024),
            max >> 10
        ),
    )
    .help(
        "client-side `kubectl apply` rejects larger objects; split the identity's policies, \
         or raise `--configmap-max-kib` (up to 1024) when you apply server-side",
    )
}

/// The identities' configs of each namespace, packed into ConfigMaps under the size limit
/// (`egressc-configs`, `egressc-configs-2`, …), and the problems when one cannot fit.
struct Packed {
    /// namespace → ConfigMaps
    configs: BTreeMap<String, Vec<ConfigMap>>,
    /// The largest number of config ConfigMaps in any namespace (the injection mounts that
    /// many, each optional).
    parts: usize,
}

fn pack(plan: &Plan, out: &Output, max: usize, diags: &mut Vec<Diagnostic>) -> Packed {
    let mut by_ns: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for id in &plan.identities {
        let Some(i) = &id.identity else { continue };
        let path = crate::emit::identity_path(id);
        let text = String::from_utf8_lossy(&out.files[&path]).into_owned();
        by_ns
            .entry(i.namespace.clone())
            .or_default()
            .push((format!("{}.json", i.name), text));
    }
    let mut configs = BTreeMap::new();
    let mut parts = 1;
    for (ns, files) in by_ns {
        let mut maps: Vec<ConfigMap> = vec![objects::configs_map(&ns, 1, BTreeMap::new())];
        for (key, text) in files {
            let alone = objects::configs_map(&ns, 1, BTreeMap::from([(key.clone(), text.clone())]));
            if json_size(&alone) > max {
                diags.push(too_large(
                    format!(
                        "the config of identity {ns}/{}",
                        key.trim_end_matches(".json")
                    ),
                    json_size(&alone),
                    max,
                ));
                continue;
            }
            let last = maps.last_mut().expect("one map at least");
            let data = last.data.get_or_insert_with(BTreeMap::new);
            data.insert(key.clone(), text.clone());
            if json_size(last) > max {
                last.data.as_mut().expect("data").remove(&key);
                let n = maps.len() + 1;
                maps.push(objects::configs_map(&ns, n, BTreeMap::from([(key, text)])));
            }
        }
        parts = parts.max(maps.len());
        configs.insert(ns, maps);
    }
    Packed { configs, parts }
}

/// Problems that keep the manifests from being applied (ConfigMaps over the limit); empty
/// when `emit` can write them.
pub fn problems(plan: &Plan, out: &Output, opts: &KubeOptions) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    pack(plan, out, opts.configmap_max_bytes, &mut diags);
    for ns in objects::namespaces(plan) {
        let cm = objects::sidecar_map(&ns, out);
        if json_size(&cm) > opts.configmap_max_bytes {
            diags.push(too_large(
                format!("the sidecar codebase of namespace {ns} (ConfigMap {SIDECAR})"),
                json_size(&cm),
                opts.configmap_max_bytes,
            ));
        }
    }
    if !plan.gateways.is_empty() {
        let cm = objects::gateway_map(plan, out);
        if json_size(&cm) > opts.configmap_max_bytes {
            diags.push(too_large(
                "the gateway codebase (ConfigMap egressc-gateway)".into(),
                json_size(&cm),
                opts.configmap_max_bytes,
            ));
        }
    }
    diags
}

fn yaml<T: serde::Serialize>(docs: &[T]) -> Vec<u8> {
    let mut s = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            s.push_str("---\n");
        }
        s.push_str(&serde_saphyr::to_string(d).expect("manifests serialise"));
        if !s.ends_with('\n') {
            s.push('\n');
        }
    }
    s.into_bytes()
}

/// Add `kubernetes/` to the output tree (the rest of it must be emitted already).
pub fn emit(plan: &Plan, out: &mut Output, opts: &KubeOptions) {
    let mut ignored = Vec::new();
    let packed = pack(plan, out, opts.configmap_max_bytes, &mut ignored);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for ns in objects::namespaces(plan) {
        let mut docs = vec![serde_json::to_value(objects::sidecar_map(&ns, out)).expect("json")];
        for cm in packed.configs.get(&ns).into_iter().flatten() {
            docs.push(serde_json::to_value(cm).expect("json"));
        }
        if opts.pin_egress {
            docs.push(serde_json::to_value(objects::pin_egress(plan, &ns, opts)).expect("json"));
        }
        files.insert(format!("kubernetes/namespaces/{ns}.yaml"), yaml(&docs));
    }
    if !plan.gateways.is_empty() {
        files.insert(
            "kubernetes/gateway.yaml".into(),
            yaml(&objects::gateway(plan, out, opts)),
        );
    }
    let resources: Vec<String> = files
        .keys()
        .map(|k| k.trim_start_matches("kubernetes/").to_owned())
        .collect();
    files.insert(
        "kubernetes/kustomization.yaml".into(),
        yaml(&[inject::kustomization(&resources)]),
    );
    for (name, doc) in inject::component(opts, packed.parts) {
        files.insert(format!("kubernetes/inject/{name}"), yaml(&[doc]));
    }
    out.files.extend(files);
}
