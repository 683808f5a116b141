//! What the generated iptables rules decide before the sidecar sees a connection (step 0 of
//! [`crate::query::eval::evaluate`]): exclusions, the inclusion list, 127.0.0.1 and DNS over
//! TCP to the resolvers.

use crate::model::{DnsResolvers, Settings};
use crate::query::question::{Dest, Outcome, Query, Verdict};
use std::net::Ipv4Addr;

/// The resolvers the build names, if it names them (else init.sh reads the pod's
/// resolv.conf, which explain cannot see).
fn named_resolvers(dns: &DnsResolvers) -> Option<&[Ipv4Addr]> {
    match dns {
        DnsResolvers::Flag(ips) => Some(ips),
        DnsResolvers::KubeDns(ip) => Some(std::slice::from_ref(ip)),
        DnsResolvers::PodResolvConf => None,
    }
}

/// Why the generated iptables rules never send this connection to the sidecar, if they do
/// not (the order of `iptables/outbound.rules`). A name gives no address offline: only the
/// port exclusions can decide it.
pub fn not_intercepted(s: &Settings, dns: &DnsResolvers, q: &Query) -> Option<String> {
    if let Dest::Ip(ip) = &q.dest {
        if *ip == Ipv4Addr::LOCALHOST {
            return Some("127.0.0.1 is never redirected".into());
        }
        if q.port == 53 && named_resolvers(dns).is_some_and(|v| v.contains(ip)) {
            return Some(format!(
                "{ip} is a DNS resolver, and DNS over TCP to it is never redirected"
            ));
        }
        if let Some(c) = s
            .outbound_ip_range_exclusions
            .iter()
            .find(|c| c.contains(*ip))
        {
            return Some(format!("{ip} is in outboundIPRangeExclusionList ({c})"));
        }
    }
    if s.outbound_port_exclusions.contains(&q.port) {
        return Some(format!("port {} is in outboundPortExclusionList", q.port));
    }
    if let Dest::Ip(ip) = &q.dest
        && !s.outbound_ip_range_inclusions.is_empty()
        && !s
            .outbound_ip_range_inclusions
            .iter()
            .any(|c| c.contains(*ip))
    {
        return Some(format!("{ip} is outside outboundIPRangeInclusionList"));
    }
    None
}

/// With the resolvers left to the pod's resolv.conf, a TCP port 53 verdict says what it would
/// be for one of them (explain cannot see the file).
pub fn note_pod_resolvers(plan: &crate::plan::Plan, q: &Query, v: &mut Verdict) {
    if let Dest::Ip(ip) = &q.dest
        && q.port == 53
        && v.verdict != Outcome::NotIntercepted
        && named_resolvers(&plan.dns).is_none()
    {
        v.reason = format!(
            "{}; unless {ip} is a nameserver of the pod's /etc/resolv.conf: then it is not \
             intercepted (give --dns to name the resolvers)",
            v.reason
        );
    }
}
