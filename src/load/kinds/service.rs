//! Core `v1` Service and ServiceAccount: only what egressc reads.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub ports: Option<Vec<ServicePort>>,
    /// The pods it selects (the gateway's Deployment gets these labels).
    #[serde(default)]
    pub selector: Option<std::collections::BTreeMap<String, String>>,
}

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: i64,
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    #[serde(default)]
    pub protocol: Option<String>,
}

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(#[schemars(range(min = 1, max = 65535))] i64),
    Str(String),
}

/// ServiceAccount has nothing egressc reads beyond its metadata.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub struct NoSpec {}
