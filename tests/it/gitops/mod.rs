//! The GitOps pieces, each run the way its host runs it: the Argo CD plugin's `discover` and
//! `generate` (`deploy/argocd/plugin.yaml`) on app paths, the plugin's ConfigMap and the
//! repo-server patch (`deploy/argocd/`), the composite GitHub Action's scripts (`action.yml`,
//! with fake `cargo` and `gh`), and the pre-commit hook (`.pre-commit-hooks.yaml`). egressc is
//! always the real binary. A test that needs a tool that is not installed (kubectl or
//! kustomize, kubernetes-validate, git, bash) says what it skipped.

use crate::diff::has;
use crate::diff_git::git;
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const AREA: &str = "gitops";

/// The one YAML document of a file of the repository.
fn yaml_file(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut docs = egressc::yaml_as_json(&text).unwrap_or_else(|| panic!("{rel}: not YAML"));
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Whether `name` runs (with `probe` as its arguments); says what is skipped when not.
fn tool(name: &str, probe: &[&str], what: &str) -> bool {
    let ok = Command::new(name)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(AREA, what, &format!("`{name}` is not installed"));
    }
    ok
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("egressc-gitops-")
        .tempdir()
        .unwrap()
}

/// The folder of the egressc binary under test.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_egressc"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A PATH of `dirs`, then the test's own.
fn search_path(dirs: &[&Path]) -> std::ffi::OsString {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    all.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(all).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A shell script, executable.
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run kubernetes-validate on `yaml` (written into `dir`), when installed.
fn validate(dir: &Path, name: &str, yaml: &str) {
    if !tool(
        "kubernetes-validate",
        &["--help"],
        &format!("validating {name}"),
    ) {
        return;
    }
    let file = dir.join(format!("{name}.yaml"));
    write(&file, yaml);
    let v = Command::new("kubernetes-validate")
        .args(["-k", "1.33.0", "--strict", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{name}: {}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
}

mod action;
mod argocd;

// ---------------------------------------------------------------------------------------------
// The pre-commit hook.

#[test]
fn pre_commit_hook_checks_the_named_folder() {
    let hooks = yaml_file(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().expect("a list of hooks");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["id"], "egressc-check");
    assert_eq!(hook["entry"], "egressc check");
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["pass_filenames"], false);
    let files = regex::Regex::new(hook["files"].as_str().unwrap()).unwrap();
    for (name, runs) in [
        ("mesh/egress.yaml", true),
        ("a.yml", true),
        ("Cargo.toml", false),
        ("x.yaml.bak", false),
    ] {
        assert_eq!(files.is_match(name), runs, "{name}");
    }
    // pre-commit installs the hook with `cargo install --path .`: the entry is this crate's bin.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    has(&manifest, "[[bin]]\nname = \"egressc\"");
    // What pre-commit runs: the entry, then the user's args.
    let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(entry[0], "egressc");
    let mut args = entry[1..].to_vec();
    args.push("example/mesh");
    let run = egressc(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    args.pop();
    args.push("fixtures/bad-e0304-host");
    let run = egressc(&args);
    assert_ne!(run.code, 0, "{}", run.stderr);
    has(&run.stderr, "E0304");
}
