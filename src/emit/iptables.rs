//! `iptables/outbound.rules`: the nat rules FSM's init container installs (PodLevel mode),
//! in iptables-restore format, to be applied with `iptables-restore --noflush`.

use crate::emit::scripts::{PROXY_UID, SIDECAR_PORT};
use crate::model::Settings;
use std::fmt::Write as _;

/// iptables' multiport match takes at most 15 ports per rule.
const MULTIPORT_MAX: usize = 15;

pub fn outbound_rules(s: &Settings) -> String {
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
    r
}
