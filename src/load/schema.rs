//! JSON Schemas of the input kinds: generated from the typed resources (schemars), committed
//! under `schemas/`, and used to validate every document (jsonschema) with errors mapped
//! back to the exact YAML value or key.

use crate::load::kinds::*;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

fn spec_schema(kind: Kind, generator: &mut schemars::SchemaGenerator) -> Option<Value> {
    let s = match kind {
        Kind::MeshConfig => generator.subschema_for::<MeshConfigSpec>(),
        Kind::Egress => generator.subschema_for::<EgressSpec>(),
        Kind::EgressGateway => generator.subschema_for::<EgressGatewaySpec>(),
        Kind::UpstreamTrafficSetting => generator.subschema_for::<UpstreamTrafficSettingSpec>(),
        Kind::HTTPRouteGroup => generator.subschema_for::<HTTPRouteGroupSpec>(),
        Kind::Service => generator.subschema_for::<ServiceSpec>(),
        Kind::ServiceAccount => return None,
    };
    Some(s.to_value())
}

/// The object schema of one kind (without `$schema`/`$defs`), its definitions added to `generator`.
fn object_schema(kind: Kind, generator: &mut schemars::SchemaGenerator) -> Value {
    let meta = generator.subschema_for::<ObjectMeta>().to_value();
    let mut properties = Map::new();
    properties.insert("apiVersion".into(), json!({"enum": kind.api_versions()}));
    properties.insert("kind".into(), json!({"const": kind.name()}));
    properties.insert("metadata".into(), meta);
    let mut required = vec!["apiVersion", "kind", "metadata"];
    if let Some(spec) = spec_schema(kind, generator) {
        properties.insert("spec".into(), spec);
        if kind.needs_spec() {
            required.push("spec");
        }
    }
    json!({
        "title": kind.name(),
        "type": "object",
        "required": required,
        "properties": properties,
    })
}

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// The standalone schema of one kind.
pub fn kind_schema(kind: Kind) -> Value {
    let mut generator = generator();
    let mut schema = object_schema(kind, &mut generator);
    let obj = schema.as_object_mut().expect("object");
    let mut out = Map::new();
    out.insert("$schema".into(), json!(DRAFT));
    out.insert(
        "$id".into(),
        json!(format!("egressc:{}.schema.json", kind.file_stem())),
    );
    out.append(obj);
    let defs = generator.take_definitions(true);
    if !defs.is_empty() {
        out.insert("$defs".into(), Value::Object(defs));
    }
    Value::Object(out)
}

/// One schema for editors (yaml-language-server): selects the kind's schema by
/// apiVersion and kind; documents of other kinds are not constrained.
pub fn combined_schema() -> Value {
    let mut generator = generator();
    let mut all_of = Vec::new();
    let mut objects = Map::new();
    for kind in Kind::ALL {
        let obj = object_schema(kind, &mut generator);
        let name = format!("{}Object", kind.name());
        objects.insert(name.clone(), obj);
        all_of.push(json!({
            "if": {
                "required": ["apiVersion", "kind"],
                "properties": {
                    "apiVersion": {"enum": kind.api_versions()},
                    "kind": {"const": kind.name()},
                },
            },
            "then": {"$ref": format!("#/$defs/{name}")},
        }));
    }
    let mut defs = generator.take_definitions(true);
    defs.append(&mut objects);
    json!({
        "$schema": DRAFT,
        "$id": "egressc:egressc.schema.json",
        "title": "FSM egress configuration (egressc)",
        "type": "object",
        "allOf": all_of,
        "$defs": defs,
    })
}

/// The schema files of the input kinds: (file name, JSON value), one per kind plus the
/// combined schema for editors.
pub fn input_schemas() -> Vec<(String, Value)> {
    Kind::ALL
        .iter()
        .map(|k| (format!("{}.schema.json", k.file_stem()), kind_schema(*k)))
        .chain(std::iter::once((
            "egressc.schema.json".to_owned(),
            combined_schema(),
        )))
        .collect()
}

struct Compiled {
    kind: Kind,
    schema: Value,
    validator: jsonschema::Validator,
}

fn validators() -> &'static [Compiled] {
    static V: OnceLock<Vec<Compiled>> = OnceLock::new();
    V.get_or_init(|| {
        Kind::ALL
            .iter()
            .map(|k| {
                let schema = kind_schema(*k);
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(&schema)
                    .expect("generated schemas compile");
                Compiled {
                    kind: *k,
                    schema,
                    validator,
                }
            })
            .collect()
    })
}

/// One schema violation, located by the path of the offending value.
pub struct Violation {
    pub path: Vec<PathPart>,
    /// The offending key itself (unknown field), rather than its value.
    pub at_key: bool,
    pub kind: ViolationKind,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    Key(String),
    Idx(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    UnknownField,
    PortRange,
    MissingField,
    Other,
}

/// Validate one document of a known kind.
pub fn validate(kind: Kind, instance: &Value) -> Vec<Violation> {
    let compiled = validators()
        .iter()
        .find(|c| c.kind == kind)
        .expect("every kind has a validator");
    let mut out = Vec::new();
    for err in compiled.validator.iter_errors(instance) {
        violation(compiled, &err, &mut out);
    }
    out
}

/// One validation error as violations. An `anyOf` (how an optional field is written) is
/// reported by the errors of its branch that reached deepest, so that the message names the
/// field itself rather than its parent.
fn violation(compiled: &Compiled, err: &jsonschema::ValidationError, out: &mut Vec<Violation>) {
    {
        use jsonschema::error::ValidationErrorKind as K;
        if let K::AnyOf { context } = err.kind() {
            let depth = err.instance_path().as_str().len();
            let deeper = context.iter().find(|branch| {
                !branch.is_empty()
                    && branch
                        .iter()
                        .all(|e| e.instance_path().as_str().len() > depth)
            });
            if let Some(branch) = deeper {
                for e in branch {
                    violation(compiled, e, out);
                }
                return;
            }
        }
    }
    {
        let path: Vec<PathPart> = err
            .instance_path()
            .segments()
            .map(|s| match s {
                jsonschema::paths::LocationSegment::Property(p) => PathPart::Key(p.into_owned()),
                jsonschema::paths::LocationSegment::Index(i) => PathPart::Idx(i),
            })
            .collect();
        use jsonschema::error::ValidationErrorKind as K;
        match err.kind() {
            K::AdditionalProperties { unexpected } => {
                let allowed = allowed_properties(&compiled.schema, err.schema_path().as_str());
                for name in unexpected {
                    let mut p = path.clone();
                    p.push(PathPart::Key(name.clone()));
                    let help = match closest(name, &allowed) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if allowed.is_empty() => "remove this field".to_owned(),
                        None => format!("allowed fields here: {}", allowed.join(", ")),
                    };
                    out.push(Violation {
                        path: p,
                        at_key: true,
                        kind: ViolationKind::UnknownField,
                        message: format!("unknown field `{name}`"),
                        help: Some(help),
                    });
                }
            }
            K::Minimum { .. } | K::Maximum { .. } if is_port_path(&path) => out.push(Violation {
                path,
                at_key: false,
                kind: ViolationKind::PortRange,
                message: format!("port {} is outside 1..65535", err.instance()),
                help: Some("use a port number from 1 to 65535".into()),
            }),
            K::Required { property } => {
                let name = property.as_str().unwrap_or_default().to_owned();
                out.push(Violation {
                    path,
                    at_key: true,
                    kind: ViolationKind::MissingField,
                    message: format!("missing required field `{name}`"),
                    help: Some(format!("add `{name}`")),
                })
            }
            _ => {
                let where_ = if path.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", err.instance_path())
                };
                out.push(Violation {
                    path,
                    at_key: false,
                    kind: ViolationKind::Other,
                    message: format!("{err}{where_}"),
                    help: Some(help_for(err.kind())),
                })
            }
        }
    }
}

fn help_for(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match kind {
        K::Type { .. } => "change the value to the expected type".into(),
        K::Enum { options }
        | K::Constant {
            expected_value: options,
        } => {
            format!("use one of: {options}")
        }
        K::Minimum { limit } => format!("use a value of at least {limit}"),
        K::Maximum { limit } => format!("use a value of at most {limit}"),
        K::Pattern { pattern } => format!("the value must match `{pattern}`"),
        _ => "see the schema in schemas/ for the allowed shape".into(),
    }
}

fn is_port_path(path: &[PathPart]) -> bool {
    let last = path.iter().rev().find_map(|p| match p {
        PathPart::Key(k) => Some(k.as_str()),
        PathPart::Idx(_) => None,
    });
    matches!(
        last,
        Some("number" | "port" | "targetPort" | "outboundPortExclusionList")
    )
}

/// The property names of the object schema that holds an `additionalProperties` keyword.
fn allowed_properties(schema: &Value, keyword_path: &str) -> Vec<String> {
    let parent = keyword_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(keyword_path);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The allowed name closest to `name` (case-insensitive edit distance), if close enough.
pub fn closest<'a>(name: &str, allowed: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    allowed
        .iter()
        .map(|a| (strsim::levenshtein(&lower, &a.to_lowercase()), a))
        .filter(|(d, a)| *d <= (a.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.as_str())
}
