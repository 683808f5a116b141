//! HTTPRouteGroups (portable regexes, resolved into routes) and UpstreamTrafficSettings
//! (connection settings).

use crate::check::common::not_acted_on;
use crate::diagnostics::{Code, Diagnostic};
use crate::input::yaml::Seg;
use crate::load::kinds::HttpMethod;
use crate::load::loaded::{Document, Loaded};
use crate::model::{ConnectionSettings, MatchMode, Matchers, Route};
use crate::path;
use std::collections::HashMap;
use std::sync::Arc;

/// (namespace, name) of a resource.
pub type Key<'a> = (&'a str, &'a str);

/// E0316 for a regex outside the portable subset, or one the sidecar's matcher cannot hold;
/// else its matcher goes into `matchers`.
fn regex_diag(
    doc: &Document,
    p: &[Seg],
    (pattern, mode): (&str, MatchMode),
    matchers: &mut Matchers,
) -> Option<Diagnostic> {
    let key = mode.key(pattern);
    if matchers.contains_key(&key) {
        return None;
    }
    let e = match crate::check::regex::check(pattern) {
        Ok(()) => match crate::check::matcher::compile(pattern, mode) {
            Ok(m) => {
                matchers.insert(key, Arc::new(m));
                return None;
            }
            Err(reason) => crate::check::regex::NotPortable {
                reason,
                start: 0,
                end: pattern.len(),
            },
        },
        Err(e) => e,
    };
    let mut span = doc.span(p);
    // Point into the pattern when the scalar is written plainly on one line.
    let node_text_len = span.loc.end.saturating_sub(span.loc.start);
    if node_text_len == pattern.len() && e.end <= pattern.len() {
        span.loc.start += e.start;
        span.loc.end = span.loc.start + (e.end - e.start).max(1);
    }
    Some(
        Diagnostic::new(Code::E0316, format!("regex `{pattern}`: {}", e.reason))
            .at(span)
            .help("route regexes must mean the same in RE2 (FSM), ECMAScript and the matcher egressc compiles for the sidecar; write the portable form"),
    )
}

/// E0319: a header named twice in one match (names are case-insensitive, and in the list form
/// a name may repeat): only one of the values would hold.
fn duplicate_headers(
    doc: &Document,
    i: usize,
    entries: &[(Option<usize>, &str, &str)],
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<String, (Option<usize>, &str)> = HashMap::new();
    for &(idx, name, _) in entries {
        let span = |idx: Option<usize>, name: &str| match idx {
            Some(j) => doc.key_span(path!["spec", "matches", i, "headers", j, name]),
            None => doc.key_span(path!["spec", "matches", i, "headers", name]),
        };
        match seen.get(&name.to_ascii_lowercase()) {
            Some(&(first_idx, first)) => diags.push(
                Diagnostic::new(
                    Code::E0319,
                    format!("header `{name}` is matched twice (header names are case-insensitive)"),
                )
                .at(span(idx, name))
                .related(span(first_idx, first), "first matched here")
                .help("match each header once; to allow several values, write one regex such as `a|b`"),
            ),
            None => {
                seen.insert(name.to_ascii_lowercase(), (idx, name));
            }
        }
    }
}

/// Every HTTPRouteGroup's routes (sorted, without duplicates; shared by the policies that
/// match the group alone), by (namespace, name), and the matcher of every regex; regexes
/// outside the portable subset are reported.
pub fn check_route_groups<'a>(
    inputs: &'a Loaded,
    diags: &mut Vec<Diagnostic>,
) -> (HashMap<Key<'a>, Arc<Vec<Route>>>, Matchers) {
    let mut out = HashMap::new();
    let mut matchers = Matchers::new();
    for g in &inputs.route_groups {
        let doc = inputs.doc(g);
        let mut routes = Vec::new();
        for (i, m) in g.spec.matches.iter().enumerate() {
            let path = m
                .path_regex
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| ".*".to_owned());
            diags.extend(regex_diag(
                doc,
                path!["spec", "matches", i, "pathRegex"],
                (&path, MatchMode::WholePath),
                &mut matchers,
            ));
            let entries = m.headers.as_ref().map(|h| h.entries()).unwrap_or_default();
            duplicate_headers(doc, i, &entries, diags);
            for &(idx, name, value) in &entries {
                let value = (value, MatchMode::Anywhere);
                let d = match idx {
                    Some(j) => regex_diag(
                        doc,
                        path!["spec", "matches", i, "headers", j, name],
                        value,
                        &mut matchers,
                    ),
                    None => regex_diag(
                        doc,
                        path!["spec", "matches", i, "headers", name],
                        value,
                        &mut matchers,
                    ),
                };
                diags.extend(d);
            }
            let methods: Vec<String> = match &m.methods {
                Some(ms) if !ms.contains(&HttpMethod::Any) => {
                    let mut v: Vec<String> = ms.iter().map(|m| m.as_str().to_owned()).collect();
                    v.sort();
                    v.dedup();
                    v
                }
                _ => Vec::new(),
            };
            routes.push(Route {
                path,
                methods,
                headers: entries
                    .iter()
                    .map(|(_, k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                    .collect(),
                route_group: Some(format!("{}/{}#{}", g.ns(), g.name(), m.name)),
            });
        }
        out.insert(
            (g.ns(), g.name()),
            Arc::new(crate::check::common::sorted(routes)),
        );
    }
    (out, matchers)
}

/// Every UpstreamTrafficSetting's connection settings, by (namespace, name).
pub fn check_upstream_settings<'a>(
    inputs: &'a Loaded,
    diags: &mut Vec<Diagnostic>,
) -> HashMap<Key<'a>, Option<ConnectionSettings>> {
    let mut out = HashMap::new();
    for u in &inputs.upstream_settings {
        let doc = inputs.doc(u);
        for (field, present) in [
            ("rateLimit", u.spec.rate_limit.is_some()),
            ("httpRoutes", u.spec.http_routes.is_some()),
        ] {
            if present {
                diags.push(not_acted_on(
                    doc.key_span(path!["spec", field]),
                    format!("`{field}` is accepted but egressc does not act on it"),
                    "only `connectionSettings` is carried into the sidecar config for egress",
                ));
            }
        }
        out.insert((u.ns(), u.name()), u.spec.connection_settings.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::places;

    #[test]
    fn regexes_outside_the_portable_subset() {
        let yaml = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: ns}\nspec:\n  matches:\n  - name: m\n    pathRegex: /a(?i)b\n    headers: {x-h: '(?P<n>x)'}\n";
        assert_eq!(places(yaml), ["E0316 7:18", "E0316 8:20"]);
    }

    #[test]
    fn a_regex_too_large_for_the_sidecars_matcher() {
        let yaml = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: ns}\nspec:\n  matches:\n  - name: m\n    pathRegex: /[a-z]{1000}\n";
        assert_eq!(places(yaml), ["E0316 7:16"]);
    }
}
