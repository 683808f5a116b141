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

use objects::{CONFIGS, SIDECAR};

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

/// The smallest part of a file worth a ConfigMap of its own: a limit that leaves less room
/// than this is `E0601`.
const MIN_PART: usize = 1024;

/// `files` packed into ConfigMaps `base`, `base-2`, … of at most `max` bytes (JSON) each. A
/// JSON file too large for one ConfigMap is split into `NAME.part-1`, `NAME.part-2`, … at character
/// boundaries (the sidecar and the gateway read them back in order, `decide.readParts`).
/// `Err(what, size)` when even a small part cannot fit.
fn pack_volume(
    base: &str,
    namespace: &str,
    component: &str,
    files: Vec<(String, String)>,
    max: usize,
) -> Result<Vec<ConfigMap>, (String, usize)> {
    let map = |n: usize, data: BTreeMap<String, String>| {
        objects::config_map(base, n, namespace, component, data)
    };
    let mut entries: Vec<(String, String)> = Vec::new();
    for (name, text) in files {
        let alone = json_size(&map(1, BTreeMap::from([(name.clone(), text.clone())])));
        if alone <= max {
            entries.push((name, text));
            continue;
        }
        // Pipy loads scripts whole: only data files are split.
        if !name.ends_with(".json") {
            return Err((format!("`{name}`"), alone));
        }
        // Room for text in one ConfigMap, discounting JSON escapes as this file needs them.
        let overhead = json_size(&map(
            1,
            BTreeMap::from([(format!("{name}.part-1"), String::new())]),
        ));
        let escaped = serde_json::to_string(&text).map_or(text.len(), |t| t.len());
        let room = max.saturating_sub(overhead) * text.len() / escaped.max(1);
        if room < MIN_PART {
            return Err((format!("`{name}`"), alone));
        }
        let mut rest = text.as_str();
        let mut n = 0;
        while !rest.is_empty() {
            n += 1;
            let key = format!("{name}.part-{n}");
            let mut cut = room.min(rest.len());
            loop {
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                let one = map(1, BTreeMap::from([(key.clone(), rest[..cut].to_owned())]));
                // Escapes are not spread evenly: shrink a part that came out too large.
                if json_size(&one) <= max || cut <= MIN_PART {
                    break;
                }
                cut = cut * 9 / 10;
            }
            entries.push((key, rest[..cut].to_owned()));
            rest = &rest[cut..];
        }
    }
    // Sizes add up entry by entry (each entry's JSON measured once): `{…,"key":"value"}`.
    let empty = json_size(&map(1, BTreeMap::new()));
    let entry = |k: &str, v: &str| {
        serde_json::to_string(k).map_or(k.len(), |t| t.len())
            + serde_json::to_string(v).map_or(v.len(), |t| t.len())
            + 2
    };
    let mut maps = vec![map(1, BTreeMap::new())];
    let mut size = empty;
    for (key, text) in entries {
        let e = entry(&key, &text);
        if size + e > max && size > empty {
            maps.push(map(maps.len() + 1, BTreeMap::new()));
            size = empty;
        }
        if size + e > max {
            return Err((format!("`{key}`"), size + e));
        }
        size += e;
        let last = maps.last_mut().expect("one map at least");
        last.data
            .get_or_insert_with(BTreeMap::new)
            .insert(key, text);
    }
    Ok(maps)
}

/// Pack every volume of `kubernetes/`, one at a time, and hand its ConfigMaps to `f` with the
/// namespace and the volume's base name: per namespace the sidecar's and the configs', then the
/// gateway's. One volume's ConfigMaps are alive at a time (they hold a copy of every config).
fn each_volume(
    plan: &Plan,
    out: &Output,
    max: usize,
    diags: &mut Vec<Diagnostic>,
    mut f: impl FnMut(&str, &str, Vec<ConfigMap>),
) {
    let mut configs: BTreeMap<&str, Vec<(String, &[u8])>> = BTreeMap::new();
    for id in &plan.identities {
        let Some(i) = &id.identity else { continue };
        let bytes = &out.files[&crate::emit::identity_path(id)][..];
        configs
            .entry(i.namespace.as_str())
            .or_default()
            .push((format!("{}.json", i.name), bytes));
    }
    let mut packed = |what: String, r: Result<Vec<ConfigMap>, (String, usize)>| match r {
        Ok(maps) => maps,
        Err((file, size)) => {
            diags.push(too_large(format!("{file} of {what}"), size, max));
            Vec::new()
        }
    };
    let sidecar = objects::sidecar_files(out);
    for ns in objects::namespaces(plan) {
        let code = packed(
            format!("the sidecar codebase of namespace {ns}"),
            pack_volume(SIDECAR, &ns, "sidecar", sidecar.clone(), max),
        );
        f(&ns, SIDECAR, code);
        let files = configs
            .remove(ns.as_str())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, b)| (k, String::from_utf8_lossy(b).into_owned()))
            .collect();
        let cfg = packed(
            format!("the identity configs of namespace {ns}"),
            pack_volume(CONFIGS, &ns, "configs", files, max),
        );
        f(&ns, CONFIGS, cfg);
    }
    if !plan.gateways.is_empty() {
        let ns = objects::gateway_namespace(plan);
        let maps = packed(
            "the gateway codebase".into(),
            pack_volume(
                objects::GATEWAY_MAP,
                ns,
                "gateway",
                objects::gateway_files(out),
                max,
            ),
        );
        f(ns, objects::GATEWAY_MAP, maps);
    }
}

/// Problems that keep the manifests from being applied (a ConfigMap limit too small for even
/// a part of a file); empty when `emit` can write them.
pub fn problems(plan: &Plan, out: &Output, opts: &KubeOptions) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    each_volume(
        plan,
        out,
        opts.configmap_max_bytes,
        &mut diags,
        |_, _, _| {},
    );
    diags
}

/// Append one YAML document to `text` (documents separated by `---`).
fn push_yaml<T: serde::Serialize>(text: &mut String, doc: &T) {
    if !text.is_empty() {
        text.push_str("---\n");
    }
    text.push_str(&serde_saphyr::to_string(doc).expect("manifests serialise"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
}

/// Add `kubernetes/` to the output tree (the rest of it must be emitted already). Each
/// volume's ConfigMaps are written to YAML as they are packed, and dropped.
pub fn emit(plan: &Plan, out: &mut Output, opts: &KubeOptions) {
    let mut ignored = Vec::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let (mut sidecar_parts, mut config_parts, mut gateway_maps) = (1, 1, 0);
    each_volume(
        plan,
        out,
        opts.configmap_max_bytes,
        &mut ignored,
        |ns, base, maps| {
            if base == SIDECAR {
                sidecar_parts = sidecar_parts.max(maps.len());
            } else if base == CONFIGS {
                config_parts = config_parts.max(maps.len());
            } else {
                gateway_maps = maps.len();
            }
            let file = if base == objects::GATEWAY_MAP {
                "kubernetes/gateway.yaml".to_owned()
            } else {
                format!("kubernetes/namespaces/{ns}.yaml")
            };
            let text = texts.entry(file).or_default();
            for m in &maps {
                push_yaml(text, m);
            }
        },
    );
    if opts.pin_egress {
        for ns in objects::namespaces(plan) {
            let text = texts
                .entry(format!("kubernetes/namespaces/{ns}.yaml"))
                .or_default();
            push_yaml(text, &objects::pin_egress(plan, &ns));
        }
    }
    if !plan.gateways.is_empty() {
        let text = texts.entry("kubernetes/gateway.yaml".into()).or_default();
        for doc in objects::gateway(plan, gateway_maps, opts) {
            push_yaml(text, &doc);
        }
    }
    let resources: Vec<String> = texts
        .keys()
        .map(|k| k.trim_start_matches("kubernetes/").to_owned())
        .collect();
    let mut kustomization = String::new();
    push_yaml(&mut kustomization, &inject::kustomization(&resources));
    texts.insert("kubernetes/kustomization.yaml".into(), kustomization);
    for (name, doc) in inject::component(opts, sidecar_parts, config_parts) {
        let mut text = String::new();
        push_yaml(&mut text, &doc);
        texts.insert(format!("kubernetes/inject/{name}"), text);
    }
    out.files
        .extend(texts.into_iter().map(|(k, v)| (k, v.into_bytes())));
}
