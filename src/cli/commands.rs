//! Each subcommand: read and check the inputs, do its work, say how it ended.

use crate::cli::args::{Color, Format, InputArgs, KubeArgs, ReportArgs};
use crate::cli::exit::{Exit, usage};
use crate::diagnostics::Severity;
use crate::diagnostics::render::{render_human, render_json, render_sarif};
use crate::emit::kubernetes::KubeOptions;
use crate::pipeline::{Analysis, ReadOptions, analyze, schema_files};
use crate::query::{cases, eval, explain as explain_text};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// The first write error of this run (other than a closed pipe).
static WRITE_FAILED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Write to a stream; a closed pipe (`| head`) is a normal end, not a panic; any other write
/// error (a full disk) is remembered and fails the run (`write_failure`).
pub fn emit(mut w: impl Write, text: &str) {
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

/// How diagnostics are reported for one run.
pub struct Report<'a> {
    args: &'a InputArgs,
    format: Format,
    /// `check` and `build` compile the output, and report what cannot be deployed (E0601).
    kube: KubeOptions,
    deploy: bool,
}

impl<'a> Report<'a> {
    pub fn new(args: &'a ReportArgs) -> Report<'a> {
        Report {
            args: &args.input,
            format: args.format,
            kube: KubeOptions {
                configmap_max_bytes: (args.input.configmap_max_kib as usize) << 10,
                ..KubeOptions::default()
            },
            deploy: true,
        }
    }

    /// Diagnostics in human form on stderr (explain, test and diff keep stdout for their own
    /// output).
    pub fn human(args: &'a InputArgs) -> Report<'a> {
        Report {
            args,
            format: Format::Human,
            kube: KubeOptions::default(),
            deploy: false,
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

    /// Read, check and report: how it ended, and the analysis when nothing failed.
    pub fn check(&self, inputs: &[String]) -> (Exit, Option<Analysis>) {
        self.check_excluding(inputs, None)
    }

    /// `check`, never reading `exclude` (a build's output folder) as input.
    pub fn check_excluding(
        &self,
        inputs: &[String],
        exclude: Option<&Path>,
    ) -> (Exit, Option<Analysis>) {
        let options = self.read_options(exclude);
        let analysis = analyze(inputs, &mut std::io::stdin().lock(), &options);
        self.finish(analysis, None)
    }

    /// How the inputs are read, from the flags.
    pub fn read_options(&self, exclude: Option<&Path>) -> ReadOptions {
        ReadOptions {
            strict: self.args.strict,
            require_meshconfig: self.args.require_meshconfig,
            max_input_bytes: self.args.max_input_mib << 20,
            exclude: exclude.into_iter().map(Path::to_path_buf).collect(),
            service_cidrs: self.args.service_cidr.clone(),
            dns: self.args.dns.clone(),
            kube: self.deploy.then(|| self.kube.clone()),
            relabel: None,
        }
    }

    /// Report the diagnostics of an analysis (under `heading` when there are any) and say how
    /// it ended: the analysis when nothing failed.
    pub fn finish(
        &self,
        mut analysis: Analysis,
        heading: Option<&str>,
    ) -> (Exit, Option<Analysis>) {
        analysis
            .diagnostics
            .retain(|d| !self.args.allow.contains(&d.code));
        let diags = &analysis.diagnostics;
        match self.format {
            Format::Human => {
                let mut text = render_human(diags, &analysis.sources, self.color());
                if let Some(h) = heading.filter(|_| !diags.is_empty()) {
                    text = format!("{h}\n{text}");
                }
                if diags.is_empty() && heading.is_none() && std::io::stderr().is_terminal() {
                    let n = analysis.documents();
                    text = format!(
                        "egressc: {n} document{} of the kinds egressc reads, no problems\n",
                        if n == 1 { "" } else { "s" }
                    );
                }
                emit(std::io::stderr().lock(), &text)
            }
            Format::Json => emit(
                std::io::stdout().lock(),
                &render_json(diags, &analysis.sources),
            ),
            Format::Sarif => emit(
                std::io::stdout().lock(),
                &render_sarif(diags, &analysis.sources),
            ),
        }
        let warnings = diags.iter().any(|d| d.severity() == Severity::Warning);
        if analysis.has_io_errors() {
            (Exit::Unreadable, None)
        } else if analysis.has_errors() || (self.args.deny_warnings && warnings) {
            (Exit::InputErrors, None)
        } else {
            (Exit::Success, Some(analysis))
        }
    }
}

pub fn build(
    inputs: &[String],
    out: &Path,
    check_only: bool,
    kube: &KubeArgs,
    args: &ReportArgs,
) -> Exit {
    let mut report = Report::new(args);
    report.kube = KubeOptions {
        pipy_image: kube.pipy_image.clone(),
        init_image: kube.init_image.clone(),
        inject_label: kube.inject_label.clone(),
        iptables_legacy: kube.iptables_legacy,
        pin_egress: kube.pin_egress,
        ..report.kube
    };
    // The ConfigMaps are measured as the output is written, not compiled twice.
    report.deploy = false;
    let kube = report.kube.clone();
    let mut analysis = analyze(
        inputs,
        &mut std::io::stdin().lock(),
        &report.read_options(Some(out)),
    );
    if analysis.has_errors() {
        return report.finish(analysis, None).0;
    }
    if check_only {
        let mut compare = crate::write::Compare::new(out);
        let emitted = analysis.emit_into(&kube, &mut compare);
        analysis.add(emitted.problems);
        let (exit, analysis) = report.finish(analysis, None);
        if analysis.is_none() {
            return exit;
        }
        let changes = compare.finish();
        if changes.is_empty() {
            return Exit::Success;
        }
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
        emit(std::io::stderr().lock(), &text);
        return Exit::Stale;
    }
    let previous = std::fs::read(out.join(crate::emit::manifest::MANIFEST)).ok();
    let mut staging = match crate::write::Staging::begin(out) {
        Ok(s) => s,
        Err(e) => {
            let _ = report.finish(analysis, None);
            return usage(e.to_string());
        }
    };
    let emitted = analysis.emit_into(&kube, &mut staging);
    analysis.add(emitted.problems);
    // Nothing is swapped in when the output cannot be deployed (the staging folder is
    // removed): OUT stays as it was.
    let (exit, analysis) = report.finish(analysis, None);
    let Some(analysis) = analysis else {
        return exit;
    };
    match staging.commit() {
        Ok(()) => {
            emit(
                std::io::stderr().lock(),
                &build_summary(&analysis, &emitted.files, previous, out),
            );
            Exit::Success
        }
        Err(e) => usage(e.to_string()),
    }
}

/// `publish`: bring a Pipy repo to OUT (see `crate::publish`).
pub fn publish(out: &Path, url: &str, prefix: &str, check_only: bool) -> Exit {
    use crate::publish::{Repo, apply, codebases, plan};
    let run = || -> Result<Exit, crate::publish::PublishError> {
        let cbs = codebases(out, prefix)?;
        let repo = Repo::new(url)?;
        let steps = plan(&repo, &cbs, prefix)?;
        let text: String = steps.iter().map(|s| format!("{s}\n")).collect();
        if check_only {
            emit(std::io::stdout().lock(), &text);
            return Ok(if steps.is_empty() {
                Exit::Success
            } else {
                Exit::Stale
            });
        }
        apply(&repo, &cbs, &steps)?;
        emit(std::io::stdout().lock(), &text);
        let commits = steps
            .iter()
            .filter(|s| matches!(s, crate::publish::Step::Commit { .. }))
            .count();
        emit(
            std::io::stderr().lock(),
            &format!(
                "egressc: published `{}` to {url}: {commits} of {} codebases changed\n",
                out.display(),
                cbs.len()
            ),
        );
        Ok(Exit::Success)
    };
    run().unwrap_or_else(|e| usage(e.to_string()))
}

/// The line `build` ends with: identities compiled, files written and unchanged, warnings.
/// `files`: every file written, with its SHA-256.
fn build_summary(
    analysis: &Analysis,
    files: &std::collections::BTreeMap<String, String>,
    previous_manifest: Option<Vec<u8>>,
    out: &Path,
) -> String {
    use crate::emit::output::sha256_hex;
    let manifest = crate::emit::manifest::MANIFEST;
    let previous_digest = previous_manifest.as_deref().map(sha256_hex);
    let previous: std::collections::BTreeMap<String, String> = previous_manifest
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["files"].clone()).ok())
        .unwrap_or_default();
    let unchanged = files
        .iter()
        .filter(|(p, digest)| {
            let before = if *p == manifest {
                previous_digest.as_ref()
            } else {
                previous.get(*p)
            };
            before == Some(*digest)
        })
        .count();
    // One config per identity: `configs/<ns>/<sa>.json`, and `_default`'s.
    let identities = files
        .keys()
        .filter(|p| p.starts_with("configs/") || *p == "sidecar/config.json")
        .count();
    let warnings = crate::diagnostics::count(&analysis.diagnostics).warnings;
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "egressc: {identities} identit{} compiled into `{}`: {} file{} written, {unchanged} unchanged; {warnings} warning{}\n",
        if identities == 1 { "y" } else { "ies" },
        out.display(),
        files.len() - unchanged,
        s(files.len() - unchanged),
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
        emit(std::io::stdout().lock(), combined);
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
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Vec<String>,
}

fn print_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).expect("json");
    emit(std::io::stdout().lock(), &format!("{text}\n"));
}

pub fn explain(
    inputs: &[String],
    from: &str,
    to: Option<&str>,
    sni: Option<String>,
    http: Option<HttpArgs>,
    args: &ReportArgs,
) -> Exit {
    if !crate::check::names::is_identity(from) {
        return usage(format!(
            "--from `{from}`: write NAMESPACE/SERVICEACCOUNT, as Kubernetes names them (lower-case DNS names)"
        ));
    }
    if matches!(args.format, Format::Sarif) {
        return usage("explain writes human or JSON output; SARIF is for `check` and `build`");
    }
    let (exit, analysis) = Report::human(&args.input).check(inputs);
    let Some(analysis) = analysis else {
        return exit;
    };
    let plan = analysis.plan();
    let json = matches!(args.format, Format::Json);
    let Some(to) = to else {
        let reach = crate::query::reach::reach(&plan, from);
        if json {
            print_json(&reach);
        } else {
            emit(
                std::io::stdout().lock(),
                &explain_text::render_reach(&reach, from),
            );
        }
        return Exit::Success;
    };
    let (dest, port) = match crate::query::question::parse_destination(to) {
        Ok(d) => d,
        Err(e) => return usage(format!("--to: {e}")),
    };
    let http = match http {
        None => None,
        Some(h) => {
            let mut hs = Vec::new();
            for header in h.headers {
                let Some((k, v)) = header.split_once('=') else {
                    return usage(format!("--header `{header}`: write NAME=VALUE"));
                };
                hs.push((k.trim().to_owned(), v.to_owned()));
            }
            Some(crate::query::question::HttpRequest::new(
                h.host, h.method, h.path, hs,
            ))
        }
    };
    let q = crate::query::question::Query {
        identity: from.to_owned(),
        dest,
        port,
        sni,
        http,
    };
    let v = eval::evaluate(&plan, &q);
    if json {
        print_json(&v);
    } else {
        emit(
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
    let from_stdin = cases_path == Path::new("-");
    if from_stdin && inputs.iter().any(|i| i == "-") {
        return usage("the cases and the inputs cannot both be read from stdin");
    }
    let text = if from_stdin {
        let mut t = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut t) {
            Ok(_) => t,
            Err(e) => return usage(format!("cannot read the cases from stdin: {e}")),
        }
    } else {
        match std::fs::read_to_string(cases_path) {
            Ok(t) => t,
            Err(e) => return usage(format!("cannot read `{}`: {e}", cases_path.display())),
        }
    };
    let case_error = |e: &dyn std::fmt::Display| {
        emit(
            std::io::stderr().lock(),
            &format!("error: {}: {e}\n", cases_path.display()),
        );
        Exit::InputErrors
    };
    let file = match cases::parse(&text) {
        Ok(f) => f,
        Err(e) => return case_error(&e),
    };
    let (exit, analysis) = Report::human(&args.input).check(inputs);
    let Some(analysis) = analysis else {
        return exit;
    };
    let (out, failed) = match cases::run(&analysis.plan(), &file) {
        Ok(r) => r,
        Err(e) => return case_error(&e),
    };
    emit(std::io::stdout().lock(), &out);
    if failed > 0 {
        Exit::CaseFailed
    } else {
        Exit::Success
    }
}
