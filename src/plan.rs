//! Stage 4, lowering: the checked mesh → a plan per workload identity (README, "Security model"), in decision
//! order: in-mesh destinations (mesh-wide), the identity's allowed egress, passthrough,
//! gateway. Nothing here parses or looks anything up: `check` resolved it all. Everything is
//! sorted, so that the plan does not depend on input order.

use crate::model::{
    Checked, ConnectionSettings, DnsResolvers, GatewayAuth, GatewayMode, Identity, Matchers,
    MeshDestination, Observe, Protocol, ProtocolClass, Provenance, Route, Settings,
};
use crate::net::{Cidr, HostPattern};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const DEFAULT_IDENTITY: &str = "_default";

/// One allowed egress of an identity, from one port entry of one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub port: u16,
    pub protocol: Protocol,
    /// Empty: any destination address.
    pub cidrs: Vec<Cidr>,
    /// Empty: any host (https) — http rules always have hosts; tcp rules never.
    pub hosts: Vec<HostPattern>,
    /// http only: the routes that must hold (one of them); `None` means any request.
    pub routes: Option<Arc<Vec<Route>>>,
    pub connection_settings: Option<ConnectionSettings>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdentityPlan {
    /// `namespace/name`, or `_default`.
    pub name: String,
    /// `None` for `_default`.
    pub identity: Option<Identity>,
    /// A rule of a policy with several sources is shared by their plans.
    pub rules: Vec<Arc<Rule>>,
    /// Audit mode, and whether allows are logged.
    pub observe: Observe,
}

impl IdentityPlan {
    /// FSM's ServiceIdentity: `<sa>.<namespace>`.
    pub fn service_identity(&self) -> String {
        match &self.identity {
            Some(id) => format!("{}.{}", id.name, id.namespace),
            None => DEFAULT_IDENTITY.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    /// FSM's cluster name: `<service>.<namespace>`.
    pub cluster: String,
    /// `<service>.<namespace>.svc.cluster.local`
    pub host: String,
    pub port: u16,
    /// The port the gateway listens on (the Service's targetPort).
    pub listen_port: u16,
    pub weight: u32,
    pub mode: GatewayMode,
    /// `namespace`, `service` of its Service.
    pub namespace: String,
    pub service: String,
    /// Whether the inputs have the Service, and the pods it selects.
    pub service_in_inputs: bool,
    pub selector: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub settings: Settings,
    /// Sorted by address and port. Never a gateway Service's address.
    pub mesh: Vec<MeshDestination>,
    /// The clusterIPs and ports of the gateway Services (sorted): a workload's own connection
    /// to one is denied; only the sidecar's tunnels (as the proxy uid) reach a gateway.
    pub gateway_addresses: Vec<MeshDestination>,
    /// Sorted by name; `_default` first (`default_identity`).
    pub identities: Vec<IdentityPlan>,
    /// Sorted by cluster name.
    pub gateways: Vec<Gateway>,
    pub dns: DnsResolvers,
    /// The matcher of every route regex (by `MatchMode::key`).
    pub matchers: Matchers,
    /// How the gateway authenticates tunnels.
    pub auth: GatewayAuth,
}

impl Plan {
    /// The ServiceIdentities in audit mode: the gateway admits them as under passthrough.
    pub fn audited(&self) -> impl Iterator<Item = String> + '_ {
        self.identities
            .iter()
            .filter(|id| id.observe.audit)
            .map(IdentityPlan::service_identity)
    }

    /// `_default`: the identity of a workload that has no config of its own (no rule).
    pub fn default_identity(&self) -> &IdentityPlan {
        &self.identities[0]
    }
    /// The plan of an identity; `_default`'s for one the plan does not know.
    pub fn identity(&self, identity: &Identity) -> &IdentityPlan {
        self.identities
            .iter()
            .find(|i| i.identity.as_ref() == Some(identity))
            .unwrap_or_else(|| self.default_identity())
    }
}

/// The in-mesh destinations, and apart from them those of the gateway Services.
fn mesh(checked: &Checked) -> (Vec<MeshDestination>, Vec<MeshDestination>) {
    let mut all = checked.mesh.clone();
    all.sort();
    all.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
    let gateway = |d: &MeshDestination| {
        checked
            .gateways
            .iter()
            .any(|g| d.service == format!("{}/{}", g.namespace, g.service))
    };
    all.into_iter().partition(|d| !gateway(d))
}

/// What an identity may reach through a gateway on one port: the tunnel targets its sidecar
/// sends (README, "Security model"). Addresses come from tcp rules and https rules without hosts (the
/// original destination), names from http and https rules with hosts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayPort {
    /// Some rule admits any address.
    pub any_address: bool,
    /// Addresses admitted by the CIDRs of rules (sorted, without duplicates). An address
    /// named here is admitted even when it is loopback, link-local or in-mesh.
    pub cidrs: Vec<Cidr>,
    /// Names admitted (sorted, without duplicates).
    pub hosts: Vec<HostPattern>,
}

/// An identity's gateway allow-list, by port.
pub fn gateway_allow(id: &IdentityPlan) -> BTreeMap<u16, GatewayPort> {
    let mut out: BTreeMap<u16, GatewayPort> = BTreeMap::new();
    for r in &id.rules {
        let port = out.entry(r.port).or_default();
        if r.hosts.is_empty() {
            if r.cidrs.is_empty() {
                port.any_address = true;
            } else {
                port.cidrs.extend(r.cidrs.iter().cloned());
            }
        } else {
            port.hosts.extend(r.hosts.iter().cloned());
        }
    }
    for port in out.values_mut() {
        port.cidrs.sort();
        port.cidrs.dedup();
        port.hosts.sort();
        port.hosts.dedup();
    }
    out
}

fn gateways(checked: &Checked) -> Vec<Gateway> {
    let mut out: Vec<Gateway> = checked
        .gateways
        .iter()
        .map(|g| Gateway {
            cluster: format!("{}.{}", g.service, g.namespace),
            host: format!("{}.{}.svc.cluster.local", g.service, g.namespace),
            port: g.port,
            listen_port: g.listen_port,
            weight: g.weight,
            mode: g.mode,
            namespace: g.namespace.clone(),
            service: g.service.clone(),
            service_in_inputs: g.service_in_inputs,
            selector: g.selector.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out.dedup_by(|a, b| a.cluster == b.cluster);
    out
}

/// Lower a checked mesh (without errors) into the plan.
pub fn lower(checked: &Checked) -> Plan {
    let settings = checked.settings.clone();
    let mut identities: BTreeMap<&Identity, Vec<Arc<Rule>>> = BTreeMap::new();
    for sa in &checked.service_accounts {
        identities.entry(sa).or_default();
    }
    let mut policies: Vec<_> = checked.policies.iter().collect();
    policies.sort_by(|a, b| a.provenance.policy.cmp(&b.provenance.policy));
    for p in policies {
        for s in &p.sources {
            identities.entry(s).or_default();
        }
        if !settings.enable_egress_policy {
            continue;
        }
        for port in &p.ports {
            let rule = Arc::new(Rule {
                port: port.number,
                protocol: port.protocol,
                cidrs: p.cidrs.clone(),
                hosts: if port.protocol.class() == ProtocolClass::Tcp {
                    Vec::new()
                } else {
                    p.hosts.clone()
                },
                routes: if port.protocol == Protocol::Http {
                    p.routes.clone()
                } else {
                    None
                },
                connection_settings: p.connection_settings.clone(),
                provenance: p.provenance.clone(),
            });
            for s in &p.sources {
                identities
                    .get_mut(s)
                    .expect("inserted above")
                    .push(Arc::clone(&rule));
            }
        }
    }
    let (mesh_observe, accounts) = &checked.observe;
    let mut plans = vec![IdentityPlan {
        name: DEFAULT_IDENTITY.to_owned(),
        identity: None,
        rules: Vec::new(),
        observe: *mesh_observe,
    }];
    for (id, mut rules) in identities {
        rules.sort_by(|a, b| {
            (a.port, a.protocol, &a.provenance.policy).cmp(&(
                b.port,
                b.protocol,
                &b.provenance.policy,
            ))
        });
        plans.push(IdentityPlan {
            name: id.to_string(),
            identity: Some(id.clone()),
            rules,
            observe: accounts.get(id).copied().unwrap_or(*mesh_observe),
        });
    }
    let (mesh, gateway_addresses) = mesh(checked);
    Plan {
        mesh,
        gateway_addresses,
        identities: plans,
        gateways: gateways(checked),
        dns: checked.dns.clone(),
        matchers: checked.matchers.clone(),
        auth: checked.auth.clone(),
        settings,
    }
}
