//! `policy.flomesh.io/v1alpha1` UpstreamTrafficSetting.

use crate::model::ConnectionSettings;
use schemars::JsonSchema;
use serde::Deserialize;

#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTrafficSettingSpec {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub connection_settings: Option<ConnectionSettings>,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub rate_limit: Option<serde_json::Value>,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub http_routes: Option<Vec<serde_json::Value>>,
}
