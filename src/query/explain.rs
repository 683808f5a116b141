//! Human text for `egressc explain` (JSON comes from the same structs via serde).

use crate::model::GatewayMode;
use crate::query::question::{Outcome, Query, Verdict, Via};
use crate::query::reach::Reach;
use std::fmt::Write as _;

/// How a connection leaves: `direct`, or the gateway leg (sidecar → gateway → target when
/// the target is known).
fn via_text(via: &[Via], target: Option<&str>) -> String {
    match via {
        [Via::Direct] | [] => "direct".to_owned(),
        gws => gws
            .iter()
            .map(|g| match g {
                Via::Direct => "direct".to_owned(),
                Via::Gateway {
                    address,
                    mode,
                    identity,
                } => {
                    let mode = match (mode, *identity) {
                        (GatewayMode::Socks5, "certificate") => {
                            "socks5 over mTLS, this identity's list"
                        }
                        (GatewayMode::Http2Tunnel, "certificate") => {
                            "http2tunnel over mTLS, this identity's list"
                        }
                        (GatewayMode::Socks5, _) => "socks5, every identity's list: it names none",
                        (GatewayMode::Http2Tunnel, _) => {
                            "http2tunnel, the list of the identity its header names"
                        }
                    };
                    match target {
                        Some(t) => format!("sidecar → gateway {address} ({mode}) → {t}"),
                        None => format!("gateway {address} ({mode})"),
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(", or "),
    }
}

pub fn render_verdict(v: &Verdict, q: &Query) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "identity:    {}", v.identity);
    let mut dest = v.destination.clone();
    if let Some(sni) = &q.sni {
        let _ = write!(dest, " (SNI {sni})");
    }
    if let Some(h) = &q.http {
        let host = h
            .host
            .as_deref()
            .map(|h| format!(", Host {h}"))
            .unwrap_or_default();
        let _ = write!(dest, " ({} {}{host})", h.method, h.path);
    }
    let _ = writeln!(s, "destination: {dest}");
    let verdict = match (&v.verdict, &v.allowed_by) {
        (Outcome::Allowed, Some(r)) => {
            let mut t = format!("allowed by Egress {} ({}:{})", r.policy, r.file, r.line);
            if let Some(g) = &r.route_group {
                let _ = write!(t, ", route {g}");
            }
            t
        }
        (Outcome::InMesh, _) => format!("in-mesh ({})", v.service.as_deref().unwrap_or("")),
        (o, _) => format!("{} — {}", o.as_str(), v.reason),
    };
    let _ = writeln!(s, "verdict:     {verdict}");
    if let Some(t) = &v.target {
        let _ = writeln!(s, "target:      {t}");
    }
    if let Some(via) = &v.via {
        let _ = writeln!(s, "route out:   {}", via_text(via, v.target.as_deref()));
    }
    if !v.misses.is_empty() && !v.verdict.is_allowed()
        || (!v.misses.is_empty() && v.verdict == Outcome::Passthrough)
    {
        let _ = writeln!(s, "nearest misses:");
        for m in &v.misses {
            let _ = writeln!(
                s,
                "  - Egress {} ({}:{}, {}): {}",
                m.rule.policy,
                m.rule.file,
                m.rule.line,
                m.rule.protocol.as_str(),
                m.why
            );
        }
    }
    if !v.other_identities.is_empty() {
        let _ = writeln!(s, "would be allowed for:");
        for (id, r) in &v.other_identities {
            let _ = writeln!(s, "  - {id} by Egress {} ({}:{})", r.policy, r.file, r.line);
        }
    }
    s
}

pub fn render_reach(r: &Reach, asked: &str) -> String {
    let mut s = String::new();
    if r.identity != asked {
        let _ = writeln!(
            s,
            "identity:    {asked} (not in the inputs: runs the `{}` config)",
            r.identity
        );
    } else {
        let _ = writeln!(s, "identity:    {}", r.identity);
    }
    let _ = writeln!(
        s,
        "passthrough: {}",
        if r.passthrough {
            "on (any destination)"
        } else {
            "off"
        }
    );
    if r.audit {
        let _ = writeln!(
            s,
            "enforcement: audit (what no rule allows goes out as passthrough would, and is logged as `audit`)"
        );
    }
    if !r.policies_enforced {
        let _ = writeln!(
            s,
            "policies:    ignored (featureFlags.enableEgressPolicy is false)"
        );
    }
    let _ = writeln!(s, "route out:   {}", via_text(&r.via, None));
    let _ = writeln!(s, "in-mesh Services: always, direct");
    if r.rules.is_empty() {
        let _ = writeln!(s, "rules:       none");
    } else {
        let _ = writeln!(s, "rules:");
    }
    for rule in &r.rules {
        let mut what = Vec::new();
        if !rule.hosts.is_empty() {
            what.push(format!("hosts {}", rule.hosts.join(", ")));
        }
        if !rule.cidrs.is_empty() {
            what.push(format!("addresses {}", rule.cidrs.join(", ")));
        }
        if what.is_empty() {
            what.push("any address".into());
        }
        if let Some(routes) = &rule.routes {
            what.push(format!("routes {}", routes.join(" | ")));
        }
        let _ = writeln!(
            s,
            "  - {}/{}: {}  [Egress {} at {}:{}]",
            rule.port,
            rule.rule.protocol.as_str(),
            what.join("; "),
            rule.rule.policy,
            rule.rule.file,
            rule.rule.line
        );
    }
    s
}
