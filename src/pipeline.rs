//! Running the pipeline: read and check the inputs, then lower, emit and write. The CLI and
//! the library's users start here.

use crate::diagnostics::{Code, Diagnostic};
use crate::emit::Emitted;
use crate::emit::kubernetes::KubeOptions;
use crate::emit::output::{Discard, Output, Sink};
use crate::input::source::{DEFAULT_MAX_INPUT_BYTES, ReadLimits, Sources};
use crate::model::{CheckOptions, Checked};
use crate::net::Cidr;
use crate::plan::Plan;
use crate::write::WriteError;
use std::path::PathBuf;

/// How inputs are read and checked.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Treat files found by walking a directory like files named on the command line:
    /// a file that does not parse, or holds no Kubernetes document, is an error; Egress
    /// policies without a MeshConfig are an error.
    pub strict: bool,
    /// Egress policies without a MeshConfig are an error (FSM's defaults let all through).
    pub require_meshconfig: bool,
    /// The largest input file (and stdin), in bytes.
    pub max_input_bytes: u64,
    /// Folders never read as input (a build's own output folder).
    pub exclude: Vec<PathBuf>,
    /// The cluster's Service CIDRs: a clusterIP outside them (and outside the private
    /// ranges) gets a warning.
    pub service_cidrs: Vec<Cidr>,
    /// The DNS resolvers workload UDP may reach (`--dns`).
    pub dns: Vec<std::net::Ipv4Addr>,
    /// `check`: compile the output (with `kubernetes/` made this way) and report what cannot
    /// be deployed; `None` (build, which does that as it writes; explain, test) compiles
    /// nothing.
    pub kube: Option<KubeOptions>,
    /// How names are shown: a file name that starts with the first string is shown with the
    /// second instead (`diff --base-git` reads the base from a temporary folder and shows it
    /// as `REV:path`).
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
            kube: None,
            relabel: None,
        }
    }
}

/// The result of reading and checking the inputs.
pub struct Analysis {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    checked: Checked,
    /// How many documents of the kinds egressc reads were recognised.
    documents: usize,
    kube: KubeOptions,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
    /// An input could not be read (exit code 2 rather than 1).
    pub fn has_io_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.code == Code::E0001)
    }
    /// Add diagnostics found after the analysis (the output's problems), in order.
    pub fn add(&mut self, more: Vec<Diagnostic>) {
        if !more.is_empty() {
            self.diagnostics.extend(more);
            crate::diagnostics::sort(&mut self.diagnostics);
        }
    }
    /// How many documents of the kinds egressc reads were recognised.
    pub fn documents(&self) -> usize {
        self.documents
    }
    /// Lower an analysis without errors into the plan that `build`, `explain` and `test` share.
    pub fn plan(&self) -> Plan {
        crate::plan::lower(&self.checked)
    }
    /// Lower and emit the output tree of an analysis without errors, in memory (tests and
    /// tools; `build` streams it to disk, [`Analysis::emit_into`]).
    pub fn compile(&self) -> Output {
        crate::emit::emit(&self.plan(), &self.manifest_inputs(), &self.kube)
    }
    /// Lower and emit into `sink`, the analysis's checked inputs dropped first (only the plan
    /// is needed from here on). The analysis can still report its diagnostics, not compile
    /// again.
    pub fn emit_into(&mut self, kube: &KubeOptions, sink: &mut dyn Sink) -> Emitted {
        let plan = self.plan();
        self.checked = Checked::default();
        crate::emit::stream(&plan, &self.manifest_inputs(), kube, sink)
    }
    /// Every input, as `manifest.json` records it.
    fn manifest_inputs(&self) -> Vec<(String, &[u8])> {
        // Inputs are recorded by a stable path: relative to the working directory where they
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
        self.sources
            .files
            .iter()
            .map(|f| (stable(&f.name), f.text.as_bytes()))
            .collect()
    }
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
        service_cidrs: opts.service_cidrs.clone(),
        dns: opts.dns.clone(),
    };
    let mut analysis = analyze_sources(sources, diagnostics, &check);
    if let Some(kube) = &opts.kube {
        analysis.kube = kube.clone();
        if !analysis.has_errors() {
            // What cannot be deployed: the output is compiled and measured, not kept.
            let plan = analysis.plan();
            let problems = crate::emit::stream(&plan, &[], kube, &mut Discard).problems;
            analysis.add(problems);
        }
    }
    analysis
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
        documents: inputs.docs.len(),
        sources,
        diagnostics,
        checked,
        kube: KubeOptions::default(),
    }
}

/// The documents of one YAML text as JSON values (for tools and tests that validate them with
/// the generated schemas); `None` when the text does not parse.
pub fn yaml_as_json(text: &str) -> Option<Vec<serde_json::Value>> {
    crate::input::yaml::parse_documents(text)
        .ok()
        .map(|docs| docs.iter().map(|d| d.to_json()).collect())
}

/// Every schema file egressc generates: (file name, pretty JSON with a trailing newline): the
/// input kinds, the combined schema for editors, and the sidecar config it writes.
pub fn schema_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = crate::load::schema::input_schemas()
        .into_iter()
        .chain(std::iter::once((
            "sidecar-config.schema.json".to_owned(),
            crate::emit::config::config_schema(),
        )))
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
pub fn write_output(out: &Output, dir: &std::path::Path) -> Result<(), WriteError> {
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
            .diagnostics
            .iter()
            .map(|d| match d.span() {
                Some(s) => format!("{} {}:{}", d.code, s.loc.line, s.loc.col),
                None => d.code.to_string(),
            })
            .collect()
    }

    /// The plan of inputs that must have no errors.
    pub fn plan(yaml: &str) -> Plan {
        let a = analysis(yaml);
        assert!(!a.has_errors(), "{:?}", a.diagnostics);
        a.plan()
    }

    /// A MeshConfig with passthrough off, then `rest`.
    pub fn enforced(rest: &str) -> String {
        format!(
            "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {{name: m, namespace: fsm}}\nspec: {{traffic: {{enableEgress: false}}}}\n---\n{rest}"
        )
    }
}
