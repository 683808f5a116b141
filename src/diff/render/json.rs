//! JSON: one document with the summary and an `entries` array, typed below; its schema is
//! `schemas/diff.schema.json` (generated from these types), and the field names are stable.

use crate::diff::access::{Atom, Dest, Key};
use crate::diff::render::{
    access_details, access_text, from_mesh_config, mesh_text, presence_text, summary_text,
};
use crate::diff::{Change, Diff, Effect, MeshEntry, MeshWide, Presence};
use crate::model::Provenance;
use crate::plan::Gateway;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `egressc diff --format json`: who gains and who loses access.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffDocument {
    pub summary: Summary,
    /// Some identity gains access, or a mesh-wide change widens it (`--fail-on widen`).
    pub widens: bool,
    /// Anything changed (`--fail-on any`).
    pub changed: bool,
    /// Mesh-wide entries first, then each identity's.
    pub entries: Vec<Entry>,
}

/// The counts of the summary line, and the line itself.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub text: String,
    pub identities_gaining: usize,
    pub destinations_gained: usize,
    pub identities_losing: usize,
    pub destinations_lost: usize,
    pub mesh_wide: usize,
    pub neutral: usize,
    pub new_identities: usize,
    pub gone_identities: usize,
}

/// One change.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Entry {
    Mesh(MeshChange),
    Identity(IdentityChange),
    Access(AccessChange),
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MeshScope {
    Mesh,
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityScope {
    Identity,
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl From<Change> for ChangeKind {
    fn from(c: Change) -> ChangeKind {
        match c {
            Change::Added => ChangeKind::Added,
            Change::Removed => ChangeKind::Removed,
            Change::Changed => ChangeKind::Changed,
        }
    }
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EffectKind {
    Widens,
    Neutral,
    Narrows,
}

impl From<Effect> for EffectKind {
    fn from(e: Effect) -> EffectKind {
        match e {
            Effect::Widens => EffectKind::Widens,
            Effect::Neutral => EffectKind::Neutral,
            Effect::Narrows => EffectKind::Narrows,
        }
    }
}

/// What a mesh-wide entry is about.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MeshSubject {
    /// `traffic.enableEgress`.
    Passthrough,
    /// `featureFlags.enableEgressPolicy`.
    Policies,
    /// A global egress gateway.
    Gateway,
    /// A CIDR of `outboundIPRangeExclusionList`.
    ExcludedAddresses,
    /// `outboundIPRangeInclusionList` as a whole (set or removed).
    InclusionList,
    /// A CIDR of a non-empty `outboundIPRangeInclusionList`.
    IncludedAddresses,
    /// A port of `outboundPortExclusionList`.
    ExcludedPort,
    /// An in-mesh destination.
    InMesh,
    /// The resolvers workload DNS (UDP and TCP port 53) may reach.
    Dns,
    /// Through a SOCKS5 gateway, what some identities gain every identity gains (`head`:
    /// those identities).
    SocksUnion,
    /// An identity's enforcement (`base`, `head`: `identity enforce` or `identity audit`).
    Enforcement,
}

/// A mesh-wide change: `base` and `head` are the values on each side (null: not there).
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshChange {
    pub scope: MeshScope,
    /// Always null: a mesh-wide change concerns every identity.
    pub identity: (),
    pub subject: MeshSubject,
    pub change: ChangeKind,
    pub effect: EffectKind,
    pub text: String,
    pub base: Option<MeshValue>,
    pub head: Option<MeshValue>,
    /// The MeshConfig each value comes from, for the subjects that come from one.
    pub base_at: Option<Resource>,
    pub head_at: Option<Resource>,
}

/// The value of a mesh-wide subject on one side.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MeshValue {
    /// passthrough, policies.
    Switch(bool),
    Gateway(GatewayValue),
    /// A CIDR (excluded-addresses, included-addresses), or `resolv.conf` (dns: the pod's
    /// `/etc/resolv.conf` nameservers).
    Text(String),
    /// CIDRs (inclusion-list) or resolver addresses (dns).
    List(Vec<String>),
    Port(u16),
    InMesh {
        address: String,
        service: String,
    },
}

#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayValue {
    pub mode: String,
    pub host: String,
    pub port: u16,
    pub weight: u32,
    pub listen_port: u16,
}

/// A resource by name, file and line.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub name: String,
    pub file: String,
    pub line: u32,
}

/// An identity that appears or disappears.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityChange {
    pub scope: IdentityScope,
    pub identity: String,
    /// Always `identity`.
    pub subject: IdentityScope,
    pub change: ChangeKind,
    /// Always `neutral`: what the identity gains or loses has entries of its own.
    pub effect: EffectKind,
    pub text: String,
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccessSubject {
    Access,
}

/// A change of what one identity may reach at one destination.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessChange {
    pub scope: IdentityScope,
    pub identity: String,
    pub subject: AccessSubject,
    pub change: ChangeKind,
    pub effect: EffectKind,
    pub text: String,
    pub protocol: String,
    pub port: u16,
    pub destination: Destination,
    /// The grants on each side.
    pub base: Vec<Grant>,
    pub head: Vec<Grant>,
    /// What covers this destination on the other side (with its destination).
    pub covers: Vec<Grant>,
    /// What still allows it after a narrowing (with its destination).
    pub still_allowed: Vec<Grant>,
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    Host,
    Cidr,
    AnyAddress,
}

#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub kind: DestinationKind,
    /// The host pattern or CIDR; null for any address.
    pub value: Option<String>,
}

/// One grant: its constraints and the policies granting it; with its destination in
/// `covers` and `still_allowed`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The addresses the client must have dialled; null: any.
    pub addresses: Option<Vec<String>>,
    /// The route a request must match; null: any request, or not http.
    pub route: Option<GrantRoute>,
    pub granted_by: Vec<Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
}

#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoute {
    pub path: String,
    /// Empty: any method.
    pub methods: Vec<String>,
    pub headers: BTreeMap<String, String>,
}

/// An Egress policy by name, file and line.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub policy: String,
    pub file: String,
    pub line: u32,
}

fn policy(p: &Provenance) -> Policy {
    Policy {
        policy: p.policy.clone(),
        file: p.file.clone(),
        line: p.line,
    }
}

fn destination(key: &Key) -> Destination {
    let (kind, value) = match &key.dest {
        Dest::Host(h) => (DestinationKind::Host, Some(h.to_string())),
        Dest::Cidr(c) => (DestinationKind::Cidr, Some(c.to_string())),
        Dest::AnyAddress => (DestinationKind::AnyAddress, None),
    };
    Destination { kind, value }
}

/// A grant; with its destination when `full`.
fn grant(a: &Atom, full: bool) -> Grant {
    Grant {
        addresses: (!a.addresses.is_empty())
            .then(|| a.addresses.iter().map(|c| c.to_string()).collect()),
        route: a.route.as_ref().map(|r| GrantRoute {
            path: r.path.clone(),
            methods: r.methods.clone(),
            headers: r.headers.clone(),
        }),
        granted_by: a.by.iter().map(policy).collect(),
        protocol: full.then(|| a.key.protocol.as_str().to_owned()),
        port: full.then_some(a.key.port),
        destination: full.then(|| destination(&a.key)),
    }
}

fn gateway(g: Option<&Gateway>) -> Option<MeshValue> {
    g.map(|g| {
        MeshValue::Gateway(GatewayValue {
            mode: g.mode.as_str().to_owned(),
            host: g.host.clone(),
            port: g.port,
            weight: g.weight,
            listen_port: g.listen_port,
        })
    })
}

/// The subject and each side's value of a mesh-wide entry.
fn mesh_values(e: &MeshEntry) -> (MeshSubject, Option<MeshValue>, Option<MeshValue>) {
    let added = e.change == Change::Added;
    let side = |v: MeshValue| {
        if added {
            (None, Some(v))
        } else {
            (Some(v), None)
        }
    };
    let switch = |head: bool| {
        (
            Some(MeshValue::Switch(!head)),
            Some(MeshValue::Switch(head)),
        )
    };
    let (subject, (base, head)) = match &e.what {
        MeshWide::Passthrough { head } => (MeshSubject::Passthrough, switch(*head)),
        MeshWide::Policies { head } => (MeshSubject::Policies, switch(*head)),
        MeshWide::Gateway { base, head, .. } => (
            MeshSubject::Gateway,
            (gateway(base.as_deref()), gateway(head.as_deref())),
        ),
        MeshWide::Excluded(c) => (
            MeshSubject::ExcludedAddresses,
            side(MeshValue::Text(c.to_string())),
        ),
        MeshWide::InclusionList(v) => (
            MeshSubject::InclusionList,
            side(MeshValue::List(v.iter().map(|c| c.to_string()).collect())),
        ),
        MeshWide::Included(c) => (
            MeshSubject::IncludedAddresses,
            side(MeshValue::Text(c.to_string())),
        ),
        MeshWide::ExcludedPort(p) => (MeshSubject::ExcludedPort, side(MeshValue::Port(*p))),
        MeshWide::InMesh { ip, port, service } => (
            MeshSubject::InMesh,
            side(MeshValue::InMesh {
                address: format!("{ip}:{port}"),
                service: service.clone(),
            }),
        ),
        MeshWide::SocksUnion { identities } => (
            MeshSubject::SocksUnion,
            (None, Some(MeshValue::List(identities.clone()))),
        ),
        MeshWide::Enforcement { identity, audit } => {
            let v = |a: bool| {
                Some(MeshValue::Text(format!(
                    "{identity} {}",
                    if a { "audit" } else { "enforce" }
                )))
            };
            (MeshSubject::Enforcement, (v(!audit), v(*audit)))
        }
        MeshWide::Dns { base, head } => {
            let v = |d: &Option<Vec<std::net::Ipv4Addr>>| {
                Some(match d {
                    None => MeshValue::Text("resolv.conf".into()),
                    Some(ips) => MeshValue::List(ips.iter().map(|i| i.to_string()).collect()),
                })
            };
            (MeshSubject::Dns, (v(base), v(head)))
        }
    };
    (subject, base, head)
}

fn mesh_change(e: &MeshEntry) -> MeshChange {
    let (subject, base, head) = mesh_values(e);
    // The MeshConfig of each side, for what comes from it.
    let at = |p: &Option<Provenance>| match p {
        Some(p) if from_mesh_config(e) => Some(Resource {
            name: p.policy.clone(),
            file: p.file.clone(),
            line: p.line,
        }),
        _ => None,
    };
    MeshChange {
        scope: MeshScope::Mesh,
        identity: (),
        subject,
        change: e.change.into(),
        effect: e.effect.into(),
        text: mesh_text(e),
        base,
        head,
        base_at: at(&e.base_at),
        head_at: at(&e.head_at),
    }
}

/// The document of a diff.
pub fn document(d: &Diff) -> DiffDocument {
    let mut entries: Vec<Entry> = d.mesh.iter().map(|e| Entry::Mesh(mesh_change(e))).collect();
    for id in &d.identities {
        if let Some(p) = presence_text(id) {
            let change = if id.presence == Presence::New {
                Change::Added
            } else {
                Change::Removed
            };
            entries.push(Entry::Identity(IdentityChange {
                scope: IdentityScope::Identity,
                identity: id.name.clone(),
                subject: IdentityScope::Identity,
                change: change.into(),
                effect: EffectKind::Neutral,
                text: p.to_owned(),
            }));
        }
        for e in &id.entries {
            let mut text = format!("{} {}", super::change_str(e.change), access_text(&e.key));
            for line in access_details(e) {
                let _ = write!(text, "; {line}");
            }
            entries.push(Entry::Access(AccessChange {
                scope: IdentityScope::Identity,
                identity: id.name.clone(),
                subject: AccessSubject::Access,
                change: e.change.into(),
                effect: e.effect.into(),
                text,
                protocol: e.key.protocol.as_str().to_owned(),
                port: e.key.port,
                destination: destination(&e.key),
                base: e.base.iter().map(|a| grant(a, false)).collect(),
                head: e.head.iter().map(|a| grant(a, false)).collect(),
                covers: e.covers.iter().map(|a| grant(a, true)).collect(),
                still_allowed: e.still.iter().map(|a| grant(a, true)).collect(),
            }));
        }
    }
    let s = d.summary();
    DiffDocument {
        summary: Summary {
            text: summary_text(d),
            identities_gaining: s.gaining,
            destinations_gained: s.gained,
            identities_losing: s.losing,
            destinations_lost: s.lost,
            mesh_wide: s.mesh,
            neutral: s.neutral,
            new_identities: s.new,
            gone_identities: s.gone,
        },
        widens: d.widens(),
        changed: !d.is_empty(),
        entries,
    }
}

/// JSON: the document, pretty, keys sorted.
pub fn render_json(d: &Diff) -> String {
    crate::emit::output::pretty_text(&document(d))
}

/// The JSON Schema of the document.
pub fn diff_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<DiffDocument>(
        "egressc:diff.schema.json",
        "What `egressc diff --format json` writes: who gains and who loses access.",
    )
}
