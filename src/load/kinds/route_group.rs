//! `specs.smi-spec.io/v1alpha4` HTTPRouteGroup.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HTTPRouteGroupSpec {
    pub matches: Vec<HTTPMatch>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HTTPMatch {
    pub name: String,
    #[serde(default)]
    pub methods: Option<Vec<HttpMethod>>,
    /// A regex that must match the whole path (query excluded).
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Header name → value regex. SMI accepts a map or a list of one-entry maps.
    #[serde(default)]
    pub headers: Option<HttpHeaders>,
}

#[allow(
    clippy::upper_case_acronyms,
    reason = "the methods as HTTP spells them"
)]
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpMethod {
    #[serde(rename = "*")]
    Any,
    GET,
    HEAD,
    PUT,
    POST,
    DELETE,
    CONNECT,
    OPTIONS,
    TRACE,
    PATCH,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Any => "*",
            HttpMethod::GET => "GET",
            HttpMethod::HEAD => "HEAD",
            HttpMethod::PUT => "PUT",
            HttpMethod::POST => "POST",
            HttpMethod::DELETE => "DELETE",
            HttpMethod::CONNECT => "CONNECT",
            HttpMethod::OPTIONS => "OPTIONS",
            HttpMethod::TRACE => "TRACE",
            HttpMethod::PATCH => "PATCH",
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HttpHeaders {
    Map(BTreeMap<String, String>),
    List(Vec<BTreeMap<String, String>>),
}

impl HttpHeaders {
    /// (index in the list or 0, name, value regex), in source order.
    pub fn entries(&self) -> Vec<(Option<usize>, &str, &str)> {
        match self {
            HttpHeaders::Map(m) => m
                .iter()
                .map(|(k, v)| (None, k.as_str(), v.as_str()))
                .collect(),
            HttpHeaders::List(l) => l
                .iter()
                .enumerate()
                .flat_map(|(i, m)| {
                    m.iter()
                        .map(move |(k, v)| (Some(i), k.as_str(), v.as_str()))
                })
                .collect(),
        }
    }
}
