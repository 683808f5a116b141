//! The shape of the code: stages in pipeline order, no import from a later stage, no import
//! cycle (file by file), a thin `main.rs`, no file over 500 lines, no function over 100
//! lines, and every diagnostic code built by one constructor.
//!
//! Files are read as Rust (`syn`), whole: only the items under `#[cfg(test)]` (unit tests sit
//! at the top of the stack and may use the whole pipeline) are left out.

use crate::support::root;
use proc_macro2::{TokenStream, TokenTree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The stages, in pipeline order: a file may import only from files of an earlier stage, or
/// from its own stage's folder (without cycles). First match wins.
const STAGES: &[&str] = &[
    "src/span.rs",
    "src/diagnostics/codes.rs",
    "src/diagnostics/mod.rs",
    "src/net.rs",
    "src/spiffe.rs",
    "src/model.rs",
    "src/input/",
    "src/load/",
    "src/check/",
    "src/plan.rs",
    "src/emit/",
    "src/write.rs",
    "src/publish/",
    "src/query/",
    "src/diff/",
    "src/diagnostics/render/",
    "src/pipeline.rs",
    "src/cli/",
    "src/lib.rs",
    "src/main.rs",
];

/// The longest function in `src/`, in lines (signature to closing brace).
const MAX_FUNCTION_LINES: usize = 100;

/// Functions allowed over that bound, and why.
const LONG_FUNCTIONS: &[(&str, &str)] = &[];

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

/// Every `.rs` file under `src/`, as `src/…` paths.
fn source_files() -> BTreeSet<String> {
    let mut paths = Vec::new();
    rust_files(&root().join("src"), &mut paths);
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
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

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// What one file says about the layout: the module paths it imports from the crate, and the
/// length of each of its functions.
#[derive(Default)]
struct Facts {
    imports: Vec<Vec<String>>,
    /// (`module::…::function`, lines)
    functions: Vec<(String, usize)>,
    /// `json!` invocations: machine output is built from serde types, not JSON literals.
    json_literals: usize,
}

struct Reader {
    /// The module the visitor is in (the file's module, then inline modules).
    module: Vec<String>,
    /// The functions (and impl types) the visitor is in, for names.
    within: Vec<String>,
    facts: Facts,
}

impl Reader {
    fn path(&mut self, segs: Vec<String>) {
        match segs.first().map(String::as_str) {
            Some("crate") => self.facts.imports.push(segs[1..].to_vec()),
            Some("super") => {
                let mut m = self.module.clone();
                let mut rest = &segs[..];
                while rest.first().is_some_and(|s| s == "super") {
                    m.pop();
                    rest = &rest[1..];
                }
                // `use super::*` names the parent module itself.
                m.extend(rest.iter().filter(|s| *s != "*").cloned());
                self.facts.imports.push(m);
            }
            _ => {}
        }
    }

    /// `crate::a::b` and `super::a` inside macro arguments, which `syn` leaves as tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id)
                    if id == "json"
                        && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!') =>
                {
                    self.facts.json_literals += 1;
                }
                TokenTree::Ident(id) if id == "crate" || id == "super" => {
                    let mut segs = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) =
                        (trees.get(j), trees.get(j + 1))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        match trees.get(j + 2) {
                            Some(TokenTree::Ident(next)) => segs.push(next.to_string()),
                            _ => break,
                        }
                        j += 3;
                    }
                    if segs.len() > 1 {
                        self.path(segs);
                    }
                    i = j.max(i + 1);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn function(&mut self, name: &syn::Ident, start: proc_macro2::Span, block: &syn::Block) {
        let lines = block.brace_token.span.close().end().line - start.start().line + 1;
        let mut full = self.module.clone();
        full.extend(self.within.iter().cloned());
        full.push(name.to_string());
        self.facts.functions.push((full.join("::"), lines));
    }
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut v = prefix.clone();
            if n.ident != "self" {
                v.push(n.ident.to_string());
            }
            out.push(v);
        }
        syn::UseTree::Rename(r) => {
            let mut v = prefix.clone();
            v.push(r.ident.to_string());
            out.push(v);
        }
        syn::UseTree::Glob(_) => {
            let mut v = prefix.clone();
            v.push("*".into());
            out.push(v);
        }
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&u.tree, &mut Vec::new(), &mut paths);
        for p in paths {
            self.path(p);
        }
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.path(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if m.path.segments.last().is_some_and(|s| s.ident == "json") {
            self.facts.json_literals += 1;
        }
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let ty = match &*i.self_ty {
            syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        self.within.push(ty.unwrap_or_else(|| "impl".into()));
        syn::visit::visit_item_impl(self, i);
        self.within.pop();
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.sig.ident, f.sig.fn_token.span, &f.block);
        self.within.push(f.sig.ident.to_string());
        syn::visit::visit_item_fn(self, f);
        self.within.pop();
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.function(&f.sig.ident, f.sig.fn_token.span, &f.block);
        self.within.push(f.sig.ident.to_string());
        syn::visit::visit_impl_item_fn(self, f);
        self.within.pop();
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.function(&f.sig.ident, f.sig.fn_token.span, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// Read one file (`file` names its module) as Rust.
fn read(file: &str, text: &str) -> Facts {
    let ast = syn::parse_file(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut r = Reader {
        module: module_of(file),
        within: Vec::new(),
        facts: Facts::default(),
    };
    r.visit_file(&ast);
    r.facts
}

#[test]
fn stages_import_only_earlier_stages_and_no_file_cycles() {
    let files = source_files();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        if file.ends_with("_tests.rs") {
            // A test module of its own (`#[cfg(test)] #[path = "…_tests.rs"] mod tests`).
            continue;
        }
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let own = stage(file);
        for imp in read(file, &text).imports {
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
    problems.extend(cycles(&graph));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The test sees the imports it is meant to see.
    assert!(graph["src/check/egress.rs"].contains("src/load/loaded.rs"));
    assert!(graph["src/cli/commands.rs"].contains("src/pipeline.rs"));
}

/// Import cycles, file by file (depth-first search with colours).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
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
    let mut problems = Vec::new();
    let mut state = BTreeMap::new();
    for f in graph.keys() {
        visit(f, graph, &mut state, &mut Vec::new(), &mut problems);
    }
    problems
}

#[test]
fn the_checker_finds_a_later_import_and_a_cycle() {
    let files: BTreeSet<String> = ["src/plan.rs", "src/emit/mod.rs", "src/check/a.rs"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The later import is in production code that follows a test module, and in a macro.
    let facts = read(
        "src/plan.rs",
        "#[cfg(test)]\nmod tests { use crate::cli::x; }\nuse crate::emit::{self, config::X};\nfn f() { crate::check::a::g(); }\nfn h() { format!(\"{}\", crate::diff::y()); }",
    );
    let targets: Vec<String> = facts.imports.iter().map(|i| resolve(i, &files)).collect();
    assert!(
        targets.contains(&"src/emit/mod.rs".to_owned()),
        "{targets:?}"
    );
    assert!(stage("src/emit/mod.rs") > stage("src/plan.rs"));
    assert!(
        targets.contains(&"src/check/a.rs".to_owned()),
        "{targets:?}"
    );
    assert!(
        facts.imports.iter().any(|i| i[0] == "diff"),
        "{:?}",
        facts.imports
    );
    assert!(
        !facts.imports.iter().any(|i| i[0] == "cli"),
        "the test module is exempt: {:?}",
        facts.imports
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("src/a.rs", "src/b.rs"),
        ("src/b.rs", "src/c.rs"),
        ("src/c.rs", "src/a.rs"),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_owned(), BTreeSet::from([t.to_owned()])))
    .collect();
    assert_eq!(cycles(&graph).len(), 1, "{:?}", cycles(&graph));
}

#[test]
fn the_checker_measures_functions() {
    let body: String = (0..120).map(|i| format!("    let x{i} = {i};\n")).collect();
    let facts = read(
        "src/a/b.rs",
        &format!(
            "/// doc\nfn short() {{}}\nimpl T {{\n    fn long() {{\n{body}    }}\n}}\n#[cfg(test)]\nmod tests {{ fn long_test() {{\n{body}}} }}\n"
        ),
    );
    assert_eq!(
        facts.functions,
        [
            ("a::b::short".to_owned(), 1),
            ("a::b::T::long".to_owned(), 122)
        ]
    );
}

#[test]
fn main_is_thin_no_file_is_over_500_lines_and_no_function_over_100() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(
        main.lines().count() < 40,
        "src/main.rs has {} lines",
        main.lines().count()
    );
    let files = source_files();
    let mut paths: Vec<PathBuf> = files.iter().map(|f| root().join(f)).collect();
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
    let mut long = Vec::new();
    let mut exempt_seen = BTreeSet::new();
    for file in files.iter().filter(|f| !f.ends_with("_tests.rs")) {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for (name, lines) in read(file, &text).functions {
            if lines <= MAX_FUNCTION_LINES {
                continue;
            }
            if LONG_FUNCTIONS.iter().any(|(n, _)| *n == name) {
                exempt_seen.insert(name);
            } else {
                long.push(format!("{name} in {file} ({lines} lines)"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines: {long:#?}"
    );
    for (name, _) in LONG_FUNCTIONS {
        assert!(
            exempt_seen.contains(*name),
            "{name} is no longer over {MAX_FUNCTION_LINES} lines: remove it from LONG_FUNCTIONS"
        );
    }
}

/// The `json!` literals allowed in `src/` (tests aside): schema fragments and partial
/// Kubernetes patches, where a type would add nothing.
const MAX_JSON_LITERALS: usize = 10;

#[test]
fn machine_output_is_typed() {
    let files = source_files();
    let mut sites = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("_tests.rs")) {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let n = read(file, &text).json_literals;
        if n > 0 {
            sites.insert(file.clone(), n);
        }
    }
    let total: usize = sites.values().sum();
    assert!(
        total <= MAX_JSON_LITERALS,
        "{total} json! literals in src/ (at most {MAX_JSON_LITERALS}): {sites:?}"
    );
    // The count sees nested literals too.
    let facts = read(
        "src/a.rs",
        "fn f() { json!({\"a\": json!(1)}); serde_json::json!(2); }",
    );
    assert_eq!(facts.json_literals, 3);
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
