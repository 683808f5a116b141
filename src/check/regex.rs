//! Route regexes are written for Go's RE2 in FSM and run as ECMAScript regexes in Pipy.
//! egressc accepts only the subset that means the same in both, and rejects the rest with
//! the reason. The check walks regex-syntax's AST (it rejects lookaround and
//! backreferences itself, as RE2 does).

use regex_syntax::ast::{
    self, AssertionKind, Ast, ClassSet, ClassSetItem, GroupKind, HexLiteralKind, LiteralKind,
    SpecialLiteralKind,
};

/// Why a regex is outside the portable subset: message, and byte range within the pattern.
#[derive(Debug, PartialEq, Eq)]
pub struct NotPortable {
    pub reason: String,
    pub start: usize,
    pub end: usize,
}

pub fn check(pattern: &str) -> Result<(), NotPortable> {
    let ast = ast::parse::ParserBuilder::new()
        .nest_limit(100)
        .build()
        .parse(pattern)
        .map_err(|e| NotPortable {
            reason: format!("not a valid RE2 regex: {}", e.kind()),
            start: e.span().start.offset,
            end: e.span().end.offset,
        })?;
    walk(&ast)?;
    // The regex crate must accept it too (size limits), since explain evaluates it.
    regex::Regex::new(pattern).map_err(|e| NotPortable {
        reason: format!("the regex cannot be compiled: {e}"),
        start: 0,
        end: pattern.len(),
    })?;
    Ok(())
}

fn deny(span: &ast::Span, reason: &str) -> Result<(), NotPortable> {
    Err(NotPortable {
        reason: reason.to_owned(),
        start: span.start.offset,
        end: span.end.offset,
    })
}

fn literal(lit: &ast::Literal) -> Result<(), NotPortable> {
    match &lit.kind {
        LiteralKind::Verbatim | LiteralKind::Meta | LiteralKind::Superfluous => Ok(()),
        LiteralKind::Octal => deny(&lit.span, "octal escapes differ between RE2 and ECMAScript"),
        LiteralKind::HexFixed(HexLiteralKind::X) => Ok(()),
        LiteralKind::HexFixed(_) | LiteralKind::HexBrace(_) => deny(
            &lit.span,
            "`\\u`, `\\U` and `\\x{...}` escapes differ between RE2 and ECMAScript; use `\\xHH`",
        ),
        LiteralKind::Special(SpecialLiteralKind::Bell) => {
            deny(&lit.span, "`\\a` is not an escape in ECMAScript")
        }
        LiteralKind::Special(SpecialLiteralKind::Space) => deny(
            &lit.span,
            "escaped space is only meaningful in RE2's `x` mode",
        ),
        LiteralKind::Special(_) => Ok(()),
    }
}

/// `\d`, `\w`, `\s` (and negations): ASCII in RE2, different in ECMAScript (`\s`) and
/// Unicode in the regex crate that explain uses. The portable spelling instead.
fn perl_class(c: &ast::ClassPerl) -> Result<(), NotPortable> {
    use ast::ClassPerlKind::*;
    let (letter, spelling) = match (&c.kind, c.negated) {
        (Digit, false) => ('d', "[0-9]"),
        (Digit, true) => ('D', "[^0-9]"),
        (Word, false) => ('w', "[A-Za-z0-9_]"),
        (Word, true) => ('W', "[^A-Za-z0-9_]"),
        (Space, false) => ('s', "[\\t\\n\\f\\r ]"),
        (Space, true) => ('S', "[^\\t\\n\\f\\r ]"),
    };
    Err(NotPortable {
        reason: format!(
            "`\\{letter}` means different characters in RE2, ECMAScript and explain; write `{spelling}`"
        ),
        start: c.span.start.offset,
        end: c.span.end.offset,
    })
}

/// RE2 refuses repeat counts over 1000; ECMAScript accepts them.
const MAX_REPEAT: u32 = 1000;

fn repetition(r: &ast::Repetition) -> Result<(), NotPortable> {
    use ast::{RepetitionKind, RepetitionRange};
    if let Ast::Repetition(_) = &*r.ast {
        return deny(
            &r.span,
            "a repetition of a repetition (`a**`, `a+{2}`) is an error in ECMAScript; group it: `(?:a*)*`",
        );
    }
    if let RepetitionKind::Range(range) = &r.op.kind {
        let big = match range {
            RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) => *n > MAX_REPEAT,
            RepetitionRange::Bounded(m, n) => *m > MAX_REPEAT || *n > MAX_REPEAT,
        };
        if big {
            return deny(&r.op.span, "RE2 refuses repeat counts over 1000");
        }
    }
    walk(&r.ast)
}

fn class_item(item: &ClassSetItem, nested: bool) -> Result<(), NotPortable> {
    match item {
        ClassSetItem::Empty(_) => Ok(()),
        ClassSetItem::Perl(c) => perl_class(c),
        ClassSetItem::Literal(l) => literal(l),
        ClassSetItem::Range(r) => {
            literal(&r.start)?;
            literal(&r.end)
        }
        ClassSetItem::Ascii(a) => deny(&a.span, "POSIX classes like `[[:alpha:]]` are RE2-only"),
        ClassSetItem::Unicode(u) => deny(
            &u.span,
            "Unicode classes `\\p{..}` need ECMAScript's `u` flag",
        ),
        ClassSetItem::Bracketed(b) if nested => {
            deny(&b.span, "nested character classes are RE2-only")
        }
        ClassSetItem::Bracketed(b) => class_set(&b.kind),
        ClassSetItem::Union(u) => u.items.iter().try_for_each(|i| class_item(i, true)),
    }
}

fn class_set(set: &ClassSet) -> Result<(), NotPortable> {
    match set {
        ClassSet::Item(i) => class_item(i, false),
        ClassSet::BinaryOp(op) => deny(
            &op.span,
            "class set operations (`&&`, `--`, `~~`) are not RE2 or ECMAScript",
        ),
    }
}

fn walk(ast: &Ast) -> Result<(), NotPortable> {
    match ast {
        // `.` means the same wherever the input is printable ASCII, and the sidecar and explain
        // match routes only against such paths and header values.
        Ast::Empty(_) | Ast::Dot(_) => Ok(()),
        Ast::ClassPerl(c) => perl_class(c),
        Ast::Flags(f) => deny(&f.span, "inline flags like `(?i)` are not ECMAScript"),
        Ast::Literal(l) => literal(l),
        Ast::Assertion(a) => match a.kind {
            AssertionKind::StartLine | AssertionKind::EndLine => Ok(()),
            AssertionKind::WordBoundary | AssertionKind::NotWordBoundary => deny(
                &a.span,
                "`\\b` and `\\B` differ between RE2, ECMAScript and explain; write the boundary out, e.g. `(^|[^A-Za-z0-9_])`",
            ),
            AssertionKind::StartText | AssertionKind::EndText => deny(
                &a.span,
                "`\\A` and `\\z` are not ECMAScript; use `^` and `$`",
            ),
            _ => deny(
                &a.span,
                "this word-boundary form is specific to the Rust regex crate",
            ),
        },
        Ast::ClassUnicode(u) => deny(
            &u.span,
            "Unicode classes `\\p{..}` need ECMAScript's `u` flag",
        ),
        Ast::ClassBracketed(b) => class_set(&b.kind),
        Ast::Repetition(r) => repetition(r),
        Ast::Group(g) => {
            match &g.kind {
                GroupKind::CaptureIndex(_) => {}
                GroupKind::CaptureName { .. } => {
                    return deny(
                        &g.span,
                        "named groups are spelled differently in RE2 and ECMAScript; use `(...)` or `(?:...)`",
                    );
                }
                GroupKind::NonCapturing(flags) if !flags.items.is_empty() => {
                    return deny(
                        &flags.span,
                        "inline flags like `(?i:...)` are not ECMAScript",
                    );
                }
                GroupKind::NonCapturing(_) => {}
            }
            walk(&g.ast)
        }
        Ast::Alternation(a) => a.asts.iter().try_for_each(walk),
        Ast::Concat(c) => c.asts.iter().try_for_each(walk),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn portable() {
        for ok in [
            "/get",
            "/status.*",
            "^/api/v[0-9]+/",
            "/a|/b",
            "(?:/x)?/y",
            r"[0-9]+\.[A-Za-z0-9_]*",
            "a{1000}",
            "(?:a*)*",
            "a*?",
            "[a-z-]+",
            r"/items/[^/]+$",
            "",
            ".*",
            r"\.json$",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn not_portable() {
        for bad in [
            "(?i)/get",
            "(?P<id>x)",
            "(?<id>x)",
            r"\Aabc",
            r"abc\z",
            "(?=x)",
            r"(a)\1",
            "[[:alpha:]]",
            r"\pL",
            r"\x{41}",
            "[a&&b]",
            "(?i:x)",
            "(",
            r"\012",
            r"\d+",
            r"[\w-]+",
            r"\s",
            r"\bword\b",
            "a**",
            "a+{2}",
            "a{1001}",
            "a{2,1001}",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
