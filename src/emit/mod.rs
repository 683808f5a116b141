//! Stage 5: plan → the output files, handed one at a time to a sink (`output::Sink`: the
//! writer, the `--check` comparison, a tree in memory, or nothing): the per-identity sidecar
//! config (typed, FSM's field names), the mesh-wide data, the scripts, the iptables rules,
//! `kubernetes/` and the manifest. Maps are sorted; nothing depends on time or input order.

pub mod config;
pub mod decision_log;
pub mod iptables;
pub mod kubernetes;
pub mod manifest;
pub mod mesh;
pub mod output;
pub mod scripts;

use crate::diagnostics::Diagnostic;
use crate::emit::output::{Output, Sink, pretty, pretty_sorted, sha256_hex, versioned};
use crate::plan::{IdentityPlan, Plan};
use std::collections::BTreeMap;

/// The path of an identity's config, relative to OUT.
pub fn identity_path(id: &IdentityPlan) -> String {
    match &id.identity {
        Some(i) => format!("configs/{}/{}.json", i.namespace, i.name),
        None => "sidecar/config.json".to_owned(),
    }
}

/// What [`stream`] did: the problems that keep the output from being deployed (E0601; when
/// there are any the output is incomplete and must not be used), and every file it put, with
/// its SHA-256 (empty for a sink that keeps nothing).
pub struct Emitted {
    pub problems: Vec<Diagnostic>,
    pub files: BTreeMap<String, String>,
}

/// Hands files on to a sink, recording their digests for the manifest.
struct Digests<'s> {
    sink: &'s mut dyn Sink,
    files: BTreeMap<String, String>,
}

impl Sink for Digests<'_> {
    fn put(&mut self, path: String, bytes: Vec<u8>) {
        if self.sink.wants_bytes() {
            self.files.insert(path.clone(), sha256_hex(&bytes));
        }
        self.sink.put(path, bytes);
    }
    fn wants_bytes(&self) -> bool {
        self.sink.wants_bytes()
    }
}

/// Emit the whole output tree into `sink`: one namespace at a time, its identities' configs
/// and its `kubernetes/` manifests, so that the output is never held whole; then the shared
/// files and, last, the manifest. `inputs` are (path, bytes) of every input, for the manifest.
pub fn stream(
    plan: &Plan,
    inputs: &[(String, &[u8])],
    kube: &kubernetes::KubeOptions,
    sink: &mut dyn Sink,
) -> Emitted {
    let mut sink = Digests {
        sink,
        files: BTreeMap::new(),
    };
    let shared = shared_files(plan);
    let mut manifests = kubernetes::Kube::new(plan, &shared, kube);
    let mut namespaces: BTreeMap<&str, Vec<&IdentityPlan>> = BTreeMap::new();
    for id in &plan.identities {
        if let Some(i) = &id.identity {
            namespaces.entry(i.namespace.as_str()).or_default().push(id);
        }
    }
    for (ns, ids) in namespaces {
        let configs: Vec<(String, Vec<u8>)> = ids
            .iter()
            .map(|id| {
                (
                    identity_path(id),
                    versioned(&config::identity_config(plan, id)),
                )
            })
            .collect();
        let named: Vec<(String, &[u8])> = ids
            .iter()
            .zip(&configs)
            .filter_map(|(id, (_, b))| {
                Some((format!("{}.json", id.identity.as_ref()?.name), &b[..]))
            })
            .collect();
        manifests.namespace(ns, &named, &mut sink);
        drop(named);
        for (path, bytes) in configs {
            sink.put(path, bytes);
        }
    }
    let problems = manifests.finish(&shared, &mut sink);
    for (path, bytes) in shared.files {
        sink.put(path, bytes);
    }
    if sink.wants_bytes() {
        let m = manifest::manifest(&sink.files, inputs);
        sink.put(manifest::MANIFEST.into(), pretty(&m));
    }
    Emitted {
        problems,
        files: sink.files,
    }
}

/// The whole output tree in memory (tests and tools; `build` streams it to disk).
pub fn in_memory(
    plan: &Plan,
    inputs: &[(String, &[u8])],
    kube: &kubernetes::KubeOptions,
) -> Output {
    let mut out = Output::default();
    stream(plan, inputs, kube, &mut out);
    out
}

/// The output files outside `configs/` and `kubernetes/`: the codebases (with `_default`'s
/// config), the mesh data and the iptables rules.
fn shared_files(plan: &Plan) -> Output {
    let mut out = Output::default();
    for id in plan.identities.iter().filter(|id| id.identity.is_none()) {
        let config = config::identity_config(plan, id);
        out.files.insert(identity_path(id), versioned(&config));
    }
    out.files.insert(
        "sidecar/mesh.json".into(),
        versioned(&mesh::mesh_data(plan)),
    );
    out.files.extend(scripts::sidecar_files());
    if !plan.gateways.is_empty() {
        out.files.extend(scripts::gateway_files());
        out.files.insert(
            "gateway/config.json".into(),
            pretty_sorted(&mesh::gateway_config(plan)),
        );
    }
    out.files.insert(
        "iptables/outbound.rules".into(),
        iptables::outbound_rules(&plan.settings, &plan.dns).into_bytes(),
    );
    out.files.insert(
        "iptables/outbound6.rules".into(),
        iptables::outbound6_rules(&plan.dns).into_bytes(),
    );
    out.files.insert(
        "iptables/init.sh".into(),
        scripts::render("iptables/init.sh"),
    );
    out
}
