//! `policy.flomesh.io/v1alpha1` EgressGateway.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGatewaySpec {
    /// Gateways every egress connection goes through, picked by weight.
    #[serde(default)]
    pub global: Option<Vec<GatewayBindingSubject>>,
}

impl EgressGatewaySpec {
    pub fn global(&self) -> &[GatewayBindingSubject] {
        self.global.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayBindingSubject {
    pub service: String,
    pub namespace: String,
    /// 0 or absent means 100, as in FSM.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
}
