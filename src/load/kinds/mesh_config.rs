//! `config.flomesh.io` MeshConfig: only the fields egressc reads are typed.

use schemars::JsonSchema;
use serde::Deserialize;

/// `config.flomesh.io` MeshConfig spec: only the fields egressc reads are typed.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfigSpec {
    #[serde(default)]
    pub traffic: Option<TrafficSpec>,
    /// Keys of the sections egressc reads that FSM's CRD does not define for the document's
    /// apiVersion (filled in when the document is loaded; see [`unknown_keys`]).
    #[serde(skip)]
    #[schemars(skip)]
    pub unknown_keys: Vec<UnknownKey>,
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

/// A key of `spec.<section>` that FSM's MeshConfig CRD does not define for the version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnknownKey {
    /// `traffic`, `featureFlags`, `sidecar`, `egressGateway`; empty for a section itself.
    pub section: &'static str,
    pub key: String,
    /// The keys FSM defines there, for "did you mean".
    pub known: Vec<String>,
    /// The apiVersion's version (`v1alpha3`).
    pub version: String,
}

/// The sections egressc reads, as the CRD names them under `spec`.
const SECTIONS: [&str; 4] = ["traffic", "featureFlags", "sidecar", "egressGateway"];

/// FSM's field lists (`fsm_meshconfig_fields.json`, from the CRD it names), parsed once:
/// version → section → keys.
fn fsm_fields() -> &'static serde_json::Value {
    static FIELDS: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        serde_json::from_str(include_str!("fsm_meshconfig_fields.json"))
            .expect("the committed field lists are JSON")
    })
}

/// The keys of `spec`'s sections that FSM's CRD does not define for `version` (a section
/// that the version does not have at all is one unknown key of `spec`).
pub fn unknown_keys(spec: &serde_json::Value, version: &str) -> Vec<UnknownKey> {
    let Some(fields) = fsm_fields()["versions"].get(version) else {
        return Vec::new();
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut out = Vec::new();
    for section in SECTIONS {
        let Some(map) = spec.get(section).and_then(|s| s.as_object()) else {
            continue;
        };
        let known = names(&fields[section]);
        if known.is_empty() {
            let defined = SECTIONS
                .iter()
                .filter(|s| !names(&fields[**s]).is_empty())
                .map(|s| (*s).to_owned())
                .collect();
            out.push(UnknownKey {
                section: "",
                key: section.to_owned(),
                known: defined,
                version: version.to_owned(),
            });
            continue;
        }
        for key in map.keys().filter(|k| !known.contains(k)) {
            out.push(UnknownKey {
                section,
                key: key.clone(),
                known: known.clone(),
                version: version.to_owned(),
            });
        }
    }
    out
}
