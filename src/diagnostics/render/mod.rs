//! The one place where diagnostics become text: human (annotate-snippets), JSON, SARIF
//! 2.1.0 and GitHub workflow commands (`github.rs`). The last stage: nothing of the pipeline
//! imports it.

mod github;
pub use github::render_github;

use crate::diagnostics::{Diagnostic, Place, Severity, count};
use crate::input::source::Sources;
use crate::span::Span;
use schemars::JsonSchema;
use serde::Serialize;
use std::fmt::Write as _;

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
        let level = match d.severity() {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
            Severity::Note => Level::NOTE,
        };
        let title = level.primary_title(d.message.as_str()).id(d.code.as_str());
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
            // A very long line (minified JSON) is shown as a window around the span.
            let (line, start, end) = window(line, start, end);
            let mut ann = kind.span(start..end);
            if let Some(l) = label {
                ann = ann.label(l.to_owned());
            }
            Snippet::source(line)
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

/// One diagnostic of `check --format json` (schemas/check.schema.json: an array of these).
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonDiagnostic<'a> {
    /// The stable code, e.g. `E0202`.
    code: &'a str,
    severity: Severity,
    /// The input file; null for a diagnostic of the whole run.
    file: Option<&'a str>,
    /// 1-based line and column (in characters); null without a place in the file.
    line: Option<u32>,
    column: Option<u32>,
    message: &'a str,
    help: Option<&'a str>,
}

pub fn file_line_col<'a>(
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

fn json_diagnostics<'a>(diags: &'a [Diagnostic], sources: &'a Sources) -> Vec<JsonDiagnostic<'a>> {
    diags
        .iter()
        .map(|d| {
            let (file, line, column) = file_line_col(d, sources);
            JsonDiagnostic {
                code: d.code.as_str(),
                severity: d.severity(),
                file,
                line,
                column,
                message: &d.message,
                help: d.help.as_deref(),
            }
        })
        .collect()
}

/// One JSON array; field names are stable.
pub fn render_json(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut s = serde_json::to_string_pretty(&json_diagnostics(diags, sources))
        .expect("diagnostics serialize");
    s.push('\n');
    s
}

/// The JSON Schema of `check --format json`.
pub fn check_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<Vec<JsonDiagnostic<'static>>>(
        "egressc:check.schema.json",
        "What `egressc check --format json` (and `build --format json`) writes: every diagnostic of the run.",
    )
}

/// Why a command that answers in JSON could not answer.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The inputs have errors (or warnings, with `--deny-warnings`): exit 1.
    InputErrors,
    /// An input could not be read: exit 2.
    UnreadableInput,
}

/// Which inputs of `diff` a diagnostic is about.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Base,
    Head,
}

/// A diagnostic of the error document: one of `check --format json`, and for `diff` the
/// side it is on.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDiagnostic<'a> {
    #[serde(flatten)]
    diagnostic: JsonDiagnostic<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<Side>,
}

/// What `explain`, `test` and `diff` print on standard output with `--format json` when the
/// inputs stop them (schemas/error.schema.json); the diagnostics are also shown on standard
/// error, as by `check`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDocument<'a> {
    error: ErrorKind,
    message: String,
    diagnostics: Vec<ErrorDiagnostic<'a>>,
}

/// The error document of one run: each part is the diagnostics of one side (`None` outside
/// `diff`) with the sources they point into.
pub fn render_error(error: ErrorKind, parts: &[(Option<Side>, &[Diagnostic], &Sources)]) -> String {
    let message = match error {
        ErrorKind::InputErrors => "the inputs have errors",
        ErrorKind::UnreadableInput => "an input could not be read",
    };
    let doc = ErrorDocument {
        error,
        message: message.to_owned(),
        diagnostics: parts
            .iter()
            .flat_map(|(side, diags, sources)| {
                json_diagnostics(diags, sources)
                    .into_iter()
                    .map(|diagnostic| ErrorDiagnostic {
                        diagnostic,
                        side: *side,
                    })
            })
            .collect(),
    };
    crate::emit::output::pretty_text(&doc)
}

/// The JSON Schema of the error document.
pub fn error_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<ErrorDocument<'static>>(
        "egressc:error.schema.json",
        "What `egressc explain`, `test` and `diff` write with `--format json` when the inputs stop them.",
    )
}

/// SARIF 2.1.0 (the parts egressc writes; the whole format is OASIS's schema,
/// `tests/sarif/sarif-schema-2.1.0.json`). Keys are written sorted.
mod sarif {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Log {
        #[serde(rename = "$schema")]
        pub schema: &'static str,
        pub version: &'static str,
        pub runs: [Run; 1],
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Run {
        pub tool: Tool,
        pub column_kind: &'static str,
        pub results: Vec<Result>,
    }

    #[derive(Serialize)]
    pub struct Tool {
        pub driver: Driver,
    }

    #[derive(Serialize)]
    pub struct Driver {
        pub name: &'static str,
        pub version: &'static str,
        pub rules: Vec<Rule>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Rule {
        pub id: &'static str,
        pub short_description: Message,
        pub default_configuration: Configuration,
    }

    #[derive(Serialize)]
    pub struct Configuration {
        pub level: &'static str,
    }

    #[derive(Serialize)]
    pub struct Message {
        pub text: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Result {
        pub rule_id: &'static str,
        pub rule_index: Option<usize>,
        pub level: &'static str,
        pub message: Message,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub locations: Vec<Location>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Location {
        pub physical_location: PhysicalLocation,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PhysicalLocation {
        pub artifact_location: ArtifactLocation,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub region: Option<Region>,
    }

    #[derive(Serialize)]
    pub struct ArtifactLocation {
        pub uri: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Region {
        pub start_line: u32,
        pub start_column: u32,
    }
}

/// SARIF 2.1.0, for GitHub code scanning.
pub fn render_sarif(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut used: Vec<crate::diagnostics::Code> = diags.iter().map(|d| d.code).collect();
    used.sort_unstable_by_key(|c| c.as_str());
    used.dedup();
    let rules = used
        .iter()
        .map(|c| sarif::Rule {
            id: c.as_str(),
            short_description: sarif::Message {
                text: c.title().to_owned(),
            },
            default_configuration: sarif::Configuration {
                level: sarif_level(c.severity()),
            },
        })
        .collect();
    let results = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let (file, line, column) = file_line_col(d, sources);
            let locations = file
                .map(|file| sarif::Location {
                    physical_location: sarif::PhysicalLocation {
                        artifact_location: sarif::ArtifactLocation { uri: uri(file) },
                        region: line.zip(column).map(|(l, c)| sarif::Region {
                            start_line: l,
                            start_column: c,
                        }),
                    },
                })
                .into_iter()
                .collect();
            sarif::Result {
                rule_id: d.code.as_str(),
                rule_index: used.iter().position(|c| *c == d.code),
                level: sarif_level(d.severity()),
                message: sarif::Message { text },
                locations,
            }
        })
        .collect();
    let log = sarif::Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [sarif::Run {
            tool: sarif::Tool {
                driver: sarif::Driver {
                    name: "egressc",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    crate::emit::output::pretty_text(&log)
}

/// The most of one source line a diagnostic echoes, in bytes.
const MAX_ECHO: usize = 240;

/// `line` cut to at most about `MAX_ECHO` bytes around `start..end` (on character
/// boundaries), with the span's offsets within the cut.
fn window(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    if line.len() <= MAX_ECHO {
        return (line.to_owned(), start, end);
    }
    let floor = |mut i: usize| {
        while i > 0 && !line.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let from = floor(start.saturating_sub(MAX_ECHO / 3));
    let to = floor((from + MAX_ECHO).min(line.len()).max(start.min(line.len())));
    let end = end.clamp(start, to.max(start));
    let (s, e) = (start - from, end - from);
    (
        line[from..to].to_owned(),
        s.min(to - from),
        e.min(to - from),
    )
}

/// A file name as a relative URI reference (RFC 3986): reserved and non-ASCII bytes are
/// percent-encoded, `/` separates segments.
fn uri(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostics::render::window;

    #[test]
    fn long_lines_are_echoed_as_a_window_around_the_span() {
        let line = "é".repeat(5000);
        for start in [0, 2, 4000, 9998] {
            let (cut, s, e) = window(&line, start, start + 2);
            assert!(cut.len() <= 242, "{}", cut.len());
            assert!(s <= e && e <= cut.len());
            assert_eq!(&cut[s..e], "é");
        }
        assert_eq!(window("short", 1, 3), ("short".to_owned(), 1, 3));
    }
}
