//! A YAML tree in which every node and every mapping key keeps its source location.
//!
//! serde-saphyr parses the text; its `Spanned<T>` gives each node's line, column and byte
//! range. The tree converts to `serde_json::Value` for schema validation and typed
//! deserialization, and answers "where is `spec.ports[2].number`?" for diagnostics.

use crate::span::Loc;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

fn loc_from_saphyr(l: &serde_saphyr::Location) -> Loc {
    let span = l.span();
    let start = span.byte_offset().unwrap_or(0) as usize;
    let len = span.byte_len().unwrap_or(0) as usize;
    Loc {
        line: l.line() as u32,
        col: l.column() as u32,
        start,
        end: start + len,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

/// One step of a path into the tree.
#[derive(Clone, Copy, Debug)]
pub enum Seg<'a> {
    Key(&'a str),
    Idx(usize),
}

impl<'a> From<&'a str> for Seg<'a> {
    fn from(s: &'a str) -> Self {
        Seg::Key(s)
    }
}
impl<'a> From<&'a String> for Seg<'a> {
    fn from(s: &'a String) -> Self {
        Seg::Key(s)
    }
}
impl From<usize> for Seg<'_> {
    fn from(i: usize) -> Self {
        Seg::Idx(i)
    }
}

/// `path!["spec", "ports", i, "number"]` builds a `&[Seg]`.
#[macro_export]
macro_rules! path {
    ($($s:expr),* $(,)?) => { &[$($crate::input::yaml::Seg::from($s)),*] };
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The deepest node along `path`, and the key of the last step if the path ended on a
    /// mapping entry. A path that leaves the tree stops at the last node it reached.
    pub fn locate(&self, path: &[Seg]) -> (&Node, Option<&Key>) {
        let mut node = self;
        let mut key = None;
        for seg in path {
            let next = match (&node.value, seg) {
                (Value::Map(entries), Seg::Key(k)) => entries
                    .iter()
                    .find(|(kk, _)| kk.name == *k)
                    .map(|(kk, v)| (Some(kk), v)),
                (Value::Seq(items), Seg::Idx(i)) => items.get(*i).map(|v| (None, v)),
                (Value::Map(entries), Seg::Idx(i)) => {
                    // JSON pointers name map keys that look like numbers as indices.
                    let s = i.to_string();
                    entries
                        .iter()
                        .find(|(kk, _)| kk.name == s)
                        .map(|(kk, v)| (Some(kk), v))
                }
                _ => None,
            };
            match next {
                Some((k, v)) => {
                    key = k;
                    node = v;
                }
                None => return (node, None),
            }
        }
        (node, key)
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            loc: loc_from_saphyr(&s.referenced),
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<KeyName>::deserialize(d)?;
        Ok(Key {
            loc: loc_from_saphyr(&s.referenced),
            name: s.value.0,
        })
    }
}

/// A mapping key as text: YAML allows numbers and booleans as keys (`80: x`).
struct KeyName(String);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyName, E> {
                Ok(KeyName(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
                Ok(KeyName("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(match i64::try_from(v) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::UInt(v),
                })
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(match i64::try_from(v) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(v as f64),
                })
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(match u64::try_from(v) {
                    Ok(u) => return self.visit_u64(u),
                    Err(_) => Value::Float(v as f64),
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element::<Node>()? {
                    items.push(n);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Key>()? {
                    let v = map.next_value::<Node>()?;
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// What one run may spend on YAML, across all its files (alias expansion included): a
/// budget per file would let many files, or one alias bomb per file, exhaust memory.
#[derive(Clone, Copy, Debug)]
pub struct RunBudget {
    pub nodes: usize,
    pub scalar_bytes: usize,
}

impl Default for RunBudget {
    fn default() -> RunBudget {
        RunBudget {
            nodes: 10_000_000,
            scalar_bytes: 256 << 20,
        }
    }
}

/// Every YAML option egressc uses, in one place; the budget is what is left of the run's.
pub fn options_within(run: &RunBudget) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_nodes = run.nodes;
    budget.max_events = run.nodes.saturating_mul(4);
    budget.max_total_scalar_bytes = run.scalar_bytes;
    // Anchors in Kubernetes YAML are small; a document that replays more is a bomb.
    budget.max_recorded_anchor_events = 100_000;
    serde_saphyr::options! {
        // kubectl reads YAML 1.1 booleans (yes/no/on/off) in untyped positions.
        strict_booleans: false,
        with_snippet: false,
        budget: Some(budget),
    }
}

/// The options for one small YAML file (a cases file).
pub fn options() -> serde_saphyr::Options {
    options_within(&RunBudget::default())
}

/// A parse failure: message and location; `limit` when a budget was exceeded.
pub struct ParseError {
    pub message: String,
    pub loc: Option<Loc>,
    pub limit: bool,
}

fn spend(nodes: &[Node], run: &mut RunBudget) {
    fn walk(n: &Node, count: &mut usize, bytes: &mut usize) {
        *count += 1;
        match &n.value {
            Value::Str(s) => *bytes += s.len(),
            Value::Seq(items) => items.iter().for_each(|i| walk(i, count, bytes)),
            Value::Map(entries) => entries.iter().for_each(|(k, v)| {
                *bytes += k.name.len();
                walk(v, count, bytes)
            }),
            _ => {}
        }
    }
    let (mut count, mut bytes) = (0, 0);
    nodes.iter().for_each(|n| walk(n, &mut count, &mut bytes));
    run.nodes = run.nodes.saturating_sub(count);
    run.scalar_bytes = run.scalar_bytes.saturating_sub(bytes);
}

/// Parse a multi-document stream within what is left of the run's budget. Empty documents
/// are skipped.
pub fn parse_documents_within(text: &str, run: &mut RunBudget) -> Result<Vec<Node>, ParseError> {
    let result = serde_saphyr::from_multiple_with_options::<Node>(text, options_within(run));
    let e = match result {
        Ok(nodes) => {
            spend(&nodes, run);
            return Ok(nodes);
        }
        Err(e) => e,
    };
    let loc = e.location().map(|l| loc_from_saphyr(&l));
    if matches!(e, serde_saphyr::Error::Budget { .. }) || e.to_string().contains("budget breached")
    {
        // The run's budget is spent: later files are not parsed either.
        *run = RunBudget {
            nodes: 0,
            scalar_bytes: 0,
        };
        return Err(ParseError {
            message: "the YAML expands to more nodes or text than one run may hold (aliases are counted as expanded)".into(),
            loc,
            limit: true,
        });
    }
    let mut message = e.to_string();
    // The location is shown separately: drop "line X column Y: " before the message and
    // " at line X, column Y" after it; and the library's advice on its own options.
    if let Some(rest) = message.strip_prefix("line ")
        && let Some(pos) = rest.find(": ")
        && rest[..pos].contains("column")
    {
        message = rest[pos + 2..].to_string();
    }
    if let Some(pos) = message.rfind(" at line ")
        && message[pos..].contains("column")
    {
        message.truncate(pos);
    }
    if let Some(pos) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(pos);
    }
    Err(ParseError {
        message,
        loc,
        limit: false,
    })
}

/// Parse one stream with a budget of its own (tests, benchmarks).
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    parse_documents_within(text, &mut RunBudget::default())
}

/// The documents of one YAML text as JSON values (for tools and tests that validate them with
/// the generated schemas); `None` when the text does not parse.
pub fn yaml_as_json(text: &str) -> Option<Vec<serde_json::Value>> {
    parse_documents(text)
        .ok()
        .map(|docs| docs.iter().map(|d| d.to_json()).collect())
}
