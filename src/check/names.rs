//! Names and singletons: the naming rules Kubernetes applies (E0310), resources defined twice
//! (E0311), one MeshConfig (E0312), one set of global gateways (E0313).

use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::{Kind, ObjectMeta};
use crate::load::loaded::{Loaded, Res};
use crate::model::{is_dns1123_label, is_dns1123_subdomain};
use crate::path;
use crate::span::Span;
use std::collections::HashMap;

/// The naming rules Kubernetes applies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Most object names: DNS-1123 subdomain.
    Subdomain,
    /// Namespaces: DNS-1123 label.
    Label,
    /// Service names: DNS-1035 label (a label that starts with a letter).
    ServiceName,
}

impl NameRule {
    fn allows(self, s: &str) -> bool {
        match self {
            NameRule::Subdomain => is_dns1123_subdomain(s),
            NameRule::Label => is_dns1123_label(s),
            NameRule::ServiceName => {
                is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NameRule::Subdomain => {
                "a DNS-1123 subdomain (lower-case letters, digits, `-` and `.`, at most 253 characters)"
            }
            NameRule::Label => {
                "a DNS-1123 label (lower-case letters, digits and `-`, at most 63 characters)"
            }
            NameRule::ServiceName => {
                "a DNS-1035 label (lower-case letters, digits and `-`, starting with a letter, at most 63 characters)"
            }
        }
    }

    fn suggest(self, s: &str) -> String {
        let mut out: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric()
                    || c == '-'
                    || (c == '.' && self == NameRule::Subdomain)
                {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        out = out.trim_matches(|c| c == '-' || c == '.').to_owned();
        if out.is_empty() {
            out = "name".into();
        }
        if self == NameRule::ServiceName && !out.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert_str(0, "svc-");
        }
        out
    }
}

/// E0310 when `value` breaks `rule`.
pub fn check_name(what: &str, value: &str, rule: NameRule, span: Span) -> Option<Diagnostic> {
    if rule.allows(value) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::E0310,
            format!("{what} `{value}` is not {}", rule.describe()),
        )
        .at(span)
        .help(format!(
            "Kubernetes rejects this {what}; try `{}`",
            rule.suggest(value)
        )),
    )
}

/// E0310 for a reference to a namespaced object: its name (by `rule`) and its namespace.
pub fn check_reference(
    what: &str,
    (name, rule, name_span): (&str, NameRule, Span),
    (namespace, ns_span): (&str, Span),
    diags: &mut Vec<Diagnostic>,
) {
    diags.extend(check_name(what, name, rule, name_span));
    if what == "service account name" {
        diags.extend(check_file_name(name, name_span));
    }
    diags.extend(check_name("namespace", namespace, NameRule::Label, ns_span));
}

/// E0322: an identity's config is written as `configs/<ns>/<sa>.json`, and in the
/// ConfigMaps under the key `<sa>.json` or, split, `<sa>.json.part-N`: a ConfigMap key holds
/// at most 253 characters (room is kept for a four-digit part number).
pub fn check_file_name(service_account: &str, span: Span) -> Option<Diagnostic> {
    const MAX_KEY: usize = 253;
    let longest = format!("{service_account}.json.part-9999");
    (longest.len() > MAX_KEY).then(|| {
        Diagnostic::new(
            Code::E0322,
            format!(
                "ServiceAccount name of {} characters: its ConfigMap key `<name>.json.part-N` would be longer than {MAX_KEY} characters",
                service_account.len()
            ),
        )
        .at(span)
        .help("shorten the ServiceAccount name to at most 238 characters")
    })
}

fn check_meta<T>(inputs: &Loaded, r: &Res<T>, diags: &mut Vec<Diagnostic>) {
    let doc = inputs.doc(r);
    let rule = if doc.kind == Kind::Service {
        NameRule::ServiceName
    } else {
        NameRule::Subdomain
    };
    diags.extend(check_name(
        "name",
        &r.meta.name,
        rule,
        doc.span(path!["metadata", "name"]),
    ));
    if doc.kind == Kind::ServiceAccount {
        diags.extend(check_file_name(
            &r.meta.name,
            doc.span(path!["metadata", "name"]),
        ));
    }
    if let Some(ns) = &r.meta.namespace {
        diags.extend(check_name(
            "namespace",
            ns,
            NameRule::Label,
            doc.span(path!["metadata", "namespace"]),
        ));
    }
}

pub fn check_names<'a>(inputs: &'a Loaded, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(Kind, &'a str, &'a str), usize> = HashMap::new();
    let mut visit = |doc_idx: usize, meta: &'a ObjectMeta, diags: &mut Vec<Diagnostic>| {
        let doc = &inputs.docs[doc_idx];
        let key = (doc.kind, meta.ns(), meta.name.as_str());
        match seen.get(&key) {
            Some(first) => diags.push(
                Diagnostic::new(
                    Code::E0311,
                    format!(
                        "{} `{}/{}` is defined twice",
                        doc.kind.name(),
                        meta.ns(),
                        meta.name
                    ),
                )
                .at(doc.span(path!["metadata", "name"]))
                .related(
                    inputs.docs[*first].span(path!["metadata", "name"]),
                    "first defined here",
                )
                .help("remove one of the two, or rename it"),
            ),
            None => {
                seen.insert(key, doc_idx);
            }
        }
    };
    macro_rules! all {
        ($($field:ident),*) => {$(
            for r in &inputs.$field {
                check_meta(inputs, r, diags);
                visit(r.doc, &r.meta, diags);
            }
        )*};
    }
    all!(
        mesh_configs,
        egresses,
        gateways,
        upstream_settings,
        route_groups,
        services,
        service_accounts
    );
}

pub fn check_singletons(inputs: &Loaded, diags: &mut Vec<Diagnostic>) {
    if let Some((first, rest)) = inputs.mesh_configs.split_first() {
        for r in rest {
            diags.push(
                Diagnostic::new(
                    Code::E0312,
                    format!(
                        "a second MeshConfig `{}/{}`: the mesh has exactly one",
                        r.ns(),
                        r.name()
                    ),
                )
                .at(inputs.doc(r).span(path!["metadata", "name"]))
                .related(
                    inputs.doc(first).span(path!["metadata", "name"]),
                    "the first MeshConfig",
                )
                .help("keep one MeshConfig (FSM reads `fsm-mesh-config` in its own namespace)"),
            );
        }
    }
    let globals: Vec<_> = inputs
        .gateways
        .iter()
        .filter(|g| !g.spec.global().is_empty())
        .collect();
    if let Some((first, rest)) = globals.split_first() {
        for r in rest {
            diags.push(
                Diagnostic::new(
                    Code::E0313,
                    format!(
                        "EgressGateway `{}/{}` redefines the global egress gateways",
                        r.ns(),
                        r.name()
                    ),
                )
                .at(inputs.doc(r).key_span(path!["spec", "global"]))
                .related(
                    inputs.doc(first).key_span(path!["spec", "global"]),
                    "global gateways are already defined here",
                )
                .help("list every global gateway in one EgressGateway; FSM's webhook rejects a second one"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::places;

    #[test]
    fn names_kubernetes_rejects() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: Bad_Name, namespace: ok}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: api.v2\n  namespace: -ns\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n";
        assert_eq!(places(yaml), ["E0310 3:18", "E0310 8:9", "E0310 9:14"]);
    }

    #[test]
    fn defined_twice_and_second_mesh_config() {
        let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ns}\n";
        let mc = "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec: {traffic: {enableEgress: false}}\n";
        let yaml = format!("{sa}---\n{sa}---\n{mc}---\n{mc}");
        assert_eq!(places(&yaml), ["E0311 7:18", "E0311 16:18", "E0312 16:18"]);
    }
}
