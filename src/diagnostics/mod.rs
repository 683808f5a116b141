//! Diagnostics as data: a code from the one table, a message, a place. The pipeline's stages
//! produce them; `render` (the last stage) turns them into text.

pub mod codes;
pub mod render;

pub use codes::{Code, Severity};

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    None,
    /// A file that has no text to show (it could not be read).
    File(String),
    Span(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
    pub place: Place,
    /// Other places that explain this one ("first defined here").
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            label: None,
            help: None,
            place: Place::None,
            related: Vec::new(),
        }
    }
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
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
            .then(a.code.as_str().cmp(b.code.as_str()))
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
        match d.severity() {
            Severity::Error => c.errors += 1,
            Severity::Warning => c.warnings += 1,
            Severity::Note => c.notes += 1,
        }
    }
    c
}
