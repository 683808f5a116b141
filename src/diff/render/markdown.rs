//! Markdown for a pull-request comment: the one-line summary, then a compact table.

use crate::diff::access::Atom;
use crate::diff::render::{
    change_str, constraints, dest_text, differing, from_mesh_config, mesh_text, presence_text,
    summary_text,
};
use crate::diff::{Diff, Effect};
use crate::model::Provenance;
use std::fmt::Write as _;

/// Rows of the markdown table at most (a pull-request comment is limited in size).
pub const MARKDOWN_ROWS: usize = 100;

/// A markdown table cell: pipes escaped, nothing that breaks the row.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Inline code in a table cell.
fn code(text: &str) -> String {
    let text = text.replace('|', "\\|").replace(['\n', '\r'], " ");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn md_by(by: &[Provenance]) -> String {
    let v: Vec<String> = by
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                cell(&p.policy),
                code(&format!("{}:{}", p.file, p.line))
            )
        })
        .collect();
    v.join(", ")
}

fn md_grants(atoms: &[&Atom]) -> String {
    if atoms.is_empty() {
        return "—".to_owned();
    }
    let v: Vec<String> = atoms
        .iter()
        .map(|a| match constraints(a) {
            Some(c) => format!("{} — {}", code(&c), md_by(&a.by)),
            None => md_by(&a.by),
        })
        .collect();
    v.join("<br>")
}

fn md_effect(e: Effect) -> &'static str {
    match e {
        Effect::Widens => "**widens**",
        Effect::Neutral => "neutral",
        Effect::Narrows => "narrows",
    }
}

/// Markdown for a pull-request comment: the summary, then one table row per entry.
pub fn render_markdown(d: &Diff) -> String {
    let mut s = format!("**egressc diff**: {}\n", cell(&summary_text(d)));
    if d.is_empty() {
        return s;
    }
    let mut rows = Vec::new();
    for e in &d.mesh {
        rows.push(format!(
            "| {} | *mesh-wide* | {} | | |",
            md_effect(e.effect),
            cell(&mesh_text(e))
        ));
    }
    for id in &d.identities {
        let who = code(&id.name);
        if let Some(p) = presence_text(id) {
            rows.push(format!("| neutral | {who} | {} | | |", cell(p)));
        }
        for e in &id.entries {
            let mut access = format!(
                "{} {} {}",
                change_str(e.change),
                e.key.protocol.as_str(),
                code(&dest_text(&e.key))
            );
            for (a, before, after) in e
                .covers
                .iter()
                .map(|a| (a, "now covers", ", allowed before"))
                .chain(e.still.iter().map(|a| (a, "still allows", "")))
            {
                let (protocol, dest) = (a.key.protocol.as_str(), code(&dest_text(&a.key)));
                let _ = write!(access, "<br>{before} {protocol} {dest}{after}");
            }
            let (base, head) = differing(e);
            rows.push(format!(
                "| {} | {who} | {access} | {} | {} |",
                md_effect(e.effect),
                md_grants(&base),
                md_grants(&head)
            ));
        }
    }
    s.push_str("\n| effect | identity | access | base | head |\n|---|---|---|---|---|\n");
    let total = rows.len();
    for r in rows.iter().take(MARKDOWN_ROWS) {
        s.push_str(r);
        s.push('\n');
    }
    if total > MARKDOWN_ROWS {
        let _ = writeln!(
            s,
            "\n{} more entries: run `egressc diff` for all of them.",
            total - MARKDOWN_ROWS
        );
    }
    if let Some(e) = d.mesh.iter().find(|e| from_mesh_config(e)) {
        let side = |p: &Option<Provenance>| match p {
            Some(p) => format!(
                "{} ({})",
                cell(&p.policy),
                code(&format!("{}:{}", p.file, p.line))
            ),
            None => "none (FSM's defaults)".to_owned(),
        };
        let _ = writeln!(
            s,
            "\nMeshConfig: base {}, head {}.",
            side(&e.base_at),
            side(&e.head_at)
        );
    }
    s
}
