//! Mesh-wide differences: passthrough, the policy switch, gateways, interception, in-mesh
//! destinations and DNS. Each applies to every identity at once.

use crate::diff::access::canonical;
use crate::diff::{Change, Effect, MeshEntry, MeshWide, everything_reachable};
use crate::model::DnsResolvers;
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

/// Every mesh-wide entry from `base` to `head`, widening first.
pub fn mesh_entries(base: &Plan, head: &Plan) -> Vec<MeshEntry> {
    let (bs, hs) = (&base.settings, &head.settings);
    let mut out = Vec::new();
    let mut push = |change, effect, what| {
        out.push(MeshEntry {
            change,
            effect,
            what,
            base_at: bs.mesh_config.clone(),
            head_at: hs.mesh_config.clone(),
        })
    };
    // Gaining is real unless passthrough already reached every address directly; losing,
    // unless it still does.
    let widens = if everything_reachable(base) {
        Effect::Neutral
    } else {
        Effect::Widens
    };
    let narrows = if everything_reachable(head) {
        Effect::Neutral
    } else {
        Effect::Narrows
    };
    if bs.enable_egress != hs.enable_egress {
        let effect = if hs.enable_egress {
            Effect::Widens
        } else {
            Effect::Narrows
        };
        let head = hs.enable_egress;
        push(Change::Changed, effect, MeshWide::Passthrough { head });
    }
    if bs.enable_egress_policy != hs.enable_egress_policy {
        let head = hs.enable_egress_policy;
        let effect = if head { widens } else { narrows };
        push(Change::Changed, effect, MeshWide::Policies { head });
    }
    let (bx, hx) = (
        cidr_set(&bs.outbound_ip_range_exclusions),
        cidr_set(&hs.outbound_ip_range_exclusions),
    );
    for c in missing(&hx, &bx) {
        push(Change::Added, widens, MeshWide::Excluded(c));
    }
    for c in missing(&bx, &hx) {
        push(Change::Removed, narrows, MeshWide::Excluded(c));
    }
    let (bi, hi) = (
        cidr_set(&bs.outbound_ip_range_inclusions),
        cidr_set(&hs.outbound_ip_range_inclusions),
    );
    match (bi.is_empty(), hi.is_empty()) {
        (true, false) => push(Change::Added, widens, MeshWide::InclusionList(hi)),
        (false, true) => push(Change::Removed, narrows, MeshWide::InclusionList(bi)),
        (false, false) => {
            // More in the inclusion list: more is intercepted.
            for c in missing(&hi, &bi) {
                push(Change::Added, narrows, MeshWide::Included(c));
            }
            for c in missing(&bi, &hi) {
                push(Change::Removed, widens, MeshWide::Included(c));
            }
        }
        (true, true) => {}
    }
    // What only one side has: added in the head (gained), or removed from it (lost).
    let addresses =
        |p: &Plan| -> BTreeSet<(Ipv4Addr, u16)> { p.mesh.iter().map(|d| (d.ip, d.port)).collect() };
    let sides = [
        (Change::Added, widens, head, base),
        (Change::Removed, narrows, base, head),
    ];
    for (change, effect, this, other) in sides {
        let in_other = addresses(other);
        let ports = &other.settings.outbound_port_exclusions;
        for p in &this.settings.outbound_port_exclusions {
            if !ports.contains(p) {
                push(change, effect, MeshWide::ExcludedPort(*p));
            }
        }
        for d in &this.mesh {
            if !in_other.contains(&(d.ip, d.port)) {
                let (ip, port, service) = (d.ip, d.port, d.service.clone());
                push(change, effect, MeshWide::InMesh { ip, port, service });
            }
        }
    }
    // Gateways: the first one makes egress pass its refusals, the last one gone removes them.
    let gateways = |p: &Plan| -> BTreeMap<String, crate::plan::Gateway> {
        p.gateways
            .iter()
            .map(|g| (g.cluster.clone(), g.clone()))
            .collect()
    };
    let (bg, hg) = (gateways(base), gateways(head));
    let clusters: BTreeSet<&String> = bg.keys().chain(hg.keys()).collect();
    for cluster in clusters {
        let (b, h) = (bg.get(cluster).cloned(), hg.get(cluster).cloned());
        let (change, effect) = match (&b, &h) {
            (None, Some(_)) if bg.is_empty() => (Change::Added, Effect::Narrows),
            (Some(_), None) if hg.is_empty() => (Change::Removed, Effect::Widens),
            (None, _) => (Change::Added, Effect::Neutral),
            (_, None) => (Change::Removed, Effect::Neutral),
            (Some(x), Some(y)) if x == y => continue,
            _ => (Change::Changed, Effect::Neutral),
        };
        let cluster = cluster.clone();
        push(
            change,
            effect,
            MeshWide::Gateway {
                cluster,
                base: b.map(Box::new),
                head: h.map(Box::new),
            },
        );
    }
    let (bd, hd) = (dns(&base.dns), dns(&head.dns));
    if bd != hd {
        // The pod's resolv.conf is known only in the cluster: a change to or from it may
        // name another address, so it widens. UDP is never passed through: passthrough does
        // not make this neutral.
        let subset = |a: &Option<Vec<_>>, b: &Option<Vec<_>>| match (a, b) {
            (Some(a), Some(b)) => a.iter().all(|ip| b.contains(ip)),
            _ => false,
        };
        let effect = if subset(&hd, &bd) {
            Effect::Narrows
        } else {
            Effect::Widens
        };
        push(
            Change::Changed,
            effect,
            MeshWide::Dns { base: bd, head: hd },
        );
    }
    out.sort_by_key(|e| e.effect);
    out
}
