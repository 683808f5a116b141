//! The one place where a diff becomes text: the sentences every format shares and the human
//! form (grouped by identity, widening first) here; `markdown` (a table for a pull-request
//! comment) and `json` (one object, stable field names) beside it.

pub mod json;
pub mod markdown;

use crate::diff::access::{Atom, Dest, Key, RouteAtom};
use crate::diff::{AccessEntry, Change, Diff, Effect, IdentityDiff, MeshEntry, MeshWide, Presence};
use crate::model::{GatewayMode, ProtocolClass, Provenance};
use crate::plan::Gateway;
use std::fmt::Write as _;

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn effect_str(e: Effect) -> &'static str {
    match e {
        Effect::Widens => "widens",
        Effect::Neutral => "neutral",
        Effect::Narrows => "narrows",
    }
}

pub fn change_str(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
    }
}

/// `api.example.com:443`, `10.0.0.0/8 port 5432`, `any address, port 5432`.
pub fn dest_text(key: &Key) -> String {
    match &key.dest {
        Dest::Host(h) => format!("{h}:{}", key.port),
        Dest::Cidr(c) => format!("{c} port {}", key.port),
        Dest::AnyAddress => format!("any address, port {}", key.port),
    }
}

/// `https api.example.com:443`
pub fn access_text(key: &Key) -> String {
    format!("{} {}", key.protocol.as_str(), dest_text(key))
}

/// `GET,HEAD /items/[0-9]+ (header x-tenant ~ ^t-[a-z]+$)`
pub fn route_text(r: &RouteAtom) -> String {
    let methods = if r.methods.is_empty() {
        "any method".to_owned()
    } else {
        r.methods.join(",")
    };
    let mut s = format!("{methods} {}", r.path);
    for (name, value) in &r.headers {
        let _ = write!(s, " (header {name} ~ {value})");
    }
    s
}

/// The constraints of a tuple beyond its destination: the route, the dialled address.
pub fn constraints(a: &Atom) -> Option<String> {
    let mut parts = Vec::new();
    match &a.route {
        Some(r) => parts.push(route_text(r)),
        None if a.key.protocol == ProtocolClass::Http => parts.push("any request".to_owned()),
        None => {}
    }
    if matches!(a.key.dest, Dest::Host(_)) && !a.addresses.is_empty() {
        let list: Vec<String> = a.addresses.iter().map(|c| c.to_string()).collect();
        parts.push(format!("dialled address in {}", list.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

pub fn prov_text(p: &Provenance, kind: &str) -> String {
    format!("{kind} {} ({}:{})", p.policy, p.file, p.line)
}

pub fn by_text(by: &[Provenance]) -> String {
    let v: Vec<String> = by.iter().map(|p| prov_text(p, "Egress")).collect();
    v.join(", ")
}

/// A tuple of one side: its constraints and the policies granting it.
pub fn grant_text(a: &Atom) -> String {
    match constraints(a) {
        Some(c) => format!("{c} — {}", by_text(&a.by)),
        None => by_text(&a.by),
    }
}

/// A tuple of another destination: its destination and constraints.
pub fn tuple_text(a: &Atom) -> String {
    match constraints(a) {
        Some(c) => format!("{} ({c})", access_text(&a.key)),
        None => access_text(&a.key),
    }
}

/// Why a SOCKS5 gateway widens.
const SOCKS_UNION: &str = "SOCKS5 names no identity, so the gateway admits the union of every identity's allow-list: a pod that reaches it directly gets what any identity may";

pub fn gateway_text(g: &Gateway) -> String {
    format!(
        "{} at {}:{}, weight {}",
        g.mode.as_str(),
        g.host,
        g.port,
        g.weight
    )
}

pub fn cidrs_text(v: &[crate::net::Cidr]) -> String {
    let v: Vec<String> = v.iter().map(|c| c.to_string()).collect();
    v.join(", ")
}

pub fn dns_text(v: &Option<Vec<std::net::Ipv4Addr>>) -> String {
    match v {
        None => "the pod's /etc/resolv.conf nameservers".to_owned(),
        Some(ips) => {
            let v: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
            v.join(", ")
        }
    }
}

/// One sentence for a mesh-wide entry.
pub fn mesh_text(e: &MeshEntry) -> String {
    let added = e.change == Change::Added;
    match &e.what {
        MeshWide::Passthrough { head: true } => {
            "passthrough on (traffic.enableEgress: false → true): every identity may now reach anything".into()
        }
        MeshWide::Passthrough { head: false } => {
            "passthrough off (traffic.enableEgress: true → false): identities may now reach only what their rules allow".into()
        }
        MeshWide::Policies { head: true } => {
            "Egress policies switched on (featureFlags.enableEgressPolicy: false → true)".into()
        }
        MeshWide::Policies { head: false } => {
            "Egress policies switched off (featureFlags.enableEgressPolicy: true → false): no rule applies".into()
        }
        MeshWide::Gateway {
            cluster,
            base,
            head,
        } => match (base, head) {
            (None, Some(h)) => {
                let why = if e.effect == Effect::Widens && h.mode == GatewayMode::Socks5 {
                    SOCKS_UNION
                } else if e.effect == Effect::Narrows {
                    "egress now leaves through it, and it refuses loopback, link-local and in-mesh targets"
                } else {
                    "egress may now leave through it"
                };
                format!("gateway {cluster} added ({}): {why}", gateway_text(h))
            }
            (Some(b), None) => {
                let why = if e.effect == Effect::Widens {
                    ": egress now leaves the sidecars directly, without the gateway's refusals of loopback, link-local and in-mesh targets"
                } else {
                    ""
                };
                format!("gateway {cluster} removed (was {}){why}", gateway_text(b))
            }
            (Some(b), Some(h)) => {
                let mut what = Vec::new();
                if b.mode != h.mode {
                    what.push(format!("mode {} → {}", b.mode.as_str(), h.mode.as_str()));
                }
                if (&b.host, b.port) != (&h.host, h.port) {
                    what.push(format!("address {}:{} → {}:{}", b.host, b.port, h.host, h.port));
                }
                if b.weight != h.weight {
                    what.push(format!("weight {} → {}", b.weight, h.weight));
                }
                if b.listen_port != h.listen_port {
                    what.push(format!("listens on {} → {}", b.listen_port, h.listen_port));
                }
                let why = if e.effect == Effect::Widens && h.mode == GatewayMode::Socks5 {
                    format!(": {SOCKS_UNION}")
                } else {
                    String::new()
                };
                format!("gateway {cluster}: {}{why}", what.join(", "))
            }
            (None, None) => format!("gateway {cluster}"),
        },
        MeshWide::Excluded(c) if added => format!(
            "outboundIPRangeExclusionList: {c} added: traffic to it is no longer intercepted (it leaves directly; no policy applies), and UDP, ICMP and every other protocol may reach it"
        ),
        MeshWide::Excluded(c) => {
            format!("outboundIPRangeExclusionList: {c} removed: traffic to it is intercepted again")
        }
        MeshWide::InclusionList(v) if added => format!(
            "outboundIPRangeInclusionList set to {}: traffic to any other address is no longer intercepted",
            cidrs_text(v)
        ),
        MeshWide::InclusionList(v) => format!(
            "outboundIPRangeInclusionList ({}) removed: every address is intercepted again",
            cidrs_text(v)
        ),
        MeshWide::Included(c) if added => {
            format!("outboundIPRangeInclusionList: {c} added: traffic to it is now intercepted")
        }
        MeshWide::Included(c) => format!(
            "outboundIPRangeInclusionList: {c} removed: traffic to it is no longer intercepted"
        ),
        MeshWide::ExcludedPort(p) if added => format!(
            "outboundPortExclusionList: port {p} added: connections to it are no longer intercepted"
        ),
        MeshWide::ExcludedPort(p) => format!(
            "outboundPortExclusionList: port {p} removed: connections to it are intercepted again"
        ),
        MeshWide::InMesh { ip, port, service } if added => format!(
            "in-mesh destination {ip}:{port} added (Service {service}): every identity may now reach it; no policy applies"
        ),
        MeshWide::InMesh { ip, port, service } => format!(
            "in-mesh destination {ip}:{port} removed (Service {service}): policies decide it again"
        ),
        MeshWide::Dns { .. } | MeshWide::SocksUnion { .. } | MeshWide::Enforcement { .. } => {
            reach_text(&e.what)
        }
    }
}

/// The subjects that are not MeshConfig fields: DNS and the SOCKS5 union.
fn reach_text(what: &MeshWide) -> String {
    match what {
        MeshWide::Dns { base, head } => format!(
            "DNS resolvers the workload may reach: {} → {}",
            dns_text(base),
            dns_text(head)
        ),
        MeshWide::SocksUnion { identities } => format!(
            "through the SOCKS5 gateway every identity gains what {} gain{}: SOCKS5 names no identity, so the gateway admits the union of every allow-list",
            identities.join(", "),
            if identities.len() == 1 { "s" } else { "" }
        ),
        MeshWide::Enforcement {
            identity,
            audit: true,
        } => format!(
            "enforcement of {identity}: enforce → audit: what no rule allows now goes out (logged as `audit`)"
        ),
        MeshWide::Enforcement {
            identity,
            audit: false,
        } => format!(
            "enforcement of {identity}: audit → enforce: what no rule allows is denied again"
        ),
        _ => String::new(),
    }
}

/// Whether an entry comes from the MeshConfig (its file:line is worth showing).
pub fn from_mesh_config(e: &MeshEntry) -> bool {
    !matches!(
        e.what,
        MeshWide::Gateway { .. }
            | MeshWide::InMesh { .. }
            | MeshWide::Dns { .. }
            | MeshWide::SocksUnion { .. }
            | MeshWide::Enforcement { .. }
    )
}

pub fn mesh_config_text(p: &Option<Provenance>) -> String {
    match p {
        Some(p) => prov_text(p, "MeshConfig"),
        None => "no MeshConfig (FSM's defaults)".to_owned(),
    }
}

/// What an identity's header says about it.
pub fn presence_text(id: &IdentityDiff) -> Option<&'static str> {
    match id.presence {
        Presence::Both => None,
        Presence::New => Some("new identity"),
        Presence::Gone => Some("gone: its workloads run the `_default` config"),
    }
}

/// The one-line summary: "3 identities gain access to 5 destinations; 1 loses access to 1".
pub fn summary_text(d: &Diff) -> String {
    if d.is_empty() {
        return "no access change".to_owned();
    }
    let s = d.summary();
    let mut parts = Vec::new();
    for e in &d.mesh {
        if let MeshWide::Passthrough { head } = e.what {
            parts.push(if head {
                "passthrough on: every identity may now reach anything".to_owned()
            } else {
                "passthrough off: identities may now reach only what their rules allow".to_owned()
            });
        }
    }
    if s.gaining > 0 {
        parts.push(format!(
            "{} access to {}",
            plural(s.gaining, "identity gains", "identities gain"),
            plural(s.gained, "destination", "destinations")
        ));
    }
    if s.losing > 0 {
        let who = if s.gaining > 0 {
            plural(s.losing, "loses", "lose")
        } else {
            plural(s.losing, "identity loses", "identities lose")
        };
        let what = if s.gaining > 0 {
            s.lost.to_string()
        } else {
            plural(s.lost, "destination", "destinations")
        };
        parts.push(format!("{who} access to {what}"));
    }
    if s.mesh > 0 {
        let mut t = plural(s.mesh, "mesh-wide change", "mesh-wide changes");
        if s.mesh_widening > 0 {
            let _ = write!(t, " ({} widening)", s.mesh_widening);
        }
        parts.push(t);
    }
    if s.new + s.gone > 0 {
        let mut v = Vec::new();
        if s.new > 0 {
            v.push(plural(s.new, "new identity", "new identities"));
        }
        if s.gone > 0 {
            v.push(plural(s.gone, "identity gone", "identities gone"));
        }
        parts.push(v.join(", "));
    }
    if s.neutral > 0 {
        parts.push(plural(
            s.neutral,
            "rule change that changes nothing reachable",
            "rule changes that change nothing reachable",
        ));
    }
    if d.all_neutral() {
        parts.insert(0, "no access change".to_owned());
    }
    parts.join("; ")
}

/// The tuples of each side that differ: of a changed destination, those with the same
/// constraints on both sides (whatever policy grants them) are left out.
pub fn differing(e: &AccessEntry) -> (Vec<&Atom>, Vec<&Atom>) {
    let same = |a: &Atom, other: &[Atom]| {
        other
            .iter()
            .any(|o| o.addresses == a.addresses && o.route == a.route)
    };
    (
        e.base.iter().filter(|a| !same(a, &e.head)).collect(),
        e.head.iter().filter(|a| !same(a, &e.base)).collect(),
    )
}

/// The lines under an access entry: each side's tuples, what it covers, what is still allowed.
pub fn access_details(e: &AccessEntry) -> Vec<String> {
    let mut v = Vec::new();
    let (base, head) = differing(e);
    for a in base {
        v.push(format!("base: {}", grant_text(a)));
    }
    for a in head {
        v.push(format!("head: {}", grant_text(a)));
    }
    for a in &e.covers {
        v.push(format!(
            "now covers {}, which was allowed before by {}",
            tuple_text(a),
            by_text(&a.by)
        ));
    }
    for a in &e.still {
        v.push(format!(
            "{}, which it covered, is still allowed by {}",
            tuple_text(a),
            by_text(&a.by)
        ));
    }
    v
}

/// The first line of an access entry: effect, change, destination.
pub fn entry_line(e: &AccessEntry) -> String {
    format!(
        "{:<8} {:<8} {}",
        effect_str(e.effect),
        change_str(e.change),
        access_text(&e.key)
    )
}

/// Human text: mesh-wide entries, then each identity, widening first; the summary last.
pub fn render_human(d: &Diff) -> String {
    let mut s = String::new();
    if !d.mesh.is_empty() {
        s.push_str("mesh-wide:\n");
        for e in &d.mesh {
            let _ = writeln!(s, "  {:<8} {}", effect_str(e.effect), mesh_text(e));
        }
        if let Some(e) = d.mesh.iter().find(|e| from_mesh_config(e)) {
            let _ = writeln!(s, "  base: {}", mesh_config_text(&e.base_at));
            let _ = writeln!(s, "  head: {}", mesh_config_text(&e.head_at));
        }
        s.push('\n');
    }
    for id in &d.identities {
        match presence_text(id) {
            Some(p) => {
                let _ = writeln!(s, "{} ({p}):", id.name);
            }
            None => {
                let _ = writeln!(s, "{}:", id.name);
            }
        }
        if id.entries.is_empty() {
            s.push_str("  (no rules)\n");
        }
        for e in &id.entries {
            let _ = writeln!(s, "  {}", entry_line(e));
            for line in access_details(e) {
                let _ = writeln!(s, "    {line}");
            }
        }
        s.push('\n');
    }
    s.push_str(&summary_text(d));
    s.push('\n');
    s
}
