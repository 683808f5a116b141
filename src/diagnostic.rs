//! Diagnostics as data, and the one place where they are rendered: human (annotate-snippets),
//! JSON and SARIF 2.1.0.

use crate::source::{FileId, Sources};
use crate::yaml::Loc;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    fn of_code(code: &str) -> Severity {
        match code.as_bytes().first() {
            Some(b'E') => Severity::Error,
            Some(b'W') => Severity::Warning,
            _ => Severity::Note,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A place in an input text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: FileId,
    pub loc: Loc,
}

impl Span {
    pub fn new(file: FileId, loc: Loc) -> Span {
        Span { file, loc }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    None,
    /// A file that has no text to show (it could not be read).
    File(String),
    Span(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
    pub place: Place,
    /// Other places that explain this one ("first defined here").
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Diagnostic {
        debug_assert!(code_info(code).is_some(), "unregistered code {code}");
        Diagnostic {
            code,
            severity: Severity::of_code(code),
            message: message.into(),
            label: None,
            help: None,
            place: Place::None,
            related: Vec::new(),
        }
    }
    pub fn at(mut self, span: Span) -> Self {
        self.place = Place::Span(span);
        self
    }
    pub fn file_only(mut self, name: &str) -> Self {
        self.place = Place::File(name.to_owned());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    pub fn related(mut self, span: Span, text: impl Into<String>) -> Self {
        self.related.push((span, text.into()));
        self
    }
    pub fn span(&self) -> Option<Span> {
        match &self.place {
            Place::Span(s) => Some(*s),
            _ => None,
        }
    }
}

/// Every diagnostic code egressc can emit: code, short title.
/// The README documents each; a test keeps the two in step.
pub const CODES: &[(&str, &str)] = &[
    ("E0001", "an input cannot be read"),
    ("E0101", "a named file is not valid YAML or UTF-8"),
    ("E0102", "a document has no apiVersion or kind"),
    ("E0103", "unknown version of a known kind"),
    ("E0104", "unknown kind in a flomesh.io or smi-spec.io group"),
    ("E0201", "schema violation"),
    ("E0202", "unknown field"),
    ("E0301", "port outside 1..65535"),
    ("E0302", "unsupported protocol"),
    ("E0303", "invalid CIDR"),
    ("E0304", "invalid host pattern"),
    ("E0305", "http port without hosts"),
    (
        "E0306",
        "matches names a resource that is not in the inputs",
    ),
    ("E0307", "matches names an unsupported kind or apiGroup"),
    ("E0308", "more than one UpstreamTrafficSetting in matches"),
    ("E0309", "source kind is not ServiceAccount"),
    ("E0310", "name or namespace is not a DNS-1123 name"),
    ("E0311", "the same resource is defined twice"),
    ("E0312", "more than one MeshConfig"),
    ("E0313", "more than one EgressGateway with global entries"),
    ("E0314", "unknown egress gateway mode"),
    ("E0315", "one identity has two protocols on one port"),
    ("E0316", "regex outside the portable RE2/ECMAScript subset"),
    ("E0317", "IPv6 is not supported"),
    ("W0101", "a file in a walked directory is not YAML; skipped"),
    (
        "W0102",
        "a file in a walked directory holds no Kubernetes document; skipped",
    ),
    (
        "W0401",
        "Egress policies are ignored: enableEgressPolicy is false",
    ),
    (
        "W0402",
        "Egress policies restrict nothing: enableEgress is true",
    ),
    ("W0403", "a port rule allows every address"),
    ("W0404", "a wildcard covers a whole public suffix"),
    (
        "W0405",
        "an Egress policy duplicates or is contained in another",
    ),
    (
        "W0406",
        "EgressGateway names a Service that is not in the inputs",
    ),
    ("W0407", "Service without a clusterIP"),
    ("W0408", "field accepted but not acted on"),
    ("N0001", "documents of other kinds were skipped"),
];

pub fn code_info(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, t)| *t)
}

/// Sort for stable output: by file (input order), position, then code.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| match &d.place {
            Place::Span(s) => (0, s.file, s.loc.line, s.loc.col, String::new()),
            Place::File(n) => (0, usize::MAX, 0, 0, n.clone()),
            Place::None => (1, usize::MAX, 0, 0, String::new()),
        };
        key(a)
            .cmp(&key(b))
            .then(a.code.cmp(b.code))
            .then(a.message.cmp(&b.message))
    });
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
}

pub fn count(diags: &[Diagnostic]) -> Counts {
    let mut c = Counts::default();
    for d in diags {
        match d.severity {
            Severity::Error => c.errors += 1,
            Severity::Warning => c.warnings += 1,
            Severity::Note => c.notes += 1,
        }
    }
    c
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The human form, rendered with annotate-snippets.
pub fn render_human(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for d in diags {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
            Severity::Note => Level::NOTE,
        };
        let title = level.primary_title(d.message.as_str()).id(d.code);
        let mut group = Group::with_title(title);
        // One line of context around a span; the whole file is never handed to the renderer.
        let snippet = |span: &Span, kind: AnnotationKind, label: Option<&str>| {
            let file = sources.get(span.file);
            let range = file.line_range(span.loc.line);
            let line = &file.text[range.clone()];
            let start = span.loc.start.clamp(range.start, range.end) - range.start;
            let mut end = span.loc.end.clamp(range.start, range.end) - range.start;
            if end <= start {
                // Point at one character (or the end of the line).
                end = line[start..]
                    .chars()
                    .next()
                    .map_or(start, |c| start + c.len_utf8());
            }
            let mut ann = kind.span(start..end);
            if let Some(l) = label {
                ann = ann.label(l.to_owned());
            }
            Snippet::source(line.to_owned())
                .line_start(span.loc.line as usize)
                .path(file.name.clone())
                .annotation(ann)
        };
        match &d.place {
            Place::Span(s) => {
                group = group.element(snippet(s, AnnotationKind::Primary, d.label.as_deref()));
            }
            Place::File(name) => {
                group = group.element(Origin::path(name.clone()));
            }
            Place::None => {}
        }
        let mut groups = vec![group];
        for (span, text) in &d.related {
            groups.push(
                Group::with_title(Level::NOTE.secondary_title(text.clone())).element(snippet(
                    span,
                    AnnotationKind::Context,
                    None,
                )),
            );
        }
        if let Some(help) = &d.help {
            let last = groups.pop().expect("one group");
            groups.push(last.element(Level::HELP.message(help.clone())));
        }
        out.push_str(&renderer.render(&groups));
        out.push_str("\n\n");
    }
    let c = count(diags);
    if c.errors + c.warnings > 0 {
        let _ = writeln!(
            out,
            "{}, {}",
            plural(c.errors, "error"),
            plural(c.warnings, "warning")
        );
    }
    out
}

#[derive(Serialize)]
struct JsonDiag<'a> {
    code: &'a str,
    severity: Severity,
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
    message: &'a str,
    help: Option<&'a str>,
}

fn file_line_col<'a>(
    d: &'a Diagnostic,
    sources: &'a Sources,
) -> (Option<&'a str>, Option<u32>, Option<u32>) {
    match &d.place {
        Place::Span(s) => (
            Some(sources.get(s.file).name.as_str()),
            Some(s.loc.line),
            Some(s.loc.col),
        ),
        Place::File(n) => (Some(n.as_str()), None, None),
        Place::None => (None, None, None),
    }
}

/// One JSON array; field names are stable.
pub fn render_json(diags: &[Diagnostic], sources: &Sources) -> String {
    let items: Vec<JsonDiag> = diags
        .iter()
        .map(|d| {
            let (file, line, column) = file_line_col(d, sources);
            JsonDiag {
                code: d.code,
                severity: d.severity,
                file,
                line,
                column,
                message: &d.message,
                help: d.help.as_deref(),
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).expect("diagnostics serialize");
    s.push('\n');
    s
}

/// SARIF 2.1.0, for GitHub code scanning.
pub fn render_sarif(diags: &[Diagnostic], sources: &Sources) -> String {
    use serde_json::json;
    let mut used: Vec<&str> = diags.iter().map(|d| d.code).collect();
    used.sort_unstable();
    used.dedup();
    let rules: Vec<_> = used
        .iter()
        .map(|c| {
            json!({
                "id": c,
                "shortDescription": {"text": code_info(c).unwrap_or("")},
                "defaultConfiguration": {"level": sarif_level(Severity::of_code(c))},
            })
        })
        .collect();
    let results: Vec<_> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let mut r = json!({
                "ruleId": d.code,
                "ruleIndex": used.iter().position(|c| *c == d.code),
                "level": sarif_level(d.severity),
                "message": {"text": text},
            });
            let (file, line, column) = file_line_col(d, sources);
            if let Some(file) = file {
                let mut phys = json!({"artifactLocation": {"uri": file}});
                if let (Some(l), Some(c)) = (line, column) {
                    phys["region"] = json!({"startLine": l, "startColumn": c});
                }
                r["locations"] = json!([{"physicalLocation": phys}]);
            }
            r
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "egressc",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("sarif serializes");
    s.push('\n');
    s
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}
