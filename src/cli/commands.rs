//! Each subcommand: read and check the inputs, do its work, say how it ended.

use crate::cli::args::{
    Color, Format, GatewayAuthArg, InputArgs, KubeArgs, ReportArgs, SidecarModeArg,
};
use crate::cli::exit::{Exit, usage};
use crate::diagnostics::render::{
    ErrorKind, render_error, render_github, render_human, render_json, render_sarif,
};
use crate::emit::kubernetes::{KubeOptions, SidecarMode};
use crate::emit::output::pretty_text;
use crate::model::Identity;
use crate::pipeline::{
    Analysis, BuildOutcome, BuildRequest, Built, Findings, Gate, Judgement, ReadOptions, Written,
    analyze, check, schema_files,
};
use crate::query::{cases, eval, explain as explain_text};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// The first write error of this run (other than a closed pipe).
static WRITE_FAILED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Write to a stream; a closed pipe (`| head`) is a normal end, not a panic; any other write
/// error (a full disk) is remembered and fails the run (`write_failure`).
pub fn write_out(mut w: impl Write, text: &str) {
    if let Err(e) = w.write_all(text.as_bytes()).and_then(|_| w.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut failed = WRITE_FAILED.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert_with(|| format!("cannot write the output: {e}"));
    }
}

/// The write error that fails this run, if there was one.
pub fn write_failure() -> Option<String> {
    WRITE_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// One run's reading and checking of its inputs, from the flags: how inputs are read, which
/// diagnostics fail the run, and how they are reported.
pub struct CheckRun<'a> {
    args: &'a InputArgs,
    format: Format,
    /// The diagnostics go to stderr in human form; with `--format json` a run the inputs stop
    /// also writes the error document on stdout (`explain`, `test`: their stdout is their
    /// answer).
    answering: bool,
}

impl<'a> CheckRun<'a> {
    pub fn new(args: &'a ReportArgs) -> CheckRun<'a> {
        CheckRun {
            args: &args.input,
            format: args.format,
            answering: false,
        }
    }

    /// `explain` and `test`: diagnostics on stderr in human form, and with `--format json`
    /// the error document on stdout when the inputs stop the run.
    pub fn answering(args: &'a ReportArgs) -> CheckRun<'a> {
        CheckRun {
            args: &args.input,
            format: args.format,
            answering: true,
        }
    }

    /// Diagnostics in human form on stderr (explain, test and diff keep stdout for their own
    /// output).
    pub fn human(args: &'a InputArgs) -> CheckRun<'a> {
        CheckRun {
            args,
            format: Format::Human,
            answering: false,
        }
    }

    fn color(&self) -> bool {
        match self.args.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }

    /// How the inputs are read, from the flags.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            strict: self.args.strict,
            require_meshconfig: self.args.require_meshconfig,
            max_input_bytes: self.args.max_input_mib << 20,
            exclude: Vec::new(),
            service_cidrs: self.args.service_cidr.clone(),
            dns: self.args.dns.clone(),
            auth: crate::model::GatewayAuth {
                mode: match self.args.gateway_auth {
                    GatewayAuthArg::Mtls => crate::model::AuthMode::Mtls,
                    GatewayAuthArg::Header => crate::model::AuthMode::Header,
                },
                trust_domain: self.args.trust_domain.clone(),
            },
            relabel: None,
        }
    }

    /// Which diagnostics fail the run, from the flags.
    pub fn gate(&self) -> Gate {
        Gate {
            allow: self.args.allow.clone(),
            deny_warnings: self.args.deny_warnings,
        }
    }

    /// The Kubernetes output's options that every command shares.
    fn kube(&self) -> KubeOptions {
        KubeOptions {
            configmap_max_bytes: (self.args.configmap_max_kib as usize) << 10,
            ..KubeOptions::default()
        }
    }

    /// Read and check the inputs (`explain`, `test`): the analysis when nothing failed, else
    /// how the run ends (the diagnostics reported).
    pub fn analyze(&self, inputs: &[String]) -> Result<Analysis, Exit> {
        let mut analysis = analyze(inputs, &mut std::io::stdin().lock(), &self.read_options());
        match self.report(&mut analysis.findings, None) {
            Exit::Success => Ok(analysis),
            failed => Err(failed),
        }
    }

    /// `check`: read and check the inputs, and what their output cannot deploy.
    pub fn check(&self, inputs: &[String]) -> Exit {
        let mut analysis = check(
            inputs,
            &mut std::io::stdin().lock(),
            &self.read_options(),
            &self.kube(),
        );
        self.report(&mut analysis.findings, None)
    }

    /// Report the findings (under `heading` when there are any) and say how they end the run.
    pub fn report(&self, findings: &mut Findings, heading: Option<&str>) -> Exit {
        let judged = findings.judge(&self.gate());
        let diags = &findings.diagnostics;
        let format = if self.answering {
            Format::Human
        } else {
            self.format
        };
        if self.answering
            && matches!(self.format, Format::Json)
            && let Some(kind) = error_kind(judged)
        {
            let doc = render_error(kind, &[(None, diags, &findings.sources)]);
            write_out(std::io::stdout().lock(), &doc);
        }
        match format {
            Format::Human => {
                let mut text = render_human(diags, &findings.sources, self.color());
                if let Some(h) = heading.filter(|_| !diags.is_empty()) {
                    text = format!("{h}\n{text}");
                }
                if diags.is_empty() && heading.is_none() && std::io::stderr().is_terminal() {
                    let n = findings.documents();
                    text = format!(
                        "egressc: {n} document{} of the kinds egressc reads, no problems\n",
                        if n == 1 { "" } else { "s" }
                    );
                }
                write_out(std::io::stderr().lock(), &text)
            }
            Format::Json => write_out(
                std::io::stdout().lock(),
                &render_json(diags, &findings.sources),
            ),
            Format::Sarif => write_out(
                std::io::stdout().lock(),
                &render_sarif(diags, &findings.sources),
            ),
            Format::Github => write_out(
                std::io::stdout().lock(),
                &render_github(diags, &findings.sources),
            ),
        }
        match judged {
            Judgement::Pass => Exit::Success,
            Judgement::Fail => Exit::InputErrors,
            Judgement::Unreadable => Exit::Unreadable,
        }
    }
}

/// What the error document says of a run that failed; `None` when it passed.
pub fn error_kind(judged: Judgement) -> Option<ErrorKind> {
    match judged {
        Judgement::Pass => None,
        Judgement::Fail => Some(ErrorKind::InputErrors),
        Judgement::Unreadable => Some(ErrorKind::UnreadableInput),
    }
}

pub fn build(
    inputs: &[String],
    out: &Path,
    check_only: bool,
    kube: &KubeArgs,
    args: &ReportArgs,
) -> Exit {
    let run = CheckRun::new(args);
    let request = BuildRequest {
        inputs,
        out,
        compare: check_only,
        read: run.read_options(),
        kube: KubeOptions {
            pipy_image: kube.pipy_image.clone(),
            init_image: kube.init_image.clone(),
            inject_label: kube.inject_label.clone(),
            iptables_legacy: kube.iptables_legacy,
            pin_egress: kube.pin_egress,
            sidecar_memory_limit_mib: kube.sidecar_memory_limit,
            sidecar_mode: match kube.sidecar_mode {
                SidecarModeArg::Native => SidecarMode::Native,
                SidecarModeArg::Classic => SidecarMode::Classic,
            },
            gateway_replicas: kube.gateway_replicas,
            grafana_dashboard: kube.grafana_dashboard.clone(),
            ..run.kube()
        },
        gate: run.gate(),
    };
    let Built {
        mut findings,
        outcome,
    } = crate::pipeline::build(&request, &mut std::io::stdin().lock());
    let reported = run.report(&mut findings, None);
    match outcome {
        BuildOutcome::Failed => reported,
        BuildOutcome::WriteFailed(e) => usage(e.to_string()),
        BuildOutcome::Compared(changes) if changes.is_empty() => Exit::Success,
        BuildOutcome::Compared(changes) => {
            let n = changes.len();
            let mut text = format!(
                "`{}` is stale: {n} file{} differ{} from what would be written\n",
                out.display(),
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" },
            );
            for (path, change) in &changes {
                text.push_str(&format!("  {:<8} {path}\n", change.as_str()));
            }
            // On stderr: stdout holds only the diagnostics (JSON or SARIF when asked for).
            write_out(std::io::stderr().lock(), &text);
            Exit::Stale
        }
        BuildOutcome::Written(w) => {
            let warnings = crate::diagnostics::count(&findings.diagnostics).warnings;
            write_out(std::io::stderr().lock(), &build_summary(&w, warnings, out));
            Exit::Success
        }
    }
}

/// `publish`: bring a Pipy repo to OUT (see `crate::publish`).
pub fn publish(out: &Path, url: &str, prefix: &str, check_only: bool) -> Exit {
    use crate::publish::{Repo, apply, codebases, steps};
    let run = || -> Result<Exit, crate::publish::PublishError> {
        let cbs = codebases(out, prefix)?;
        let repo = Repo::new(url)?;
        let steps = steps(&repo, &cbs, prefix)?;
        let text: String = steps.iter().map(|s| format!("{s}\n")).collect();
        if check_only {
            write_out(std::io::stdout().lock(), &text);
            return Ok(if steps.is_empty() {
                Exit::Success
            } else {
                Exit::Stale
            });
        }
        apply(&repo, &cbs, &steps)?;
        write_out(std::io::stdout().lock(), &text);
        let commits = steps
            .iter()
            .filter(|s| matches!(s, crate::publish::Step::Commit { .. }))
            .count();
        write_out(
            std::io::stderr().lock(),
            &format!(
                "egressc: published `{}` to {}: {commits} of {} codebases changed\n",
                out.display(),
                repo.shown(),
                cbs.len()
            ),
        );
        Ok(Exit::Success)
    };
    run().unwrap_or_else(|e| usage(e.to_string()))
}

/// The line `build` ends with: identities compiled, files written and unchanged, warnings.
fn build_summary(w: &Written, warnings: usize, out: &Path) -> String {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "egressc: {} identit{} compiled into `{}`: {} file{} written, {} unchanged; {warnings} warning{}\n",
        w.identities,
        if w.identities == 1 { "y" } else { "ies" },
        out.display(),
        w.changed,
        s(w.changed),
        w.unchanged,
        s(warnings),
    )
}

pub fn schema(output: Option<&Path>) -> Exit {
    let files = schema_files();
    let Some(dir) = output else {
        let combined = files
            .iter()
            .find(|(n, _)| n == "egressc.schema.json")
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        write_out(std::io::stdout().lock(), combined);
        return Exit::Success;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return usage(format!("cannot create `{}`: {e}", dir.display()));
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return usage(format!("cannot write `{}`: {e}", path.display()));
        }
    }
    Exit::Success
}

/// The HTTP options of `explain`.
pub struct HttpArgs {
    pub host: Option<String>,
    pub authority: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
}

fn print_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).expect("json");
    write_out(std::io::stdout().lock(), &format!("{text}\n"));
}

pub fn explain(
    inputs: &[String],
    from: &Identity,
    to: Option<&str>,
    sni: Option<String>,
    http: Option<HttpArgs>,
    args: &ReportArgs,
) -> Exit {
    if args.format.diagnostics_only() {
        return usage(
            "explain writes human or JSON output; SARIF and GitHub annotations are for `check` and `build`",
        );
    }
    let plan = match CheckRun::answering(args).analyze(inputs) {
        Ok(analysis) => analysis.lower(),
        Err(exit) => return exit,
    };
    let json = matches!(args.format, Format::Json);
    let Some(to) = to else {
        let reach = crate::query::reach::reach(&plan, from);
        if json {
            print_json(&reach);
        } else {
            write_out(
                std::io::stdout().lock(),
                &explain_text::render_reach(&reach, &from.to_string()),
            );
        }
        return Exit::Success;
    };
    let (dest, port) = match crate::query::question::parse_destination(to) {
        Ok(d) => d,
        Err(e) => return usage(format!("--to: {e}")),
    };
    let http = http.map(|h| crate::query::question::HttpRequest {
        authority: h.authority,
        ..crate::query::question::HttpRequest::new(h.host, h.method, h.path, h.headers)
    });
    let q = crate::query::question::Query {
        identity: from.clone(),
        dest,
        port,
        sni,
        http,
    };
    let v = eval::evaluate(&plan, &q);
    if json {
        print_json(&v);
    } else {
        write_out(
            std::io::stdout().lock(),
            &explain_text::render_verdict(&v, &q),
        );
    }
    if v.verdict.is_allowed() {
        Exit::Success
    } else {
        Exit::Denied
    }
}

pub fn test(cases_path: &Path, inputs: &[String], args: &ReportArgs) -> Exit {
    if args.format.diagnostics_only() {
        return usage(
            "test writes human or JSON output; SARIF and GitHub annotations are for `check` and `build`",
        );
    }
    let from_stdin = cases_path == Path::new("-");
    if from_stdin && inputs.iter().any(|i| i == "-") {
        return usage("the cases and the inputs cannot both be read from stdin");
    }
    // The cases file is held to the input size limit, as every INPUT is (E0002).
    let limit = args.input.max_input_mib << 20;
    let read = if from_stdin {
        crate::input::source::read_limited(std::io::stdin().lock(), limit, 0)
    } else {
        std::fs::File::open(cases_path).and_then(|f| {
            let size = f.metadata().map_or(0, |m| m.len());
            crate::input::source::read_limited(f, limit, size)
        })
    };
    let name = if from_stdin {
        "<stdin>".to_owned()
    } else {
        cases_path.display().to_string()
    };
    let text = match read {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return usage(format!("`{name}` is not UTF-8")),
        },
        Ok(None) => {
            let too_large = crate::input::source::too_large(&name, limit);
            let mut findings = crate::pipeline::Findings::of(vec![too_large]);
            return CheckRun::answering(args).report(&mut findings, None);
        }
        Err(e) => return usage(format!("cannot read `{name}`: {e}")),
    };
    let case_error = |e: &dyn std::fmt::Display| {
        write_out(
            std::io::stderr().lock(),
            &format!("error: {}: {e}\n", cases_path.display()),
        );
        Exit::InputErrors
    };
    let file = match cases::parse(&text) {
        Ok(f) => f,
        Err(e) => return case_error(&e),
    };
    let plan = match CheckRun::answering(args).analyze(inputs) {
        Ok(analysis) => analysis.lower(),
        Err(exit) => return exit,
    };
    let report = match cases::run(&plan, &file) {
        Ok(r) => r,
        Err(e) => return case_error(&e),
    };
    let text = match args.format {
        Format::Json => pretty_text(&report),
        Format::Human | Format::Sarif | Format::Github => cases::render_text(&report),
    };
    write_out(std::io::stdout().lock(), &text);
    if report.failed > 0 {
        Exit::CaseFailed
    } else {
        Exit::Success
    }
}
