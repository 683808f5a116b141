//! `completions` and `man`: the command line described for shells (clap_complete) and for
//! man(1) (clap_mangen), from the same clap definition that parses it.

use crate::cli::args::Cli;
use crate::cli::exit::{Exit, usage};
use clap::CommandFactory;
use std::path::Path;

/// The completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> Exit {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "egressc", &mut out);
    crate::cli::commands::write_out(std::io::stdout().lock(), &String::from_utf8_lossy(&out));
    Exit::Success
}

/// `egressc.1` and one page per command (`egressc-build.1`, …) in `dir`, created if missing.
pub fn man(dir: &Path) -> Exit {
    match write_pages(dir) {
        Ok(n) => {
            eprintln!("egressc: wrote {n} man pages to {}", dir.display());
            Exit::Success
        }
        Err(e) => usage(format!("{}: {e}", dir.display())),
    }
}

fn write_pages(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut pages = vec![(String::from("egressc"), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // A command's page is named and titled egressc-COMMAND, as git's are.
        let name = format!("egressc-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in &pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page.clone()).render(&mut text)?;
        std::fs::write(dir.join(format!("{name}.1")), text)?;
    }
    Ok(pages.len())
}
