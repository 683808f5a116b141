//! Reading inputs: files, directories (walked in sorted order, hidden entries skipped) and stdin.

use crate::diagnostics::{Code, Diagnostic};
use crate::span::{FileId, Loc, Span};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One input text.
pub struct SourceFile {
    /// The path as shown in diagnostics (as given, joined with the walked relative path).
    pub name: String,
    pub text: String,
    /// Named on the command line (strict) rather than found by walking a directory (lenient).
    pub explicit: bool,
    /// False when the text could not be decoded; it is kept only to show diagnostics.
    pub usable: bool,
    /// Byte offsets of line starts (inputs are far below 4 GiB).
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: String, text: String, explicit: bool) -> SourceFile {
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
        );
        line_starts.shrink_to_fit();
        SourceFile {
            name,
            text,
            explicit,
            usable: true,
            line_starts,
        }
    }

    /// Byte range of the 1-based line `line`, without its newline.
    pub fn line_range(&self, line: u32) -> std::ops::Range<usize> {
        let idx = (line.max(1) - 1) as usize;
        let start = self
            .line_starts
            .get(idx)
            .map_or(self.text.len(), |s| *s as usize);
        let end = self
            .line_starts
            .get(idx + 1)
            .map(|e| *e as usize - 1)
            .unwrap_or(self.text.len());
        let end = if end > start && self.text.as_bytes().get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        start..end.max(start)
    }

    /// A location for a 1-based line and column (columns counted in characters).
    pub fn loc_of(&self, line: u32, col: u32) -> Loc {
        let range = self.line_range(line);
        let text = &self.text[range.clone()];
        let offset = range.start
            + text
                .char_indices()
                .nth(col.saturating_sub(1) as usize)
                .map_or(text.len(), |(i, _)| i);
        Loc {
            line,
            col,
            start: offset,
            end: offset,
        }
    }

    /// A location for a byte offset (1-based line and column, column counted in characters).
    pub fn loc_at(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let key = u32::try_from(offset).unwrap_or(u32::MAX);
        let idx = match self.line_starts.binary_search(&key) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[idx] as usize;
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        Loc {
            line: idx as u32 + 1,
            col: col as u32 + 1,
            start: offset,
            end: offset,
        }
    }
}

/// All input texts of a run; diagnostics refer to them by `FileId`.
#[derive(Default)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        self.files.len() - 1
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// Give a span found by byte range only (line 0: the places of typed documents keep no
    /// lines) its line and column.
    pub fn resolve(&self, span: &mut crate::span::Span) {
        if span.loc.line == 0
            && let Some(f) = self.files.get(span.file)
        {
            let at = f.loc_at(span.loc.start);
            span.loc.line = at.line;
            span.loc.col = at.col;
        }
    }

    /// Give every span of `diags` its line and column.
    pub fn resolve_all(&self, diags: &mut [Diagnostic]) {
        for d in diags {
            if let crate::diagnostics::Place::Span(s) = &mut d.place {
                self.resolve(s);
            }
            for (s, _) in &mut d.related {
                self.resolve(s);
            }
        }
    }
}

/// Whether the walker reads a file found in a folder, by its name.
pub fn is_input_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// A hidden name (`.git`, `.env`): the walker skips it and all below it.
pub fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|s| s.starts_with('.') && s != "." && s != "..")
}

fn display(path: &Path) -> String {
    let s = path.to_string_lossy().into_owned();
    let s = s.strip_prefix("./").map(str::to_owned).unwrap_or(s);
    if std::path::MAIN_SEPARATOR == '\\' {
        s.replace('\\', "/")
    } else {
        s
    }
}

/// The default limit on one input file (and on stdin): 16 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 16 << 20;

/// How inputs are read.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// The largest input file (and stdin) accepted, in bytes.
    pub max_bytes: u64,
    /// Folders never read as input (the output folder of a build).
    pub exclude: Vec<PathBuf>,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_bytes: DEFAULT_MAX_INPUT_BYTES,
            exclude: Vec::new(),
        }
    }
}

/// E0002: an input over a limit (the caller adds the place).
pub fn limit_exceeded(message: String, help: &str) -> Diagnostic {
    Diagnostic::new(Code::E0002, message).help(help)
}

/// E0002: `name` is over the input size limit.
pub fn too_large(name: &str, limit: u64) -> Diagnostic {
    limit_exceeded(
        format!(
            "`{name}` is larger than the input limit of {} MiB",
            limit >> 20
        ),
        "raise the limit with `--max-input-mib`, or split the input",
    )
    .file_only(name)
}

/// E0107: a symlink that leaves every input folder, or a loop of links.
fn bad_link(name: &str, why: &str) -> Diagnostic {
    Diagnostic::new(Code::E0107, format!("`{name}`: {why}"))
        .file_only(name)
        .help("a link in a walked folder must point inside one of the inputs; a policy behind it would otherwise be read from anywhere, or lost")
}

/// Read at most `limit` bytes; `None` when there is more. `size` is a hint (a file's length).
pub fn read_limited(mut r: impl Read, limit: u64, size: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(size.min(limit) as usize + 1);
    r.by_ref().take(limit + 1).read_to_end(&mut buf)?;
    buf.shrink_to_fit();
    Ok((buf.len() as u64 <= limit).then_some(buf))
}

/// The walk of the inputs: roots, files already read, limits.
struct Reader<'a> {
    limits: &'a ReadLimits,
    roots: Vec<PathBuf>,
    exclude: Vec<PathBuf>,
    seen: std::collections::HashSet<PathBuf>,
}

impl Reader<'_> {
    fn read_file(
        &mut self,
        path: &Path,
        explicit: bool,
        sources: &mut Sources,
        diags: &mut Vec<Diagnostic>,
    ) {
        let name = display(path);
        // The same file reached twice (a folder and a file in it, or two links) is read once.
        if let Ok(canonical) = std::fs::canonicalize(path)
            && !self.seen.insert(canonical)
        {
            return;
        }
        let opened = std::fs::File::open(path).and_then(|f| {
            let size = f.metadata().map_or(0, |m| m.len());
            read_limited(f, self.limits.max_bytes, size)
        });
        match opened {
            Ok(Some(bytes)) => push_text(sources, diags, name, bytes, explicit),
            Ok(None) => diags.push(too_large(&name, self.limits.max_bytes)),
            Err(err) => diags.push(io_error(&name, &err)),
        }
    }

    fn walk(&mut self, input: &str, sources: &mut Sources, diags: &mut Vec<Diagnostic>) {
        let exclude = self.exclude.clone();
        let walker = walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(move |e| {
                let excluded = std::fs::canonicalize(e.path()).is_ok_and(|c| exclude.contains(&c));
                (e.depth() == 0 || !is_hidden(e.file_name())) && !excluded
            });
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_file() && is_input_file(e.path()) => {
                    if e.path_is_symlink() || e.depth() > 0 {
                        let inside = std::fs::canonicalize(e.path())
                            .is_ok_and(|c| self.roots.iter().any(|r| c.starts_with(r)));
                        if !inside {
                            diags.push(bad_link(
                                &display(e.path()),
                                "the link points outside every input",
                            ));
                            continue;
                        }
                    }
                    self.read_file(e.path(), false, sources, diags);
                }
                Ok(_) => {}
                Err(err) if err.loop_ancestor().is_some() => {
                    let name = err.path().map(display).unwrap_or_else(|| input.to_owned());
                    diags.push(bad_link(&name, "the links form a loop"));
                }
                Err(err) => {
                    let name = err.path().map(display).unwrap_or_else(|| input.to_owned());
                    let ioe = std::io::Error::other(err.to_string());
                    diags.push(io_error(&name, &ioe));
                }
            }
        }
    }
}

/// Read every input. Unreadable inputs become `E0001` diagnostics (an I/O error: exit 2).
pub fn read_inputs(
    inputs: &[String],
    stdin: &mut dyn Read,
    limits: &ReadLimits,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
) {
    let mut reader = Reader {
        limits,
        roots: inputs
            .iter()
            .filter(|i| *i != "-")
            .filter_map(|i| std::fs::canonicalize(i).ok())
            .collect(),
        exclude: limits
            .exclude
            .iter()
            .filter_map(|x| std::fs::canonicalize(x).ok())
            .collect(),
        seen: Default::default(),
    };
    for input in inputs {
        if input == "-" {
            match read_limited(&mut *stdin, limits.max_bytes, 0) {
                Ok(Some(buf)) => push_text(sources, diags, "<stdin>".into(), buf, true),
                Ok(None) => diags.push(too_large("<stdin>", limits.max_bytes)),
                Err(e) => diags.push(io_error("<stdin>", &e)),
            }
            continue;
        }
        let path = Path::new(input);
        if path.is_dir() {
            reader.walk(input, sources, diags);
        } else {
            reader.read_file(path, true, sources, diags);
        }
    }
}

fn push_text(
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
    name: String,
    bytes: Vec<u8>,
    explicit: bool,
) {
    match String::from_utf8(bytes) {
        Ok(text) => {
            sources.add(SourceFile::new(name, text, explicit));
        }
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let mut file = SourceFile::new(name, text, explicit);
            file.usable = false;
            let found = Found::of(explicit, &file.text);
            let id = sources.add(file);
            let loc = sources.get(id).loc_at(offset);
            diags.push(unparsable(found, Span::new(id, loc), Unparsable::Utf8));
        }
    }
}

/// Whether a text that does not parse may hold a mesh policy: an `apiVersion` line names a
/// flomesh.io or smi-spec.io group, and it is not recognisably a template (Helm/Go template markers). Such a
/// file is an error even in a walked folder: a lost MeshConfig or policy widens egress.
pub fn may_hold_policy(text: &str) -> bool {
    let template = text.contains("{{") || text.contains("{%");
    let ours = text.lines().any(|l| {
        l.contains("apiVersion") && (l.contains("flomesh.io") || l.contains("smi-spec.io"))
    });
    ours && !template
}

#[cfg(test)]
mod tests {
    use super::may_hold_policy;

    #[test]
    fn a_policy_is_recognised_by_its_api_version() {
        assert!(may_hold_policy(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: [\n"
        ));
        assert!(may_hold_policy(
            "{\"apiVersion\": \"specs.smi-spec.io/v1alpha4\", x"
        ));
        // A template, or a file that only mentions the group elsewhere, is not.
        assert!(!may_hold_policy(
            "apiVersion: policy.flomesh.io/v1alpha1\nname: {{ .x }}\n"
        ));
        assert!(!may_hold_policy("# see flomesh.io\nvalues: [\n"));
    }
}

/// Why a file does not parse.
pub enum Unparsable {
    Utf8,
    Yaml(String),
}

/// How a file that does not parse is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Named on the command line: an error.
    Named,
    /// Found by walking a folder, and it may hold a mesh policy: an error.
    WalkedPolicy,
    /// Found by walking a folder, and it holds no mesh policy (or is a template): skipped.
    Walked,
}

impl Found {
    pub fn of(explicit: bool, text: &str) -> Found {
        if explicit {
            Found::Named
        } else if may_hold_policy(text) {
            Found::WalkedPolicy
        } else {
            Found::Walked
        }
    }
}

/// A file that does not parse: an error when it was named or may hold a policy, a warning
/// when it was found by walking a folder and holds none.
pub fn unparsable(found: Found, span: Span, why: Unparsable) -> Diagnostic {
    let (code, skipped) = match found {
        Found::Named => (Code::E0101, false),
        Found::WalkedPolicy => (Code::E0105, false),
        Found::Walked => (Code::W0101, true),
    };
    let problem = match &why {
        Unparsable::Utf8 => "the file is not valid UTF-8".to_owned(),
        Unparsable::Yaml(m) => format!("invalid YAML: {m}"),
    };
    let message = match (skipped, &why) {
        (true, Unparsable::Yaml(m)) => format!("skipped a file that is not valid YAML: {m}"),
        (false, _) if found == Found::WalkedPolicy => format!(
            "{problem}; the file names flomesh.io or smi-spec.io, so a policy in it would be lost"
        ),
        _ => problem,
    };
    let help = match (found, why) {
        (Found::Walked, Unparsable::Utf8) => {
            "the file was skipped; save it as UTF-8 if it holds configuration"
        }
        (Found::Walked, Unparsable::Yaml(_)) => {
            "files in a walked directory that do not parse (Helm templates, for example) are skipped; name the file to make this an error"
        }
        (_, Unparsable::Utf8) => "save the file as UTF-8",
        (_, Unparsable::Yaml(_)) => {
            "fix the syntax; `yamllint` or an editor with YAML support shows the structure"
        }
    };
    Diagnostic::new(code, message).at(span).help(help)
}

fn io_error(name: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(Code::E0001, format!("cannot read `{name}`: {e}"))
        .file_only(name)
        .help("check that the path exists and is readable")
}
