//! `iptables/outbound.rules`: the nat rules FSM's init container installs (PodLevel mode),
//! and a filter table that drops what the sidecar cannot see (UDP but DNS, other non-TCP
//! protocols); `iptables/outbound6.rules`: IPv6, dropped but `::1` while IPv6 policies are
//! unsupported (E0317). Both in iptables-restore format, applied with `--noflush`.

use crate::emit::scripts::{PROXY_UID, SIDECAR_PORT};
use crate::model::{DnsResolvers, Settings};
use std::fmt::Write as _;

const FILTER_CHAIN: &str = "EGRESSC_PROXY_OUTPUT";

/// iptables' multiport match takes at most 15 ports per rule.
const MULTIPORT_MAX: usize = 15;

pub fn outbound_rules(s: &Settings, dns: &DnsResolvers) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# egressc {}: outbound interception for the sidecar.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        r,
        "# Apply inside the workload's network namespace: iptables-restore --noflush < outbound.rules"
    );
    r.push_str("*nat\n");
    r.push_str(":EGRESSC_PROXY_OUTBOUND - [0:0]\n");
    r.push_str(":EGRESSC_PROXY_OUT_REDIRECT - [0:0]\n");
    let _ = writeln!(
        r,
        "-A EGRESSC_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-ports {SIDECAR_PORT}"
    );
    r.push_str("-A OUTPUT -p tcp -j EGRESSC_PROXY_OUTBOUND\n");
    r.push_str("# the proxy's own connections\n");
    let _ = writeln!(
        r,
        "-A EGRESSC_PROXY_OUTBOUND -m owner --uid-owner {PROXY_UID} -j RETURN"
    );
    r.push_str("# loopback 127.0.0.1 only, as FSM (the rest of 127.0.0.0/8 stays intercepted)\n");
    r.push_str("-A EGRESSC_PROXY_OUTBOUND -d 127.0.0.1/32 -j RETURN\n");
    if !s.outbound_ip_range_exclusions.is_empty() {
        r.push_str("# MeshConfig traffic.outboundIPRangeExclusionList\n");
    }
    for c in &s.outbound_ip_range_exclusions {
        let _ = writeln!(r, "-A EGRESSC_PROXY_OUTBOUND -d {c} -j RETURN");
    }
    if !s.outbound_port_exclusions.is_empty() {
        r.push_str("# MeshConfig traffic.outboundPortExclusionList\n");
    }
    for chunk in s.outbound_port_exclusions.chunks(MULTIPORT_MAX) {
        let ports: Vec<String> = chunk.iter().map(u16::to_string).collect();
        let _ = writeln!(
            r,
            "-A EGRESSC_PROXY_OUTBOUND -p tcp -m multiport --dports {} -j RETURN",
            ports.join(",")
        );
    }
    if s.outbound_ip_range_inclusions.is_empty() {
        r.push_str("-A EGRESSC_PROXY_OUTBOUND -j EGRESSC_PROXY_OUT_REDIRECT\n");
    } else {
        r.push_str(
            "# MeshConfig traffic.outboundIPRangeInclusionList: only these are redirected\n",
        );
        for c in &s.outbound_ip_range_inclusions {
            let _ = writeln!(
                r,
                "-A EGRESSC_PROXY_OUTBOUND -d {c} -j EGRESSC_PROXY_OUT_REDIRECT"
            );
        }
        r.push_str("-A EGRESSC_PROXY_OUTBOUND -j RETURN\n");
    }
    r.push_str("COMMIT\n");
    filter_table(&mut r, s, dns);
    r
}

/// The rules every filter table starts with: TCP is the nat table's (v4) and the exemptions
/// every protocol shares.
fn filter_head(r: &mut String, loopback: &str) {
    r.push_str("*filter\n");
    let _ = writeln!(r, ":{FILTER_CHAIN} - [0:0]");
    let _ = writeln!(r, "-A OUTPUT -j {FILTER_CHAIN}");
    r.push_str("# the proxy's own traffic\n");
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -m owner --uid-owner {PROXY_UID} -j RETURN"
    );
    r.push_str("# loopback never leaves the pod\n");
    let _ = writeln!(r, "-A {FILTER_CHAIN} -d {loopback} -j RETURN");
    r.push_str("# replies of established flows (the workload's own servers)\n");
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
    );
}

fn filter_table(r: &mut String, s: &Settings, dns: &DnsResolvers) {
    r.push_str(
        "# What the sidecar cannot see does not leave: UDP but DNS, and every protocol but TCP.\n",
    );
    filter_head(r, "127.0.0.0/8");
    let _ = writeln!(r, "-A {FILTER_CHAIN} -p tcp -j RETURN");
    if !s.outbound_ip_range_exclusions.is_empty() {
        r.push_str("# MeshConfig traffic.outboundIPRangeExclusionList (every protocol)\n");
    }
    for c in &s.outbound_ip_range_exclusions {
        let _ = writeln!(r, "-A {FILTER_CHAIN} -d {c} -j RETURN");
    }
    match dns {
        DnsResolvers::Flag(ips) => {
            r.push_str("# DNS to the resolvers named by --dns\n");
            for ip in ips {
                let _ = writeln!(
                    r,
                    "-A {FILTER_CHAIN} -d {ip}/32 -p udp --dport 53 -j RETURN"
                );
            }
        }
        DnsResolvers::KubeDns(ip) => {
            r.push_str("# DNS to the Service kube-system/kube-dns\n");
            let _ = writeln!(
                r,
                "-A {FILTER_CHAIN} -d {ip}/32 -p udp --dport 53 -j RETURN"
            );
        }
        DnsResolvers::AnyAddress => {
            r.push_str("# DNS to any address: no --dns given and no Service kube-system/kube-dns in the inputs\n");
            let _ = writeln!(r, "-A {FILTER_CHAIN} -p udp --dport 53 -j RETURN");
        }
    }
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -p udp -j REJECT --reject-with icmp-port-unreachable"
    );
    let _ = writeln!(r, "-A {FILTER_CHAIN} -j DROP");
    r.push_str("COMMIT\n");
}

/// `iptables/outbound6.rules`: workload IPv6 is dropped but `::1`.
pub fn outbound6_rules() -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# egressc {}: IPv6 egress policies are not supported yet (E0317), so workload IPv6 does not leave.",
        env!("CARGO_PKG_VERSION")
    );
    r.push_str(
        "# Apply inside the workload's network namespace: ip6tables-restore --noflush < outbound6.rules\n",
    );
    filter_head(&mut r, "::1/128");
    r.push_str("# neighbour discovery, so that the proxy's own IPv6 works\n");
    for t in [
        "router-solicitation",
        "neighbour-solicitation",
        "neighbour-advertisement",
    ] {
        let _ = writeln!(
            r,
            "-A {FILTER_CHAIN} -p ipv6-icmp --icmpv6-type {t} -j RETURN"
        );
    }
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -p tcp -j REJECT --reject-with tcp-reset"
    );
    let _ = writeln!(r, "-A {FILTER_CHAIN} -j DROP");
    r.push_str("COMMIT\n");
    r
}
