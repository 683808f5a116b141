//! The base side of `diff --base-git REV`: the same inputs as the head, as they were at REV
//! of the Git repository of the working directory, written by Git (`ls-tree`, `cat-file`; no
//! network) into a temporary folder that is removed afterwards.

use crate::cli::exit::UsageError;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path};
use std::process::{Command, Stdio};

/// The inputs at REV, in a temporary folder (removed when this is dropped).
pub struct BaseTree {
    /// Private to this user (0700), removed when dropped.
    dir: tempfile::TempDir,
    /// The inputs as paths inside the folder (those that exist at REV).
    pub inputs: Vec<String>,
    /// The inputs that do not exist at REV (the base has nothing of them).
    pub missing: Vec<String>,
    /// Shown names: the folder's prefix, shown as `REV:`.
    pub relabel: (String, String),
}

fn git(args: &[&str]) -> Result<Vec<u8>, UsageError> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| UsageError(format!("--base-git: cannot run git: {e}")))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(UsageError(format!("--base-git: git {}: {why}", args[0])));
    }
    Ok(out.stdout)
}

/// An input as a plain relative path (`.` for the working directory itself); `None` when it
/// is stdin, absolute or leaves the working directory.
fn relative(input: &str) -> Option<String> {
    if input == "-" {
        return None;
    }
    let mut parts = Vec::new();
    for c in Path::new(input).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            _ => return None,
        }
    }
    Some(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

/// One entry of `git ls-tree -r -z`: mode, object id, path (relative to the working directory).
struct Entry {
    mode: String,
    oid: String,
    path: String,
}

fn ls_tree(commit: &str, paths: &[String]) -> Result<Vec<Entry>, UsageError> {
    let mut args = vec!["ls-tree", "-r", "-z", commit, "--"];
    args.extend(paths.iter().map(String::as_str));
    let out = git(&args)?;
    let mut entries = Vec::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (Some(mode), Some(kind), Some(oid)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // Submodules (commits) hold no file of this repository.
        if kind == "blob" {
            entries.push(Entry {
                mode: mode.to_owned(),
                oid: oid.to_owned(),
                path: path.to_owned(),
            });
        }
    }
    Ok(entries)
}

/// The contents of blobs, in order, from one `git cat-file --batch`.
fn blobs(oids: Vec<String>) -> Result<Vec<Vec<u8>>, UsageError> {
    let n = oids.len();
    let mut child = Command::new("git")
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| UsageError(format!("--base-git: cannot run git: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    // Written from a thread, so that a large answer cannot block the question.
    let writer = std::thread::spawn(move || {
        for oid in oids {
            if writeln!(stdin, "{oid}").is_err() {
                break;
            }
        }
    });
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut contents = Vec::with_capacity(n);
    let broken = || UsageError("--base-git: git cat-file answered out of order".to_owned());
    for _ in 0..n {
        let mut header = String::new();
        out.read_line(&mut header).map_err(|_| broken())?;
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(broken)?;
        let mut data = vec![0; size + 1];
        out.read_exact(&mut data).map_err(|_| broken())?;
        data.pop();
        contents.push(data);
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(contents)
}

/// Write the inputs as they were at `rev` into a temporary folder.
pub fn checkout(rev: &str, inputs: &[String]) -> Result<BaseTree, UsageError> {
    if rev.starts_with('-') {
        return Err(UsageError(format!("--base-git `{rev}` is not a revision")));
    }
    let mut paths = Vec::new();
    for input in inputs {
        paths.push(relative(input).ok_or_else(|| {
            UsageError(format!(
                "--base-git reads the --head inputs at {rev}: `{input}` must be a path inside the working directory (not `-`, absolute, or with `..`)"
            ))
        })?);
    }
    let spec = format!("{rev}^{{commit}}");
    let commit = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ])
    .map_err(|_| {
        UsageError(format!(
            "--base-git `{rev}` is not a commit of the Git repository here"
        ))
    })?;
    let commit = String::from_utf8_lossy(&commit).trim().to_owned();
    let entries = ls_tree(&commit, &paths)?;
    let dir = tempfile::Builder::new()
        .prefix("egressc-diff-")
        .tempdir()
        .map_err(|e| UsageError(format!("cannot create a temporary folder: {e}")))?;
    let mut tree = BaseTree {
        relabel: (format!("{}/", dir.path().display()), format!("{rev}:")),
        dir,
        inputs: Vec::new(),
        missing: Vec::new(),
    };
    let contents = blobs(entries.iter().map(|e| e.oid.clone()).collect())?;
    for (e, data) in entries.iter().zip(contents) {
        // Git never stores `..` or absolute paths; a path that would leave the folder is skipped.
        if relative(&e.path).as_deref() != Some(e.path.as_str()) {
            continue;
        }
        let path = tree.dir.path().join(&e.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| write_entry(&path, &e.mode, &data));
        written.map_err(|err| UsageError(format!("cannot write `{}`: {err}", path.display())))?;
    }
    for p in paths {
        let exists = p == "."
            || entries
                .iter()
                .any(|e| e.path == p || e.path.starts_with(&format!("{p}/")));
        if exists {
            let inside = if p == "." {
                tree.dir.path().to_path_buf()
            } else {
                tree.dir.path().join(&p)
            };
            tree.inputs.push(inside.to_string_lossy().into_owned());
        } else {
            tree.missing.push(p);
        }
    }
    Ok(tree)
}

/// A blob as a file, or as a symlink (mode 120000: the blob is the link's target).
fn write_entry(path: &Path, mode: &str, data: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    if mode == "120000" {
        use std::os::unix::ffi::OsStrExt;
        return std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(data), path);
    }
    let _ = mode;
    std::fs::write(path, data)
}
