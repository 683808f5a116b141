//! `egressc diff`: read and check both sides (at once, one thread each), compare their plans,
//! print the difference; exit 6 when `--fail-on` matches.

use crate::cli::args::{DiffFormat, FailOn, InputArgs};
use crate::cli::commands::{CheckRun, write_out};
use crate::cli::exit::{Exit, usage};
use crate::diagnostics::render::{ErrorKind, Side, render_error};
use crate::diff::render::json::render_json;
use crate::diff::render::markdown::render_markdown;
use crate::diff::render::render_human;
use crate::pipeline::{Analysis, ReadOptions, analyze};
use crate::plan::Plan;

/// What `diff` was asked.
pub struct DiffArgs<'a> {
    pub base: &'a [String],
    pub base_git: Option<&'a str>,
    pub head: &'a [String],
    pub format: DiffFormat,
    pub fail_on: Option<FailOn>,
    pub input: &'a InputArgs,
}

/// Read and check one side (stdin only for the side that names `-`), and lower it when it
/// has no errors.
fn read_side(inputs: &[String], options: &ReadOptions) -> (Analysis, Option<Plan>) {
    let analysis = if inputs.iter().any(|i| i == "-") {
        analyze(inputs, &mut std::io::stdin().lock(), options)
    } else {
        analyze(inputs, &mut std::io::empty(), options)
    };
    let plan = (!analysis.has_errors()).then(|| analysis.lower());
    (analysis, plan)
}

pub fn diff(a: &DiffArgs) -> Exit {
    let stdin = |v: &[String]| v.iter().any(|i| i == "-");
    if stdin(a.base) && stdin(a.head) {
        return usage("the base and the head cannot both be read from stdin");
    }
    let run = CheckRun::human(a.input);
    let head_options = run.read_options();
    let mut base_options = head_options.clone();
    let tree = match a.base_git {
        Some(rev) => match crate::cli::git::checkout(rev, a.head, head_options.max_input_bytes) {
            Ok(t) => Some(t),
            Err(e) => return Exit::Usage(e),
        },
        None => None,
    };
    let base_inputs: Vec<String> = match &tree {
        Some(t) => {
            base_options.relabel = Some(t.relabel.clone());
            for m in &t.missing {
                let rev = a.base_git.unwrap_or_default();
                write_out(
                    std::io::stderr().lock(),
                    &format!(
                        "egressc diff: `{m}` does not exist at {rev}: the base has nothing of it\n"
                    ),
                );
            }
            t.inputs.clone()
        }
        None => a.base.to_vec(),
    };
    let ((base, base_plan), (head, head_plan)) = std::thread::scope(|s| {
        let base = s.spawn(|| read_side(&base_inputs, &base_options));
        let head = read_side(a.head, &head_options);
        (base.join().expect("the base side is read"), head)
    });
    drop(tree);
    let base_side = match a.base_git {
        Some(rev) => format!("{} at {rev}", a.head.join(" ")),
        None => a.base.join(" "),
    };
    let (mut base_analysis, mut head_analysis) = (base, head);
    let base_exit = run.report(
        &mut base_analysis.findings,
        Some(&format!("egressc diff: in the base ({base_side}):")),
    );
    let head_exit = run.report(
        &mut head_analysis.findings,
        Some(&format!(
            "egressc diff: in the head ({}):",
            a.head.join(" ")
        )),
    );
    let (Exit::Success, Exit::Success, Some(base), Some(head)) =
        (&base_exit, &head_exit, base_plan, head_plan)
    else {
        if matches!(a.format, DiffFormat::Json) {
            let kind = if [&base_exit, &head_exit].contains(&&Exit::Unreadable) {
                ErrorKind::UnreadableInput
            } else {
                ErrorKind::InputErrors
            };
            let parts = [
                (Some(Side::Base), &base_analysis),
                (Some(Side::Head), &head_analysis),
            ]
            .map(|(side, a)| (side, &a.findings.diagnostics[..], &a.findings.sources));
            write_out(std::io::stdout().lock(), &render_error(kind, &parts));
        }
        // The worse of the two: an unreadable input (2) over input errors (1).
        return [base_exit, head_exit]
            .into_iter()
            .max_by_key(Exit::code)
            .unwrap_or(Exit::InputErrors);
    };
    // Nothing reads the two analyses any more and the process is about to end: freeing their
    // trees would cost as much as the comparison itself.
    std::mem::forget((base_analysis, head_analysis));
    let d = crate::diff::diff(&base, &head);
    let text = match a.format {
        DiffFormat::Human => render_human(&d),
        DiffFormat::Markdown => render_markdown(&d),
        DiffFormat::Json => render_json(&d),
    };
    write_out(std::io::stdout().lock(), &text);
    match a.fail_on {
        Some(FailOn::Widen) if d.widens() => Exit::DiffMatched,
        Some(FailOn::Any) if !d.is_empty() => Exit::DiffMatched,
        _ => Exit::Success,
    }
}
