//! `policy.flomesh.io/v1alpha1` Egress.

use schemars::JsonSchema;
use serde::Deserialize;

/// `policy.flomesh.io/v1alpha1` Egress spec.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSpec {
    /// The workload identities this policy applies to.
    pub sources: Vec<EgressSource>,
    /// Host names (http: Host header; https: SNI). `*.example.com` matches any subdomain.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// IPv4 CIDRs that the original destination address must be inside.
    #[serde(default)]
    pub ip_addresses: Option<Vec<String>>,
    pub ports: Vec<PortSpec>,
    /// HTTPRouteGroup and UpstreamTrafficSetting references (same namespace).
    #[serde(default)]
    pub matches: Option<Vec<TypedLocalObjectReference>>,
}

impl EgressSpec {
    pub fn hosts(&self) -> &[String] {
        self.hosts.as_deref().unwrap_or_default()
    }
    pub fn ip_addresses(&self) -> &[String] {
        self.ip_addresses.as_deref().unwrap_or_default()
    }
    pub fn matches(&self) -> &[TypedLocalObjectReference] {
        self.matches.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSource {
    /// Only `ServiceAccount` is supported.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub mtls: Option<EgressSourceMtls>,
}

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSourceMtls {
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub cert: Option<EgressSourceCert>,
}

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSourceCert {
    pub sn: i64,
    pub subject_alt_names: Vec<String>,
    pub expiration: String,
    pub secret: SecretReference,
}

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretReference {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    #[schemars(range(min = 1, max = 65535))]
    pub number: i64,
    /// `http`, `https`, `tcp` or `tcp-server-first`.
    pub protocol: String,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedLocalObjectReference {
    #[serde(default)]
    pub api_group: Option<String>,
    pub kind: String,
    pub name: String,
}
