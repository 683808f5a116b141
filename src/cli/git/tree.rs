//! A revision's tree as `git ls-tree -r -z --full-tree` lists it, checked and resolved without
//! touching the disk: duplicate, conflicting and unsafe paths are refused, symlinks are
//! followed inside the tree (never created), and the files of each input are chosen as the
//! walker chooses them on disk (`.yaml`, `.yml`, `.json`; hidden names skipped; a link must
//! point inside one of the inputs).

use std::collections::BTreeMap;

/// What one path of the tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    /// A symlink: its blob is the link's target.
    Link,
    /// A submodule (a commit of another repository): none of its files are here.
    Submodule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub oid: String,
}

/// Where a path leads once its links are followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A file: its blob, and its real path.
    File {
        oid: String,
        real: String,
    },
    /// A folder (`""`: the top of the tree).
    Dir(String),
    Missing,
    /// A submodule at (or above) the path, by its real path.
    Submodule(String),
}

/// The most links followed for one path (as the kernel's `ELOOP` bound).
const MAX_HOPS: usize = 40;

/// The paths of a tree, by full name.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

fn unsafe_path(path: &str) -> bool {
    path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
}

impl Tree {
    /// Read `ls-tree -r -z` records (`MODE TYPE OID\tPATH`); `Err` names the first path that
    /// cannot be written safely.
    pub fn parse(listing: &[u8]) -> Result<Tree, String> {
        let mut tree = Tree::default();
        for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let record = std::str::from_utf8(record)
                .map_err(|_| "the tree has a path that is not UTF-8".to_owned())?;
            let (meta, path) = record
                .split_once('\t')
                .ok_or_else(|| format!("git ls-tree answered `{}`", record.escape_debug()))?;
            let fields: Vec<&str> = meta.split(' ').collect();
            let [mode, kind, oid] = fields[..] else {
                return Err(format!("git ls-tree answered `{}`", record.escape_debug()));
            };
            let kind = match (mode, kind) {
                ("120000", "blob") => Kind::Link,
                (_, "blob") => Kind::File,
                (_, "commit") => Kind::Submodule,
                _ => return Err(format!("`{}` is a {kind}", path.escape_debug())),
            };
            if unsafe_path(path) || path.contains(['\\', '\n', '\r']) {
                return Err(format!(
                    "the tree has an unsafe path `{}`",
                    path.escape_debug()
                ));
            }
            let node = Node {
                kind,
                oid: oid.to_owned(),
            };
            if tree.nodes.insert(path.to_owned(), node).is_some() {
                return Err(format!(
                    "the tree has two entries named `{}`",
                    path.escape_debug()
                ));
            }
        }
        // A file (or link, or submodule) that is also a folder of other entries.
        for path in tree.nodes.keys() {
            if tree.is_dir(path) {
                return Err(format!(
                    "the tree has two entries named `{}` (a file and a folder)",
                    path.escape_debug()
                ));
            }
        }
        Ok(tree)
    }

    /// Whether some entry lies below `path` (`""`: the top).
    fn is_dir(&self, path: &str) -> bool {
        if path.is_empty() {
            return true;
        }
        let below = format!("{path}/");
        self.nodes
            .range(below.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&below))
    }

    /// The entries below the folder `dir` (`""`: all), by full name.
    pub fn below<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(p, n)| (p.as_str(), n))
    }

    /// Follow `path` through the tree; `target` reads a link's blob. `Err` for a link that
    /// leaves the repository, is absolute, or loops.
    pub fn resolve(
        &self,
        path: &str,
        target: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Resolved, String> {
        let mut rest: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
        let mut real: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = rest.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    if real.pop().is_none() {
                        return Err(format!("`{path}` leads outside the repository"));
                    }
                    continue;
                }
                _ => {}
            }
            let here = if real.is_empty() {
                c.clone()
            } else {
                format!("{}/{c}", real.join("/"))
            };
            match self.nodes.get(&here) {
                Some(Node {
                    kind: Kind::File,
                    oid,
                }) if rest.is_empty() => {
                    return Ok(Resolved::File {
                        oid: oid.clone(),
                        real: here,
                    });
                }
                Some(Node {
                    kind: Kind::File, ..
                }) => return Ok(Resolved::Missing),
                Some(Node {
                    kind: Kind::Submodule,
                    ..
                }) => return Ok(Resolved::Submodule(here)),
                Some(Node {
                    kind: Kind::Link,
                    oid,
                }) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(format!("`{path}`: the links form a loop"));
                    }
                    let to = target(oid)?;
                    if to.starts_with('/') {
                        return Err(format!(
                            "`{here}` is a link to the absolute path `{}`",
                            to.escape_debug()
                        ));
                    }
                    rest.extend(to.rsplit('/').map(str::to_owned));
                }
                None if self.is_dir(&here) => real.push(c),
                None => return Ok(Resolved::Missing),
            }
        }
        Ok(Resolved::Dir(real.join("/")))
    }
}

/// Whether the walker reads a file of this name from a walked folder
/// (`input::source::is_input_file`, the rule it applies on disk).
fn is_input_name(name: &str) -> bool {
    crate::input::source::is_input_file(std::path::Path::new(name))
}

/// Whether `real` is `root` or inside it.
pub fn inside(real: &str, root: &str) -> bool {
    root.is_empty() || real == root || real.starts_with(&format!("{root}/"))
}

/// What to write: for each place in the scratch folder (a path as the input names it), the
/// blob it holds; and the inputs that do not exist.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub files: BTreeMap<String, String>,
    pub missing: Vec<String>,
}

/// Choose the files of `inputs` (each `(as named, full name in the tree)`) as the walker
/// would read them on disk. `Err` for a submodule or a link that leaves the inputs.
pub fn select(
    tree: &Tree,
    inputs: &[(String, String)],
    target: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Selection, String> {
    let mut resolved = Vec::new();
    for (named, full) in inputs {
        let r = tree.resolve(full, target)?;
        if let Resolved::Submodule(at) = &r {
            return Err(format!(
                "`{named}` is in the submodule `{at}`: its files are not in this repository"
            ));
        }
        resolved.push((named, r));
    }
    let roots: Vec<&str> = resolved
        .iter()
        .filter_map(|(_, r)| match r {
            Resolved::File { real, .. } | Resolved::Dir(real) => Some(real.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Selection::default();
    for (named, r) in &resolved {
        match r {
            Resolved::Missing | Resolved::Submodule(_) => out.missing.push((*named).clone()),
            Resolved::File { oid, .. } => {
                out.files.insert((*named).clone(), oid.clone());
            }
            Resolved::Dir(real) => walk(tree, named, real, &roots, target, &mut out.files)?,
        }
    }
    Ok(out)
}

/// The files of one folder input: plain files by name, links only when they lead inside the
/// inputs (what they lead to is read where it is, as the walker reads a file once).
fn walk(
    tree: &Tree,
    named: &str,
    real: &str,
    roots: &[&str],
    target: &mut dyn FnMut(&str) -> Result<String, String>,
    files: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let skip = if real.is_empty() { 0 } else { real.len() + 1 };
    for (path, node) in tree.below(real) {
        let rel = &path[skip..];
        if rel
            .split('/')
            .any(|c| crate::input::source::is_hidden(c.as_ref()))
        {
            continue;
        }
        let at = if named == "." {
            rel.to_owned()
        } else {
            format!("{named}/{rel}")
        };
        match node.kind {
            Kind::File if is_input_name(rel) => {
                files.insert(at, node.oid.clone());
            }
            Kind::File => {}
            Kind::Submodule => {
                return Err(format!(
                    "`{at}` is a submodule: its files are not in this repository"
                ));
            }
            Kind::Link => match tree.resolve(path, target)? {
                // A link by a name the walker reads to a file it would not read by its own.
                Resolved::File { oid, real: to }
                    if is_input_name(rel)
                        && !is_input_name(&to)
                        && roots.iter().any(|r| inside(&to, r)) =>
                {
                    files.insert(at, oid);
                }
                Resolved::Dir(to) | Resolved::File { real: to, .. }
                    if roots.iter().any(|r| inside(&to, r)) => {}
                Resolved::File { .. } if !is_input_name(rel) => {}
                Resolved::Missing if !is_input_name(rel) => {}
                _ => {
                    return Err(format!(
                        "`{at}` is a link that does not lead to a file or folder of the inputs"
                    ));
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
