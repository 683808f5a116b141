//! egressc: an offline compiler for Flomesh Service Mesh egress configuration.
//!
//! Pipeline (one direction): read sources → parse spanned YAML → recognise kinds → validate
//! against JSON Schemas → type → semantic checks. Diagnostics are data; `diagnostic` renders
//! them.

pub mod cases;
pub mod check;
pub mod diagnostic;
pub mod emit;
pub mod eval;
pub mod explain;
pub mod iptables;
pub mod load;
pub mod net;
pub mod plan;
pub mod regex_subset;
pub mod resources;
pub mod schema;
pub mod scripts;
pub mod source;
pub mod write;
pub mod yaml;

use diagnostic::Diagnostic;
use source::Sources;

/// How inputs are read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Treat files found by walking a directory like files named on the command line:
    /// a file that does not parse, or holds no Kubernetes document, is an error.
    pub strict: bool,
}

/// The result of reading and checking the inputs.
pub struct Analysis {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    pub inputs: load::Inputs,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == diagnostic::Severity::Error)
    }
    /// An input could not be read (exit code 2 rather than 1).
    pub fn has_io_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.code == "E0001")
    }
}

/// Lower an analysis without errors into the plan that `build`, `explain` and `test` share.
pub fn plan(analysis: &Analysis) -> plan::Plan {
    plan::lower(&analysis.inputs, &analysis.sources)
}

/// Lower and emit the output tree of an analysis without errors.
pub fn compile(analysis: &Analysis) -> emit::Output {
    let plan = plan(analysis);
    let inputs: Vec<(String, &[u8])> = analysis
        .sources
        .files
        .iter()
        .map(|f| (f.name.clone(), f.text.as_bytes()))
        .collect();
    emit::emit(&plan, &inputs)
}

/// Read and check the inputs named on the command line (`-` is stdin).
pub fn analyze(inputs: &[String], stdin: &mut dyn std::io::Read, opts: ReadOptions) -> Analysis {
    let mut sources = Sources::default();
    let mut diagnostics = Vec::new();
    source::read_inputs(inputs, stdin, &mut sources, &mut diagnostics);
    if opts.strict {
        for f in &mut sources.files {
            f.explicit = true;
        }
    }
    analyze_sources(sources, diagnostics)
}

/// Check texts already in memory (used by tests and benchmarks).
pub fn analyze_texts(texts: Vec<(String, String)>) -> Analysis {
    let mut sources = Sources::default();
    for (name, text) in texts {
        sources.add(source::SourceFile::new(name, text, true));
    }
    analyze_sources(sources, Vec::new())
}

fn analyze_sources(sources: Sources, mut diagnostics: Vec<Diagnostic>) -> Analysis {
    let inputs = load::load(&sources, &mut diagnostics);
    check::check(&inputs, &mut diagnostics);
    diagnostic::sort(&mut diagnostics);
    Analysis {
        sources,
        diagnostics,
        inputs,
    }
}
