//! `iptables/outbound.rules`: the nat rules FSM's init container installs (PodLevel mode),
//! and a filter table that drops what the sidecar cannot see (UDP but DNS, other non-TCP
//! protocols); `iptables/outbound6.rules`: IPv6, dropped but `::1` while IPv6 policies are
//! unsupported (E0317). Both in iptables-restore format, applied with `--noflush` by
//! `iptables/init.sh` (the init container's script), which also fills the DNS chains with the
//! pod's resolv.conf nameservers when the build names no resolver.

use crate::emit::scripts::{PROXY_UID, SIDECAR_PORT};
use crate::model::{DnsResolvers, Settings};
use std::fmt::Write as _;

const FILTER_CHAIN: &str = "EGRESSC_PROXY_OUTPUT";
/// UDP to port 53: RETURN for a resolver, else rejected (filter table).
const DNS_CHAIN: &str = "EGRESSC_PROXY_DNS";
/// The comment that tells init.sh to add the pod's nameservers (it looks for it).
const RESOLV_CONF_MARK: &str = "# no --dns and no Service kube-system/kube-dns in the inputs";
/// TCP to port 53: ACCEPT (not redirected) for a resolver, else on to the sidecar (nat table).
const DNS_TCP_CHAIN: &str = "EGRESSC_PROXY_DNS_TCP";

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
        "# Applied inside the workload's network namespace by init.sh (sh init.sh), with the DNS resolvers and outbound6.rules"
    );
    r.push_str("*nat\n");
    r.push_str(":EGRESSC_PROXY_OUTBOUND - [0:0]\n");
    r.push_str(":EGRESSC_PROXY_OUT_REDIRECT - [0:0]\n");
    let _ = writeln!(r, ":{DNS_TCP_CHAIN} - [0:0]");
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
    r.push_str(
        "# DNS over TCP to the resolvers goes out directly; to another address, to the sidecar\n",
    );
    let _ = writeln!(
        r,
        "-A EGRESSC_PROXY_OUTBOUND -p tcp --dport 53 -j {DNS_TCP_CHAIN}"
    );
    resolver_entries(&mut r, dns, DNS_TCP_CHAIN, "-p tcp -j ACCEPT");
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
fn filter_head(r: &mut String, loopback: &str, chains: &[&str]) {
    r.push_str("*filter\n");
    for chain in std::iter::once(&FILTER_CHAIN).chain(chains) {
        let _ = writeln!(r, ":{chain} - [0:0]");
    }
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
    filter_head(r, "127.0.0.0/8", &[DNS_CHAIN]);
    let _ = writeln!(r, "-A {FILTER_CHAIN} -p tcp -j RETURN");
    if !s.outbound_ip_range_exclusions.is_empty() {
        r.push_str("# MeshConfig traffic.outboundIPRangeExclusionList (every protocol)\n");
    }
    for c in &s.outbound_ip_range_exclusions {
        let _ = writeln!(r, "-A {FILTER_CHAIN} -d {c} -j RETURN");
    }
    r.push_str(
        "# UDP DNS: the resolvers return from the DNS chain, any other address is rejected there\n",
    );
    let _ = writeln!(r, "-A {FILTER_CHAIN} -p udp --dport 53 -j {DNS_CHAIN}");
    let _ = writeln!(r, "-A {FILTER_CHAIN} -p udp --dport 53 -j RETURN");
    resolver_entries(r, dns, DNS_CHAIN, "-p udp -j RETURN");
    let _ = writeln!(
        r,
        "-A {DNS_CHAIN} -j REJECT --reject-with icmp-port-unreachable"
    );
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -p udp -j REJECT --reject-with icmp-port-unreachable"
    );
    let _ = writeln!(r, "-A {FILTER_CHAIN} -j DROP");
    r.push_str("COMMIT\n");
}

/// A DNS chain's entry per resolver the build names; for the pod's resolv.conf, a comment
/// (init.sh inserts them).
fn resolver_entries(r: &mut String, dns: &DnsResolvers, chain: &str, target: &str) {
    let ips = match dns {
        DnsResolvers::Flag(ips) => {
            r.push_str("# the resolvers named by --dns\n");
            ips.as_slice()
        }
        DnsResolvers::KubeDns(ip) => {
            r.push_str("# the Service kube-system/kube-dns\n");
            std::slice::from_ref(ip)
        }
        DnsResolvers::PodResolvConf => {
            let _ = writeln!(
                r,
                "{RESOLV_CONF_MARK}: init.sh adds the pod's /etc/resolv.conf IPv4 nameservers to {chain}"
            );
            &[]
        }
    };
    for ip in ips {
        let _ = writeln!(r, "-A {chain} -d {ip}/32 {target}");
    }
}

/// `iptables/outbound6.rules`: workload IPv6 is dropped but `::1` and DNS (UDP and TCP) to the
/// pod's IPv6 nameservers, which init.sh adds when the build names no resolver (the resolvers
/// a build names are IPv4).
pub fn outbound6_rules(dns: &DnsResolvers) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# egressc {}: IPv6 egress policies are not supported yet (E0317), so workload IPv6 does not leave.",
        env!("CARGO_PKG_VERSION")
    );
    r.push_str(
        "# Applied inside the workload's network namespace by init.sh (sh init.sh) where the pod has IPv6\n",
    );
    filter_head(&mut r, "::1/128", &[DNS_CHAIN]);
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
    r.push_str("# DNS (no redirect for IPv6: TCP too): the resolvers return from the DNS chain\n");
    for proto in ["udp", "tcp"] {
        let _ = writeln!(r, "-A {FILTER_CHAIN} -p {proto} --dport 53 -j {DNS_CHAIN}");
        let _ = writeln!(r, "-A {FILTER_CHAIN} -p {proto} --dport 53 -j RETURN");
    }
    if *dns == DnsResolvers::PodResolvConf {
        let _ = writeln!(
            r,
            "{RESOLV_CONF_MARK}: init.sh adds the pod's /etc/resolv.conf IPv6 nameservers to {DNS_CHAIN}"
        );
    } else {
        r.push_str("# the build names IPv4 resolvers only: no IPv6 DNS\n");
    }
    let _ = writeln!(r, "-A {DNS_CHAIN} -p tcp -j REJECT --reject-with tcp-reset");
    let _ = writeln!(r, "-A {DNS_CHAIN} -j REJECT");
    let _ = writeln!(
        r,
        "-A {FILTER_CHAIN} -p tcp -j REJECT --reject-with tcp-reset"
    );
    let _ = writeln!(r, "-A {FILTER_CHAIN} -j DROP");
    r.push_str("COMMIT\n");
    r
}
