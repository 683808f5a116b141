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
    /// Explain what an identity may reach, or the verdict for one connection.
    ///
    /// Exit 0 when the connection is allowed (also in-mesh and passthrough), 4 when it is denied
    /// or cannot be decided offline (a rule needs the destination address), 1 for input errors.
    Explain {
        /// Files or directories; `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        /// The workload identity: NAMESPACE/SERVICEACCOUNT.
        #[arg(long, value_name = "NS/SA")]
        from: String,
        /// The destination as dialled: HOST_OR_IP:PORT. Without it, list what the identity may reach.
        #[arg(long, value_name = "HOST_OR_IP:PORT")]
        to: Option<String>,
        /// The TLS server name (https); defaults to the name in --to.
        #[arg(long, value_name = "NAME", requires = "to")]
        sni: Option<String>,
        /// The HTTP Host header; giving any HTTP option makes the connection an HTTP request.
        #[arg(long, value_name = "HOST", requires = "to")]
        http_host: Option<String>,
        /// The HTTP method (default GET).
        #[arg(long, value_name = "METHOD", requires = "to")]
        method: Option<String>,
        /// The HTTP path, with an optional query (default /).
        #[arg(long, value_name = "PATH", requires = "to")]
        path: Option<String>,
        /// An HTTP header, NAME=VALUE (repeatable).
        #[arg(long, value_name = "NAME=VALUE", requires = "to")]
        header: Vec<String>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Check a file of connections against their expected verdicts, offline.
    ///
    /// Exit 0 when every case passes, 5 when one fails, 1 for input errors.
    Test {
        /// The cases file (YAML; see the README for its format).
        #[arg(value_name = "CASES")]
        cases: std::path::PathBuf,
        /// Files or directories; `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
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
const EXIT_DENIED: u8 = 4;
const EXIT_CASE_FAILED: u8 = 5;

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
        Command::Explain {
            inputs,
            from,
            to,
            sni,
            http_host,
            method,
            path,
            header,
            report,
        } => {
            let any_http =
                http_host.is_some() || method.is_some() || path.is_some() || !header.is_empty();
            let http = any_http.then_some((http_host, method, path, header));
            explain(&inputs, &from, to.as_deref(), sni, http, &report)
        }
        Command::Test {
            cases,
            inputs,
            report,
        } => test(&cases, &inputs, &report),
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
    check_as(inputs, args, args.format)
}

/// `check` with the diagnostics in `format` (explain and test keep stdout for their own output
/// and show diagnostics in human form on stderr).
fn check_as(
    inputs: &[String],
    args: &ReportArgs,
    format: Format,
) -> (ExitCode, Option<egressc::Analysis>) {
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
    match format {
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

type HttpArgs = (Option<String>, Option<String>, Option<String>, Vec<String>);

fn explain(
    inputs: &[String],
    from: &str,
    to: Option<&str>,
    sni: Option<String>,
    http: Option<HttpArgs>,
    args: &ReportArgs,
) -> ExitCode {
    use egressc::eval;
    let (code, analysis) = check_as(inputs, args, Format::Human);
    let Some(analysis) = analysis else {
        return code;
    };
    if from
        .split_once('/')
        .is_none_or(|(ns, sa)| ns.is_empty() || sa.is_empty() || sa.contains('/'))
    {
        return usage_error(&format!("--from `{from}`: write NAMESPACE/SERVICEACCOUNT"));
    }
    let plan = egressc::plan(&analysis);
    let json = matches!(args.format, Format::Json);
    let Some(to) = to else {
        let reach = eval::reach(&plan, from);
        let text = if json {
            format!("{}\n", serde_json::to_string_pretty(&reach).expect("json"))
        } else {
            egressc::explain::render_reach(&reach, from)
        };
        emit(std::io::stdout().lock(), &text);
        return ExitCode::SUCCESS;
    };
    let (dest, port) = match eval::parse_destination(to) {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("--to: {e}")),
    };
    let http = match http {
        None => None,
        Some((host, method, path, headers)) => {
            let mut hs = Vec::new();
            for h in headers {
                let Some((k, v)) = h.split_once('=') else {
                    return usage_error(&format!("--header `{h}`: write NAME=VALUE"));
                };
                hs.push((k.trim().to_owned(), v.to_owned()));
            }
            Some(eval::HttpRequest::new(host, method, path, hs))
        }
    };
    let q = eval::Query {
        identity: from.to_owned(),
        dest,
        port,
        sni,
        http,
    };
    let v = eval::evaluate(&plan, &q);
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&v).expect("json"))
    } else {
        egressc::explain::render_verdict(&v, &q)
    };
    emit(std::io::stdout().lock(), &text);
    if v.verdict.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    }
}

fn test(cases: &std::path::Path, inputs: &[String], args: &ReportArgs) -> ExitCode {
    let text = match std::fs::read_to_string(cases) {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("cannot read `{}`: {e}", cases.display())),
    };
    let file = match egressc::cases::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            emit(
                std::io::stderr().lock(),
                &format!("error: {}: {e}\n", cases.display()),
            );
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    let (code, analysis) = check_as(inputs, args, Format::Human);
    let Some(analysis) = analysis else {
        return code;
    };
    let plan = egressc::plan(&analysis);
    let (out, failed) = match egressc::cases::run(&plan, &file) {
        Ok(r) => r,
        Err(e) => {
            emit(
                std::io::stderr().lock(),
                &format!("error: {}: {e}\n", cases.display()),
            );
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    emit(std::io::stdout().lock(), &out);
    if failed > 0 {
        ExitCode::from(EXIT_CASE_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
