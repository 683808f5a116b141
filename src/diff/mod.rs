//! `egressc diff`: who gains and who loses access between two plans (the base and the head
//! of a change). Semantic, not textual: each side's access is normalised per identity into
//! canonical tuples (`access`), compared by coverage (`compare`), mesh-wide settings compared
//! on their own (`mesh`); `render` turns the result into text (human, markdown, JSON).

pub mod access;
pub mod compare;
pub mod mesh;
pub mod render;

use crate::diff::access::{Access, Atom, Key};
use crate::model::{Provenance, Route};
use crate::net::Cidr;
use crate::plan::{Gateway, IdentityPlan, Plan};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What happened to an access tuple or a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Only in the head.
    Added,
    /// Only in the base.
    Removed,
    /// On both sides, different.
    Changed,
}

/// What the change does to what can get out. Ordered widening first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// Something is reachable that was not (or may be: a change not provably narrower).
    Widens,
    /// Nothing reachable changes (policies while passthrough reaches it all, gateway weights).
    Neutral,
    /// Only less is reachable.
    Narrows,
}

/// A difference in one identity's access to one destination (port, protocol, pattern).
#[derive(Clone, Debug, PartialEq)]
pub struct AccessEntry {
    pub change: Change,
    pub effect: Effect,
    pub key: Key,
    /// The base's tuples for this destination (empty when added).
    pub base: Vec<Atom>,
    /// The head's tuples for this destination (empty when removed).
    pub head: Vec<Atom>,
    /// Tuples of other destinations that the base allowed and this entry's head tuples now
    /// cover (`*.example.com` now covers `api.example.com`).
    pub covers: Vec<Atom>,
    /// Tuples of other destinations that the head allows and this entry's base tuples
    /// covered: what is still allowed of a removed wildcard.
    pub still: Vec<Atom>,
}

/// Whether an identity is on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Both,
    /// Only in the head (in the base its workloads ran the `_default` config).
    New,
    /// Only in the base (in the head its workloads run the `_default` config).
    Gone,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdentityDiff {
    /// `namespace/name`, or `_default`.
    pub name: String,
    pub presence: Presence,
    /// Widening first.
    pub entries: Vec<AccessEntry>,
}

/// A mesh-wide difference: it applies to every identity.
#[derive(Clone, Debug, PartialEq)]
pub enum MeshWide {
    /// `traffic.enableEgress` is now `head`.
    Passthrough { head: bool },
    /// `featureFlags.enableEgressPolicy` is now `head`.
    Policies { head: bool },
    /// A global egress gateway (by FSM cluster name `service.namespace`).
    Gateway {
        cluster: String,
        base: Option<Box<Gateway>>,
        head: Option<Box<Gateway>>,
    },
    /// A CIDR of `outboundIPRangeExclusionList`: traffic to it is not intercepted.
    Excluded(Cidr),
    /// `outboundIPRangeInclusionList` set where there was none (added), or removed.
    InclusionList(Vec<Cidr>),
    /// A CIDR of a non-empty `outboundIPRangeInclusionList`.
    Included(Cidr),
    /// A port of `outboundPortExclusionList`.
    ExcludedPort(u16),
    /// An in-mesh destination (a Service clusterIP:port).
    InMesh {
        ip: Ipv4Addr,
        port: u16,
        service: String,
    },
    /// A SOCKS5 gateway admits the union of every identity's allow-list: what these
    /// identities gain, every identity gains through it.
    SocksUnion { identities: Vec<String> },
    /// An identity's enforcement (`egressc.io/enforcement`): `audit` now, or `enforce`.
    Enforcement { identity: String, audit: bool },
    /// The resolvers workload DNS may reach (`None`: the pod's `/etc/resolv.conf` nameservers).
    Dns {
        base: Option<Vec<Ipv4Addr>>,
        head: Option<Vec<Ipv4Addr>>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct MeshEntry {
    pub change: Change,
    pub effect: Effect,
    pub what: MeshWide,
    /// The MeshConfig of each side, for the entries that come from it.
    pub base_at: Option<Provenance>,
    pub head_at: Option<Provenance>,
}

/// The difference between two plans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    /// Widening first.
    pub mesh: Vec<MeshEntry>,
    /// Identities with a widening entry first, then by name.
    pub identities: Vec<IdentityDiff>,
}

/// Counts for the one-line summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Identities with an access entry that widens, and the destinations they gain.
    pub gaining: usize,
    pub gained: usize,
    /// Identities with an access entry that narrows, and the destinations they lose.
    pub losing: usize,
    pub lost: usize,
    /// Mesh-wide entries (passthrough aside) and how many of them widen.
    pub mesh: usize,
    pub mesh_widening: usize,
    /// Access entries that change nothing reachable.
    pub neutral: usize,
    /// Identities that appear or disappear.
    pub new: usize,
    pub gone: usize,
}

impl Diff {
    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.mesh.is_empty() && self.identities.is_empty()
    }

    /// Some access is gained.
    pub fn widens(&self) -> bool {
        self.mesh.iter().any(|e| e.effect == Effect::Widens)
            || self
                .identities
                .iter()
                .flat_map(|i| &i.entries)
                .any(|e| e.effect == Effect::Widens)
    }

    /// Every entry leaves what is reachable as it was.
    pub fn all_neutral(&self) -> bool {
        self.mesh.iter().all(|e| e.effect == Effect::Neutral)
            && self
                .identities
                .iter()
                .flat_map(|i| &i.entries)
                .all(|e| e.effect == Effect::Neutral)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let mut gained: BTreeSet<&Key> = BTreeSet::new();
        let mut lost: BTreeSet<&Key> = BTreeSet::new();
        for id in &self.identities {
            let mut gains = false;
            let mut loses = false;
            for e in &id.entries {
                match e.effect {
                    Effect::Widens => {
                        gains = true;
                        gained.insert(&e.key);
                    }
                    Effect::Narrows => {
                        loses = true;
                        lost.insert(&e.key);
                    }
                    Effect::Neutral => s.neutral += 1,
                }
            }
            s.gaining += usize::from(gains);
            s.losing += usize::from(loses);
            s.new += usize::from(id.presence == Presence::New);
            s.gone += usize::from(id.presence == Presence::Gone);
        }
        s.gained = gained.len();
        s.lost = lost.len();
        for e in &self.mesh {
            if !matches!(e.what, MeshWide::Passthrough { .. }) {
                s.mesh += 1;
                s.mesh_widening += usize::from(e.effect == Effect::Widens);
            }
        }
        s
    }
}

fn by_name(plan: &Plan) -> BTreeMap<&str, &IdentityPlan> {
    plan.identities
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect()
}

/// Whether two identities' rules grant the same, rule by rule (whatever the policies' names
/// and places): then their access is the same and needs no comparison.
fn same_rules(a: &IdentityPlan, b: &IdentityPlan) -> bool {
    fn same_routes(a: &Option<Arc<Vec<Route>>>, b: &Option<Arc<Vec<Route>>>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y.iter()).all(|(p, q)| {
                        (&p.path, &p.methods, &p.headers) == (&q.path, &q.methods, &q.headers)
                    })
            }
            _ => false,
        }
    }
    a.rules.len() == b.rules.len()
        && a.rules.iter().zip(&b.rules).all(|(x, y)| {
            (x.port, x.protocol.class(), &x.cidrs, &x.hosts)
                == (y.port, y.protocol.class(), &y.cidrs, &y.hosts)
                && same_routes(&x.routes, &y.routes)
        })
}

/// The semantic difference from `base` to `head`.
pub fn diff(base: &Plan, head: &Plan) -> Diff {
    let mesh = mesh::mesh_entries(base, head);
    let (bs, hs) = (by_name(base), by_name(head));
    let gw = |p: &Plan| !p.gateways.is_empty();
    let default = |p: &Plan| Access::of(p.default_identity(), gw(p));
    let names: BTreeSet<&str> = bs.keys().chain(hs.keys()).copied().collect();
    let mut identities = Vec::new();
    for name in names {
        let (b, h) = (bs.get(name), hs.get(name));
        if let (Some(x), Some(y)) = (b, h)
            && same_rules(x, y)
        {
            continue;
        }
        let presence = match (b, h) {
            (Some(_), Some(_)) => Presence::Both,
            (None, _) => Presence::New,
            (_, None) => Presence::Gone,
        };
        let ba = b.map_or_else(|| default(base), |i| Access::of(i, gw(base)));
        let ha = h.map_or_else(|| default(head), |i| Access::of(i, gw(head)));
        let entries = compare::identity_entries(&ba, &ha, base, head);
        if presence != Presence::Both || !entries.is_empty() {
            identities.push(IdentityDiff {
                name: name.to_owned(),
                presence,
                entries,
            });
        }
    }
    identities.sort_by_key(|i| {
        let widens = i.entries.iter().any(|e| e.effect == Effect::Widens);
        (!widens, i.name.clone())
    });
    let mut mesh = mesh;
    mesh.extend(socks_union(head, &identities));
    mesh.sort_by_key(|e| e.effect);
    Diff { mesh, identities }
}

/// With a SOCKS5 gateway in the head under `--gateway-auth header`, an identity's widening is
/// every identity's: the gateway learns no identity and admits the union of the lists. Under
/// mtls it reads the identity from the certificate: no union.
fn socks_union(head: &Plan, identities: &[IdentityDiff]) -> Option<MeshEntry> {
    let socks = head.auth.socks_gets_union()
        && head
            .gateways
            .iter()
            .any(|g| g.mode == crate::model::GatewayMode::Socks5);
    let gaining: Vec<String> = identities
        .iter()
        .filter(|i| i.entries.iter().any(|e| e.effect == Effect::Widens))
        .map(|i| i.name.clone())
        .collect();
    (socks && !gaining.is_empty()).then_some(MeshEntry {
        change: Change::Changed,
        effect: Effect::Widens,
        what: MeshWide::SocksUnion {
            identities: gaining,
        },
        base_at: None,
        head_at: None,
    })
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "soundness_tests.rs"]
mod soundness;
