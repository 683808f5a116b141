//! The egressc command line: parses arguments, calls the library, maps results to exit codes.

use clap::{Parser, Subcommand, ValueEnum};
use egressc::diagnostic::{self, Severity};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Compile Flomesh Service Mesh egress configuration into Pipy sidecar configs and scripts.
#[derive(Parser)]
#[command(name = "egressc", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the inputs and report every problem.
    Check {
        /// Files or directories (walked recursively, sorted; hidden entries skipped); `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Compile the inputs into the output tree (diagnostics as for `check`).
    Build {
        /// Files or directories (walked recursively, sorted; hidden entries skipped); `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        /// The output directory (replaced atomically; refused if it holds files egressc did not write).
        #[arg(short, long, value_name = "OUT")]
        output: std::path::PathBuf,
        /// Write nothing; exit 3 and list the files when OUT differs from what would be written.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Write the JSON Schemas of the input kinds (per kind, plus one combined schema for editors).
    Schema {
        /// Directory to write into; without it the combined schema is printed.
        #[arg(short, long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Fail (exit 1) when there are warnings.
    #[arg(long)]
    deny_warnings: bool,
    /// Silence a warning or note code (repeatable), e.g. `--allow W0403`.
    #[arg(long, value_name = "CODE")]
    allow: Vec<String>,
    /// Colour in human output (`NO_COLOR` is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Treat files found in walked directories like named files: unparsable or
    /// non-Kubernetes files are errors rather than skipped with a warning.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

const EXIT_ERRORS: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_STALE: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Check { inputs, report } => check(&inputs, &report).0,
        Command::Build {
            inputs,
            output,
            check: check_only,
            report,
        } => build(&inputs, &output, check_only, &report),
        Command::Schema { output } => schema(output.as_deref()),
    }
}

/// Write to a stream; a closed pipe (`| head`) is a normal end, not a panic.
fn emit(mut w: impl Write, text: &str) {
    let _ = w.write_all(text.as_bytes()).and_then(|_| w.flush());
}

fn usage_error(msg: &str) -> ExitCode {
    emit(std::io::stderr().lock(), &format!("error: {msg}\n"));
    ExitCode::from(EXIT_USAGE)
}

/// Read, check and report: the exit code, and the analysis when nothing failed.
fn check(inputs: &[String], args: &ReportArgs) -> (ExitCode, Option<egressc::Analysis>) {
    for code in &args.allow {
        let problem = match diagnostic::code_info(code) {
            None => format!("--allow: unknown diagnostic code `{code}`"),
            Some(_) if code.starts_with('E') => {
                format!("--allow: `{code}` is an error and cannot be allowed")
            }
            Some(_) => continue,
        };
        return (usage_error(&problem), None);
    }
    let mut analysis = egressc::analyze(
        inputs,
        &mut std::io::stdin().lock(),
        egressc::ReadOptions {
            strict: args.strict,
        },
    );
    analysis
        .diagnostics
        .retain(|d| !args.allow.iter().any(|a| a == d.code));
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    let diags = &analysis.diagnostics;
    match args.format {
        Format::Human => emit(
            std::io::stderr().lock(),
            &diagnostic::render_human(diags, &analysis.sources, color),
        ),
        Format::Json => emit(
            std::io::stdout().lock(),
            &diagnostic::render_json(diags, &analysis.sources),
        ),
        Format::Sarif => emit(
            std::io::stdout().lock(),
            &diagnostic::render_sarif(diags, &analysis.sources),
        ),
    }
    let warnings = diags.iter().any(|d| d.severity == Severity::Warning);
    if analysis.has_io_errors() {
        (ExitCode::from(EXIT_USAGE), None)
    } else if analysis.has_errors() || (args.deny_warnings && warnings) {
        (ExitCode::from(EXIT_ERRORS), None)
    } else {
        (ExitCode::SUCCESS, Some(analysis))
    }
}

fn build(
    inputs: &[String],
    out: &std::path::Path,
    check_only: bool,
    args: &ReportArgs,
) -> ExitCode {
    let (code, analysis) = check(inputs, args);
    let Some(analysis) = analysis else {
        return code;
    };
    let output = egressc::compile(&analysis);
    if check_only {
        let changes = egressc::write::diff(&output, out);
        if changes.is_empty() {
            return ExitCode::SUCCESS;
        }
        let mut text = format!(
            "`{}` is stale: {} file{} differ{} from what would be written\n",
            out.display(),
            changes.len(),
            if changes.len() == 1 { "" } else { "s" },
            if changes.len() == 1 { "s" } else { "" },
        );
        for (path, change) in &changes {
            text.push_str(&format!("  {:<8} {path}\n", change.as_str()));
        }
        emit(std::io::stdout().lock(), &text);
        return ExitCode::from(EXIT_STALE);
    }
    match egressc::write::write(&output, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage_error(&e.to_string()),
    }
}

fn schema(output: Option<&std::path::Path>) -> ExitCode {
    let files = egressc::schema::schema_files();
    let Some(dir) = output else {
        let combined = files
            .iter()
            .find(|(n, _)| n == "egressc.schema.json")
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        emit(std::io::stdout().lock(), combined);
        return ExitCode::SUCCESS;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return usage_error(&format!("cannot create `{}`: {e}", dir.display()));
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return usage_error(&format!("cannot write `{}`: {e}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
