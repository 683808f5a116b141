//! One identity's access, base against head: which destinations it gains, loses, or reaches
//! under other constraints. Compared by coverage, not equality: a head tuple that the base
//! already covers is no gain, a base tuple that the head still covers is no loss.

use crate::diff::access::{Access, Atom, Dest, Key, names_refused, overlaps};
use crate::diff::{AccessEntry, Change, Effect};
use crate::plan::Plan;
use std::collections::BTreeMap;

/// `127.0.0.0/8`.
fn loopback() -> crate::net::Cidr {
    let net = cidr::Ipv4Cidr::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8);
    crate::net::Cidr(net.expect("a network address"))
}

/// Whether passthrough on `plan` already lets every identity reach everything `a` admits:
/// only an address range, and never one with loopback in it (passthrough does not relay
/// there) or, with a gateway, one the gateway refuses unless a policy names it (refused
/// ranges, in-mesh targets). Any-address and host tuples admit connections dialled to such
/// addresses, so passthrough never covers them.
pub fn passthrough_reaches(plan: &Plan, a: &Atom) -> bool {
    if !plan.settings.enable_egress {
        return false;
    }
    // Passthrough never relays to a loopback address (the pod itself), nor does the gateway
    // admit one; a rule does. A host rule admits a connection dialled to any address (it
    // connects to the name), loopback ones too: passthrough never covers it.
    if plan.gateways.is_empty() {
        return match &a.key.dest {
            Dest::AnyAddress | Dest::Host(_) => false,
            Dest::Cidr(c) => !overlaps(c, &loopback()),
        };
    }
    match &a.key.dest {
        Dest::AnyAddress | Dest::Host(_) => false,
        Dest::Cidr(c) => {
            !names_refused(c)
                && !plan
                    .mesh
                    .iter()
                    .chain(&plan.gateway_addresses)
                    .any(|d| d.port == a.key.port && c.contains(d.ip))
        }
    }
}

/// Whether, through `plan`'s gateway, an address rule of `access` on `key`'s port may take
/// a connection before a host rule does: the sidecar applies the first rule that matches,
/// so a connection dialled to a refused address with the host's SNI goes to the address
/// rule and the gateway refuses it. A host destination new on that side is then a gain
/// even when another host pattern covers it.
fn shadow(plan: &Plan, access: &Access, key: &Key) -> bool {
    matches!(key.dest, Dest::Host(_))
        && !plan.gateways.is_empty()
        && access
            .atoms
            .iter()
            .any(|b| b.key.port == key.port && b.key.dest == Dest::AnyAddress)
}

/// What an entry does: it widens when a head tuple it gains is not reached by the base's
/// passthrough (or an address rule that shadowed host rules is gone), narrows when a base
/// tuple it loses is not reached by the head's, else changes nothing reachable.
fn effect(
    (base, base_plan, lost): (&Access, &Plan, &[usize]),
    (head, head_plan, gained): (&Access, &Plan, &[usize]),
    key: &Key,
) -> Effect {
    let gain = gained
        .iter()
        .any(|&i| !passthrough_reaches(base_plan, &head.atoms[i]));
    let loss = lost
        .iter()
        .any(|&j| !passthrough_reaches(head_plan, &base.atoms[j]));
    // An address rule gone from a port with host rules, through a gateway: connections
    // it took first (and the gateway refused) now reach the host rules.
    let unshadows = key.dest == Dest::AnyAddress
        && !lost.is_empty()
        && !head_plan.gateways.is_empty()
        && head
            .atoms
            .iter()
            .any(|h| h.key.port == key.port && matches!(h.key.dest, Dest::Host(_)));
    if gain || unshadows {
        Effect::Widens
    } else if loss {
        Effect::Narrows
    } else {
        Effect::Neutral
    }
}

/// The entries of one identity: `base` and `head` are its canonical access on each side.
pub fn identity_entries(
    base: &Access,
    head: &Access,
    base_plan: &Plan,
    head_plan: &Plan,
) -> Vec<AccessEntry> {
    let none = |_: usize| false;
    // For each tuple, the tuples of the other side that cover it (None: not covered).
    let head_in_base: Vec<Option<Vec<usize>>> =
        head.atoms.iter().map(|h| base.covering(h, &none)).collect();
    let base_in_head: Vec<Option<Vec<usize>>> =
        base.atoms.iter().map(|b| head.covering(b, &none)).collect();
    let mut keys: BTreeMap<&Key, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, b) in base.atoms.iter().enumerate() {
        keys.entry(&b.key).or_default().0.push(i);
    }
    for (i, h) in head.atoms.iter().enumerate() {
        keys.entry(&h.key).or_default().1.push(i);
    }
    // Inverted: for each head tuple, the base tuples of destinations the head lacks that it
    // covers; for each base tuple, the head tuples of destinations the base lacks.
    let only = |k: &Key, base_side: bool| {
        keys.get(k).is_some_and(|(b, h)| {
            if base_side {
                h.is_empty()
            } else {
                b.is_empty()
            }
        })
    };
    let invert = |covered: &[Option<Vec<usize>>], atoms: &[Atom], n: usize, base_side: bool| {
        let mut inv = vec![Vec::new(); n];
        for (j, by) in covered.iter().enumerate() {
            if only(&atoms[j].key, base_side) {
                for &i in by.iter().flatten() {
                    inv[i].push(j);
                }
            }
        }
        inv
    };
    let covers_of_head = invert(&base_in_head, &base.atoms, head.atoms.len(), true);
    let covers_of_base = invert(&head_in_base, &head.atoms, base.atoms.len(), false);
    let mut out = Vec::new();
    for (key, (bi, hi)) in &keys {
        let gained: Vec<usize> = hi
            .iter()
            .copied()
            .filter(|&i| {
                head_in_base[i].is_none() || (bi.is_empty() && shadow(base_plan, base, key))
            })
            .collect();
        let lost: Vec<usize> = bi
            .iter()
            .copied()
            .filter(|&j| base_in_head[j].is_none())
            .collect();
        if gained.is_empty() && lost.is_empty() {
            continue;
        }
        let change = match (bi.is_empty(), hi.is_empty()) {
            (false, false) => Change::Changed,
            (true, _) => Change::Added,
            (_, true) => Change::Removed,
        };
        let effect = effect((base, base_plan, &lost), (head, head_plan, &gained), key);
        // What the base allowed elsewhere and this destination's head tuples now cover, and
        // what the head allows elsewhere that its base tuples covered.
        let gather = |idx: &[usize], inverse: &[Vec<usize>], atoms: &[Atom]| {
            let mut v: Vec<usize> = idx
                .iter()
                .flat_map(|&i| inverse[i].iter().copied())
                .collect();
            v.sort_unstable();
            v.dedup();
            v.into_iter()
                .map(|j| atoms[j].clone())
                .collect::<Vec<Atom>>()
        };
        let covers = gather(hi, &covers_of_head, &base.atoms);
        let still = gather(bi, &covers_of_base, &head.atoms);
        out.push(AccessEntry {
            change,
            effect,
            key: (*key).clone(),
            base: bi.iter().map(|&j| base.atoms[j].clone()).collect(),
            head: hi.iter().map(|&i| head.atoms[i].clone()).collect(),
            covers,
            still,
        });
    }
    out.sort_by(|a, b| (a.effect, &a.key).cmp(&(b.effect, &b.key)));
    out
}
