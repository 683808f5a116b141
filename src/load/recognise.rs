//! Recognising a document's kind from its `apiVersion` and `kind`.

use crate::diagnostics::{Code, Diagnostic};
use crate::input::yaml::Node;
use crate::load::kinds::{Kind, OTHER_KNOWN_KINDS};
use crate::load::schema;
use crate::span::{FileId, Span};

pub enum Recognised {
    Known(Kind),
    /// A kind egressc does not read: counted in one note.
    Other,
    /// Reported as an error.
    Invalid,
}

fn is_mesh_group(group: &str) -> bool {
    group == "flomesh.io"
        || group.ends_with(".flomesh.io")
        || group == "smi-spec.io"
        || group.ends_with(".smi-spec.io")
}

pub fn recognise(
    api_version: &str,
    kind: &str,
    doc: &Node,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
) -> Recognised {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let api_span = || Span::new(file, doc.locate(crate::path!["apiVersion"]).0.loc);
    let kind_span = || Span::new(file, doc.locate(crate::path!["kind"]).0.loc);
    if let Some(k) = Kind::ALL
        .iter()
        .find(|k| k.name() == kind && k.group() == group)
    {
        if k.versions().contains(&version) {
            return Recognised::Known(*k);
        }
        diags.push(
            Diagnostic::new(
                Code::E0103,
                format!("unknown version `{api_version}` of {kind}"),
            )
            .at(api_span())
            .label("egressc does not know this version")
            .help(format!(
                "use apiVersion {}",
                k.api_versions()
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        );
        return Recognised::Invalid;
    }
    // One of the mesh kinds under another group (`apiVersion: v1, kind: MeshConfig`, as in
    // FSM's own demo): kubectl refuses it, and skipping it would lose the mesh's settings.
    let ours_elsewhere = Kind::ALL
        .iter()
        .any(|k| !k.group().is_empty() && k.name() == kind);
    if !is_mesh_group(group) && !ours_elsewhere
        || OTHER_KNOWN_KINDS
            .iter()
            .any(|(g, k)| *g == group && *k == kind)
    {
        return Recognised::Other;
    }
    // A kind of ours in the wrong group, or a kind nobody defines: a typo that would
    // silently drop a policy.
    let ours: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| !k.group().is_empty())
        .map(|k| k.name().to_owned())
        .chain(
            OTHER_KNOWN_KINDS
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, k)| (*k).to_owned()),
        )
        .collect();
    let help = if let Some(k) = Kind::ALL.iter().find(|k| k.name() == kind) {
        format!("{kind} belongs to apiVersion `{}`", k.api_versions()[0])
    } else if let Some(s) = schema::closest(kind, &ours) {
        match Kind::ALL.iter().find(|k| k.name() == s) {
            Some(k) => format!("did you mean `{s}` (apiVersion `{}`)?", k.api_versions()[0]),
            None => format!("did you mean `{s}`?"),
        }
    } else {
        "egressc reads MeshConfig, Egress, EgressGateway, UpstreamTrafficSetting and HTTPRouteGroup from these groups".into()
    };
    diags.push(
        Diagnostic::new(
            Code::E0104,
            if group.is_empty() {
                format!("`{kind}` is not a kind of the core apiVersion `{api_version}`")
            } else {
                format!("unknown kind `{kind}` in group `{group}`")
            },
        )
        .at(kind_span())
        .help(help),
    );
    Recognised::Invalid
}
