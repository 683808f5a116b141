//! Where every node of a document is, kept once its YAML tree is dropped.

#[cfg(test)]
use crate::input::yaml::parse_documents;
use crate::input::yaml::{Key, Node, Seg, Value};
use crate::span::Loc;

/// A byte range packed in 8 bytes (inputs are limited far below 4 GiB). Lines and columns
/// are not kept: they follow from the text (`Sources::resolve`), and each node would take
/// twice the memory with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: u32,
    end: u32,
}

impl Range {
    /// "No key": the entry of a sequence item or of the root.
    const NONE: Range = Range {
        start: u32::MAX,
        end: u32::MAX,
    };
    fn of(l: &Loc) -> Range {
        let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX - 1);
        Range {
            start: cap(l.start),
            end: cap(l.end),
        }
    }
    /// A location with its byte range only (line 0: not resolved yet).
    fn loc(self) -> Loc {
        Loc {
            line: 0,
            col: 0,
            start: self.start as usize,
            end: self.end as usize,
        }
    }
}

/// FNV-1a (64 bits) over the segments of a path, extended one segment at a time.
#[derive(Clone, Copy)]
struct PathHash(u64);

impl PathHash {
    const ROOT: PathHash = PathHash(0xcbf2_9ce4_8422_2325);
    fn bytes(self, bytes: &[u8]) -> PathHash {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        PathHash(h)
    }
    fn key(self, name: &str) -> PathHash {
        self.bytes(&[1]).bytes(name.as_bytes()).bytes(&[0])
    }
    fn idx(self, i: usize) -> PathHash {
        self.bytes(&[2]).bytes(&(i as u64).to_le_bytes())
    }
}

/// One step of a path, owned: kept only for the nodes whose hashes collide.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Idx(usize),
}

/// (path hash, value, key)
type Entry = (u64, Range, Range);

/// Where every node of a document is, without the document: what the semantic checks need
/// once a document is typed, at about a third of the tree's memory and with no strings.
/// Nodes are found by a 64-bit hash of their path; the rare nodes whose hashes collide are
/// kept apart with their whole path, so that distinct paths are never merged.
#[derive(Clone, Debug, Default)]
pub struct Places {
    /// Sorted by hash; a hash that several paths share is here once, with `Range::NONE` as
    /// its value (look in `collided`).
    entries: Vec<Entry>,
    /// The nodes whose path hashes collide, with their paths.
    collided: Vec<(Vec<Step>, Range, Range)>,
    /// The bits of the hash that count (all of them but in tests).
    mask: u64,
}

impl Places {
    /// The places of every node of `root`.
    pub fn of(root: &Node) -> Places {
        Places::with_mask(root, u64::MAX)
    }

    fn with_mask(root: &Node, mask: u64) -> Places {
        /// Every node: its hash, value and key, and (when `paths` is on) its path.
        fn walk(
            n: &Node,
            h: PathHash,
            key: Option<&Key>,
            path: &mut Vec<Step>,
            visit: &mut dyn FnMut(Entry, &[Step]),
        ) {
            let key = key.map_or(Range::NONE, |k| Range::of(&k.loc));
            visit((h.0, Range::of(&n.loc), key), path);
            match &n.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Step::Idx(i));
                        walk(item, h.idx(i), None, path, visit);
                        path.pop();
                    }
                }
                Value::Map(entries) => {
                    for (k, v) in entries {
                        path.push(Step::Key(k.name.clone()));
                        walk(v, h.key(&k.name), Some(k), path, visit);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        let mut entries: Vec<Entry> = Vec::new();
        walk(
            root,
            PathHash::ROOT,
            None,
            &mut Vec::new(),
            &mut |(h, v, k), _| {
                entries.push((h & mask, v, k));
            },
        );
        entries.sort_by_key(|e| e.0);
        // Every node has a distinct path (a duplicated key is a parse error): equal hashes
        // are collisions. Their nodes are walked again, with their paths.
        let shared: Vec<u64> = entries
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].0)
            .collect();
        let mut collided = Vec::new();
        if !shared.is_empty() {
            walk(
                root,
                PathHash::ROOT,
                None,
                &mut Vec::new(),
                &mut |(h, v, k), path| {
                    if shared.binary_search(&(h & mask)).is_ok() {
                        collided.push((path.to_vec(), v, k));
                    }
                },
            );
            entries.dedup_by_key(|e| e.0);
            for e in &mut entries {
                if shared.binary_search(&e.0).is_ok() {
                    e.1 = Range::NONE;
                }
            }
        }
        entries.shrink_to_fit();
        Places {
            entries,
            collided,
            mask,
        }
    }

    /// The node at the path `steps` (hashed to `h`).
    fn get(&self, h: PathHash, steps: &[Step]) -> Option<(Range, Range)> {
        let h = h.0 & self.mask;
        let i = self.entries.binary_search_by_key(&h, |e| e.0).ok()?;
        let (_, v, k) = self.entries[i];
        if v != Range::NONE {
            return Some((v, k));
        }
        self.collided
            .iter()
            .find(|(p, _, _)| p == steps)
            .map(|(_, v, k)| (*v, *k))
    }

    /// The location of the deepest node along `path`, and of the key of the last step if the
    /// path ended on a mapping entry (as `Node::locate`): byte ranges, with line and column
    /// left to `Sources::resolve`.
    pub fn locate(&self, path: &[Seg]) -> (Loc, Option<Loc>) {
        // The steps taken, kept only when some paths collide.
        let exact = !self.collided.is_empty();
        let mut steps: Vec<Step> = Vec::new();
        let mut h = PathHash::ROOT;
        let mut found = self.get(h, &steps);
        for seg in path {
            let (next, step) = match seg {
                Seg::Key(k) => (h.key(k), exact.then(|| Step::Key((*k).to_owned()))),
                Seg::Idx(i) => (h.idx(*i), exact.then_some(Step::Idx(*i))),
            };
            steps.extend(step);
            let mut hit = self.get(next, &steps).map(|e| (next, e));
            if hit.is_none()
                && let Seg::Idx(i) = seg
            {
                // JSON pointers name map keys that look like numbers as indices.
                let alt = h.key(&i.to_string());
                if exact {
                    steps.pop();
                    steps.push(Step::Key(i.to_string()));
                }
                hit = self.get(alt, &steps).map(|e| (alt, e));
            }
            match hit {
                Some((nh, e)) => {
                    h = nh;
                    found = Some(e);
                }
                None => {
                    let loc = found.map_or(Loc::default(), |e| e.0.loc());
                    return (loc, None);
                }
            }
        }
        match found {
            Some((v, k)) => (v.loc(), (k != Range::NONE).then(|| k.loc())),
            None => (Loc::default(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_locate_as_the_tree_does() {
        let text = "a:\n  b: [x, {c: 1}]\n  80: y\n  \u{e9}t\u{e9}: {\u{fc}: \u{f6}}\nd: z\n";
        let file = crate::input::source::SourceFile::new("t".into(), text.into(), true);
        let resolved = |l: Loc| {
            let at = file.loc_at(l.start);
            Loc {
                line: at.line,
                col: at.col,
                ..l
            }
        };
        let root = parse_documents(text).ok().unwrap().remove(0);
        // 64 bits, then hashes of a few bits: nearly every path collides with another.
        for mask in [u64::MAX, 0b111, 0b1, 0] {
            let places = Places::with_mask(&root, mask);
            assert_eq!(places.collided.is_empty(), mask == u64::MAX, "{mask}");
            same_places(&root, &places, &resolved);
        }
    }

    fn same_places(root: &Node, places: &Places, resolved: &dyn Fn(Loc) -> Loc) {
        let paths: Vec<Vec<Seg>> = vec![
            vec![],
            vec![Seg::Key("a")],
            vec![Seg::Key("a"), Seg::Key("b"), Seg::Idx(1), Seg::Key("c")],
            vec![Seg::Key("a"), Seg::Key("b"), Seg::Idx(7)],
            vec![Seg::Key("a"), Seg::Idx(80)],
            vec![Seg::Key("nope"), Seg::Key("deeper")],
            vec![Seg::Key("d")],
            vec![Seg::Key("a"), Seg::Key("\u{e9}t\u{e9}"), Seg::Key("\u{fc}")],
        ];
        for p in paths {
            let (node, key) = root.locate(&p);
            let (v, k) = places.locate(&p);
            assert_eq!(
                (resolved(v), k.map(resolved)),
                (node.loc, key.map(|k| k.loc)),
                "{p:?}"
            );
        }
    }
}
