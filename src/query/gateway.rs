//! The gateway leg of a connection (README, "Security model"): what the egress gateway does with a tunnel
//! the sidecar opens, computed from the same plan the gateway's allow-list is emitted from.
//! The gateway script (`templates/gateway/main.js`) implements the same rules.

use crate::model::{AuthMode, GatewayAuth, GatewayMode};
use crate::net::{parse_port, refused_address, service_names};
use crate::plan::{GatewayPort, IdentityPlan, Plan, gateway_allow};
use crate::query::question::{Dest, Via};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The gateway Service a destination names, if any (`namespace/name`): its clusterIP (any
/// port), or one of its DNS names on its port.
pub fn gateway_service(plan: &Plan, dest: &Dest, port: u16) -> Option<String> {
    match dest {
        Dest::Ip(ip) => plan
            .gateway_addresses
            .iter()
            .find(|d| d.ip == *ip)
            .map(|d| d.service.clone()),
        Dest::Name(name) => plan.gateways.iter().find_map(|g| {
            let (svc, ns) = g.cluster.split_once('.')?;
            (g.port == port && service_names(svc, ns).iter().any(|n| n == name))
                .then(|| format!("{ns}/{svc}"))
        }),
    }
}

/// How a connection leaves: directly, or through each gateway (whose list it applies).
pub fn via(plan: &Plan) -> Vec<Via> {
    if plan.gateways.is_empty() {
        vec![Via::Direct]
    } else {
        plan.gateways
            .iter()
            .map(|g| Via::Gateway {
                address: format!("{}:{}", g.host, g.port),
                mode: g.mode,
                identity: match plan.auth.mode {
                    AuthMode::Mtls => "certificate",
                    _ if g.mode == GatewayMode::Socks5 => "union",
                    _ => "header",
                },
            })
            .collect()
    }
}

/// What the gateway admits, as its config gives it to the script (`templates/gateway/admit.js`
/// decides the same from `gateway/config.json`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lists {
    /// `traffic.enableEgress`.
    pub passthrough: bool,
    /// ServiceIdentity → port → what its tunnels may reach.
    pub identities: BTreeMap<String, BTreeMap<u16, GatewayPort>>,
    /// In-mesh and gateway `clusterIP:port` → Service.
    pub refused: BTreeMap<(Ipv4Addr, u16), String>,
    /// The gateway itself, on any port: its Services' clusterIPs, the pod's addresses and the
    /// address a tunnel arrived on (the last two known only at run time).
    pub own: BTreeSet<Ipv4Addr>,
    /// How the gateway learns who is calling.
    pub auth: GatewayAuth,
    /// ServiceIdentities in audit mode: admitted as under passthrough.
    pub audit: BTreeSet<String>,
}

impl Lists {
    pub fn of(plan: &Plan) -> Lists {
        Lists {
            passthrough: plan.settings.enable_egress,
            identities: plan
                .identities
                .iter()
                .map(|id| (id.service_identity(), gateway_allow(id)))
                .filter(|(_, ports)| !ports.is_empty() || plan.auth.mode == AuthMode::Mtls)
                .collect(),
            refused: plan
                .mesh
                .iter()
                .chain(&plan.gateway_addresses)
                .map(|d| ((d.ip, d.port), d.service.clone()))
                .collect(),
            own: plan.gateway_addresses.iter().map(|d| d.ip).collect(),
            auth: plan.auth.clone(),
            audit: plan.audited().collect(),
        }
    }

    /// The list a tunnel gets: its identity's (its certificate's under mtls, the header of an
    /// http2tunnel under header; under mtls one not listed gets `_default`'s), or the union
    /// of every identity's (`None`: SOCKS5 under header names none).
    fn list(&self, identity: Option<&str>) -> BTreeMap<u16, GatewayPort> {
        match identity {
            Some(id) => self
                .identities
                .get(id)
                .or_else(|| {
                    let mtls = self.auth.mode == AuthMode::Mtls;
                    mtls.then(|| self.identities.get(crate::plan::DEFAULT_IDENTITY))
                        .flatten()
                })
                .cloned()
                .unwrap_or_default(),
            None => {
                let mut all: BTreeMap<u16, GatewayPort> = BTreeMap::new();
                for (port, a) in self.identities.values().flatten() {
                    let p = all.entry(*port).or_default();
                    p.any_address |= a.any_address;
                    p.cidrs.extend(a.cidrs.iter().copied());
                    p.hosts.extend(a.hosts.iter().cloned());
                }
                all
            }
        }
    }
}

/// Why the gateway refuses an address on `port` under an allow-list entry, for a tunnel that
/// arrived on one of `own` (with the lists' own addresses, the gateway itself), if it does.
pub fn address_refusal(
    lists: &Lists,
    allow: Option<&GatewayPort>,
    ip: Ipv4Addr,
    port: u16,
    own: &[Ipv4Addr],
) -> Option<String> {
    if own.contains(&ip) || lists.own.contains(&ip) {
        return Some(format!("{ip} is the gateway itself"));
    }
    if allow.is_some_and(|a| a.cidrs.iter().any(|c| c.contains(ip))) {
        return None;
    }
    if let Some(class) = refused_address(ip) {
        return Some(format!(
            "{ip} is {class}, and no policy's ipAddresses names it"
        ));
    }
    lists
        .refused
        .get(&(ip, port))
        .map(|service| format!("{ip}:{port} is the in-mesh Service {service}"))
}

/// Whether the gateway admits a tunnel to `target` (`host:port`, as the sidecar sends it) of
/// `identity` (`None`: SOCKS5) that arrived on one of `own`; `Err(why)` when it refuses. A
/// name's addresses are checked when it resolves ([`address_refusal`]), which explain cannot do.
pub fn admit(
    lists: &Lists,
    identity: Option<&str>,
    target: &str,
    own: &[Ipv4Addr],
) -> Result<(), String> {
    let Some((host, port)) = target.rsplit_once(':').filter(|(h, _)| !h.is_empty()) else {
        return Err(format!("`{}` has no port", target.escape_debug()));
    };
    let Some(port) = parse_port(port) else {
        return Err(format!("`{}` is not a port", port.escape_debug()));
    };
    let host = host.to_ascii_lowercase();
    let list = lists.list(identity);
    // Passthrough, or an identity in audit mode (under mtls one not listed is `_default`;
    // SOCKS5 under header names none: any).
    let passthrough = lists.passthrough
        || match identity {
            Some(id)
                if lists.identities.contains_key(id) || lists.auth.mode == AuthMode::Header =>
            {
                lists.audit.contains(id)
            }
            Some(_) => lists.audit.contains(crate::plan::DEFAULT_IDENTITY),
            None => !lists.audit.is_empty(),
        };
    let allow = list.get(&port);
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        if let Some(why) = address_refusal(lists, allow, ip, port, own) {
            return Err(why);
        }
        let named = allow.is_some_and(|a| a.cidrs.iter().any(|c| c.contains(ip)));
        if named || passthrough || allow.is_some_and(|a| a.any_address) {
            return Ok(());
        }
        return Err(format!("no policy lets this identity tunnel to {target}"));
    }
    if !crate::net::is_dns_name(&host) {
        return Err(format!("`{}` is not a DNS name", host.escape_debug()));
    }
    if allow.is_some_and(|a| a.hosts.iter().any(|h| h.matches(&host))) {
        return Ok(());
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(format!("{host} is loopback, and no policy names it"));
    }
    if passthrough {
        return Ok(());
    }
    Err(format!("no policy lets this identity tunnel to {target}"))
}

/// Whether the gateway admits a tunnel the sidecar of `id` opens to `target` in `mode` (the
/// addresses of the gateway's pod are unknown offline: its Services' are checked).
pub fn admits(
    plan: &Plan,
    id: &IdentityPlan,
    mode: GatewayMode,
    target: &str,
) -> Result<(), String> {
    let union = plan.auth.socks_gets_union() && mode == GatewayMode::Socks5;
    let identity = (!union).then(|| id.service_identity());
    admit(&Lists::of(plan), identity.as_deref(), target, &[])
}
