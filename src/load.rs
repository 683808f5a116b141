//! From source texts to recognised, schema-valid, typed resources.
//!
//! Parse every file into spanned documents, expand `kind: List`, recognise apiVersion/kind,
//! validate each known document against its kind's schema, then deserialize it.

use crate::diagnostic::{Diagnostic, Span};
use crate::resources::*;
use crate::schema::{self, PathPart, ViolationKind};
use crate::source::{FileId, Sources};
use crate::yaml::{self, Node, Seg, Value};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// One recognised document of a known kind.
pub struct Document {
    pub file: FileId,
    pub kind: Kind,
    pub root: Node,
}

impl Document {
    /// The span of the value at `path` (or of the deepest node on the way).
    pub fn span(&self, path: &[Seg]) -> Span {
        Span::new(self.file, self.root.locate(path).0.loc)
    }
    /// The span of the key of the entry at `path` (falls back to the value).
    pub fn key_span(&self, path: &[Seg]) -> Span {
        let (node, key) = self.root.locate(path);
        Span::new(self.file, key.map_or(node.loc, |k| k.loc))
    }
}

/// A typed resource and the document it came from.
pub struct Res<T> {
    pub doc: usize,
    pub meta: ObjectMeta,
    pub spec: T,
}

impl<T> Res<T> {
    pub fn ns(&self) -> &str {
        self.meta.ns()
    }
    pub fn name(&self) -> &str {
        &self.meta.name
    }
}

/// Everything read from the inputs, typed.
#[derive(Default)]
pub struct Inputs {
    pub docs: Vec<Document>,
    pub mesh_configs: Vec<Res<MeshConfigSpec>>,
    pub egresses: Vec<Res<EgressSpec>>,
    pub gateways: Vec<Res<EgressGatewaySpec>>,
    pub upstream_settings: Vec<Res<UpstreamTrafficSettingSpec>>,
    pub route_groups: Vec<Res<HTTPRouteGroupSpec>>,
    pub services: Vec<Res<ServiceSpec>>,
    pub service_accounts: Vec<Res<NoSpec>>,
}

impl Inputs {
    pub fn doc<T>(&self, r: &Res<T>) -> &Document {
        &self.docs[r.doc]
    }
}

enum Recognised {
    Known(Kind),
    /// A kind egressc does not read: counted in one note.
    Other,
    /// Reported as an error.
    Invalid,
}

fn is_mesh_group(group: &str) -> bool {
    group == "flomesh.io"
        || group.ends_with(".flomesh.io")
        || group == "smi-spec.io"
        || group.ends_with(".smi-spec.io")
}

fn recognise(
    api_version: &str,
    kind: &str,
    doc: &Node,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
) -> Recognised {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let api_span = || Span::new(file, doc.locate(crate::path!["apiVersion"]).0.loc);
    let kind_span = || Span::new(file, doc.locate(crate::path!["kind"]).0.loc);
    if let Some(k) = Kind::ALL
        .iter()
        .find(|k| k.name() == kind && k.group() == group)
    {
        if k.versions().contains(&version) {
            return Recognised::Known(*k);
        }
        diags.push(
            Diagnostic::new(
                "E0103",
                format!("unknown version `{api_version}` of {kind}"),
            )
            .at(api_span())
            .label("egressc does not know this version")
            .help(format!(
                "use apiVersion {}",
                k.api_versions()
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        );
        return Recognised::Invalid;
    }
    if !is_mesh_group(group)
        || OTHER_KNOWN_KINDS
            .iter()
            .any(|(g, k)| *g == group && *k == kind)
    {
        return Recognised::Other;
    }
    // A kind of ours in the wrong group, or a kind nobody defines: a typo that would
    // silently drop a policy.
    let ours: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| !k.group().is_empty())
        .map(|k| k.name().to_owned())
        .chain(
            OTHER_KNOWN_KINDS
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, k)| (*k).to_owned()),
        )
        .collect();
    let help = if let Some(k) = Kind::ALL.iter().find(|k| k.name() == kind) {
        format!("{kind} belongs to apiVersion `{}`", k.api_versions()[0])
    } else if let Some(s) = schema::closest(kind, &ours) {
        match Kind::ALL.iter().find(|k| k.name() == s) {
            Some(k) => format!("did you mean `{s}` (apiVersion `{}`)?", k.api_versions()[0]),
            None => format!("did you mean `{s}`?"),
        }
    } else {
        "egressc reads MeshConfig, Egress, EgressGateway, UpstreamTrafficSetting and HTTPRouteGroup from these groups".into()
    };
    diags.push(
        Diagnostic::new("E0104", format!("unknown kind `{kind}` in group `{group}`"))
            .at(kind_span())
            .help(help),
    );
    Recognised::Invalid
}

fn type_of(node: &Node) -> Option<(&str, &str)> {
    Some((
        node.get("apiVersion")?.as_str()?,
        node.get("kind")?.as_str()?,
    ))
}

/// Parse, recognise, validate and type every input file.
pub fn load(sources: &Sources, diags: &mut Vec<Diagnostic>) -> Inputs {
    let mut inputs = Inputs::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for (file, src) in sources.files.iter().enumerate() {
        if !src.usable {
            continue;
        }
        let docs = match yaml::parse_documents(&src.text) {
            Ok(d) => d,
            Err(e) => {
                // Parse errors carry line and column; the byte offset is recomputed from them.
                let loc = match e.loc {
                    Some(l) if l.line > 0 => src.loc_of(l.line, l.col),
                    _ => src.loc_at(0),
                };
                let d = if src.explicit {
                    Diagnostic::new("E0101", format!("invalid YAML: {}", e.message))
                        .help("fix the syntax; `yamllint` or an editor with YAML support shows the structure")
                } else {
                    Diagnostic::new("W0101", format!("skipped a file that is not valid YAML: {}", e.message))
                        .help("files in a walked directory that do not parse (Helm templates, for example) are skipped; name the file to make this an error")
                };
                diags.push(d.at(Span::new(file, loc)));
                continue;
            }
        };
        // Expand `kind: List`.
        let mut flat: Vec<Node> = Vec::new();
        for doc in docs {
            let is_list = matches!(type_of(&doc), Some((_, "List")))
                && matches!(doc.get("items").map(|n| &n.value), Some(Value::Seq(_)));
            if is_list {
                if let Some(Node {
                    value: Value::Seq(items),
                    ..
                }) = doc.get("items")
                {
                    flat.extend(items.iter().cloned());
                }
            } else {
                flat.push(doc);
            }
        }
        if !src.explicit && !flat.is_empty() && flat.iter().all(|d| type_of(d).is_none()) {
            diags.push(
                Diagnostic::new(
                    "W0102",
                    "skipped a file with no Kubernetes document (no apiVersion and kind)",
                )
                .at(Span::new(file, flat[0].loc))
                .help("files such as Helm values are skipped; name the file to make this an error"),
            );
            continue;
        }
        for doc in flat {
            let Some((api_version, kind)) = type_of(&doc) else {
                let missing = match (doc.get("apiVersion"), doc.get("kind")) {
                    (None, _) => "apiVersion",
                    (Some(_), None) => "kind",
                    (Some(a), Some(_)) if a.as_str().is_none() => "apiVersion",
                    _ => "kind",
                };
                diags.push(
                    Diagnostic::new("E0102", format!("this document has no string `{missing}`"))
                        .at(Span::new(file, doc.loc))
                        .help("every document needs `apiVersion` and `kind`, as kubectl requires"),
                );
                continue;
            };
            match recognise(api_version, kind, &doc, file, diags) {
                Recognised::Known(k) => {
                    let d = Document {
                        file,
                        kind: k,
                        root: doc,
                    };
                    type_document(d, &mut inputs, diags);
                }
                Recognised::Other => *skipped.entry(kind.to_owned()).or_default() += 1,
                Recognised::Invalid => {}
            }
        }
    }
    if !skipped.is_empty() {
        let total: usize = skipped.values().sum();
        let list: Vec<String> = skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        diags.push(
            Diagnostic::new(
                "N0001",
                format!(
                    "skipped {total} document{} of other kinds: {}",
                    if total == 1 { "" } else { "s" },
                    list.join(", ")
                ),
            )
            .help("egressc reads MeshConfig, Egress, EgressGateway, UpstreamTrafficSetting, HTTPRouteGroup, Service and ServiceAccount"),
        );
    }
    inputs
}

fn to_segs(path: &[PathPart]) -> Vec<Seg<'_>> {
    path.iter()
        .map(|p| match p {
            PathPart::Key(k) => Seg::Key(k),
            PathPart::Idx(i) => Seg::Idx(*i),
        })
        .collect()
}

fn type_document(doc: Document, inputs: &mut Inputs, diags: &mut Vec<Diagnostic>) {
    let mut json = doc.root.to_json();
    let violations = schema::validate(doc.kind, &json);
    // Unknown fields and out-of-range ports are reported, and the document still goes on to
    // the semantic checks (without the unknown fields), so that one run reports all of it.
    let mut fatal = false;
    for v in violations {
        let segs = to_segs(&v.path);
        let span = if v.at_key {
            doc.key_span(&segs)
        } else {
            doc.span(&segs)
        };
        let code = match v.kind {
            ViolationKind::UnknownField => {
                remove_at(&mut json, &v.path);
                "E0202"
            }
            ViolationKind::PortRange => {
                // Checked later as out of range; keep the number typable.
                set_at(&mut json, &v.path, serde_json::json!(0));
                "E0301"
            }
            ViolationKind::MissingField | ViolationKind::Other => {
                fatal = true;
                "E0201"
            }
        };
        let mut d = Diagnostic::new(code, v.message).at(span);
        if let Some(h) = v.help {
            d = d.help(h);
        }
        diags.push(d);
    }
    if fatal {
        return;
    }
    let idx = inputs.docs.len();
    let meta: ObjectMeta = match typed(&json, "metadata", &doc, diags) {
        Some(m) => m,
        None => return,
    };
    macro_rules! push {
        ($field:ident, $ty:ty) => {{
            let spec: Option<$ty> = if json.get("spec").is_some_and(|s| !s.is_null()) {
                typed(&json, "spec", &doc, diags)
            } else {
                Some(<$ty>::default())
            };
            if let Some(spec) = spec {
                inputs.$field.push(Res {
                    doc: idx,
                    meta,
                    spec,
                });
                inputs.docs.push(doc);
            }
        }};
    }
    macro_rules! push_required {
        ($field:ident, $ty:ty) => {{
            if let Some(spec) = typed::<$ty>(&json, "spec", &doc, diags) {
                inputs.$field.push(Res {
                    doc: idx,
                    meta,
                    spec,
                });
                inputs.docs.push(doc);
            }
        }};
    }
    match doc.kind {
        Kind::MeshConfig => push!(mesh_configs, MeshConfigSpec),
        Kind::Service => push!(services, ServiceSpec),
        Kind::ServiceAccount => {
            inputs.service_accounts.push(Res {
                doc: idx,
                meta,
                spec: NoSpec {},
            });
            inputs.docs.push(doc);
        }
        Kind::Egress => push_required!(egresses, EgressSpec),
        Kind::EgressGateway => push_required!(gateways, EgressGatewaySpec),
        Kind::UpstreamTrafficSetting => {
            push_required!(upstream_settings, UpstreamTrafficSettingSpec)
        }
        Kind::HTTPRouteGroup => push_required!(route_groups, HTTPRouteGroupSpec),
    }
}

/// The value at `path` in a JSON tree, if it exists.
fn value_at_mut<'a>(
    json: &'a mut serde_json::Value,
    path: &[PathPart],
) -> Option<&'a mut serde_json::Value> {
    path.iter().try_fold(json, |node, p| match p {
        PathPart::Key(k) => node.get_mut(k.as_str()),
        PathPart::Idx(i) => node.get_mut(*i),
    })
}

fn set_at(json: &mut serde_json::Value, path: &[PathPart], value: serde_json::Value) {
    if let Some(node) = value_at_mut(json, path) {
        *node = value;
    }
}

fn remove_at(json: &mut serde_json::Value, path: &[PathPart]) {
    if let Some((PathPart::Key(last), parent)) = path.split_last()
        && let Some(obj) = value_at_mut(json, parent).and_then(|n| n.as_object_mut())
    {
        obj.remove(last);
    }
}

/// Deserialize a schema-valid part of a document. A failure here means the schema is looser
/// than the type (for example a number beyond u32); it is reported, never a panic.
fn typed<T: DeserializeOwned>(
    json: &serde_json::Value,
    field: &str,
    doc: &Document,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let value = json.get(field).cloned().unwrap_or(serde_json::Value::Null);
    match serde_json::from_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(
                Diagnostic::new("E0201", format!("invalid `{field}`: {e}"))
                    .at(doc.span(crate::path![field]))
                    .help("see the schema in schemas/ for the allowed shape"),
            );
            None
        }
    }
}
