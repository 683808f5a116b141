//! Access as tuples: what one side's plan lets one identity reach, in a canonical form.
//!
//! A rule is expanded into atoms — one per destination (host pattern, CIDR, or any address)
//! and, for http, per route — on its port and protocol. Atoms equal but for the policy that
//! grants them are merged (their address restrictions united), sibling CIDRs are merged
//! (`10.0.0.0/9` and `10.128.0.0/9` are `10.0.0.0/8`), and an atom that other atoms of the
//! same side already cover is dropped. Coverage is semantic and conservative: it holds only
//! when every connection the atom admits is provably admitted by the others.

use crate::model::{ProtocolClass, Provenance, Route};
use crate::net::{Cidr, HostPattern};
use crate::plan::{IdentityPlan, Rule};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

/// Where an atom lets a connection go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dest {
    /// Any destination address (a tcp rule, or an https rule without hosts, without CIDRs).
    AnyAddress,
    /// Destination addresses (a tcp rule, or an https rule without hosts).
    Cidr(Cidr),
    /// A host pattern: the SNI (https) or the Host header (http).
    Host(HostPattern),
}

/// One route of an HTTPRouteGroup, without its provenance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAtom {
    pub path: String,
    /// Sorted; empty means any method.
    pub methods: Vec<String>,
    pub headers: BTreeMap<String, String>,
}

/// What two atoms must share to be the same destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub port: u16,
    pub protocol: ProtocolClass,
    pub dest: Dest,
}

/// One access tuple of an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    pub key: Key,
    /// Host destinations: the addresses the client must have dialled (canonical; empty: any).
    pub addresses: Vec<Cidr>,
    /// http: the route a request must match; `None`: any request.
    pub route: Option<RouteAtom>,
    /// The policies that grant it (sorted, without duplicates).
    pub by: Vec<Provenance>,
}

/// One identity's access on one side, canonical.
#[derive(Debug, Default)]
pub struct Access {
    /// Sorted by key, then route.
    pub atoms: Vec<Atom>,
    index: HashMap<(u16, Dest), Slot>,
    /// Whether this side has a global egress gateway: it refuses loopback, link-local and the
    /// other refused ranges unless a listed CIDR names them, so any-address does not cover
    /// a CIDR that overlaps one (README, "Security model").
    gateway: bool,
}

/// Whether a CIDR shares an address with a range the gateway refuses unless named.
pub fn names_refused(c: &Cidr) -> bool {
    crate::net::refused_ranges()
        .iter()
        .any(|(r, _)| overlaps(c, r))
}

/// `0.0.0.0/0`.
fn everything() -> Cidr {
    Cidr(cidr::Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("a network address"))
}

/// The atoms of one port and destination, by what their route's path can cover: a route
/// with a literal path covers only requests for that literal, so those are found by value
/// (a diff of thousands of literal routes costs what a check does, not a regex per pair).
#[derive(Debug, Default)]
struct Slot {
    /// No route, or not a host destination: any request.
    any: Vec<usize>,
    /// By the one path their regex matches.
    literal: HashMap<String, Vec<usize>>,
    /// Other path regexes.
    regex: Vec<usize>,
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

/// The network of `len` bits that contains `c` (`len` at most `c`'s own length).
pub fn supernet(c: Cidr, len: u8) -> Cidr {
    let addr = Ipv4Addr::from(u32::from(c.0.first_address()) & prefix_mask(len));
    Cidr(cidr::Ipv4Cidr::new(addr, len).expect("host bits are masked"))
}

/// Whether two CIDRs share an address.
pub fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.is_within(b) || b.is_within(a)
}

/// The smallest set of CIDRs with the same addresses (contained ones dropped, siblings
/// merged: `ipnet`'s aggregation), each with what the CIDRs merged into it carried.
pub fn canonical<T: Ord>(items: Vec<(Cidr, Vec<T>)>) -> Vec<(Cidr, Vec<T>)> {
    let nets: Vec<ipnet::Ipv4Net> = items
        .iter()
        .map(|(c, _)| {
            ipnet::Ipv4Net::new(c.0.first_address(), c.0.network_length())
                .expect("a CIDR's prefix length is at most 32")
        })
        .collect();
    // Disjoint and sorted by address: each CIDR lies in the one that ends at or after its start.
    let mut out: Vec<(Cidr, Vec<T>)> = ipnet::Ipv4Net::aggregate(&nets)
        .into_iter()
        .map(|n| {
            let c = cidr::Ipv4Cidr::new(n.network(), n.prefix_len()).expect("an aggregated net");
            (Cidr(c), Vec::new())
        })
        .collect();
    for (c, by) in items {
        let first = c.0.first_address();
        let i = out.partition_point(|(a, _)| a.0.last_address() < first);
        out[i].1.extend(by);
    }
    for (_, by) in &mut out {
        by.sort();
        by.dedup();
    }
    out
}

/// A canonical address restriction: empty means any address (as `0.0.0.0/0` does).
pub fn canonical_set(cidrs: impl IntoIterator<Item = Cidr>) -> Vec<Cidr> {
    let set: Vec<Cidr> = canonical(cidrs.into_iter().map(|c| (c, Vec::<()>::new())).collect())
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    if set.iter().any(|c| c.0.network_length() == 0) {
        Vec::new()
    } else {
        set
    }
}

fn route_atom(r: &Route) -> RouteAtom {
    RouteAtom {
        path: r.path.clone(),
        methods: r.methods.clone(),
        headers: r.headers.clone(),
    }
}

/// The atoms of one rule (before merging).
fn expand(rule: &Rule, out: &mut Vec<Atom>) {
    let protocol = rule.protocol.class();
    let addresses = canonical_set(rule.cidrs.iter().copied());
    let atom = |dest: Dest, addresses: Vec<Cidr>, route: Option<RouteAtom>| Atom {
        key: Key {
            port: rule.port,
            protocol,
            dest,
        },
        addresses,
        route,
        by: vec![rule.provenance.clone()],
    };
    if rule.hosts.is_empty() {
        // tcp, or https without hosts: the address decides (http rules always have hosts).
        // A listed `0.0.0.0/0` is not the same as none: it names every refused range.
        if rule.cidrs.iter().any(|c| c.0.network_length() == 0) {
            out.push(atom(Dest::Cidr(everything()), Vec::new(), None));
        } else if addresses.is_empty() {
            out.push(atom(Dest::AnyAddress, Vec::new(), None));
        }
        for c in addresses {
            out.push(atom(Dest::Cidr(c), Vec::new(), None));
        }
        return;
    }
    let routes: Vec<Option<RouteAtom>> = match &rule.routes {
        None => vec![None],
        // An HTTPRouteGroup without matches allows nothing.
        Some(rs) => rs.iter().map(|r| Some(route_atom(r))).collect(),
    };
    for h in &rule.hosts {
        for r in &routes {
            out.push(atom(Dest::Host(h.clone()), addresses.clone(), r.clone()));
        }
    }
}

/// The literal string a path regex matches, when it matches only one.
fn literal(path: &str) -> Option<String> {
    let hir = regex_syntax::parse(path).ok()?;
    match hir.kind() {
        regex_syntax::hir::HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        regex_syntax::hir::HirKind::Empty => Some(String::new()),
        _ => None,
    }
}

/// Whether a path regex matches the whole of `text` (each regex compiled once a thread).
fn whole_match(regex: &str, text: &str) -> bool {
    thread_local! {
        static COMPILED: std::cell::RefCell<HashMap<String, Option<regex::Regex>>> =
            Default::default();
    }
    COMPILED.with(|c| {
        c.borrow_mut()
            .entry(regex.to_owned())
            .or_insert_with(|| regex::Regex::new(&format!("^(?:{regex})$")).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    })
}

/// Whether every request route `a` admits is admitted by `b` (provably: same or fewer
/// methods, the same path regex or a literal path that `b` matches, `b`'s headers required
/// with the same regexes).
pub fn route_within(a: &RouteAtom, b: &RouteAtom) -> bool {
    #[cfg(test)]
    tests::ROUTE_CHECKS.with(|n| n.set(n.get() + 1));
    let methods = b.methods.is_empty()
        || (!a.methods.is_empty() && a.methods.iter().all(|m| b.methods.contains(m)));
    let headers = b.headers.iter().all(|(n, v)| a.headers.get(n) == Some(v));
    let path =
        || a.path == b.path || literal(&a.path).is_some_and(|lit| whole_match(&b.path, &lit));
    methods && headers && path()
}

fn routes_within(a: &Option<RouteAtom>, b: &Option<RouteAtom>) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => route_within(a, b),
    }
}

/// The host patterns that may cover `h`: itself and the wildcards of its suffixes.
fn covering_patterns(h: &HostPattern) -> Vec<HostPattern> {
    let mut out = vec![h.clone()];
    let name = match h {
        HostPattern::Exact(n) | HostPattern::Wildcard(n) => n.as_str(),
    };
    if let HostPattern::Exact(n) = h
        && let Some((_, rest)) = n.split_once('.')
    {
        out.push(HostPattern::Wildcard(rest.to_owned()));
    }
    let mut rest = match h {
        HostPattern::Exact(_) => name.split_once('.').map(|(_, r)| r),
        HostPattern::Wildcard(_) => Some(name),
    };
    while let Some(r) = rest.and_then(|r| r.split_once('.').map(|(_, t)| t)) {
        out.push(HostPattern::Wildcard(r.to_owned()));
        rest = Some(r);
    }
    out
}

/// The policies that grant a tuple.
type Granted = Vec<Provenance>;
/// An address restriction while merging: `None` is any address.
type Restriction = Option<Vec<Cidr>>;

impl Access {
    /// The canonical access of an identity's rules, on a side with or without a gateway.
    pub fn of(id: &IdentityPlan, gateway: bool) -> Access {
        let mut raw = Vec::new();
        for rule in &id.rules {
            expand(rule, &mut raw);
        }
        // Merge atoms equal but for their policies; unite the address restrictions.
        let mut merged: BTreeMap<(Key, Option<RouteAtom>), (Restriction, Granted)> =
            BTreeMap::new();
        let mut cidr_dests: BTreeMap<(u16, ProtocolClass), Vec<(Cidr, Granted)>> = BTreeMap::new();
        for a in raw {
            if let Dest::Cidr(c) = a.key.dest {
                cidr_dests
                    .entry((a.key.port, a.key.protocol))
                    .or_default()
                    .push((c, a.by));
                continue;
            }
            let slot = merged
                .entry((a.key, a.route))
                .or_insert_with(|| (Some(Vec::new()), Vec::new()));
            match (&mut slot.0, a.addresses.is_empty()) {
                (Some(_), true) => slot.0 = None,
                (Some(set), false) => set.extend(a.addresses),
                (None, _) => {}
            }
            slot.1.extend(a.by);
        }
        // Destination CIDRs: one canonical set per port and protocol.
        for ((port, protocol), items) in cidr_dests {
            for (c, by) in canonical(items) {
                let dest = Dest::Cidr(c);
                let slot = merged
                    .entry((
                        Key {
                            port,
                            protocol,
                            dest,
                        },
                        None,
                    ))
                    .or_insert_with(|| (None, Vec::new()));
                slot.1.extend(by);
            }
        }
        let atoms: Vec<Atom> = merged
            .into_iter()
            .map(|((key, route), (addresses, mut by))| {
                by.sort();
                by.dedup();
                Atom {
                    key,
                    addresses: addresses.map(canonical_set).unwrap_or_default(),
                    route,
                    by,
                }
            })
            .collect();
        let all = Access::indexed(atoms, gateway);
        // Drop what the rest of the side covers (the later of two equivalent atoms stays).
        let mut dropped = vec![false; all.atoms.len()];
        for i in 0..all.atoms.len() {
            let covered = all
                .covering(&all.atoms[i], &|j| j == i || dropped[j])
                .is_some();
            dropped[i] = covered;
        }
        Access::indexed(
            all.atoms
                .into_iter()
                .zip(dropped)
                .filter(|(_, d)| !d)
                .map(|(a, _)| a)
                .collect(),
            gateway,
        )
    }

    fn indexed(atoms: Vec<Atom>, gateway: bool) -> Access {
        let mut index: HashMap<(u16, Dest), Slot> = HashMap::new();
        for (i, a) in atoms.iter().enumerate() {
            let slot = index.entry((a.key.port, a.key.dest.clone())).or_default();
            match &a.route {
                None => slot.any.push(i),
                Some(r) => match literal(&r.path) {
                    Some(lit) => slot.literal.entry(lit).or_default().push(i),
                    None => slot.regex.push(i),
                },
            }
        }
        Access {
            atoms,
            index,
            gateway,
        }
    }

    /// The atoms of this side that together admit every connection `a` admits (`None` when
    /// they do not), except those `skip` names.
    pub fn covering(&self, a: &Atom, skip: &dyn Fn(usize) -> bool) -> Option<Vec<usize>> {
        let port = a.key.port;
        let mut candidates: Vec<usize> = Vec::new();
        // A literal route is covered by a route of the same literal, or by a regex; any
        // other route only by a regex (the same one) or by no route at all.
        let lit = a.route.as_ref().and_then(|r| literal(&r.path));
        let mut look = |dest: Dest| {
            if let Some(slot) = self.index.get(&(port, dest)) {
                let same = lit.as_ref().and_then(|l| slot.literal.get(l));
                let all = slot
                    .any
                    .iter()
                    .chain(&slot.regex)
                    .chain(same.into_iter().flatten());
                candidates.extend(all.copied().filter(|&i| !skip(i)));
            }
        };
        look(Dest::AnyAddress);
        match &a.key.dest {
            Dest::AnyAddress => look(Dest::Cidr(everything())),
            Dest::Cidr(c) => {
                for len in 0..=c.0.network_length() {
                    look(Dest::Cidr(supernet(*c, len)));
                }
            }
            Dest::Host(h) => {
                look(Dest::Cidr(everything()));
                for p in covering_patterns(h) {
                    look(Dest::Host(p));
                }
            }
        }
        let mut any = Vec::new();
        let mut parts: Vec<(Cidr, Vec<usize>)> = Vec::new();
        for i in candidates {
            let b = &self.atoms[i];
            // Raw tcp admits whatever https or http would on the same address.
            if b.key.protocol != a.key.protocol && b.key.protocol != ProtocolClass::Tcp {
                continue;
            }
            match (&b.key.dest, &a.key.dest) {
                // Through a gateway, any address is not a refused one: only a CIDR names it.
                (Dest::AnyAddress, Dest::Cidr(c)) if self.gateway && names_refused(c) => {}
                // A host rule admits a connection dialled to any address, a refused one too.
                (Dest::AnyAddress, Dest::Host(_)) if self.gateway => {}
                (Dest::AnyAddress, _) => any.push(i),
                // A host rule dials the name, wherever it resolves: no CIDR covers it but
                // every address.
                (Dest::Cidr(c), Dest::Host(_)) if c.0.network_length() == 0 => any.push(i),
                (Dest::Cidr(_), Dest::Host(_)) => {}
                (Dest::Cidr(c), _) => parts.push((*c, vec![i])),
                (Dest::Host(_), _) if b.key.protocol != a.key.protocol => {}
                (Dest::Host(_), _) => {
                    if !routes_within(&a.route, &b.route) {
                        continue;
                    }
                    if b.addresses.is_empty() {
                        any.push(i);
                    } else {
                        parts.extend(b.addresses.iter().map(|c| (*c, vec![i])));
                    }
                }
            }
        }
        if !any.is_empty() {
            return Some(any);
        }
        let need: Vec<Cidr> = match &a.key.dest {
            Dest::AnyAddress => vec![everything()],
            Dest::Cidr(c) => vec![*c],
            Dest::Host(_) if a.addresses.is_empty() => return None,
            Dest::Host(_) => a.addresses.clone(),
        };
        let union = canonical(parts);
        let mut by = Vec::new();
        for c in &need {
            let (_, idx) = union.iter().find(|(u, _)| c.is_within(u))?;
            by.extend(idx.iter().copied());
        }
        by.sort_unstable();
        by.dedup();
        Some(by)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
