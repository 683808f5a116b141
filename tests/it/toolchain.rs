//! The command line in the user's toolchain: shell completions, man pages, and GitHub
//! annotations from `check --format github`.

use crate::support::*;
use serde_json::Value;
use std::process::Command;

#[test]
fn bash_completes_commands_and_flags() {
    let script = egressc(&["completions", "bash"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = std::env::temp_dir().join(format!("egressc-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("egressc.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    // What bash's programmable completion does on TAB: the function with COMP_WORDS set.
    let complete = |words: &str| -> Option<String> {
        let probe = format!(
            "source '{}'\nCOMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             _egressc egressc \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            file.display()
        );
        let out = Command::new("bash").arg("-c").arg(probe).output().ok()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(commands) = complete("egressc bui") else {
        return skip("toolchain", "the bash completion test", "there is no bash");
    };
    assert_eq!(commands.trim(), "build");
    let flags = complete("egressc build --sidecar-mo").unwrap();
    assert_eq!(flags.trim(), "--sidecar-mode");
    let modes = complete("egressc build --sidecar-mode ''").unwrap();
    assert_eq!(
        modes.split_whitespace().collect::<Vec<_>>(),
        ["native", "classic"]
    );
    let formats = complete("egressc check --format ''").unwrap();
    assert!(
        formats.split_whitespace().any(|f| f == "github"),
        "{formats}"
    );
    // The other shells get a script that names every command.
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = egressc(&["completions", shell]);
        assert_eq!(run.code, 0);
        for command in [
            "check",
            "build",
            "explain",
            "diff",
            "suggest",
            "completions",
        ] {
            assert!(run.stdout.contains(command), "{shell}: {command}");
        }
    }
    let bad = egressc(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn man_writes_a_page_per_command_that_groff_renders() {
    let dir = std::env::temp_dir().join(format!("egressc-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = egressc(&["man", "-o", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let help = egressc(&["--help"]).stdout;
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut pages = vec!["egressc.1".to_owned()];
    pages.extend(commands.iter().map(|c| format!("egressc-{c}.1")));
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    pages.sort();
    assert_eq!(written, pages);
    let page = dir.join("egressc-build.1");
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.contains(".TH egressc-build 1"), "{text}");
    match Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww"])
        .arg(&page)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let shown = String::from_utf8_lossy(&out.stdout).replace('\u{2010}', "-");
            // groff marks bold by overstriking (X backspace X) when not a terminal.
            let plain = regex::Regex::new("(?s).\x08")
                .unwrap()
                .replace_all(&shown, "");
            assert!(
                plain.contains("sidecar") && plain.contains("gateway-replicas"),
                "{plain}"
            );
        }
        Err(_) => skip(
            "toolchain",
            "rendering the man page",
            "groff is not installed",
        ),
    }
    let unwritable = egressc(&["man", "-o", "/proc/egressc-man"]);
    assert_eq!(unwritable.code, 2, "{}", unwritable.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

/// `::LEVEL PROPS::MESSAGE` split into its parts.
fn workflow_command(line: &str) -> (String, Vec<(String, String)>, String) {
    let rest = line.strip_prefix("::").unwrap_or_else(|| panic!("{line}"));
    let (head, message) = rest.split_once("::").unwrap();
    let (level, props) = head.split_once(' ').unwrap();
    let props = props
        .split(',')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (level.to_owned(), props, message.to_owned())
}

#[test]
fn check_format_github_annotates_every_diagnostic_where_json_places_it() {
    let level = |s: &str| match s {
        "error" => "error",
        "warning" => "warning",
        _ => "notice",
    };
    let mut levels = std::collections::BTreeSet::new();
    for fixture in [
        "bad-e0301-port-range",
        "bad-w0403-open-port",
        "bad-n0002-gateway-mtls",
        "bad-e0202-unknown-field",
    ] {
        let dir = format!("fixtures/{fixture}");
        let github = egressc(&["check", "--format", "github", &dir]);
        let json = egressc(&["check", "--format", "json", &dir]);
        assert_eq!(github.code, json.code, "{fixture}");
        let diags: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
        let lines: Vec<&str> = github.stdout.lines().collect();
        assert_eq!(lines.len(), diags.len(), "{fixture}: {}", github.stdout);
        for (line, d) in lines.iter().zip(&diags) {
            let (lvl, props, message) = workflow_command(line);
            levels.insert(lvl.clone());
            assert_eq!(lvl, level(d["severity"].as_str().unwrap()), "{line}");
            let get = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
            assert_eq!(get("title").as_deref(), d["code"].as_str(), "{line}");
            assert_eq!(get("file").as_deref(), d["file"].as_str(), "{line}");
            assert_eq!(
                get("line"),
                d["line"].as_u64().map(|l| l.to_string()),
                "{line}"
            );
            assert_eq!(
                get("col"),
                d["column"].as_u64().map(|c| c.to_string()),
                "{line}"
            );
            // One line each: newlines and `%` escaped as GitHub unescapes them.
            let mut want = d["message"].as_str().unwrap().to_owned();
            if let Some(h) = d["help"].as_str() {
                want = format!("{want}\nhelp: {h}");
            }
            let unescaped = message
                .replace("%0A", "\n")
                .replace("%0D", "\r")
                .replace("%25", "%");
            assert_eq!(unescaped, want);
            assert!(!message.contains('\n') && !message.contains('\r'));
        }
    }
    assert_eq!(
        levels.into_iter().collect::<Vec<_>>(),
        ["error", "notice", "warning"]
    );
    // Commands that answer questions refuse it.
    let explain = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--format",
        "github",
    ]);
    assert_eq!(explain.code, 2, "{}", explain.stderr);
}
