//! Stage 2: from source texts to recognised, schema-valid, typed resources.
//!
//! Parse every file into spanned documents, expand `kind: List`, recognise apiVersion/kind,
//! validate each known document against its kind's schema, then deserialize it.

pub mod kinds;
pub mod loaded;
pub mod recognise;
pub mod schema;

use crate::diagnostics::{Code, Diagnostic};
use crate::input::source::{Found, SourceFile, Sources, Unparsable, limit_exceeded, unparsable};
use crate::input::yaml::{self, Node, Seg, Value};
use crate::load::kinds::*;
use crate::load::loaded::{Document, Loaded, Res};
use crate::load::recognise::{Recognised, recognise};
use crate::load::schema::{PathPart, ViolationKind};
use crate::span::{FileId, Span};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

fn is_list(doc: &Node) -> bool {
    doc.get("kind").and_then(Node::as_str) == Some("List")
}

/// E0106: a List that cannot be expanded.
fn malformed_list(span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(Code::E0106, format!("malformed `kind: List`: {why}"))
        .at(span)
        .help("write the documents of a List as a sequence under `items`, or as separate documents (`---`)")
}

/// The items of a List (taken out of it); E0106 when `items` is not a sequence.
fn list_items(doc: Node, file: crate::span::FileId, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let Value::Map(entries) = doc.value else {
        return Vec::new();
    };
    match entries.into_iter().find(|(k, _)| k.name == "items") {
        Some((
            _,
            Node {
                value: Value::Seq(items),
                ..
            },
        )) => items,
        None
        | Some((
            _,
            Node {
                value: Value::Null, ..
            },
        )) => Vec::new(),
        Some((_, other)) => {
            diags.push(malformed_list(
                Span::new(file, other.loc),
                "`items` is not a sequence",
            ));
            Vec::new()
        }
    }
}

fn type_of(node: &Node) -> Option<(&str, &str)> {
    Some((
        node.get("apiVersion")?.as_str()?,
        node.get("kind")?.as_str()?,
    ))
}

/// Parse, recognise, validate and type every input file.
pub fn load(sources: &Sources, diags: &mut Vec<Diagnostic>) -> Loaded {
    let mut inputs = Loaded {
        files: sources.files.iter().map(|f| f.name.clone()).collect(),
        ..Loaded::default()
    };
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut budget = yaml::RunBudget::default();
    for (file, src) in sources.files.iter().enumerate() {
        if !src.usable {
            continue;
        }
        let Some(docs) = parse_file(file, src, &mut budget, diags) else {
            continue;
        };
        let flat = expand_lists(docs, file, diags);
        if !src.explicit && !flat.is_empty() && flat.iter().all(|d| type_of(d).is_none()) {
            diags.push(
                Diagnostic::new(
                    Code::W0102,
                    "skipped a file with no Kubernetes document (no apiVersion and kind)",
                )
                .at(Span::new(file, flat[0].loc))
                .help("files such as Helm values are skipped; name the file to make this an error"),
            );
            continue;
        }
        for doc in flat {
            load_document(doc, file, &mut inputs, &mut skipped, diags);
        }
    }
    if !skipped.is_empty() {
        diags.push(skipped_kinds(&skipped));
    }
    inputs
}

/// The documents of one file; `None` (with a diagnostic) when it does not parse.
fn parse_file(
    file: FileId,
    src: &SourceFile,
    budget: &mut yaml::RunBudget,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Node>> {
    let e = match yaml::parse_documents_within(&src.text, budget) {
        Ok(d) => return Some(d),
        Err(e) => e,
    };
    // Parse errors carry line and column; the byte offset is recomputed from them.
    let loc = match e.loc {
        Some(l) if l.line > 0 => src.loc_of(l.line, l.col),
        _ => src.loc_at(0),
    };
    diags.push(if e.limit {
        limit_exceeded(
            e.message,
            "split the inputs, or remove the aliases that multiply the document",
        )
        .at(Span::new(file, loc))
    } else {
        unparsable(
            Found::of(src.explicit, &src.text),
            Span::new(file, loc),
            Unparsable::Yaml(e.message),
        )
    });
    None
}

/// The documents with every `kind: List` expanded; a List that cannot be expanded is an
/// error (E0106), never skipped.
fn expand_lists(docs: Vec<Node>, file: FileId, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut flat: Vec<Node> = Vec::new();
    for doc in docs {
        if !is_list(&doc) {
            flat.push(doc);
            continue;
        }
        for item in list_items(doc, file, diags) {
            if is_list(&item) {
                diags.push(malformed_list(
                    Span::new(file, item.loc),
                    "a List inside a List is not expanded by kubectl",
                ));
            } else {
                flat.push(item);
            }
        }
    }
    flat
}

/// One document: typed into `inputs` when it is of a kind egressc reads, counted in
/// `skipped` when it is of another kind; E0102 without `apiVersion` and `kind`.
fn load_document(
    doc: Node,
    file: FileId,
    inputs: &mut Loaded,
    skipped: &mut BTreeMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some((api_version, kind)) = type_of(&doc) else {
        let missing = match (doc.get("apiVersion"), doc.get("kind")) {
            (None, _) => "apiVersion",
            (Some(_), None) => "kind",
            (Some(a), Some(_)) if a.as_str().is_none() => "apiVersion",
            _ => "kind",
        };
        diags.push(
            Diagnostic::new(
                Code::E0102,
                format!("this document has no string `{missing}`"),
            )
            .at(Span::new(file, doc.loc))
            .help("every document needs `apiVersion` and `kind`, as kubectl requires"),
        );
        return;
    };
    match recognise(api_version, kind, &doc, file, diags) {
        Recognised::Known(k) => {
            let d = Document {
                file,
                kind: k,
                start: doc.loc,
                places: crate::input::places::Places::of(&doc),
            };
            // The tree goes here, as JSON for the schema and the types, and no further.
            type_document(d, doc.to_json(), inputs, diags);
        }
        Recognised::Other => *skipped.entry(kind.to_owned()).or_default() += 1,
        Recognised::Invalid => {}
    }
}

/// N0001: the documents of other kinds, counted by kind.
fn skipped_kinds(skipped: &BTreeMap<String, usize>) -> Diagnostic {
    let total: usize = skipped.values().sum();
    let list: Vec<String> = skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
    Diagnostic::new(
        Code::N0001,
        format!(
            "skipped {total} document{} of other kinds: {}",
            if total == 1 { "" } else { "s" },
            list.join(", ")
        ),
    )
    .help("egressc reads MeshConfig, Egress, EgressGateway, UpstreamTrafficSetting, HTTPRouteGroup, Service and ServiceAccount")
}

fn to_segs(path: &[PathPart]) -> Vec<Seg<'_>> {
    path.iter()
        .map(|p| match p {
            PathPart::Key(k) => Seg::Key(k),
            PathPart::Idx(i) => Seg::Idx(*i),
        })
        .collect()
}

fn type_document(
    doc: Document,
    mut json: serde_json::Value,
    inputs: &mut Loaded,
    diags: &mut Vec<Diagnostic>,
) {
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
        match v.kind {
            ViolationKind::UnknownField => remove_at(&mut json, &v.path),
            // Checked later as out of range; keep the number typable.
            ViolationKind::PortRange => set_at(&mut json, &v.path, serde_json::Value::from(0)),
            ViolationKind::MissingField | ViolationKind::Other => fatal = true,
        }
        diags.push(schema_diag(v.kind, span, v.message, v.help));
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
        Kind::MeshConfig => {
            let version = json["apiVersion"]
                .as_str()
                .and_then(|a| a.rsplit_once('/'))
                .map_or("", |(_, v)| v)
                .to_owned();
            let unknown = unknown_keys(&json["spec"], &version);
            let before = inputs.mesh_configs.len();
            push!(mesh_configs, MeshConfigSpec);
            if let Some(m) = inputs.mesh_configs.get_mut(before) {
                m.spec.unknown_keys = unknown;
            }
        }
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
            diags.push(schema_diag(
                ViolationKind::Other,
                doc.span(crate::path![field]),
                format!("invalid `{field}`: {e}"),
                Some("see the schema in schemas/ for the allowed shape".into()),
            ));
            None
        }
    }
}

/// A document that does not match its kind's schema.
fn schema_diag(
    kind: ViolationKind,
    span: Span,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    let code = match kind {
        ViolationKind::UnknownField => Code::E0202,
        ViolationKind::PortRange => Code::E0301,
        ViolationKind::MissingField | ViolationKind::Other => Code::E0201,
    };
    let d = Diagnostic::new(code, message).at(span);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}
