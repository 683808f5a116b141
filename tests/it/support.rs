//! Running the egressc binary from the repository root, as a user would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Say on a line the user sees that a test (or part of one) did not run, and why: written to
/// the process's stderr directly, past libtest's capture (which takes `println!` and
/// `eprintln!`).
pub fn skip(area: &str, what: &str, why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{area}: skipped {what}: {why}");
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn egressc(args: &[&str]) -> Run {
    egressc_stdin(args, None)
}

pub fn egressc_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    egressc_in(root(), args, stdin)
}

/// egressc run in another working directory.
pub fn egressc_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("egressc starts");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        // egressc may stop reading early (an input over the size limit): not an error here.
        if let Err(e) = s.write_all(input)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            panic!("write stdin: {e}");
        }
    }
    let out = child.wait_with_output().expect("egressc runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `fixtures/diff/`: the hand-written pairs of `egressc diff` (`tests/it/diff.rs`), not a
/// fixture of its own.
pub fn is_diff_pairs(dir: &Path) -> bool {
    dir.ends_with("fixtures/diff")
}

/// Every fixture folder (but the diff pairs), sorted, as paths relative to the repository root.
pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .expect("fixtures/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() && !is_diff_pairs(p))
        .map(|p| p.strip_prefix(root()).expect("inside root").to_path_buf())
        .collect();
    v.sort();
    v
}

/// The command-line inputs of a fixture: its `args.txt` (files to name explicitly, relative to
/// the fixture, and flags such as `--strict`; `.` is the folder itself), or the folder.
pub fn fixture_inputs(dir: &Path) -> Vec<String> {
    match std::fs::read_to_string(root().join(dir).join("args.txt")) {
        Ok(text) => text
            .split_whitespace()
            .map(|f| {
                if f.starts_with("--") {
                    f.to_owned()
                } else if f == "." {
                    dir.to_string_lossy().into_owned()
                } else {
                    dir.join(f).to_string_lossy().into_owned()
                }
            })
            .collect(),
        Err(_) => vec![dir.to_string_lossy().into_owned()],
    }
}

/// insta's settings for the snapshots of one test group, under `snapshots/<group>/`.
pub fn insta_settings(group: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("snapshots").join(group));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// A mesh of 40 identities in namespace `ns`, each with an https policy of 40 hosts (about
/// 2 KiB of config each), passthrough off, and optionally a global gateway: large enough to
/// split ConfigMaps at small limits.
pub fn many_identities(gateway: bool) -> String {
    let mut yaml = String::from(
        "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec: {traffic: {enableEgress: false}}\n",
    );
    if gateway {
        yaml.push_str("---\nkind: EgressGateway\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {name: gw, namespace: fsm}\nspec:\n  global: [{service: egress, namespace: fsm}]\n");
    }
    for i in 0..40 {
        let hosts: Vec<String> = (0..40).map(|h| format!("h{h}.s{i}.example.com")).collect();
        yaml.push_str(&format!(
            "---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e{i}, namespace: ns}}\nspec:\n  sources: [{{kind: ServiceAccount, name: sa{i}, namespace: ns}}]\n  hosts: [{}]\n  ports: [{{number: 443, protocol: https}}]\n",
            hosts.join(", ")
        ));
    }
    yaml
}

/// Copy a folder (and the folders in it) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, target).unwrap();
        }
    }
}
