//! The `matches` of an Egress policy: the HTTPRouteGroups whose routes it is limited to, and
//! its one UpstreamTrafficSetting.

use crate::check::common::not_acted_on;
use crate::check::routes::Key;
use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::{EgressSpec, TypedLocalObjectReference};
use crate::load::loaded::{Document, Res};
use crate::model::{ConnectionSettings, Route};
use crate::path;
use std::collections::HashMap;
use std::sync::Arc;

const HTTPROUTEGROUP_GROUP: &str = "specs.smi-spec.io/v1alpha4";
const UTS_GROUP: &str = "policy.flomesh.io/v1alpha1";

/// The resources that `matches` may name, by (namespace, name).
pub struct Targets<'a> {
    pub route_groups: HashMap<Key<'a>, Arc<Vec<Route>>>,
    pub upstream_settings: HashMap<Key<'a>, Option<ConnectionSettings>>,
}

/// What `matches` resolved to.
pub struct Matches<'a, 't> {
    /// (kind, name) of every supported match.
    pub names: Vec<(&'a str, &'a str)>,
    /// The route lists of the HTTPRouteGroups it matches (`None`: it matches none).
    pub route_groups: Option<Vec<&'t Arc<Vec<Route>>>>,
    /// Each UpstreamTrafficSetting match: its index in `matches`, and its settings when the
    /// resource is in the inputs.
    pub upstream_settings: Vec<(usize, Option<&'t Option<ConnectionSettings>>)>,
}

/// `matches`: supported kinds (E0307) that are in the inputs (E0306); HTTPRouteGroups need an
/// http port (W0408).
pub fn check_matches<'a, 't>(
    doc: &Document,
    e: &'a Res<EgressSpec>,
    has_http: bool,
    targets: &'t Targets<'a>,
    diags: &mut Vec<Diagnostic>,
) -> Matches<'a, 't> {
    let mut out = Matches {
        names: Vec::new(),
        route_groups: None,
        upstream_settings: Vec::new(),
    };
    for (i, m) in e.spec.matches().iter().enumerate() {
        let group = m.api_group.as_deref().unwrap_or("");
        let key = (e.ns(), m.name.as_str());
        let target_exists = match (group, m.kind.as_str()) {
            (HTTPROUTEGROUP_GROUP, "HTTPRouteGroup") => {
                if !has_http {
                    diags.push(not_acted_on(
                        doc.span(path!["spec", "matches", i]),
                        "HTTPRouteGroup routes apply only to http ports, and this policy has none",
                        "add an http port, or remove the match",
                    ));
                }
                let found = targets.route_groups.get(&key);
                out.route_groups.get_or_insert_with(Vec::new).extend(found);
                found.is_some()
            }
            (UTS_GROUP, "UpstreamTrafficSetting") => {
                let found = targets.upstream_settings.get(&key);
                out.upstream_settings.push((i, found));
                found.is_some()
            }
            _ => {
                diags.push(unsupported_match(doc, i, m));
                continue;
            }
        };
        if !target_exists {
            diags.push(
                Diagnostic::new(
                    Code::E0306,
                    format!("{} `{}/{}` is not in the inputs", m.kind, e.ns(), m.name),
                )
                .at(doc.span(path!["spec", "matches", i, "name"]))
                .help(format!(
                    "add the {} to the inputs, in namespace `{}` (matches are looked up in the policy's namespace)",
                    m.kind,
                    e.ns()
                )),
            );
        }
        out.names.push((m.kind.as_str(), m.name.as_str()));
    }
    out
}

/// E0307: a match of a kind (or apiGroup) that egressc does not know.
fn unsupported_match(doc: &Document, i: usize, m: &TypedLocalObjectReference) -> Diagnostic {
    let (span, message) = match m.api_group.as_deref() {
        None => (
            doc.span(path!["spec", "matches", i]),
            format!("match `{}` has no apiGroup", m.kind),
        ),
        Some(g) if g == HTTPROUTEGROUP_GROUP || g == UTS_GROUP => (
            doc.span(path!["spec", "matches", i, "kind"]),
            format!("unsupported match kind `{}` in apiGroup `{g}`", m.kind),
        ),
        Some(g) => (
            doc.span(path!["spec", "matches", i, "apiGroup"]),
            format!("unsupported match `{}` in apiGroup `{g}`", m.kind),
        ),
    };
    Diagnostic::new(Code::E0307, message)
        .at(span)
        .help(format!(
            "use apiGroup `{HTTPROUTEGROUP_GROUP}` with kind HTTPRouteGroup, or `{UTS_GROUP}` with kind UpstreamTrafficSetting"
        ))
}

/// The connection settings of a policy's one UpstreamTrafficSetting (E0308 for every one
/// after the first).
pub fn one_upstream_setting(
    doc: &Document,
    settings: &[(usize, Option<&Option<ConnectionSettings>>)],
    diags: &mut Vec<Diagnostic>,
) -> Option<ConnectionSettings> {
    let (first, found) = *settings.first()?;
    for &(i, _) in &settings[1..] {
        diags.push(
            Diagnostic::new(
                Code::E0308,
                "more than one UpstreamTrafficSetting in `matches`",
            )
            .at(doc.span(path!["spec", "matches", i]))
            .related(doc.span(path!["spec", "matches", first]), "the first one")
            .help("keep one UpstreamTrafficSetting per policy"),
        );
    }
    found.cloned().flatten()
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{egress, places};

    #[test]
    fn one_upstream_setting_and_routes_need_an_http_port() {
        let uts = "---\napiVersion: policy.flomesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: u, namespace: ns}\nspec: {host: x}\n";
        let yaml = egress(&format!(
            "  ipAddresses: [10.0.0.0/8]\n  ports: [{{number: 5432, protocol: tcp}}]\n  matches:\n  - {{apiGroup: policy.flomesh.io/v1alpha1, kind: UpstreamTrafficSetting, name: u}}\n  - {{apiGroup: policy.flomesh.io/v1alpha1, kind: UpstreamTrafficSetting, name: u}}\n  - {{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: r}}\n{uts}"
        ));
        assert_eq!(places(&yaml), ["E0308 15:5", "W0408 16:5", "E0306 16:72"]);
    }

    #[test]
    fn matches_must_name_known_resources() {
        let yaml = egress(
            "  hosts: [a.example]\n  ports: [{number: 80, protocol: http}]\n  matches:\n  - {apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: nope}\n  - {kind: HTTPRoute, name: x}\n",
        );
        assert_eq!(places(&yaml), ["E0306 14:72", "E0307 15:5"]);
    }
}
