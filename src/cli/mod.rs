//! The command line: clap arguments, running a subcommand, and the one mapping from outcome to
//! exit code (`exit::Exit`). The last stage: it uses every other, nothing uses it.

pub mod args;
pub mod commands;
pub mod diff;
mod docs;
pub mod exit;
pub mod git;
mod replay;

use crate::cli::args::{Cli, Command};
use crate::cli::commands::{CheckRun, write_out};
use crate::cli::exit::Exit;
use clap::Parser;
use std::process::ExitCode;

/// Run egressc with the process's arguments; the exit code of the outcome.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let exit = match cli.command {
        Command::Check { inputs, report } => CheckRun::new(&report).check(&inputs),
        Command::Build {
            inputs,
            output,
            check,
            kube,
            report,
        } => commands::build(&inputs, &output, check, &kube, &report),
        Command::Schema { output } => commands::schema(output.as_deref()),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { output } => docs::man(&output),
        Command::Publish {
            output,
            repo,
            prefix,
            check,
        } => commands::publish(&output, &repo, &prefix, check),
        Command::Explain {
            inputs,
            from,
            to,
            sni,
            http_host,
            authority,
            method,
            path,
            header,
            report,
        } => {
            let any_http = http_host.is_some()
                || authority.is_some()
                || method.is_some()
                || path.is_some()
                || !header.is_empty();
            let http = any_http.then_some(commands::HttpArgs {
                host: http_host,
                authority,
                method,
                path,
                headers: header,
            });
            commands::explain(&inputs, &from, to.as_deref(), sni, http, &report)
        }
        Command::Test {
            cases,
            inputs,
            replay,
            report,
        } => match cases {
            // With --replay the first positional argument is an INPUT too.
            Some(first) if !replay.is_empty() => {
                let all: Vec<String> = std::iter::once(first.to_string_lossy().into_owned())
                    .chain(inputs)
                    .collect();
                replay::replay(&replay, &all, &report)
            }
            None => replay::replay(&replay, &inputs, &report),
            Some(_) if inputs.is_empty() => exit::usage("test needs at least one INPUT"),
            Some(cases) => commands::test(&cases, &inputs, &report),
        },
        Command::Suggest {
            logs,
            routes,
            inputs,
            report,
        } => replay::suggest(&logs, &inputs, routes.is_some(), &report),
        Command::Diff {
            base,
            base_git,
            head,
            format,
            fail_on,
            input,
        } => diff::diff(&diff::DiffArgs {
            base: &base,
            base_git: base_git.as_deref(),
            head: &head,
            format,
            fail_on,
            input: &input,
        }),
    };
    let exit = match commands::write_failure() {
        Some(e) if exit.code() != 2 => exit::usage(e),
        _ => exit,
    };
    if let Exit::Usage(e) = &exit {
        write_out(std::io::stderr().lock(), &format!("error: {e}\n"));
    }
    exit.exit_code()
}
