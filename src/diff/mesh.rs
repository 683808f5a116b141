//! Mesh-wide differences: passthrough, the policy switch, gateways, interception, in-mesh
//! destinations and DNS. Each applies to every identity at once.

use crate::diff::access::canonical;
use crate::diff::{Change, Effect, MeshEntry, MeshWide};
use crate::model::{DnsResolvers, GatewayMode};
use crate::net::Cidr;
use crate::plan::Plan;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A list of CIDRs as a canonical set (sibling CIDRs merged, contained ones dropped).
fn cidr_set(list: &[Cidr]) -> Vec<Cidr> {
    canonical(list.iter().map(|c| (*c, Vec::<()>::new())).collect())
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

fn within(c: &Cidr, set: &[Cidr]) -> bool {
    set.iter().any(|s| c.is_within(s))
}

/// The CIDRs of `a` that `b` does not cover.
fn missing(a: &[Cidr], b: &[Cidr]) -> Vec<Cidr> {
    a.iter().filter(|c| !within(c, b)).copied().collect()
}

fn dns(d: &DnsResolvers) -> Option<Vec<Ipv4Addr>> {
    match d {
        DnsResolvers::Flag(ips) => {
            let mut v = ips.clone();
            v.sort();
            v.dedup();
            Some(v)
        }
        DnsResolvers::KubeDns(ip) => Some(vec![*ip]),
        DnsResolvers::PodResolvConf => None,
    }
}

/// Mesh-wide entries as they are found: what changed, its effect, the subject.
type Found = Vec<(Change, Effect, MeshWide)>;

/// Every mesh-wide entry from `base` to `head`, widening first. Passthrough never reaches
/// everything (not loopback, which a rule or an uncaught range does), so a mesh-wide gain
/// is a gain whatever passthrough is.
pub fn mesh_entries(base: &Plan, head: &Plan) -> Vec<MeshEntry> {
    let mut found = Found::new();
    switches(base, head, &mut found);
    interception(base, head, &mut found);
    mesh_and_ports(base, head, &mut found);
    gateways(base, head, &mut found);
    resolvers(base, head, &mut found);
    enforcement(base, head, &mut found);
    let mut out: Vec<MeshEntry> = found
        .into_iter()
        .map(|(change, effect, what)| MeshEntry {
            change,
            effect,
            what,
            base_at: base.settings.mesh_config.clone(),
            head_at: head.settings.mesh_config.clone(),
        })
        .collect();
    out.sort_by_key(|e| e.effect);
    out
}

/// `traffic.enableEgress` and `featureFlags.enableEgressPolicy`.
fn switches(base: &Plan, head: &Plan, out: &mut Found) {
    let (bs, hs) = (&base.settings, &head.settings);
    let effect = |on: bool| if on { Effect::Widens } else { Effect::Narrows };
    if bs.enable_egress != hs.enable_egress {
        let head = hs.enable_egress;
        out.push((
            Change::Changed,
            effect(head),
            MeshWide::Passthrough { head },
        ));
    }
    if bs.enable_egress_policy != hs.enable_egress_policy {
        let head = hs.enable_egress_policy;
        out.push((Change::Changed, effect(head), MeshWide::Policies { head }));
    }
}

/// The address exclusion and inclusion lists.
fn interception(base: &Plan, head: &Plan, out: &mut Found) {
    let (bs, hs) = (&base.settings, &head.settings);
    let (bx, hx) = (
        cidr_set(&bs.outbound_ip_range_exclusions),
        cidr_set(&hs.outbound_ip_range_exclusions),
    );
    // An excluded range lets every protocol out (UDP, ICMP…), which passthrough never does.
    for c in missing(&hx, &bx) {
        out.push((Change::Added, Effect::Widens, MeshWide::Excluded(c)));
    }
    for c in missing(&bx, &hx) {
        out.push((Change::Removed, Effect::Narrows, MeshWide::Excluded(c)));
    }
    let (bi, hi) = (
        cidr_set(&bs.outbound_ip_range_inclusions),
        cidr_set(&hs.outbound_ip_range_inclusions),
    );
    match (bi.is_empty(), hi.is_empty()) {
        (true, false) => out.push((Change::Added, Effect::Widens, MeshWide::InclusionList(hi))),
        (false, true) => out.push((
            Change::Removed,
            Effect::Narrows,
            MeshWide::InclusionList(bi),
        )),
        (false, false) => {
            // More in the inclusion list: more is intercepted.
            for c in missing(&hi, &bi) {
                out.push((Change::Added, Effect::Narrows, MeshWide::Included(c)));
            }
            for c in missing(&bi, &hi) {
                out.push((Change::Removed, Effect::Widens, MeshWide::Included(c)));
            }
        }
        (true, true) => {}
    }
}

/// Port exclusions and in-mesh destinations: added in the head (gained), or removed from it.
fn mesh_and_ports(base: &Plan, head: &Plan, out: &mut Found) {
    let addresses =
        |p: &Plan| -> BTreeSet<(Ipv4Addr, u16)> { p.mesh.iter().map(|d| (d.ip, d.port)).collect() };
    let sides = [
        (Change::Added, Effect::Widens, head, base),
        (Change::Removed, Effect::Narrows, base, head),
    ];
    for (change, effect, this, other) in sides {
        let in_other = addresses(other);
        let ports = &other.settings.outbound_port_exclusions;
        for p in &this.settings.outbound_port_exclusions {
            if !ports.contains(p) {
                out.push((change, effect, MeshWide::ExcludedPort(*p)));
            }
        }
        for d in &this.mesh {
            if !in_other.contains(&(d.ip, d.port)) {
                let (ip, port, service) = (d.ip, d.port, d.service.clone());
                out.push((change, effect, MeshWide::InMesh { ip, port, service }));
            }
        }
    }
}

/// Gateways: the first one makes egress pass its refusals, the last one gone removes them;
/// one that becomes SOCKS5 under `--gateway-auth header` admits the union of every identity's
/// list (under mtls it applies each identity's own).
fn gateways(base: &Plan, head: &Plan, out: &mut Found) {
    let by_cluster = |p: &Plan| -> BTreeMap<String, crate::plan::Gateway> {
        p.gateways
            .iter()
            .map(|g| (g.cluster.clone(), g.clone()))
            .collect()
    };
    let (bg, hg) = (by_cluster(base), by_cluster(head));
    let union = |p: &Plan, g: &Option<crate::plan::Gateway>| {
        p.auth.socks_gets_union() && g.as_ref().is_some_and(|g| g.mode == GatewayMode::Socks5)
    };
    let clusters: BTreeSet<&String> = bg.keys().chain(hg.keys()).collect();
    for cluster in clusters {
        let (b, h) = (bg.get(cluster).cloned(), hg.get(cluster).cloned());
        let (change, effect) = match (&b, &h) {
            (Some(x), Some(y)) if x == y => continue,
            _ if union(head, &h) && !union(base, &b) => {
                let change = if b.is_none() {
                    Change::Added
                } else {
                    Change::Changed
                };
                (change, Effect::Widens)
            }
            (None, Some(_)) if bg.is_empty() => (Change::Added, Effect::Narrows),
            (Some(_), None) if hg.is_empty() => (Change::Removed, Effect::Widens),
            (None, _) => (Change::Added, Effect::Neutral),
            (_, None) => (Change::Removed, Effect::Neutral),
            _ => (Change::Changed, Effect::Neutral),
        };
        let what = MeshWide::Gateway {
            cluster: cluster.clone(),
            base: b.map(Box::new),
            head: h.map(Box::new),
        };
        out.push((change, effect, what));
    }
}

/// Each identity's enforcement (an identity on one side only runs `_default` on the other):
/// enforce → audit widens (what no rule allows now goes out), audit → enforce narrows.
fn enforcement(base: &Plan, head: &Plan, out: &mut Found) {
    let names: BTreeSet<&String> = base
        .identities
        .iter()
        .chain(&head.identities)
        .map(|i| &i.name)
        .collect();
    let audit = |p: &Plan, name: &str| {
        let id = p.identities.iter().find(|i| i.name == name);
        id.unwrap_or_else(|| p.default_identity()).observe.audit
    };
    for name in names {
        let (b, h) = (audit(base, name), audit(head, name));
        if b != h {
            let effect = if h { Effect::Widens } else { Effect::Narrows };
            let what = MeshWide::Enforcement {
                identity: name.clone(),
                audit: h,
            };
            out.push((Change::Changed, effect, what));
        }
    }
}

/// The DNS resolvers. The pod's resolv.conf is known only in the cluster: a change to or
/// from it may name another address, so it widens; UDP is never passed through.
fn resolvers(base: &Plan, head: &Plan, out: &mut Found) {
    let (bd, hd) = (dns(&base.dns), dns(&head.dns));
    if bd == hd {
        return;
    }
    let subset = match (&hd, &bd) {
        (Some(h), Some(b)) => h.iter().all(|ip| b.contains(ip)),
        _ => false,
    };
    let effect = if subset {
        Effect::Narrows
    } else {
        Effect::Widens
    };
    out.push((
        Change::Changed,
        effect,
        MeshWide::Dns { base: bd, head: hd },
    ));
}
