//! `egressc test --replay FILE… INPUT…`: the connections of decision logs against the INPUTs
//! (`query::replay`). Exit 5 when one let through at the time would now be denied.

use crate::cli::args::{Format, ReportArgs};
use crate::cli::commands::{CheckRun, write_out};
use crate::cli::exit::{Exit, usage};
use crate::emit::output::pretty_text;
use crate::query::replay::{Observed, render_text, replay as judge};
use std::path::{Path, PathBuf};

pub fn replay(logs: &[PathBuf], inputs: &[String], args: &ReportArgs) -> Exit {
    if matches!(args.format, Format::Sarif) {
        return usage("test writes human or JSON output; SARIF is for `check` and `build`");
    }
    if inputs.is_empty() {
        return usage("test --replay needs at least one INPUT");
    }
    let stdin = |p: &Path| p == Path::new("-");
    let from_stdin = logs.iter().filter(|l| stdin(l)).count();
    if from_stdin > 1 || (from_stdin == 1 && inputs.iter().any(|i| i == "-")) {
        return usage("only one log, or the inputs, can be read from stdin");
    }
    let plan = match CheckRun::answering(args).analyze(inputs) {
        Ok(analysis) => analysis.lower(),
        Err(exit) => return exit,
    };
    let mut observed = Observed::default();
    for log in logs {
        let read = if stdin(log) {
            observed.read(std::io::stdin().lock())
        } else {
            std::fs::File::open(log).and_then(|f| observed.read(std::io::BufReader::new(f)))
        };
        if let Err(e) = read {
            return usage(format!("cannot read `{}`: {e}", log.display()));
        }
    }
    let report = judge(&plan, &observed);
    let text = match args.format {
        Format::Json => pretty_text(&report),
        Format::Human | Format::Sarif => render_text(&report),
    };
    write_out(std::io::stdout().lock(), &text);
    if report.breaking.is_empty() {
        Exit::Success
    } else {
        Exit::CaseFailed
    }
}
