//! Stage 6: writing the output tree, file by file as it is emitted (`Staging`, a sink of
//! stage 5): into a temporary folder beside OUT, then swapped in with
//! one atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two renames), never
//! outside OUT, never over a folder egressc did not write; and comparing with what is on disk
//! for `build --check`, exactly (links, special files and extra folders are differences).

use crate::emit::manifest::MANIFEST;
use crate::emit::output::{Output, Sink};
use std::fmt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug)]
pub enum WriteError {
    /// OUT exists, is not empty, and has no egressc manifest.
    NotOurs(PathBuf),
    /// A generated path would leave OUT (never expected: names are validated first).
    UnsafePath(String),
    Io(PathBuf, std::io::Error),
    /// OUT holds the new tree, but the previous one could not be removed from beside it.
    Leftover(PathBuf, std::io::Error),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotOurs(p) => write!(
                f,
                "`{}` exists, is not empty and was not written by egressc (no egressc manifest.json); refusing to replace it",
                p.display()
            ),
            WriteError::UnsafePath(p) => write!(
                f,
                "refusing to write `{p}`: it is not a plain relative path"
            ),
            WriteError::Io(p, e) => write!(f, "cannot write `{}`: {e}", p.display()),
            WriteError::Leftover(p, e) => write!(
                f,
                "the new output is in place, but the previous one could not be removed: `{}` is left over ({e}); remove it by hand",
                p.display()
            ),
        }
    }
}

impl std::error::Error for WriteError {}

/// A relative path made only of plain names: it cannot leave the folder it is joined to.
fn safe_relative(path: &str) -> Result<PathBuf, WriteError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.contains('\\')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(WriteError::UnsafePath(path.to_owned()))
    }
}

/// Whether `dir` may be replaced: missing, empty, or holding an egressc manifest.
fn is_replaceable(dir: &Path) -> bool {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return !dir.exists();
    };
    if entries.next().is_none() {
        return true;
    }
    std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("egressc").is_some())
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io(p.to_path_buf(), e)
}

/// The folder written to: OUT itself, or the folder an OUT symlink points to (the link is
/// written through, never replaced).
fn target_of(dir: &Path) -> PathBuf {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(dir).unwrap_or(dir.into()),
        _ => dir.to_path_buf(),
    }
}

/// `.NAME.egressc-tmp-PID` and `.NAME.egressc-old-PID` beside OUT.
fn scratch_name(name: &str, kind: &str, pid: u32) -> String {
    format!(".{name}.egressc-{kind}-{pid}")
}

/// Whether process `pid` runs: known on Linux (`/proc`); elsewhere `None`, and a scratch
/// folder whose owner cannot be known to be gone is kept.
fn process_runs(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") {
        Some(Path::new(&format!("/proc/{pid}")).exists())
    } else {
        None
    }
}

/// Remove the scratch folders that earlier runs left beside OUT (killed mid-write), unless
/// their process still runs (or may).
fn remove_stale_scratch(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.egressc-");
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .strip_prefix("tmp-")
            .or_else(|| rest.strip_prefix("old-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && process_runs(pid) == Some(false) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Swap two paths atomically (both must exist).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Put the finished tree `tmp` at `dir`; the previous tree (if any) ends up at `old`.
fn swap_in(tmp: &Path, dir: &Path, old: &Path) -> Result<bool, WriteError> {
    if !dir.exists() {
        std::fs::rename(tmp, dir).map_err(io(dir))?;
        return Ok(false);
    }
    if exchange(tmp, dir).is_ok() {
        // `tmp` now holds the previous tree.
        std::fs::rename(tmp, old).map_err(io(old))?;
        return Ok(true);
    }
    // No atomic exchange here (another OS, or a file system without it): two renames.
    std::fs::rename(dir, old).map_err(io(dir))?;
    if let Err(e) = std::fs::rename(tmp, dir) {
        let _ = std::fs::rename(old, dir);
        return Err(WriteError::Io(dir.to_path_buf(), e));
    }
    Ok(true)
}

/// Write `out` to `dir`, replacing the previous tree in one step. On failure the previous tree
/// is left as it was.
pub fn write(out: &Output, dir: &Path) -> Result<(), WriteError> {
    let mut staging = Staging::begin(dir)?;
    for (path, bytes) in &out.files {
        staging.put(path.clone(), bytes.clone());
    }
    staging.commit()
}

/// A build being written: files go into a temporary folder beside OUT as they are emitted
/// (by a writer thread, so that writing overlaps compiling), and [`Staging::commit`] swaps the
/// finished tree in. Dropped without a commit, the temporary folder is removed and OUT is
/// left as it was.
pub struct Staging {
    dir: PathBuf,
    tmp: PathBuf,
    old: PathBuf,
    queue: Option<std::sync::mpsc::SyncSender<(String, Vec<u8>)>>,
    writer: Option<std::thread::JoinHandle<Result<(), WriteError>>>,
    committed: bool,
}

/// Files emitted but not yet written: a bound on what the queue holds.
const QUEUE: usize = 64;

impl Staging {
    /// Start replacing `dir` (refused when it was not written by egressc).
    pub fn begin(dir: &Path) -> Result<Staging, WriteError> {
        let dir = target_of(dir);
        if !is_replaceable(&dir) {
            return Err(WriteError::NotOurs(dir));
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        remove_stale_scratch(&parent, &name);
        let tmp = parent.join(scratch_name(&name, "tmp", std::process::id()));
        let old = parent.join(scratch_name(&name, "old", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let (queue, files) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(QUEUE);
        let (to, previous) = (tmp.clone(), dir.clone());
        let writer = std::thread::spawn(move || {
            let mut made = std::collections::HashSet::new();
            let mut result = Ok(());
            for (path, bytes) in files {
                // After an error the rest is received and dropped; `commit` reports it.
                if result.is_ok() {
                    result = write_file(&to, &previous, &path, &bytes, &mut made);
                }
            }
            result
        });
        Ok(Staging {
            dir,
            tmp,
            old,
            queue: Some(queue),
            writer: Some(writer),
            committed: false,
        })
    }

    /// Wait for the writer: every file is written, or the first error.
    fn flush(&mut self) -> Result<(), WriteError> {
        self.queue = None;
        match self.writer.take() {
            Some(w) => w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Ok(()),
        }
    }

    /// Put the finished tree at OUT, in one step.
    pub fn commit(mut self) -> Result<(), WriteError> {
        self.flush()?;
        let _ = std::fs::remove_dir_all(&self.old);
        let swapped = swap_in(&self.tmp, &self.dir, &self.old)?;
        self.committed = true;
        if swapped {
            std::fs::remove_dir_all(&self.old)
                .map_err(|e| WriteError::Leftover(self.old.clone(), e))?;
        }
        Ok(())
    }
}

impl Sink for Staging {
    fn put(&mut self, path: String, bytes: Vec<u8>) {
        if let Some(q) = &self.queue {
            // A writer that stopped has an error for `commit` to report.
            let _ = q.send((path, bytes));
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.flush();
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Write one file of the tree under `tmp`. A file that is unchanged since the previous build
/// (in `previous`) is linked, not rewritten: creating and removing thousands of files
/// dominates a rebuild otherwise.
fn write_file(
    tmp: &Path,
    previous: &Path,
    path: &str,
    bytes: &[u8],
    made: &mut std::collections::HashSet<PathBuf>,
) -> Result<(), WriteError> {
    let r = safe_relative(path)?;
    let full = tmp.join(&r);
    if let Some(folder) = full.parent()
        && !made.contains(folder)
    {
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        made.insert(folder.to_path_buf());
    }
    let old = previous.join(&r);
    let same = std::fs::symlink_metadata(&old)
        .is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
        && std::fs::read(&old).is_ok_and(|b| b == bytes);
    if !(same && std::fs::hard_link(&old, &full).is_ok()) {
        std::fs::write(&full, bytes).map_err(io(&full))?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Changed,
    Missing,
    Extra,
    /// A link, a special file, or a folder where a file belongs.
    NotAFile,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Missing => "missing",
            Change::Extra => "extra",
            Change::NotAFile => "not-file",
        }
    }
}

/// Every entry under `dir` (links not followed), `/`-separated, with whether it is a regular
/// file, a folder, or something else.
fn entries_under(dir: &Path) -> Vec<(String, std::fs::FileType)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if let Ok(rel) = e.path().strip_prefix(dir) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((parts.join("/"), e.file_type()));
        }
    }
    out
}

/// `build --check`: each file compared with OUT as it is emitted.
pub struct Compare {
    dir: PathBuf,
    changes: Vec<(String, Change)>,
    files: std::collections::HashSet<String>,
    folders: std::collections::HashSet<String>,
}

impl Compare {
    pub fn new(dir: &Path) -> Compare {
        Compare {
            dir: target_of(dir),
            changes: Vec::new(),
            files: Default::default(),
            folders: Default::default(),
        }
    }

    /// Compare one file with OUT.
    pub fn file(&mut self, path: &str, bytes: &[u8]) {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !self.folders.insert(parent.to_owned()) {
                break;
            }
            p = parent;
        }
        self.files.insert(path.to_owned());
        let full = self.dir.join(path);
        let change = match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => match std::fs::read(&full) {
                Ok(disk) if disk == bytes => return,
                _ => Change::Changed,
            },
            Ok(_) => Change::NotAFile,
            Err(_) => Change::Missing,
        };
        self.changes.push((path.to_owned(), change));
    }

    /// The differences, sorted by path (what is on disk and was not emitted included).
    pub fn finish(mut self) -> Vec<(String, Change)> {
        for (path, kind) in entries_under(&self.dir) {
            if self.files.contains(&path) {
                continue;
            }
            let change = if kind.is_dir() {
                if self.folders.contains(&path) {
                    continue;
                }
                Change::Extra
            } else if kind.is_file() {
                Change::Extra
            } else {
                Change::NotAFile
            };
            self.changes.push((path, change));
        }
        self.changes.sort();
        self.changes
    }
}

impl Sink for Compare {
    fn put(&mut self, path: String, bytes: Vec<u8>) {
        self.file(&path, &bytes);
    }
}
