//! Writing the output tree: atomically (a temporary folder beside OUT, then a rename), never
//! outside OUT, never over a folder egressc did not write; and comparing with what is on disk
//! for `build --check`.

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
        }
    }
}

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

/// Write `out` to `dir`, replacing the previous tree in one step. On failure the previous tree
/// is left as it was.
pub fn write(out: &Output, dir: &Path) -> Result<(), WriteError> {
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
    let tmp = parent.join(format!(".{name}.egressc-tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.egressc-old-{}", std::process::id()));
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
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
        for (r, bytes) in &rel {
            let path = tmp.join(r);
            // A file that is unchanged since the previous build is linked, not rewritten:
            // creating and removing thousands of files dominates a rebuild otherwise.
            let previous = dir.join(r);
            let same = std::fs::read(&previous).is_ok_and(|old| old == **bytes);
            if !(same && std::fs::hard_link(&previous, &path).is_ok()) {
                std::fs::write(&path, bytes).map_err(io(&path))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&old);
        if let Err(e) = std::fs::rename(dir, &old) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(WriteError::Io(dir.to_path_buf(), e));
        }
        if let Err(e) = std::fs::rename(&tmp, dir) {
            let _ = std::fs::rename(&old, dir);
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(WriteError::Io(dir.to_path_buf(), e));
        }
        let _ = std::fs::remove_dir_all(&old);
    } else if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(WriteError::Io(dir.to_path_buf(), e));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Changed,
    Missing,
    Extra,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Missing => "missing",
            Change::Extra => "extra",
        }
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if e.file_type().is_file()
            && let Ok(rel) = e.path().strip_prefix(dir)
        {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    out
}

/// The files where `dir` differs from `out`, sorted by path.
pub fn diff(out: &Output, dir: &Path) -> Vec<(String, Change)> {
    let mut changes = Vec::new();
    for (path, bytes) in &out.files {
        match std::fs::read(dir.join(path)) {
            Ok(disk) if disk == *bytes => {}
            Ok(_) => changes.push((path.clone(), Change::Changed)),
            Err(_) => changes.push((path.clone(), Change::Missing)),
        }
    }
    for path in files_under(dir) {
        if !out.files.contains_key(&path) {
            changes.push((path, Change::Extra));
        }
    }
    changes.sort();
    changes
}
