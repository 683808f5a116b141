//! Places in the input texts: a file by its id, a line/column and byte range within it.
//! A leaf module: every stage may use it.

/// An input text of a run, by its index in `Sources`.
pub type FileId = usize;

/// A location in one source text: 1-based line and column, byte range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
    pub start: usize,
    pub end: usize,
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
