//! The gateway leg of a connection (README, "Security model"): what the egress gateway does with a tunnel
//! the sidecar opens, computed from the same plan the gateway's allow-list is emitted from.
//! The gateway script (`templates/gateway/main.js`) implements the same rules.

use crate::model::GatewayMode;
use crate::net::{refused_address, service_names};
use crate::plan::{GatewayPort, IdentityPlan, Plan, gateway_allow};
use crate::query::question::Dest;
use std::collections::BTreeMap;
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

/// The allow-list the gateway applies to a tunnel: the identity's own in http2tunnel mode
/// (the CONNECT names it), the union of every identity's in SOCKS5 mode.
fn allow_list(plan: &Plan, id: &IdentityPlan, mode: GatewayMode) -> BTreeMap<u16, GatewayPort> {
    match mode {
        GatewayMode::Http2Tunnel => gateway_allow(id),
        GatewayMode::Socks5 => {
            let mut all: BTreeMap<u16, GatewayPort> = BTreeMap::new();
            for other in &plan.identities {
                for (port, a) in gateway_allow(other) {
                    let p = all.entry(port).or_default();
                    p.any_address |= a.any_address;
                    p.cidrs.extend(a.cidrs);
                    p.hosts.extend(a.hosts);
                }
            }
            all
        }
    }
}

/// Whether the gateway admits a tunnel to `target` (`host:port`, as the sidecar sends it) of
/// identity `id`; `Err(why)` when it refuses.
pub fn admits(
    plan: &Plan,
    id: &IdentityPlan,
    mode: GatewayMode,
    target: &str,
) -> Result<(), String> {
    let Some((host, port)) = target.rsplit_once(':') else {
        return Err(format!("`{target}` has no port"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("`{port}` is not a port"));
    };
    let list = allow_list(plan, id, mode);
    let allow = list.get(&port);
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        if allow.is_some_and(|a| a.cidrs.iter().any(|c| c.contains(ip))) {
            return Ok(());
        }
        if let Some(class) = refused_address(ip) {
            return Err(format!(
                "{ip} is {class}, and no policy's ipAddresses names it"
            ));
        }
        if let Some(d) = plan
            .mesh
            .iter()
            .chain(&plan.gateway_addresses)
            .find(|d| d.ip == ip && d.port == port)
        {
            return Err(format!("{target} is the in-mesh Service {}", d.service));
        }
        if plan.settings.enable_egress || allow.is_some_and(|a| a.any_address) {
            return Ok(());
        }
        return Err(format!("no policy lets this identity tunnel to {target}"));
    }
    if !crate::net::is_dns_name(host) {
        return Err(format!("`{}` is not a DNS name", host.escape_debug()));
    }
    if allow.is_some_and(|a| a.hosts.iter().any(|h| h.matches(host))) {
        return Ok(());
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(format!("{host} is loopback, and no policy names it"));
    }
    if plan.settings.enable_egress {
        return Ok(());
    }
    Err(format!("no policy lets this identity tunnel to {target}"))
}
