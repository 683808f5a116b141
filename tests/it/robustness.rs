//! No input makes egressc panic, abort or overflow its stack.

use crate::support::*;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in fixtures() {
        let mut entries: Vec<_> = walk(&root().join(&dir));
        entries.sort();
        for p in entries {
            if p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                let rel = p
                    .strip_prefix(root())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn analyze_no_panic(name: &str, bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let name = name.to_owned();
    std::panic::catch_unwind(move || {
        let a = egressc::analyze_texts(vec![(name, text)]);
        // Rendering must not panic either.
        let _ = egressc::render_human(&a.findings.diagnostics, &a.findings.sources, false);
        let _ = egressc::render_json(&a.findings.diagnostics, &a.findings.sources);
        let _ = egressc::render_sarif(&a.findings.diagnostics, &a.findings.sources);
    })
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn truncated_and_flipped_fixtures_never_panic() {
    let files = fixture_files();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    let mut variants = 0;
    for (name, bytes) in &files {
        // Truncated at every line.
        for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            variants += 1;
            if let Err(e) = analyze_no_panic(name, &bytes[..i]) {
                failures.push(format!("{name} truncated at byte {i}: {e}"));
            }
        }
    }
    // Bytes flipped, fixed seed.
    let mut rng = Rng(0x5eed_e9e5_5c0d_e001);
    for _ in 0..400 {
        let (name, bytes) = &files[(rng.next() % files.len() as u64) as usize];
        let mut b = bytes.clone();
        if b.is_empty() {
            continue;
        }
        for _ in 0..(1 + rng.next() % 4) {
            let at = (rng.next() % b.len() as u64) as usize;
            b[at] ^= 1 << (rng.next() % 8);
        }
        variants += 1;
        if let Err(e) = analyze_no_panic(name, &b) {
            failures.push(format!(
                "{name} flipped: {e}\n{}",
                String::from_utf8_lossy(&b)
            ));
        }
    }
    assert!(variants > 300, "only {variants} variants");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deeply_nested_documents_are_errors_not_crashes() {
    let flow = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: x}}\nspec: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut block = String::from("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n");
    for depth in 1..5_000 {
        block.push_str(&" ".repeat(depth * 2));
        block.push_str("a:\n");
    }
    let json = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"x\":{}1{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    for text in [flow, block, json] {
        let run = egressc_stdin(&["check", "--format", "json", "-"], Some(text.as_bytes()));
        assert!(
            run.code == 0 || run.code == 1,
            "exit {} {}",
            run.code,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"));
    }
}
