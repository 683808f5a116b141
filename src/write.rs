//! Stage 6: writing the output tree: into a temporary folder beside OUT, then swapped in with
//! one atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two renames), never
//! outside OUT, never over a folder egressc did not write; and comparing with what is on disk
//! for `build --check`, exactly (links, special files and extra folders are differences).

use crate::emit::manifest::MANIFEST;
use crate::emit::output::Output;
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

/// Remove the scratch folders that earlier runs left beside OUT (killed mid-write), unless
/// their process still runs.
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
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if pid != std::process::id() && !alive {
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
    let dir = &target_of(dir);
    if !is_replaceable(dir) {
        return Err(WriteError::NotOurs(dir.to_path_buf()));
    }
    let rel: Vec<(PathBuf, &Vec<u8>)> = out
        .files
        .iter()
        .map(|(p, b)| safe_relative(p).map(|r| (r, b)))
        .collect::<Result<_, _>>()?;
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
    let result = (|| {
        let dirs: std::collections::BTreeSet<PathBuf> = rel
            .iter()
            .filter_map(|(r, _)| r.parent().map(|p| tmp.join(p)))
            .chain(std::iter::once(tmp.clone()))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        // Creating files dominates a fresh build: the files are written by a few threads.
        let write_one = |(r, bytes): &(PathBuf, &Vec<u8>)| -> Result<(), WriteError> {
            let path = tmp.join(r);
            // A file that is unchanged since the previous build is linked, not rewritten:
            // creating and removing thousands of files dominates a rebuild otherwise.
            let previous = dir.join(r);
            let same = std::fs::symlink_metadata(&previous).is_ok_and(|m| m.is_file())
                && std::fs::read(&previous).is_ok_and(|old| old == **bytes);
            if !(same && std::fs::hard_link(&previous, &path).is_ok()) {
                std::fs::write(&path, bytes).map_err(io(&path))?;
            }
            Ok(())
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let chunk = rel.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = rel
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().try_for_each(write_one)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&old);
    match swap_in(&tmp, dir, &old) {
        Ok(true) => std::fs::remove_dir_all(&old).map_err(|e| WriteError::Leftover(old, e)),
        Ok(false) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
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

/// The entries where `dir` differs from `out`, sorted by path: changed, missing and extra
/// files, extra folders, and links or special files anywhere.
pub fn diff(out: &Output, dir: &Path) -> Vec<(String, Change)> {
    let dir = &target_of(dir);
    let mut changes = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for path in out.files.keys() {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            folders.insert(parent.to_owned());
            p = parent;
        }
    }
    for (path, bytes) in &out.files {
        let full = dir.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => match std::fs::read(&full) {
                Ok(disk) if disk == *bytes => {}
                _ => changes.push((path.clone(), Change::Changed)),
            },
            Ok(_) => changes.push((path.clone(), Change::NotAFile)),
            Err(_) => changes.push((path.clone(), Change::Missing)),
        }
    }
    for (path, kind) in entries_under(dir) {
        if out.files.contains_key(&path) {
            continue;
        }
        let change = if kind.is_dir() {
            if folders.contains(&path) {
                continue;
            }
            Change::Extra
        } else if kind.is_file() {
            Change::Extra
        } else {
            Change::NotAFile
        };
        changes.push((path, change));
    }
    changes.sort();
    changes
}
