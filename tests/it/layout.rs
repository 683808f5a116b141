//! The shape of the code: stages in pipeline order, no import from a later stage, no import
//! cycle (file by file), a thin `main.rs`, no file over 500 lines, and every diagnostic code
//! built by one constructor.

use crate::support::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages, in pipeline order: a file may import only from files of an earlier stage, or
/// from its own stage's folder (without cycles). First match wins.
const STAGES: &[&str] = &[
    "src/input/span.rs",
    "src/diagnostics/codes.rs",
    "src/diagnostics/mod.rs",
    "src/net.rs",
    "src/model.rs",
    "src/input/",
    "src/load/",
    "src/check/",
    "src/plan.rs",
    "src/emit/",
    "src/write.rs",
    "src/publish.rs",
    "src/query/",
    "src/diff/",
    "src/diagnostics/render.rs",
    "src/pipeline.rs",
    "src/cli/",
    "src/lib.rs",
    "src/main.rs",
];

fn stage(file: &str) -> usize {
    STAGES
        .iter()
        .position(|s| {
            if s.ends_with('/') {
                file.starts_with(s)
            } else {
                file == *s
            }
        })
        .unwrap_or_else(|| panic!("{file} is in no stage: add it to STAGES in tests/it/layout.rs"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → ["a", "b"]; `src/a/mod.rs` → ["a"]; `src/lib.rs` → [].
fn module_of(file: &str) -> Vec<String> {
    let rel = file
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut segs: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if segs
        .last()
        .is_some_and(|s| s == "mod" || s == "lib" || s == "main")
    {
        segs.pop();
    }
    segs
}

/// The file that defines the longest module prefix of `path`.
fn resolve(path: &[String], files: &BTreeSet<String>) -> String {
    for k in (1..=path.len()).rev() {
        let base = format!("src/{}", path[..k].join("/"));
        for candidate in [format!("{base}.rs"), format!("{base}/mod.rs")] {
            if files.contains(&candidate) {
                return candidate;
            }
        }
    }
    // An item at the crate root; `path!` is exported by the YAML module.
    if path.first().is_some_and(|s| s == "path") {
        return "src/input/yaml.rs".into();
    }
    "src/lib.rs".into()
}

/// Expand `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// The module paths a file imports from the crate: `crate::…` anywhere, and `super::…`.
fn imports(file: &str, text: &str) -> Vec<Vec<String>> {
    // Unit tests sit at the top of the stack: they may use the whole pipeline.
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut statements = Vec::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let Some(stmt) = t.strip_prefix("use ") else {
            continue;
        };
        let mut stmt = stmt.to_owned();
        while !stmt.contains(';') {
            match lines.next() {
                Some(l) => stmt.push_str(l),
                None => break,
            }
        }
        statements.push(stmt.split(';').next().unwrap().to_owned());
    }
    for stmt in statements {
        for path in expand(&stmt) {
            let path = path.split(" as ").next().unwrap().trim().to_owned();
            let segs: Vec<String> = path.split("::").map(|s| s.trim().to_owned()).collect();
            match segs.first().map(String::as_str) {
                Some("crate") => out.push(segs[1..].to_vec()),
                Some("super") => {
                    // `use super::*` in a `mod tests` names the file itself.
                    if segs.get(1).is_some_and(|s| s == "*") {
                        continue;
                    }
                    let mut m = module_of(file);
                    m.pop();
                    m.extend(segs[1..].iter().cloned());
                    out.push(m);
                }
                _ => {}
            }
        }
    }
    for (i, _) in code.match_indices("crate::") {
        let tail: String = code[i + 7..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segs: Vec<String> = tail
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

#[test]
fn stages_import_only_earlier_stages_and_no_file_cycles() {
    let mut paths = Vec::new();
    rust_files(&root().join("src"), &mut paths);
    let files: BTreeSet<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        if file.ends_with("_tests.rs") {
            // Unit tests (included with `#[cfg(test)]`) may use the whole pipeline.
            continue;
        }
        let own = stage(file);
        for imp in imports(file, &text) {
            let target = resolve(&imp, &files);
            if target == *file {
                continue;
            }
            let theirs = stage(&target);
            if theirs > own {
                problems.push(format!(
                    "{file} imports `{}` from the later stage {target}",
                    imp.join("::")
                ));
            }
            graph.entry(file.clone()).or_default().insert(target);
        }
    }
    // Cycles, file by file (depth-first search with colours).
    fn visit(
        f: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        match state.get(f) {
            Some(1) => {
                let start = stack.iter().position(|s| s == f).unwrap();
                problems.push(format!(
                    "import cycle: {} -> {f}",
                    stack[start..].join(" -> ")
                ));
                return;
            }
            Some(2) => return,
            _ => {}
        }
        state.insert(f.to_owned(), 1);
        stack.push(f.to_owned());
        for next in graph.get(f).into_iter().flatten() {
            visit(next, graph, state, stack, problems);
        }
        stack.pop();
        state.insert(f.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    for f in &files {
        visit(f, &graph, &mut state, &mut Vec::new(), &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The test sees the imports it is meant to see.
    assert!(graph["src/check/egress.rs"].contains("src/load/inputs.rs"));
    assert!(graph["src/cli/commands.rs"].contains("src/pipeline.rs"));
}

#[test]
fn the_checker_finds_a_later_import_and_a_cycle() {
    let files: BTreeSet<String> = ["src/plan.rs", "src/emit/mod.rs", "src/check/a.rs"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let imps = imports(
        "src/plan.rs",
        "use crate::emit::{self, config::X};\nfn f() { crate::check::a::g() }",
    );
    let targets: Vec<String> = imps.iter().map(|i| resolve(i, &files)).collect();
    assert!(
        targets.contains(&"src/emit/mod.rs".to_owned()),
        "{targets:?}"
    );
    assert!(stage("src/emit/mod.rs") > stage("src/plan.rs"));
    assert!(
        targets.contains(&"src/check/a.rs".to_owned()),
        "{targets:?}"
    );
}

#[test]
fn main_is_thin_and_no_file_is_over_500_lines() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(
        main.lines().count() < 40,
        "src/main.rs has {} lines",
        main.lines().count()
    );
    let mut paths = Vec::new();
    rust_files(&root().join("src"), &mut paths);
    for dir in ["templates/sidecar", "templates/gateway"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            paths.push(e.unwrap().path());
        }
    }
    let long: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(p).unwrap().lines().count();
            (n > 500).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 500 lines: {long:?}");
}

#[test]
fn every_code_is_built_by_one_constructor() {
    let mut paths = Vec::new();
    rust_files(&root().join("src"), &mut paths);
    let mut sites: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in paths
        .iter()
        .filter(|p| !p.ends_with("diagnostics/codes.rs"))
    {
        let text = std::fs::read_to_string(p).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Comparisons (`d.code == Code::E0001`) read a code; they do not build one.
            if line.contains("==") || line.trim_start().starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("Code::") {
                let code: String = line[i + 6..].chars().take(5).collect();
                if code.len() == 5 && code[1..].chars().all(|c| c.is_ascii_digit()) {
                    sites
                        .entry(code)
                        .or_default()
                        .push(format!("{}:{}", p.display(), n + 1));
                }
            }
        }
    }
    let mut problems = Vec::new();
    for code in egressc::Code::ALL {
        match sites.get(code.as_str()).map(Vec::len) {
            Some(1) => {}
            None => problems.push(format!("{code} is never built")),
            Some(_) => problems.push(format!(
                "{code} is built in several places: {:?}",
                sites[code.as_str()]
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
