//! Running the pipeline: read and check the inputs, then lower, emit and write (or compare).
//! The one place a build runs; the CLI maps its arguments in and the outcome out, and the
//! library's users start here too.

use crate::diagnostics::{Code, Diagnostic, Severity};
use crate::emit::Emitted;
use crate::emit::kubernetes::KubeOptions;
use crate::emit::manifest::MANIFEST;
use crate::emit::output::{Discard, Output, Sink, sha256_hex};
use crate::input::source::{DEFAULT_MAX_INPUT_BYTES, ReadLimits, Sources};
use crate::model::{CheckOptions, Checked};
use crate::net::Cidr;
use crate::plan::Plan;
use crate::write::{Change, Compare, Staging, WriteError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How inputs are read and checked.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Walked files are read like named ones (one that does not parse, or holds no Kubernetes
    /// document, is an error); Egress policies without a MeshConfig are an error.
    pub strict: bool,
    /// Egress policies without a MeshConfig are an error (FSM's defaults let all through).
    pub require_meshconfig: bool,
    /// The largest input file (and stdin), in bytes.
    pub max_input_bytes: u64,
    /// Folders never read as input (a build's own output folder).
    pub exclude: Vec<PathBuf>,
    /// The cluster's Service CIDRs: a clusterIP outside them (and the private ranges) warns.
    pub service_cidrs: Vec<Cidr>,
    /// The DNS resolvers workload DNS (UDP and TCP port 53) may reach (`--dns`).
    pub dns: Vec<std::net::Ipv4Addr>,
    /// How the gateway authenticates tunnels (`--gateway-auth`, `--trust-domain`).
    pub auth: crate::model::GatewayAuth,
    /// A file name that starts with the first string is shown with the second instead
    /// (`diff --base-git` reads the base from a temporary folder, shown as `REV:path`).
    pub relabel: Option<(String, String)>,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            strict: false,
            require_meshconfig: false,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            exclude: Vec::new(),
            service_cidrs: Vec::new(),
            dns: Vec::new(),
            auth: crate::model::GatewayAuth::default(),
            relabel: None,
        }
    }
}

/// Which diagnostics fail a run.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// Warning and note codes left out of the run (`--allow`).
    pub allow: Vec<Code>,
    /// Warnings fail the run (`--deny-warnings`).
    pub deny_warnings: bool,
}

/// How the diagnostics of a run end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    /// Errors, or warnings under `--deny-warnings`.
    Fail,
    /// An input could not be read (E0001).
    Unreadable,
}

/// What reading and checking found: the diagnostics, and the sources they point into.
pub struct Findings {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// How many documents of the kinds egressc reads were recognised.
    documents: usize,
}

impl Findings {
    /// Findings about something read outside the inputs (a cases file): no sources.
    pub fn of(diagnostics: Vec<Diagnostic>) -> Findings {
        Findings {
            sources: Sources::default(),
            diagnostics,
            documents: 0,
        }
    }
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
    /// An input could not be read (exit code 2 rather than 1).
    pub fn has_io_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.code == Code::E0001)
    }
    /// How many documents of the kinds egressc reads were recognised.
    pub fn documents(&self) -> usize {
        self.documents
    }
    /// Add diagnostics found after the analysis (the output's problems), in order.
    fn add(&mut self, more: Vec<Diagnostic>) {
        if !more.is_empty() {
            self.diagnostics.extend(more);
            crate::diagnostics::sort(&mut self.diagnostics);
        }
    }
    /// Leave out the allowed codes, then judge what is left.
    pub fn judge(&mut self, gate: &Gate) -> Judgement {
        self.diagnostics.retain(|d| !gate.allow.contains(&d.code));
        let warnings = self
            .diagnostics
            .iter()
            .any(|d| d.severity() == Severity::Warning);
        if self.has_io_errors() {
            Judgement::Unreadable
        } else if self.has_errors() || (gate.deny_warnings && warnings) {
            Judgement::Fail
        } else {
            Judgement::Pass
        }
    }
}

/// Loaded read and checked: what was found, and the resolved mesh to lower when nothing
/// failed.
pub struct Analysis {
    pub findings: Findings,
    checked: Checked,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.findings.has_errors()
    }
    /// Lower an analysis without errors into the plan that `build`, `explain` and `test` share.
    pub fn lower(&self) -> Plan {
        crate::plan::lower(&self.checked)
    }
    /// Lower and emit the output tree of an analysis without errors, in memory, with the
    /// default Kubernetes options (tests and tools; `build` streams it to disk).
    pub fn compile(&self) -> Output {
        crate::emit::in_memory(
            &self.lower(),
            &manifest_inputs(&self.findings.sources),
            &KubeOptions::default(),
        )
    }
    /// Lower and emit into `sink`; the checked inputs are dropped once lowered (only the plan
    /// is needed from there on). What keeps the output from being deployed (E0601) is moved
    /// into the findings.
    pub fn emit(self, kube: &KubeOptions, sink: &mut dyn Sink) -> (Findings, Emitted) {
        let Analysis {
            mut findings,
            checked,
        } = self;
        let plan = crate::plan::lower(&checked);
        drop(checked);
        let mut emitted =
            crate::emit::stream(&plan, &manifest_inputs(&findings.sources), kube, sink);
        findings.add(std::mem::take(&mut emitted.problems));
        (findings, emitted)
    }
}

/// Every input, as `manifest.json` records it.
fn manifest_inputs(sources: &Sources) -> Vec<(String, &[u8])> {
    // Loaded are recorded by a stable path: relative to the working directory where they
    // are inside it, so that an absolute and a relative invocation give the same manifest.
    let cwd = std::env::current_dir().ok();
    let stable = |name: &str| {
        let p = std::path::Path::new(name);
        cwd.as_deref()
            .filter(|_| p.is_absolute())
            .and_then(|c| p.strip_prefix(c).ok())
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|| name.to_owned())
    };
    sources
        .files
        .iter()
        .map(|f| (stable(&f.name), f.text.as_bytes()))
        .collect()
}

/// Read and check the inputs named on the command line (`-` is stdin).
pub fn analyze(inputs: &[String], stdin: &mut dyn std::io::Read, opts: &ReadOptions) -> Analysis {
    let mut sources = Sources::default();
    let mut diagnostics = Vec::new();
    let limits = ReadLimits {
        max_bytes: opts.max_input_bytes,
        exclude: opts.exclude.clone(),
    };
    crate::input::source::read_inputs(inputs, stdin, &limits, &mut sources, &mut diagnostics);
    if let Some((from, to)) = &opts.relabel {
        relabel(&mut sources, &mut diagnostics, from, to);
    }
    if opts.strict {
        for f in &mut sources.files {
            f.explicit = true;
        }
    }
    let check = CheckOptions {
        require_meshconfig: opts.require_meshconfig || opts.strict,
        strict: opts.strict,
        service_cidrs: opts.service_cidrs.clone(),
        dns: opts.dns.clone(),
        auth: opts.auth.clone(),
    };
    analyze_sources(sources, diagnostics, &check)
}

/// `check`: read and check the inputs, then (when they have no errors) compile the output,
/// made with `kube`, without keeping it, to report what cannot be deployed (E0601).
pub fn check(
    inputs: &[String],
    stdin: &mut dyn std::io::Read,
    opts: &ReadOptions,
    kube: &KubeOptions,
) -> Analysis {
    let mut analysis = analyze(inputs, stdin, opts);
    if !analysis.has_errors() {
        let problems = crate::emit::stream(&analysis.lower(), &[], kube, &mut Discard).problems;
        analysis.findings.add(problems);
    }
    analysis
}

/// What `build` was asked.
pub struct BuildRequest<'a> {
    pub inputs: &'a [String],
    pub out: &'a Path,
    /// Compare with OUT instead of writing (`build --check`).
    pub compare: bool,
    pub read: ReadOptions,
    pub kube: KubeOptions,
    pub gate: Gate,
}

/// How a build ended; its findings are in [`Built`].
pub enum BuildOutcome {
    /// The diagnostics fail the run: nothing was written (OUT is as it was).
    Failed,
    /// OUT holds the new output.
    Written(Written),
    /// `--check`: how OUT differs from what would be written (empty: up to date).
    Compared(Vec<(String, Change)>),
    /// OUT could not be written; it is as it was.
    WriteFailed(WriteError),
}

/// What a build wrote.
pub struct Written {
    /// Identities compiled (one config each, `_default`'s included).
    pub identities: usize,
    /// Files written with other bytes than OUT held before (or new).
    pub changed: usize,
    /// Files written with the bytes OUT held before.
    pub unchanged: usize,
}

pub struct Built {
    pub findings: Findings,
    pub outcome: BuildOutcome,
}

/// Run a build: read → check → lower → emit → write OUT atomically (or compare with it).
/// Nothing is swapped in when the diagnostics fail the run, the output cannot be deployed,
/// or a file cannot be written.
pub fn build(req: &BuildRequest, stdin: &mut dyn std::io::Read) -> Built {
    let mut read = req.read.clone();
    read.exclude.push(req.out.to_path_buf());
    let analysis = analyze(req.inputs, stdin, &read);
    if analysis.has_errors() {
        return gated(analysis.findings, &req.gate, || BuildOutcome::Failed);
    }
    if req.compare {
        let mut compare = Compare::new(req.out);
        let (findings, _) = analysis.emit(&req.kube, &mut compare);
        return gated(findings, &req.gate, || {
            BuildOutcome::Compared(compare.finish())
        });
    }
    let previous = std::fs::read(req.out.join(MANIFEST)).ok();
    let mut staging = match Staging::begin(req.out) {
        Ok(s) => s,
        Err(e) => {
            return Built {
                findings: analysis.findings,
                outcome: BuildOutcome::WriteFailed(e),
            };
        }
    };
    let (findings, emitted) = analysis.emit(&req.kube, &mut staging);
    // The staging folder is removed when it is dropped uncommitted: OUT stays as it was.
    gated(findings, &req.gate, || match staging.commit() {
        Ok(()) => BuildOutcome::Written(written(&emitted.files, previous)),
        Err(e) => BuildOutcome::WriteFailed(e),
    })
}

/// Judge the findings again (emitting may have added problems); `then` only when they pass.
fn gated(mut findings: Findings, gate: &Gate, then: impl FnOnce() -> BuildOutcome) -> Built {
    let outcome = match findings.judge(gate) {
        Judgement::Pass => then(),
        Judgement::Fail | Judgement::Unreadable => BuildOutcome::Failed,
    };
    Built { findings, outcome }
}

/// What a build wrote, against the digests of the previous manifest. `files`: every file
/// written, with its SHA-256.
fn written(files: &BTreeMap<String, String>, previous_manifest: Option<Vec<u8>>) -> Written {
    let previous_digest = previous_manifest.as_deref().map(sha256_hex);
    let previous: BTreeMap<String, String> = previous_manifest
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["files"].clone()).ok())
        .unwrap_or_default();
    let unchanged = files
        .iter()
        .filter(|(p, digest)| {
            let before = if *p == MANIFEST {
                previous_digest.as_ref()
            } else {
                previous.get(*p)
            };
            before == Some(*digest)
        })
        .count();
    Written {
        // One config per identity: `configs/<ns>/<sa>.json`, and `_default`'s.
        identities: files
            .keys()
            .filter(|p| p.starts_with("configs/") || *p == "sidecar/config.json")
            .count(),
        changed: files.len() - unchanged,
        unchanged,
    }
}

/// Show the files whose names start with `from` under `to` instead, in the diagnostics of
/// reading them too.
fn relabel(sources: &mut Sources, diagnostics: &mut [Diagnostic], from: &str, to: &str) {
    let shown = |name: &str| match name.strip_prefix(from) {
        Some(rest) => format!("{to}{rest}"),
        None => name.to_owned(),
    };
    for f in &mut sources.files {
        f.name = shown(&f.name);
    }
    for d in diagnostics {
        if let crate::diagnostics::Place::File(name) = &d.place {
            d.place = crate::diagnostics::Place::File(shown(name));
        }
        d.message = d.message.replace(from, to);
    }
}

/// Check texts already in memory (used by tests and benchmarks).
pub fn analyze_texts(texts: Vec<(String, String)>) -> Analysis {
    let mut sources = Sources::default();
    for (name, text) in texts {
        sources.add(crate::input::source::SourceFile::new(name, text, true));
    }
    analyze_sources(sources, Vec::new(), &CheckOptions::default())
}

fn analyze_sources(
    sources: Sources,
    mut diagnostics: Vec<Diagnostic>,
    options: &CheckOptions,
) -> Analysis {
    let inputs = crate::load::load(&sources, &mut diagnostics);
    let (checked, more) = crate::check::check(&inputs, options);
    diagnostics.extend(more);
    sources.resolve_all(&mut diagnostics);
    crate::diagnostics::sort(&mut diagnostics);
    Analysis {
        findings: Findings {
            documents: inputs.docs.len(),
            sources,
            diagnostics,
        },
        checked,
    }
}

/// A route regex's matcher as a sidecar config holds it (`Matchers`), with its key: for a path
/// (matched whole) or a header value (matched anywhere). For tools and the e2e self-test.
pub fn route_matcher(regex: &str, whole_path: bool) -> Result<(String, serde_json::Value), String> {
    let mode = if whole_path {
        crate::model::MatchMode::WholePath
    } else {
        crate::model::MatchMode::Anywhere
    };
    let m = crate::check::matcher::compile(regex, mode)?;
    Ok((
        mode.key(regex),
        serde_json::to_value(m).expect("a matcher serializes"),
    ))
}

/// Every schema file egressc generates: (file name, pretty JSON with a trailing newline): the
/// input kinds, the combined schema for editors, the sidecar config it writes, and its machine
/// output (`check`, `diff` and `test` with `--format json`, the error document).
pub fn schema_files() -> Vec<(String, String)> {
    let outputs = [
        (
            "sidecar-config.schema.json",
            crate::emit::config::config_schema(),
        ),
        (
            "check.schema.json",
            crate::diagnostics::render::check_schema(),
        ),
        (
            "error.schema.json",
            crate::diagnostics::render::error_schema(),
        ),
        ("diff.schema.json", crate::diff::render::json::diff_schema()),
        ("test.schema.json", crate::query::cases::test_schema()),
        (
            "decision-log.schema.json",
            crate::emit::decision_log::decision_log_schema(),
        ),
    ];
    let mut files: Vec<(String, String)> = crate::load::schema::input_schemas()
        .into_iter()
        .chain(outputs.into_iter().map(|(n, v)| (n.to_owned(), v)))
        .map(|(n, v)| {
            let mut s = serde_json::to_string_pretty(&v).expect("schema serializes");
            s.push('\n');
            (n, s)
        })
        .collect();
    files.sort();
    files
}

/// Write an output tree to `dir`, atomically.
pub fn write_output(out: &Output, dir: &Path) -> Result<(), WriteError> {
    crate::write::write(out, dir)
}

/// Helpers for the unit tests beside each rule: inline YAML in, `CODE line:col` out.
#[cfg(test)]
pub(crate) mod testing {
    use crate::plan::Plan;

    fn analysis(yaml: &str) -> super::Analysis {
        super::analyze_texts(vec![("t.yaml".into(), yaml.into())])
    }

    /// `CODE line:col` of every diagnostic (just `CODE` for one without a place).
    pub fn places(yaml: &str) -> Vec<String> {
        analysis(yaml)
            .findings
            .diagnostics
            .iter()
            .map(|d| match d.span() {
                Some(s) => format!("{} {}:{}", d.code, s.loc.line, s.loc.col),
                None => d.code.to_string(),
            })
            .collect()
    }

    /// The plan of inputs without errors; `None` when they have some.
    pub fn try_plan(yaml: &str) -> Option<Plan> {
        let a = analysis(yaml);
        (!a.has_errors()).then(|| a.lower())
    }

    /// The plan of inputs that must have no errors.
    pub fn plan(yaml: &str) -> Plan {
        let a = analysis(yaml);
        assert!(!a.has_errors(), "{:?}", a.findings.diagnostics);
        a.lower()
    }

    /// An enforced mesh with one Egress policy `ns/e` for the identity `ns/a`, whose spec goes
    /// on with `spec` (indented lines after `sources`).
    pub fn egress(spec: &str) -> String {
        enforced(&format!(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: ns}}\nspec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: ns}}]\n{spec}"
        ))
    }

    /// A MeshConfig with passthrough off, then `rest`.
    pub fn enforced(rest: &str) -> String {
        format!(
            "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {{name: m, namespace: fsm}}\nspec: {{traffic: {{enableEgress: false}}}}\n---\n{rest}"
        )
    }
}
