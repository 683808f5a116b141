//! `OUT/kubernetes/`: a kustomize base that deploys the output as it is (README, "Deploy"): per
//! identity namespace the sidecar codebase and the identities' configs as ConfigMaps, the
//! egress gateway (ConfigMap, Deployment, Service when the inputs have none, NetworkPolicy),
//! optionally a NetworkPolicy that pins meshed pods' egress, and the injection Component
//! (`inject/`). Objects are typed (`k8s-openapi`), serialised in a fixed order; no name has a
//! hash suffix (a changed ConfigMap is updated in place, which the sidecar reloads), and no
//! volume uses `subPath` (which never updates).

mod dashboard;
mod gateway;
mod inject;
mod objects;

use crate::diagnostics::{Code, Diagnostic};
use crate::emit::output::{Output, Sink};
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
    /// The sidecar container's memory limit, in MiB; `None`: derived from the largest config
    /// ([`sidecar_memory_limit_mib`]).
    pub sidecar_memory_limit_mib: Option<u32>,
    /// How the sidecar joins the pod.
    pub sidecar_mode: SidecarMode,
    /// The gateway Deployment's replicas.
    pub gateway_replicas: u16,
    /// Write a Grafana dashboard ConfigMap into this namespace.
    pub grafana_dashboard: Option<String>,
}

/// How the injection adds the sidecar to a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SidecarMode {
    /// An init container with `restartPolicy: Always` (Kubernetes ≥ 1.29): it starts before
    /// the app's init containers and containers, which wait for its startup probe, and it
    /// does not keep a Job's pod from completing.
    #[default]
    Native,
    /// A plain container, for clusters before 1.29.
    Classic,
}

/// The sidecar's memory limit for configs of at most `config_bytes` (an identity's config and
/// the mesh data, the largest of the mesh): 64 MiB for Pipy, its buffers and traffic, and 12
/// bytes per config byte (Pipy holds a 6.4 MiB config of 10,000 hosts in about 70 MiB, and a
/// reload briefly holds two). 10,000 hosts: 142 MiB.
pub fn sidecar_memory_limit_mib(config_bytes: usize) -> u32 {
    let per_config = (config_bytes as u64 * 12).div_ceil(1 << 20);
    u32::try_from(64 + per_config).unwrap_or(u32::MAX)
}

pub const DEFAULT_PIPY_IMAGE: &str = "flomesh/pipy:1.5.14";
pub const DEFAULT_INIT_IMAGE: &str = "flomesh/fsm-sidecar-init:1.6.0";
pub const DEFAULT_INJECT_LABEL: &str = "egressc.io/inject=true";
pub const DEFAULT_CONFIGMAP_MAX_KIB: u64 = 256;
pub const DEFAULT_GATEWAY_REPLICAS: u16 = 2;
pub const DEFAULT_GRAFANA_NAMESPACE: &str = "monitoring";

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
            sidecar_memory_limit_mib: None,
            sidecar_mode: SidecarMode::Native,
            gateway_replicas: DEFAULT_GATEWAY_REPLICAS,
            grafana_dashboard: None,
        }
    }
}

/// The size of a ConfigMap as `kubectl apply` stores it (compact JSON).
fn json_size(cm: &ConfigMap) -> usize {
    let Ok(v) = serde_json::to_vec(cm) else {
        return usize::MAX;
    };
    // What the API server stores for a client-side apply: the object as Go's encoding/json
    // writes it (`<`, `>`, `&`, U+2028 and U+2029 as six-byte escapes) in the annotation
    // whose key counts against the same limit.
    let text = String::from_utf8_lossy(&v);
    let go_extra: usize = text
        .chars()
        .map(|c| match c {
            '<' | '>' | '&' => 5,
            '\u{2028}' | '\u{2029}' => 3,
            _ => 0,
        })
        .sum();
    v.len() + go_extra + LAST_APPLIED.len()
}

/// The annotation client-side `kubectl apply` copies the object into.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The length of `s` as a JSON string, quotes included, as Go's encoding/json writes it (what
/// the API server keeps): two bytes for `"`, `\\` and the short control escapes, six for
/// other control bytes and for `<`, `>`, `&`, U+2028 and U+2029.
fn json_str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
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
    // Sizes add up entry by entry: `{…,"data":{"key":"value","key":"value"}}`.
    let empty = json_size(&map(1, BTreeMap::new()));
    let entry = |k: &str, v: &str| json_str_len(k) + json_str_len(v) + 2;
    let mut entries: Vec<(String, String)> = Vec::new();
    for (name, text) in files {
        // A map of this file alone (no comma after its only entry).
        let alone = empty + entry(&name, &text) - 1;
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
        let escaped = json_str_len(&text);
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

/// `kubernetes/`, written one namespace at a time as the configs are emitted ([`Kube::namespace`]),
/// then the gateway, the kustomization and the injection Component ([`Kube::finish`]). Only one
/// volume's ConfigMaps are alive at a time (they hold a copy of every config).
pub struct Kube<'a> {
    plan: &'a Plan,
    opts: &'a KubeOptions,
    /// The sidecar codebase's files (the same volume in every namespace).
    sidecar: Vec<(String, String)>,
    /// The most ConfigMaps a namespace's sidecar and configs volumes took.
    sidecar_parts: usize,
    config_parts: usize,
    /// The largest identity config and the mesh data, in bytes (the sidecar's memory limit).
    config_bytes: usize,
    /// The files of `kubernetes/` written so far (the kustomization's resources).
    resources: std::collections::BTreeSet<String>,
    problems: Vec<Diagnostic>,
}

impl<'a> Kube<'a> {
    /// `shared`: the output files outside `configs/` (the codebases and the iptables rules).
    pub fn new(plan: &'a Plan, shared: &Output, opts: &'a KubeOptions) -> Kube<'a> {
        Kube {
            plan,
            opts,
            sidecar: objects::sidecar_files(shared),
            sidecar_parts: 1,
            config_parts: 1,
            config_bytes: ["sidecar/config.json", "sidecar/mesh.json"]
                .iter()
                .filter_map(|f| shared.files.get(*f).map(Vec::len))
                .sum(),
            resources: Default::default(),
            problems: Vec::new(),
        }
    }

    /// The size of a file of the sidecar codebase.
    fn sidecar_file_bytes(&self, name: &str) -> usize {
        self.sidecar
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, text)| text.len())
    }

    /// Pack one volume, or say why it cannot be.
    fn pack(
        &mut self,
        what: String,
        base: &str,
        ns: &str,
        component: &str,
        files: Vec<(String, String)>,
    ) -> Vec<ConfigMap> {
        let max = self.opts.configmap_max_bytes;
        match pack_volume(base, ns, component, files, max) {
            Ok(maps) => maps,
            Err((file, size)) => {
                self.problems
                    .push(too_large(format!("{file} of {what}"), size, max));
                Vec::new()
            }
        }
    }

    /// `kubernetes/namespaces/NS.yaml`: the sidecar codebase and `configs` (file name in
    /// the volume, JSON) of the identities of namespace `ns`.
    pub fn namespace(&mut self, ns: &str, configs: &[(String, &[u8])], sink: &mut dyn Sink) {
        let code = self.pack(
            format!("the sidecar codebase of namespace {ns}"),
            SIDECAR,
            ns,
            "sidecar",
            self.sidecar.clone(),
        );
        let files = configs
            .iter()
            .map(|(k, b)| (k.clone(), String::from_utf8_lossy(b).into_owned()))
            .collect();
        let mesh = self.sidecar_file_bytes("mesh.json");
        for (_, bytes) in configs {
            self.config_bytes = self.config_bytes.max(bytes.len() + mesh);
        }
        let cfg = self.pack(
            format!("the identity configs of namespace {ns}"),
            CONFIGS,
            ns,
            "configs",
            files,
        );
        self.sidecar_parts = self.sidecar_parts.max(code.len());
        self.config_parts = self.config_parts.max(cfg.len());
        let file = format!("kubernetes/namespaces/{ns}.yaml");
        self.resources.insert(file.clone());
        if !sink.wants_bytes() {
            return;
        }
        let mut text = String::new();
        for m in code.iter().chain(&cfg) {
            push_yaml(&mut text, m);
        }
        if self.opts.pin_egress {
            push_yaml(&mut text, &objects::pin_egress(self.plan, ns));
        }
        sink.put(file, text.into_bytes());
    }

    /// The gateway, the kustomization and the injection Component, once every namespace is
    /// written; the problems that keep the manifests from being applied (a ConfigMap limit
    /// too small for even a part of a file): when there are any, the output is incomplete.
    pub fn finish(mut self, shared: &Output, sink: &mut dyn Sink) -> Vec<Diagnostic> {
        let plan = self.plan;
        if !plan.gateways.is_empty() {
            let ns = objects::gateway_namespace(plan);
            let maps = self.pack(
                "the gateway codebase".into(),
                objects::GATEWAY_MAP,
                ns,
                "gateway",
                objects::gateway_files(shared),
            );
            let file = "kubernetes/gateway.yaml".to_owned();
            self.resources.insert(file.clone());
            if sink.wants_bytes() {
                let mut text = String::new();
                for m in &maps {
                    push_yaml(&mut text, m);
                }
                let config = shared.files.get("gateway/config.json").map_or(0, Vec::len);
                let sizing = gateway::GatewaySizing {
                    parts: maps.len(),
                    memory_limit_mib: gateway::gateway_memory_limit_mib(config),
                };
                for doc in gateway::gateway(plan, &sizing, self.opts) {
                    push_yaml(&mut text, &doc);
                }
                sink.put(file, text.into_bytes());
            }
        }
        if let Some(ns) = &self.opts.grafana_dashboard {
            let file = "kubernetes/grafana-dashboard.yaml".to_owned();
            self.resources.insert(file.clone());
            if sink.wants_bytes() {
                let mut text = String::new();
                push_yaml(&mut text, &dashboard::config_map(ns));
                sink.put(file, text.into_bytes());
            }
        }
        if !sink.wants_bytes() {
            return self.problems;
        }
        let resources: Vec<String> = self
            .resources
            .iter()
            .map(|k| k.trim_start_matches("kubernetes/").to_owned())
            .collect();
        let mut kustomization = String::new();
        push_yaml(&mut kustomization, &inject::kustomization(&resources));
        sink.put(
            "kubernetes/kustomization.yaml".into(),
            kustomization.into_bytes(),
        );
        let sizing = inject::Sizing {
            tls: self.plan.auth.mode == crate::model::AuthMode::Mtls
                && !self.plan.gateways.is_empty(),
            sidecar_parts: self.sidecar_parts,
            config_parts: self.config_parts,
            memory_limit_mib: self
                .opts
                .sidecar_memory_limit_mib
                .unwrap_or_else(|| sidecar_memory_limit_mib(self.config_bytes)),
        };
        for (name, doc) in inject::component(self.opts, &sizing) {
            let mut text = String::new();
            push_yaml(&mut text, &doc);
            sink.put(format!("kubernetes/inject/{name}"), text.into_bytes());
        }
        self.problems
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn sizes_add_up_as_the_json_of_the_map() {
        let map = |data| super::objects::config_map("b", 1, "ns", "configs", data);
        let empty = super::json_size(&map(BTreeMap::new()));
        let (k, v) = ("a.json".to_owned(), "{\"x\": \"\\n\"}\n".to_owned());
        let one = super::json_size(&map(BTreeMap::from([(k.clone(), v.clone())])));
        let entry = super::json_str_len(&k) + super::json_str_len(&v) + 2;
        assert_eq!(one, empty + entry - 1);
    }

    #[test]
    fn json_str_len_is_gos() {
        for s in [
            "",
            "plain",
            "quo\"te",
            "back\\slash",
            "\n\r\t\u{8}\u{c}",
            "\u{0}\u{1f}\u{7f}",
            "é✓😀/",
        ] {
            assert_eq!(
                super::json_str_len(s),
                serde_json::to_string(s).unwrap().len(),
                "{s:?}"
            );
        }
        // Go escapes these as \u003c, \u003e, \u0026, \u2028, \u2029.
        assert_eq!(super::json_str_len("<a&b>"), 2 + 6 + 1 + 6 + 1 + 6);
        assert_eq!(super::json_str_len("\u{2028}"), 2 + 6);
    }
}
