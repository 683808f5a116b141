//! Mesh-wide data: what every sidecar needs besides its identity's config, and the gateway's
//! config.

use crate::plan::{Plan, gateway_allow};
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
    /// A gateway Service's `clusterIP` → `namespace/name`: a workload's own connection to it
    /// (any port) is denied.
    pub gateways: BTreeMap<String, String>,
}

pub fn mesh_data(plan: &Plan) -> MeshData {
    MeshData {
        version: None,
        in_mesh: plan
            .mesh
            .iter()
            .map(|d| (format!("{}:{}", d.ip, d.port), d.service.clone()))
            .collect(),
        gateways: plan
            .gateway_addresses
            .iter()
            .map(|d| (d.ip.to_string(), d.service.clone()))
            .collect(),
    }
}

/// `gateway/config.json`: where the gateway listens and what it admits (design §3).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayConfig {
    /// The ports the gateway listens on, sorted.
    pub listen: Vec<u16>,
    /// `traffic.enableEgress`: any target is admitted that is not refused below.
    pub passthrough: bool,
    /// In-mesh and gateway `clusterIP:port`s: refused as targets unless a CIDR names them.
    pub refused: BTreeMap<String, String>,
    /// ServiceIdentity (`sa.namespace`, `_default`) → port → what its sidecar may tunnel to.
    /// An http2tunnel CONNECT names its identity; a SOCKS5 request (no user name) gets the
    /// union of every identity's list.
    pub identities: BTreeMap<String, BTreeMap<u16, GatewayAllow>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayAllow {
    /// Some rule admits any address.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub any_address: bool,
    /// Addresses admitted (CIDRs), even when loopback, link-local or in-mesh.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Names admitted (`name`, `*.suffix`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

pub fn gateway_config(plan: &Plan) -> GatewayConfig {
    let mut listen: Vec<u16> = plan.gateways.iter().map(|g| g.listen_port).collect();
    listen.sort_unstable();
    listen.dedup();
    let refused = plan
        .mesh
        .iter()
        .chain(&plan.gateway_addresses)
        .map(|d| (format!("{}:{}", d.ip, d.port), d.service.clone()))
        .collect();
    let identities = plan
        .identities
        .iter()
        .filter_map(|id| {
            let ports: BTreeMap<u16, GatewayAllow> = gateway_allow(id)
                .into_iter()
                .map(|(port, a)| {
                    let allow = GatewayAllow {
                        any_address: a.any_address,
                        cidrs: a.cidrs.iter().map(ToString::to_string).collect(),
                        hosts: a.hosts.iter().map(ToString::to_string).collect(),
                    };
                    (port, allow)
                })
                .collect();
            (!ports.is_empty()).then(|| (id.service_identity(), ports))
        })
        .collect();
    GatewayConfig {
        listen,
        passthrough: plan.settings.enable_egress,
        refused,
        identities,
    }
}
