//! Stage 5: plan → the output tree in memory: the per-identity sidecar config (typed, FSM's
//! field names), the mesh-wide data, the scripts, the iptables rules and the manifest. Maps
//! are sorted; nothing depends on time or input order.

pub mod config;
pub mod iptables;
pub mod kubernetes;
pub mod manifest;
pub mod mesh;
pub mod output;
pub mod scripts;

use crate::emit::output::{Output, pretty, versioned};
use crate::plan::{IdentityPlan, Plan};

/// The path of an identity's config, relative to OUT.
pub fn identity_path(id: &IdentityPlan) -> String {
    match &id.identity {
        Some(i) => format!("configs/{}/{}.json", i.namespace, i.name),
        None => "sidecar/config.json".to_owned(),
    }
}

/// The whole output tree. `inputs` are (path, bytes) of every input, for the manifest.
pub fn emit(plan: &Plan, inputs: &[(String, &[u8])], kube: &kubernetes::KubeOptions) -> Output {
    finish(plan, proxies(plan), inputs, kube)
}

/// What the proxies run: the configs, the codebases and the iptables rules (the tree without
/// `kubernetes/` and the manifest).
pub fn proxies(plan: &Plan) -> Output {
    let mut out = Output::default();
    for id in &plan.identities {
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
            pretty(&mesh::gateway_config(plan)),
        );
    }
    out.files.insert(
        "iptables/outbound.rules".into(),
        iptables::outbound_rules(&plan.settings, &plan.dns).into_bytes(),
    );
    out.files.insert(
        "iptables/outbound6.rules".into(),
        iptables::outbound6_rules().into_bytes(),
    );
    out
}

/// Complete the proxies' tree with `kubernetes/` and the manifest.
pub fn finish(
    plan: &Plan,
    mut out: Output,
    inputs: &[(String, &[u8])],
    kube: &kubernetes::KubeOptions,
) -> Output {
    kubernetes::emit(plan, &mut out, kube);
    let manifest = manifest::manifest(&out, inputs);
    out.files
        .insert(manifest::MANIFEST.into(), pretty(&manifest));
    out
}
