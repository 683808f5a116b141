//! Audit mode and decision logs (README, "Audit mode"): `egressc.io/enforcement` and
//! `egressc.io/log-allowed` on the MeshConfig's metadata (the mesh's default) and on
//! ServiceAccounts (each overrides the mesh for its identity). E0325 for a value egressc does
//! not know; W0415 (E0326 with `--strict`) for each audited identity and a mesh-wide audit.

use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::ObjectMeta;
use crate::load::loaded::{Document, Loaded};
use crate::model::{
    CheckOptions, ENFORCEMENT_ANNOTATION, Identity, LOG_ALLOWED_ANNOTATION, Observe,
};
use crate::path;
use std::collections::BTreeMap;

/// The mesh's default and each annotated ServiceAccount's.
pub fn check_observe(
    inputs: &Loaded,
    options: &CheckOptions,
    diags: &mut Vec<Diagnostic>,
) -> (Observe, BTreeMap<Identity, Observe>) {
    let mut mesh = Observe::default();
    if let Some(m) = inputs.mesh_configs.first() {
        let doc = inputs.doc(m);
        read(&m.meta, doc, &mut mesh, diags);
        if mesh.audit {
            diags.push(audited(options, "the whole mesh (the MeshConfig's annotation): every identity without `egressc.io/enforcement: enforce`".into(), doc));
        }
    }
    let mut accounts = BTreeMap::new();
    for sa in &inputs.service_accounts {
        let doc = inputs.doc(sa);
        let mut own = mesh;
        read(&sa.meta, doc, &mut own, diags);
        let identity = Identity {
            namespace: sa.ns().to_owned(),
            name: sa.name().to_owned(),
        };
        if own.audit && sa.meta.annotation(ENFORCEMENT_ANNOTATION).is_some() {
            diags.push(audited(options, format!("identity {identity}"), doc));
        }
        accounts.insert(identity, own);
    }
    (mesh, accounts)
}

/// The annotations of `meta` over `into`; E0325 for a value egressc does not know.
fn read(meta: &ObjectMeta, doc: &Document, into: &mut Observe, diags: &mut Vec<Diagnostic>) {
    let mut bad = |key: &str, value: &str, allowed: &str| {
        diags.push(
            Diagnostic::new(
                Code::E0325,
                format!(
                    "`{key}: {}` is not a value egressc knows",
                    value.escape_debug()
                ),
            )
            .at(doc.span(path!["metadata", "annotations", key]))
            .help(format!("write {allowed}")),
        );
    };
    match meta.annotation(ENFORCEMENT_ANNOTATION) {
        None => {}
        Some("enforce") => into.audit = false,
        Some("audit") => into.audit = true,
        Some(v) => bad(
            ENFORCEMENT_ANNOTATION,
            v,
            "`enforce` (the default) or `audit`",
        ),
    }
    match meta.annotation(LOG_ALLOWED_ANNOTATION) {
        None => {}
        Some("true") => into.log_allowed = true,
        Some("false") => into.log_allowed = false,
        Some(v) => bad(
            LOG_ALLOWED_ANNOTATION,
            v,
            "`\"true\"` or `\"false\"` (quoted: annotations are strings)",
        ),
    }
}

/// W0415, or E0326 under `--strict`: `who` is in audit mode.
fn audited(options: &CheckOptions, who: String, doc: &Document) -> Diagnostic {
    let code = if options.strict {
        Code::E0326
    } else {
        Code::W0415
    };
    Diagnostic::new(
        code,
        format!("{who} is in audit mode: what no rule allows is let through and logged as `audit`, not denied"),
    )
    .at(doc.span(path!["metadata", "annotations", ENFORCEMENT_ANNOTATION]))
    .help("audit mode is for observing before enforcing: collect the `audit` lines (`egressc suggest`), then set `egressc.io/enforcement: enforce`")
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{places, plan};

    const MESH: &str = "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata:\n  name: m\n  namespace: fsm\n  annotations: {egressc.io/enforcement: audit}\nspec: {traffic: {enableEgress: false}}\n";
    const SA: &str = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  namespace: ns\n  annotations: {egressc.io/enforcement: enforce, egressc.io/log-allowed: 'true'}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b, namespace: ns}\n";

    #[test]
    fn the_mesh_sets_the_default_and_a_service_account_overrides_it() {
        let yaml = format!("{MESH}{SA}");
        assert_eq!(places(&yaml), ["W0415 6:41"]);
        let p = plan(&yaml);
        let of = |n: &str| p.identities.iter().find(|i| i.name == n).unwrap().observe;
        assert!(!of("ns/a").audit && of("ns/a").log_allowed);
        assert!(of("ns/b").audit && !of("ns/b").log_allowed);
        assert!(of("_default").audit);
    }

    #[test]
    fn unknown_values_are_errors() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  namespace: ns\n  annotations: {egressc.io/enforcement: dry-run, egressc.io/log-allowed: 'yes'}\n";
        assert_eq!(places(yaml), ["E0325 6:41", "E0325 6:74"]);
    }
}
