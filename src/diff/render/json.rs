//! JSON: one object with the summary and an `entries` array; the field names are stable.

use crate::diff::access::{Atom, Dest, Key};
use crate::diff::render::{
    access_details, access_text, change_str, effect_str, from_mesh_config, mesh_text,
    presence_text, summary_text,
};
use crate::diff::{Change, Diff, MeshEntry, MeshWide, Presence};
use crate::model::Provenance;
use crate::plan::Gateway;
use serde_json::{Value, json};
use std::fmt::Write as _;

fn json_prov(p: &Provenance) -> Value {
    json!({"policy": p.policy, "file": p.file, "line": p.line})
}

fn json_dest(key: &Key) -> Value {
    match &key.dest {
        Dest::Host(h) => json!({"kind": "host", "value": h.to_string()}),
        Dest::Cidr(c) => json!({"kind": "cidr", "value": c.to_string()}),
        Dest::AnyAddress => json!({"kind": "any-address", "value": null}),
    }
}

/// A tuple: its constraints (`addresses` null: any; `route` null: any request, or not http)
/// and the policies granting it; with its destination when `full`.
fn json_atom(a: &Atom, full: bool) -> Value {
    let mut v = json!({
        "addresses": (!a.addresses.is_empty())
            .then(|| a.addresses.iter().map(|c| c.to_string()).collect::<Vec<_>>()),
        "route": a.route.as_ref().map(|r| json!({
            "path": r.path, "methods": r.methods, "headers": r.headers,
        })),
        "granted_by": a.by.iter().map(json_prov).collect::<Vec<_>>(),
    });
    if full {
        v["protocol"] = json!(a.key.protocol.as_str());
        v["port"] = json!(a.key.port);
        v["destination"] = json_dest(&a.key);
    }
    v
}

fn json_gateway(g: Option<&Gateway>) -> Value {
    g.map_or(Value::Null, |g| {
        json!({"mode": g.mode.as_str(), "host": g.host, "port": g.port, "weight": g.weight, "listen_port": g.listen_port})
    })
}

/// The subject and each side's value of a mesh-wide entry.
fn json_mesh_values(e: &MeshEntry) -> (&'static str, Value, Value) {
    let added = e.change == Change::Added;
    let side = |v: Value| {
        if added {
            (Value::Null, v)
        } else {
            (v, Value::Null)
        }
    };
    let (subject, (base, head)) = match &e.what {
        MeshWide::Passthrough { head } => ("passthrough", (json!(!head), json!(head))),
        MeshWide::Policies { head } => ("policies", (json!(!head), json!(head))),
        MeshWide::Gateway { base, head, .. } => (
            "gateway",
            (json_gateway(base.as_deref()), json_gateway(head.as_deref())),
        ),
        MeshWide::Excluded(c) => ("excluded-addresses", side(json!(c.to_string()))),
        MeshWide::InclusionList(v) => (
            "inclusion-list",
            side(json!(v.iter().map(|c| c.to_string()).collect::<Vec<_>>())),
        ),
        MeshWide::Included(c) => ("included-addresses", side(json!(c.to_string()))),
        MeshWide::ExcludedPort(p) => ("excluded-port", side(json!(p))),
        MeshWide::InMesh { ip, port, service } => (
            "in-mesh",
            side(json!({"address": format!("{ip}:{port}"), "service": service})),
        ),
        MeshWide::Dns { base, head } => {
            let v = |d: &Option<Vec<std::net::Ipv4Addr>>| match d {
                None => json!("any"),
                Some(ips) => json!(ips.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
            };
            ("dns", (v(base), v(head)))
        }
    };
    (subject, base, head)
}

/// JSON: one object with the summary and an `entries` array (stable field names).
pub fn render_json(d: &Diff) -> String {
    let mut entries = Vec::new();
    for e in &d.mesh {
        let (subject, base, head) = json_mesh_values(e);
        // The MeshConfig of each side, for what comes from it.
        let at = |p: &Option<Provenance>| match p {
            Some(p) if from_mesh_config(e) => {
                json!({"name": p.policy, "file": p.file, "line": p.line})
            }
            _ => Value::Null,
        };
        entries.push(json!({
            "scope": "mesh", "identity": null, "subject": subject,
            "change": change_str(e.change), "effect": effect_str(e.effect), "text": mesh_text(e),
            "base": base, "head": head, "base_at": at(&e.base_at), "head_at": at(&e.head_at),
        }));
    }
    for id in &d.identities {
        if let Some(p) = presence_text(id) {
            let change = if id.presence == Presence::New {
                Change::Added
            } else {
                Change::Removed
            };
            entries.push(json!({
                "scope": "identity", "identity": id.name, "subject": "identity",
                "change": change_str(change), "effect": "neutral", "text": p,
            }));
        }
        for e in &id.entries {
            let mut text = format!("{} {}", change_str(e.change), access_text(&e.key));
            for line in access_details(e) {
                let _ = write!(text, "; {line}");
            }
            entries.push(json!({
                "scope": "identity", "identity": id.name, "subject": "access",
                "change": change_str(e.change), "effect": effect_str(e.effect), "text": text,
                "protocol": e.key.protocol.as_str(), "port": e.key.port, "destination": json_dest(&e.key),
                "base": e.base.iter().map(|a| json_atom(a, false)).collect::<Vec<_>>(),
                "head": e.head.iter().map(|a| json_atom(a, false)).collect::<Vec<_>>(),
                "covers": e.covers.iter().map(|a| json_atom(a, true)).collect::<Vec<_>>(),
                "still_allowed": e.still.iter().map(|a| json_atom(a, true)).collect::<Vec<_>>(),
            }));
        }
    }
    let s = d.summary();
    let doc = json!({
        "summary": {
            "text": summary_text(d),
            "identities_gaining": s.gaining, "destinations_gained": s.gained,
            "identities_losing": s.losing, "destinations_lost": s.lost,
            "mesh_wide": s.mesh, "neutral": s.neutral,
            "new_identities": s.new, "gone_identities": s.gone,
        },
        "widens": d.widens(),
        "changed": !d.is_empty(),
        "entries": entries,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("json");
    text.push('\n');
    text
}
