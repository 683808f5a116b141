//! `config.flomesh.io` MeshConfig: only the fields egressc reads are typed.

use schemars::JsonSchema;
use serde::Deserialize;

/// `config.flomesh.io` MeshConfig spec: only the fields egressc reads are typed.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfigSpec {
    #[serde(default)]
    pub traffic: Option<TrafficSpec>,
    #[serde(default)]
    pub feature_flags: Option<FeatureFlags>,
    #[serde(default)]
    pub sidecar: Option<SidecarSpec>,
    #[serde(default)]
    pub egress_gateway: Option<EgressGatewaySettings>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSpec {
    /// Mesh-wide passthrough to any destination.
    #[serde(default)]
    pub enable_egress: Option<bool>,
    #[serde(default, rename = "outboundIPRangeExclusionList")]
    pub outbound_ip_range_exclusion_list: Option<Vec<String>>,
    #[serde(default, rename = "outboundIPRangeInclusionList")]
    pub outbound_ip_range_inclusion_list: Option<Vec<String>>,
    #[serde(default)]
    pub outbound_port_exclusion_list: Option<Vec<PortNumber>>,
}

/// A port number (1..65535).
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PortNumber(#[schemars(range(min = 1, max = 65535))] pub i64);

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlags {
    /// Egress policies are ignored unless this is true.
    #[serde(default)]
    pub enable_egress_policy: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    #[serde(default)]
    /// FSM's sidecar log levels.
    #[schemars(regex(pattern = r"^(trace|debug|info|warn|error|fatal|panic|disabled)$"))]
    pub log_level: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub sidecar_timeout: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressGatewaySettings {
    /// `http2tunnel` or `sock5` (`socks5` is accepted as the same).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
}
