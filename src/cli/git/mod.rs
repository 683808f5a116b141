//! The base side of `diff --base-git REV`: the same inputs as the head, as they were at REV
//! of the Git repository of the working directory, read from Git (`ls-tree`, `cat-file`; no
//! network) into a private temporary folder that is removed afterwards, on Ctrl-C too.
//!
//! Nothing of the revision becomes a link on disk: its symlinks are followed inside its own
//! tree (`tree`), its paths are checked before anything is written, every file is created
//! new without following links, and blobs are streamed one at a time, each cut at the input
//! size limit (the walker then reports it as too large, as it would on disk).

mod tree;

use crate::cli::exit::UsageError;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use tree::{Selection, Tree};

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

/// The scratch folders that exist now, removed by the Ctrl-C (SIGINT, SIGTERM) handler.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

impl Drop for BaseTree {
    fn drop(&mut self) {
        if let Ok(mut dirs) = SCRATCH.lock() {
            dirs.retain(|d| d != self.dir.path());
        }
    }
}

/// Remove the scratch folders when the process is interrupted (installed once).
fn remove_on_interrupt() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if let Ok(dirs) = SCRATCH.lock() {
                for d in dirs.iter() {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
            std::process::exit(130);
        });
    });
}

fn git(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(format!("git {}: {why}", args[0]));
    }
    Ok(out.stdout)
}

fn usage(why: impl std::fmt::Display) -> UsageError {
    UsageError(format!("--base-git: {why}"))
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

/// The commit `rev` names, or why not: not a Git repository, no commits yet, not a commit.
fn commit_of(rev: &str) -> Result<String, UsageError> {
    if rev.starts_with('-') {
        return Err(usage(format!("`{rev}` is not a revision")));
    }
    if git(&["rev-parse", "--git-dir"]).is_err() {
        return Err(usage(
            "the working directory is not in a Git repository (run diff inside the repository, or use --base)",
        ));
    }
    let spec = format!("{rev}^{{commit}}");
    let verify = |spec: &str| git(&["rev-parse", "--verify", "--quiet", "--end-of-options", spec]);
    if let Ok(commit) = verify(&spec) {
        return Ok(String::from_utf8_lossy(&commit).trim().to_owned());
    }
    if let Ok(object) = verify(rev) {
        let oid = String::from_utf8_lossy(&object).trim().to_owned();
        let kind = git(&["cat-file", "-t", &oid]).unwrap_or_default();
        let kind = String::from_utf8_lossy(&kind).trim().to_owned();
        return Err(usage(format!("`{rev}` is a {kind}, not a commit")));
    }
    let any = git(&["rev-list", "-n", "1", "--all"]).unwrap_or_default();
    if any.iter().all(u8::is_ascii_whitespace) {
        return Err(usage(format!(
            "the Git repository here has no commits yet, so there is no `{rev}` to compare with"
        )));
    }
    Err(usage(format!(
        "`{rev}` is not a commit of the Git repository here"
    )))
}

/// One `git cat-file --batch`, asked one object at a time.
struct CatFile {
    child: Child,
    ask: ChildStdin,
    answer: BufReader<ChildStdout>,
}

impl CatFile {
    fn start() -> Result<CatFile, String> {
        let mut child = Command::new("git")
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let ask = child.stdin.take().ok_or("git cat-file has no input")?;
        let answer = BufReader::new(child.stdout.take().ok_or("git cat-file has no output")?);
        Ok(CatFile { child, ask, answer })
    }

    /// Copy the blob `oid` into `to`, at most `limit` bytes of it (the rest is read and
    /// dropped); its size.
    fn copy(&mut self, oid: &str, to: &mut dyn Write, limit: u64) -> Result<u64, String> {
        let broken = |what: &str| format!("git cat-file: {what} of {oid}");
        writeln!(self.ask, "{oid}")
            .and_then(|_| self.ask.flush())
            .map_err(|_| broken("no answer"))?;
        let mut header = String::new();
        self.answer
            .read_line(&mut header)
            .map_err(|_| broken("no header"))?;
        let size: u64 = match header.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "blob", size] => size.parse().map_err(|_| broken("a bad size"))?,
            _ => return Err(broken(&format!("`{}`", header.trim()))),
        };
        let mut blob = (&mut self.answer).take(size);
        std::io::copy(&mut (&mut blob).take(limit), to).map_err(|e| broken(&e.to_string()))?;
        std::io::copy(&mut blob, &mut std::io::sink()).map_err(|_| broken("a short blob"))?;
        let mut newline = [0u8; 1];
        self.answer
            .read_exact(&mut newline)
            .map_err(|_| broken("a short blob"))?;
        Ok(size)
    }

    /// A link's target (at most 4 KiB, as a path).
    fn link(&mut self, oid: &str) -> Result<String, String> {
        let mut to = Vec::new();
        let size = self.copy(oid, &mut to, 4096)?;
        if size > 4096 {
            return Err(format!("a link's target is {size} bytes long"));
        }
        String::from_utf8(to).map_err(|_| "a link's target is not UTF-8".to_owned())
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create a folder of the scratch folder and those on the way, private to this user.
fn private_dirs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Create `path` (inside the scratch folder: every folder on the way is one this run made)
/// as a new file, never through a link, and stream the blob into it.
fn write_blob(cat: &mut CatFile, path: &Path, oid: &str, limit: u64) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    if let Some(parent) = path.parent() {
        private_dirs(parent).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(fail)?;
    // One byte over the limit is enough for the walker to call the file too large.
    cat.copy(oid, &mut file, limit.saturating_add(1))?;
    Ok(())
}

/// Write the inputs as they were at `rev` into a private temporary folder; no file is cut
/// below `max_bytes` + 1.
pub fn checkout(rev: &str, inputs: &[String], max_bytes: u64) -> Result<BaseTree, UsageError> {
    let mut paths = Vec::new();
    for input in inputs {
        paths.push(relative(input).ok_or_else(|| {
            usage(format!(
                "it reads the --head inputs at {rev}: `{input}` must be a path inside the working directory (not `-`, absolute, or with `..`)"
            ))
        })?);
    }
    let commit = commit_of(rev)?;
    let prefix = git(&["rev-parse", "--show-prefix"]).map_err(usage)?;
    let prefix = String::from_utf8_lossy(&prefix)
        .trim_end_matches('\n')
        .to_owned();
    let listing = git(&["ls-tree", "-r", "-z", "--full-tree", &commit]).map_err(usage)?;
    let tree = Tree::parse(&listing).map_err(|e| usage(format!("{rev}: {e}")))?;
    let full = |p: &str| {
        let joined = if p == "." {
            prefix.clone()
        } else {
            format!("{prefix}{p}")
        };
        joined.trim_end_matches('/').to_owned()
    };
    let named: Vec<(String, String)> = paths.iter().map(|p| (p.clone(), full(p))).collect();
    let mut cat = CatFile::start().map_err(usage)?;
    let Selection { files, missing } = tree::select(&tree, &named, &mut |oid| cat.link(oid))
        .map_err(|e| usage(format!("{rev}: {e}")))?;
    remove_on_interrupt();
    let dir = tempfile::Builder::new()
        .prefix("egressc-diff-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| UsageError(format!("cannot create a temporary folder: {e}")))?;
    if let Ok(mut dirs) = SCRATCH.lock() {
        dirs.push(dir.path().to_owned());
    }
    let base = BaseTree {
        relabel: (format!("{}/", dir.path().display()), format!("{rev}:")),
        inputs: paths
            .iter()
            .filter(|p| !missing.contains(p))
            .map(|p| match p.as_str() {
                "." => dir.path().to_string_lossy().into_owned(),
                p => dir.path().join(p).to_string_lossy().into_owned(),
            })
            .collect(),
        missing,
        dir,
    };
    for (at, oid) in &files {
        write_blob(&mut cat, &base.dir.path().join(at), oid, max_bytes).map_err(usage)?;
    }
    // A folder input with no file to read is still a folder.
    for input in &base.inputs {
        if !Path::new(input).exists() {
            private_dirs(Path::new(input))
                .map_err(|e| usage(format!("cannot create `{input}`: {e}")))?;
        }
    }
    Ok(base)
}
