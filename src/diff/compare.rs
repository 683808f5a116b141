//! One identity's access, base against head: which destinations it gains, loses, or reaches
//! under other constraints. Compared by coverage, not equality: a head tuple that the base
//! already covers is no gain, a base tuple that the head still covers is no loss.

use crate::diff::access::{Access, Atom, Dest, Key, overlaps};
use crate::diff::{AccessEntry, Change, Effect};
use crate::net::HostPattern;
use crate::plan::Plan;
use std::collections::BTreeMap;

fn names_localhost(h: &HostPattern) -> bool {
    let (HostPattern::Exact(n) | HostPattern::Wildcard(n)) = h;
    n == "localhost" || n.ends_with(".localhost")
}

/// Whether passthrough on `plan` already lets every identity reach everything `a` admits.
/// With a gateway, passthrough does not reach what the gateway refuses and only a policy
/// admits: refused address ranges and in-mesh targets named by a CIDR, `localhost` names.
pub fn passthrough_reaches(plan: &Plan, a: &Atom) -> bool {
    if !plan.settings.enable_egress {
        return false;
    }
    if plan.gateways.is_empty() {
        return true;
    }
    match &a.key.dest {
        Dest::AnyAddress => true,
        Dest::Host(h) => !names_localhost(h),
        Dest::Cidr(c) => {
            !crate::net::refused_ranges()
                .iter()
                .any(|(r, _)| overlaps(c, r))
                && !plan
                    .mesh
                    .iter()
                    .chain(&plan.gateway_addresses)
                    .any(|d| d.port == a.key.port && c.contains(d.ip))
        }
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
            .filter(|&i| head_in_base[i].is_none())
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
        let gain = gained
            .iter()
            .any(|&i| !passthrough_reaches(base_plan, &head.atoms[i]));
        let loss = lost
            .iter()
            .any(|&j| !passthrough_reaches(head_plan, &base.atoms[j]));
        let effect = if gain {
            Effect::Widens
        } else if loss {
            Effect::Narrows
        } else {
            Effect::Neutral
        };
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
