//! `egressc test --replay FILE… INPUT…`: the connections of decision logs against the INPUTs
//! (`query::replay`), exit 5 when one let through at the time would now be denied; and
//! `egressc suggest --logs FILE… INPUT…`: the policies that would allow them
//! (`query::suggest`).

use crate::cli::args::{Format, ReportArgs};
use crate::cli::commands::{CheckRun, write_out};
use crate::cli::exit::{Exit, usage};
use crate::emit::output::pretty_text;
use crate::query::replay::{Observed, render_text, replay as judge};
use std::path::{Path, PathBuf};

pub fn replay(logs: &[PathBuf], inputs: &[String], args: &ReportArgs) -> Exit {
    let (plan, observed) = match read(logs, inputs, args) {
        Ok(read) => read,
        Err(exit) => return exit,
    };
    let report = judge(&plan, &observed);
    let text = match args.format {
        Format::Json => pretty_text(&report),
        Format::Human | Format::Sarif | Format::Github => render_text(&report),
    };
    write_out(std::io::stdout().lock(), &text);
    if report.breaking.is_empty() {
        Exit::Success
    } else {
        Exit::CaseFailed
    }
}

pub fn suggest(logs: &[PathBuf], inputs: &[String], exact: bool, args: &ReportArgs) -> Exit {
    let (plan, observed) = match read(logs, inputs, args) {
        Ok(read) => read,
        Err(exit) => return exit,
    };
    let s = crate::query::suggest::suggest(&plan, &observed, exact);
    let mut said = String::new();
    for note in &s.notes {
        said.push_str(&format!("egressc suggest: {note}\n"));
    }
    said.push_str(&format!(
        "egressc suggest: {} lines ({} not decisions): {} polic{} suggested\n",
        observed.lines,
        observed.ignored,
        s.policies,
        if s.policies == 1 { "y" } else { "ies" }
    ));
    write_out(std::io::stderr().lock(), &said);
    write_out(std::io::stdout().lock(), &s.yaml);
    Exit::Success
}

/// The plan of the INPUTs and the connections of the logs, or how the run ends.
fn read(
    logs: &[PathBuf],
    inputs: &[String],
    args: &ReportArgs,
) -> Result<(crate::plan::Plan, Observed), Exit> {
    if args.format.diagnostics_only() {
        return Err(usage(
            "SARIF and GitHub annotations are for `check` and `build`",
        ));
    }
    if inputs.is_empty() {
        return Err(usage("at least one INPUT is needed"));
    }
    let stdin = |p: &Path| p == Path::new("-");
    let from_stdin = logs.iter().filter(|l| stdin(l)).count();
    if from_stdin > 1 || (from_stdin == 1 && inputs.iter().any(|i| i == "-")) {
        return Err(usage("only one log, or the inputs, can be read from stdin"));
    }
    let plan = CheckRun::answering(args).analyze(inputs)?.lower();
    let mut observed = Observed::default();
    for log in logs {
        let read = if stdin(log) {
            observed.read(std::io::stdin().lock())
        } else {
            std::fs::File::open(log).and_then(|f| observed.read(std::io::BufReader::new(f)))
        };
        if let Err(e) = read {
            return Err(usage(format!("cannot read `{}`: {e}", log.display())));
        }
    }
    Ok((plan, observed))
}
