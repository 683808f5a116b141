//! The output tree in memory and the JSON form every output file shares.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Files by path relative to OUT (always `/`-separated, never absolute, never `..`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Where emitted files go, one at a time: a tree in memory ([`Output`]), the writer's
/// temporary folder (`write::Staging`), the comparison with OUT (`write::Compare`), or nowhere
/// (`check` measures the ConfigMaps only).
pub trait Sink {
    /// One output file: each path once, in no particular order.
    fn put(&mut self, path: String, bytes: Vec<u8>);
    /// Whether the files are kept (false: only what `check` measures is computed).
    fn wants_bytes(&self) -> bool {
        true
    }
}

impl Sink for Output {
    fn put(&mut self, path: String, bytes: Vec<u8>) {
        self.files.insert(path, bytes);
    }
}

/// The sink that keeps nothing (`check`).
pub struct Discard;

impl Sink for Discard {
    fn put(&mut self, _: String, _: Vec<u8>) {}
    fn wants_bytes(&self) -> bool {
        false
    }
}

/// The JSON Schema of a document egressc writes, with its `$id` and description. It follows
/// what is serialised: a field that is always written is required, with `null` where it may
/// be null.
pub fn output_schema<T: schemars::JsonSchema>(id: &str, description: &str) -> serde_json::Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("$id".into(), id.into());
    schema.insert("description".into(), description.into());
    schema.to_value()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pretty JSON with sorted keys and a trailing newline.
pub fn pretty(v: &impl Serialize) -> Vec<u8> {
    pretty_value(&serde_json::to_value(v).expect("output serializes"))
}

/// `pretty`, as text (machine output on a stream: `check --format json`, `diff --format json`).
pub fn pretty_text(v: &impl Serialize) -> String {
    String::from_utf8(pretty(v)).expect("JSON is UTF-8")
}

/// `pretty` of a type that serialises to sorted JSON already (fields declared in sorted
/// order, string map keys in `BTreeMap`s): the same bytes, without a JSON tree in between.
pub fn pretty_sorted(v: &impl Serialize) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).expect("output serializes");
    s.push(b'\n');
    s
}

/// `pretty` of a JSON value (its maps are sorted already).
fn pretty_value(value: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(value).expect("JSON serializes");
    s.push(b'\n');
    s
}

/// Pretty JSON of a document whose `Version` is a hash of the rest of it.
pub fn versioned(doc: &impl Serialize) -> Vec<u8> {
    let mut value = serde_json::to_value(doc).expect("output serializes");
    let hash = sha256_hex(&serde_json::to_vec(&value).expect("JSON serializes"));
    value["Version"] = serde_json::Value::String(hash[..16].to_owned());
    pretty_value(&value)
}
