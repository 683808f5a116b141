//! `--format github`: GitHub Actions workflow commands, one per diagnostic
//! (`::error file=F,line=L,col=C,title=CODE::message`), which GitHub shows inline on the pull
//! request's changed lines. Escaped as GitHub's runner unescapes: `%`, CR and LF in the message;
//! also `:` and `,` in property values.

use crate::diagnostics::render::file_line_col;
use crate::diagnostics::{Diagnostic, Severity};
use crate::input::source::Sources;

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    }
}

/// One line per diagnostic. The file is the input's name as given (a path relative to the
/// repository root when egressc runs there, as a workflow does); stdin has none.
pub fn render_github(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        let (file, line, col) = file_line_col(d, sources);
        let mut props = Vec::new();
        if let Some(f) = file.filter(|f| *f != "-" && !f.starts_with('<')) {
            props.push(format!("file={}", escape_property(f)));
            if let Some(l) = line {
                props.push(format!("line={l}"));
            }
            if let Some(c) = col {
                props.push(format!("col={c}"));
            }
        }
        props.push(format!("title={}", escape_property(d.code.as_str())));
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(h);
        }
        out.push_str(&format!(
            "::{} {}::{}\n",
            command(d.severity()),
            props.join(","),
            escape_data(&message)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Code;

    #[test]
    fn messages_and_properties_are_escaped_as_github_reads_them() {
        assert_eq!(escape_data("50% a\r\nb:c,d"), "50%25 a%0D%0Ab:c,d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        let code = Code::parse("E0601").unwrap();
        let d = Diagnostic::new(code, "x\ny 100%".to_owned()).help("do: this, that");
        let text = render_github(&[d], &Sources::default());
        assert_eq!(
            text,
            "::error title=E0601::x%0Ay 100%25%0Ahelp: do: this, that\n"
        );
    }
}
