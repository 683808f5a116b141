//! Mesh-wide data: what every sidecar needs besides its identity's config, and the gateway's
//! config.

use crate::plan::Plan;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// `sidecar/mesh.json`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MeshData {
    pub version: Option<String>,
    /// `clusterIP:port` → `namespace/name` of the Service.
    pub in_mesh: BTreeMap<String, String>,
}

pub fn mesh_data(plan: &Plan) -> MeshData {
    MeshData {
        version: None,
        in_mesh: plan
            .mesh
            .iter()
            .map(|d| (format!("{}:{}", d.ip, d.port), d.service.clone()))
            .collect(),
    }
}

/// `gateway/config.json`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayListen {
    /// The ports the gateway listens on, sorted.
    pub listen: Vec<u16>,
}

pub fn gateway_config(plan: &Plan) -> GatewayListen {
    let mut listen: Vec<u16> = plan.gateways.iter().map(|g| g.listen_port).collect();
    listen.sort_unstable();
    listen.dedup();
    GatewayListen { listen }
}
