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

/// FNV-1a over the segments of a path, extended one segment at a time.
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
    /// 32 bits are enough to tell apart the few dozen paths of one document.
    fn short(self) -> u32 {
        (self.0 ^ (self.0 >> 32)) as u32
    }
    fn idx(self, i: usize) -> PathHash {
        self.bytes(&[2]).bytes(&(i as u64).to_le_bytes())
    }
}

/// Where every node of a document is, without the document: what the semantic checks need
/// once a document is typed, at about a third of the tree's memory and with no strings.
#[derive(Clone, Debug, Default)]
pub struct Places {
    /// (path hash, value, key), sorted by hash.
    entries: Vec<(u32, Range, Range)>,
}

impl Places {
    /// The places of every node of `root`.
    pub fn of(root: &Node) -> Places {
        fn walk(n: &Node, h: PathHash, key: Option<&Key>, out: &mut Vec<(u32, Range, Range)>) {
            out.push((
                h.short(),
                Range::of(&n.loc),
                key.map_or(Range::NONE, |k| Range::of(&k.loc)),
            ));
            match &n.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, h.idx(i), None, out);
                    }
                }
                Value::Map(entries) => {
                    for (k, v) in entries {
                        walk(v, h.key(&k.name), Some(k), out);
                    }
                }
                _ => {}
            }
        }
        let mut entries = Vec::new();
        walk(root, PathHash::ROOT, None, &mut entries);
        entries.sort_by_key(|e| e.0);
        // The first of equal paths wins, as in the tree (a duplicated key is a parse error).
        entries.dedup_by_key(|e| e.0);
        entries.shrink_to_fit();
        Places { entries }
    }

    fn get(&self, h: PathHash) -> Option<&(u32, Range, Range)> {
        self.entries
            .binary_search_by_key(&h.short(), |e| e.0)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The location of the deepest node along `path`, and of the key of the last step if the
    /// path ended on a mapping entry (as `Node::locate`): byte ranges, with line and column
    /// left to `Sources::resolve`.
    pub fn locate(&self, path: &[Seg]) -> (Loc, Option<Loc>) {
        let mut h = PathHash::ROOT;
        let mut found = self.get(h).copied();
        for seg in path {
            let next = match seg {
                Seg::Key(k) => h.key(k),
                Seg::Idx(i) => h.idx(*i),
            };
            let hit = self
                .get(next)
                .copied()
                .map(|e| (next, e))
                .or_else(|| match seg {
                    // JSON pointers name map keys that look like numbers as indices.
                    Seg::Idx(i) => {
                        let alt = h.key(&i.to_string());
                        self.get(alt).copied().map(|e| (alt, e))
                    }
                    Seg::Key(_) => None,
                });
            match hit {
                Some((nh, e)) => {
                    h = nh;
                    found = Some(e);
                }
                None => {
                    let loc = found.map_or(Loc::default(), |e| e.1.loc());
                    return (loc, None);
                }
            }
        }
        match found {
            Some((_, v, k)) => (v.loc(), (k != Range::NONE).then(|| k.loc())),
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
        let places = Places::of(&root);
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
