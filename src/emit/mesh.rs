//! Mesh-wide data: what every sidecar needs besides its identity's config, and the gateway's
//! config.

use crate::model::{AuthMode, GATEWAY_LIMITS, GatewayLimits};
use crate::plan::{Plan, gateway_allow};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

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

/// `gateway/config.json`: where the gateway listens and what it admits (README, "Security model"). Fields
/// are declared in sorted order and map keys are strings, so that it serialises to sorted
/// JSON directly (`output::pretty_sorted`): the file is large (a list per identity).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayConfig {
    /// ServiceIdentities in audit mode: their tunnels are admitted as under passthrough (the
    /// refused ranges and the gateway itself still refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<String>,
    /// How the gateway learns a tunnel's identity.
    pub auth: GatewayAuthConfig,
    /// ServiceIdentity (`sa.namespace`, `_default`) → port → what its sidecar may tunnel to.
    /// Under `mtls` a tunnel's identity is the SPIFFE ID of its certificate (an identity not
    /// listed gets `_default`'s list); under `header` an http2tunnel CONNECT names its
    /// identity and a SOCKS5 request (no user name) gets the union of every identity's list.
    pub identities: BTreeMap<String, BTreeMap<String, GatewayAllow>>,
    /// Its connection cap and idle bound.
    pub limits: GatewayLimits,
    /// The ports the gateway listens on, sorted.
    pub listen: Vec<u16>,
    /// The gateway Services' clusterIPs: the gateway itself, refused as targets on any port
    /// whatever a policy names (as are the pod's addresses and the address a tunnel arrived on).
    pub own_addresses: Vec<String>,
    /// `traffic.enableEgress`: any target is admitted that is not refused below.
    pub passthrough: bool,
    /// In-mesh and gateway `clusterIP:port`s: refused as targets unless a CIDR names them.
    pub refused: BTreeMap<String, String>,
    /// Address ranges refused as targets unless a CIDR names them (loopback, link-local, …).
    pub refused_ranges: Vec<RefusedRange>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayAuthConfig {
    /// `mtls`: a tunnel is TLS with a client certificate chained to `ca.crt` of
    /// `EGRESSC_TLS_DIR`, holding one SPIFFE ID of the trust domain; `header`: plain, the
    /// identity a label.
    pub mode: AuthMode,
    pub trust_domain: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RefusedRange {
    pub cidr: String,
    /// What the address is, for the refusal's reason.
    pub why: String,
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
            let ports: BTreeMap<String, GatewayAllow> = gateway_allow(id)
                .into_iter()
                .map(|(port, a)| {
                    let allow = GatewayAllow {
                        any_address: a.any_address,
                        cidrs: a.cidrs.iter().map(ToString::to_string).collect(),
                        hosts: a.hosts.iter().map(ToString::to_string).collect(),
                    };
                    (port.to_string(), allow)
                })
                .collect();
            // Under mtls every identity is listed: one not listed gets `_default`'s list.
            (!ports.is_empty() || plan.auth.mode == AuthMode::Mtls)
                .then(|| (id.service_identity(), ports))
        })
        .collect();
    let mut own_addresses: Vec<Ipv4Addr> = plan.gateway_addresses.iter().map(|d| d.ip).collect();
    own_addresses.sort_unstable();
    own_addresses.dedup();
    GatewayConfig {
        audit: plan.audited().collect(),
        auth: GatewayAuthConfig {
            mode: plan.auth.mode,
            trust_domain: plan.auth.trust_domain.clone(),
        },
        identities,
        limits: GATEWAY_LIMITS,
        listen,
        own_addresses: own_addresses.iter().map(ToString::to_string).collect(),
        passthrough: plan.settings.enable_egress,
        refused,
        refused_ranges: crate::net::refused_ranges()
            .iter()
            .map(|(c, why)| RefusedRange {
                cidr: c.to_string(),
                why: (*why).to_owned(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::emit::output::{pretty, pretty_sorted};
    use crate::pipeline::testing::{enforced, plan};

    #[test]
    fn gateway_config_serialises_sorted_without_a_tree() {
        let p = plan(&enforced(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: [{kind: ServiceAccount, name: a, namespace: ns}]\n  hosts: [x.example, '*.y.example']\n  ipAddresses: [10.0.0.0/8]\n  ports: [{number: 443, protocol: https}, {number: 1000, protocol: tcp}, {number: 80, protocol: http}]\n",
        ));
        let config = super::gateway_config(&p);
        assert!(!config.identities.is_empty());
        assert_eq!(pretty_sorted(&config), pretty(&config));
    }
}
