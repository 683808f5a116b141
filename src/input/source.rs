//! Reading inputs: files, directories (walked in sorted order, hidden entries skipped) and stdin.

use crate::diagnostics::{Code, Diagnostic};
use crate::input::span::{FileId, Loc, Span};
use std::io::Read;
use std::path::Path;

/// One input text.
pub struct SourceFile {
    /// The path as shown in diagnostics (as given, joined with the walked relative path).
    pub name: String,
    pub text: String,
    /// Named on the command line (strict) rather than found by walking a directory (lenient).
    pub explicit: bool,
    /// False when the text could not be decoded; it is kept only to show diagnostics.
    pub usable: bool,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: String, text: String, explicit: bool) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
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
        let start = *self.line_starts.get(idx).unwrap_or(&self.text.len());
        let end = self
            .line_starts
            .get(idx + 1)
            .map(|e| e - 1)
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
        let idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[idx];
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
}

fn is_input_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
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

/// Read every input. Unreadable inputs become `E0001` diagnostics (an I/O error: exit 2).
pub fn read_inputs(
    inputs: &[String],
    stdin: &mut dyn Read,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
) {
    for input in inputs {
        if input == "-" {
            let mut buf = Vec::new();
            match stdin.read_to_end(&mut buf) {
                Ok(_) => push_text(sources, diags, "<stdin>".into(), buf, true),
                Err(e) => diags.push(io_error("<stdin>", &e)),
            }
            continue;
        }
        let path = Path::new(input);
        if path.is_dir() {
            let walker = walkdir::WalkDir::new(path)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()));
            for entry in walker {
                match entry {
                    Ok(e) if e.file_type().is_file() && is_input_file(e.path()) => {
                        let name = display(e.path());
                        match std::fs::read(e.path()) {
                            Ok(bytes) => push_text(sources, diags, name, bytes, false),
                            Err(err) => diags.push(io_error(&name, &err)),
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let name = err.path().map(display).unwrap_or_else(|| input.clone());
                        let ioe = std::io::Error::other(err.to_string());
                        diags.push(io_error(&name, &ioe));
                    }
                }
            }
        } else {
            let name = display(path);
            match std::fs::read(path) {
                Ok(bytes) => push_text(sources, diags, name, bytes, true),
                Err(err) => diags.push(io_error(&name, &err)),
            }
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
            let id = sources.add(file);
            let loc = sources.get(id).loc_at(offset);
            diags.push(unparsable(explicit, Span::new(id, loc), Unparsable::Utf8));
        }
    }
}

/// Why a file does not parse.
pub enum Unparsable {
    Utf8,
    Yaml(String),
}

/// A file that does not parse: an error when it was named, a warning when it was found by
/// walking a folder.
pub fn unparsable(explicit: bool, span: Span, why: Unparsable) -> Diagnostic {
    let code = if explicit { Code::E0101 } else { Code::W0101 };
    let (message, help) = match (explicit, why) {
        (true, Unparsable::Utf8) => (
            "the file is not valid UTF-8".to_owned(),
            "save the file as UTF-8",
        ),
        (false, Unparsable::Utf8) => (
            "the file is not valid UTF-8".to_owned(),
            "the file was skipped; save it as UTF-8 if it holds configuration",
        ),
        (true, Unparsable::Yaml(m)) => (
            format!("invalid YAML: {m}"),
            "fix the syntax; `yamllint` or an editor with YAML support shows the structure",
        ),
        (false, Unparsable::Yaml(m)) => (
            format!("skipped a file that is not valid YAML: {m}"),
            "files in a walked directory that do not parse (Helm templates, for example) are skipped; name the file to make this an error",
        ),
    };
    Diagnostic::new(code, message).at(span).help(help)
}

fn io_error(name: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(Code::E0001, format!("cannot read `{name}`: {e}"))
        .file_only(name)
        .help("check that the path exists and is readable")
}
