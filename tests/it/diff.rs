//! `egressc diff`: the hand-written pairs under `fixtures/diff/<case>/{base,head}/` give the
//! diff a person wrote (`expect.txt`, human format); a side against itself is empty; swapping
//! the sides swaps added and removed; exit codes; `--base-git`; markdown and JSON snapshots.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every pair: `fixtures/diff/<case>`, sorted.
fn pairs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/diff"))
        .expect("fixtures/diff/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.strip_prefix(root()).expect("inside root").to_path_buf())
        .collect();
    v.sort();
    v
}

fn side(pair: &Path, which: &str) -> String {
    pair.join(which).to_string_lossy().into_owned()
}

fn diff(base: &str, head: &str, more: &[&str]) -> Run {
    let mut args = vec!["diff", "--base", base, "--head", head];
    args.extend(more);
    egressc(&args)
}

fn json(base: &str, head: &str) -> Value {
    let run = diff(base, head, &["--format", "json"]);
    assert_eq!(run.code, 0, "{base} → {head}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// `text` holds `part`.
pub fn has(text: &str, part: &str) {
    assert!(text.contains(part), "no `{part}` in:\n{text}");
}

fn entries(doc: &Value) -> &[Value] {
    doc["entries"].as_array().expect("entries")
}

/// The pairs that must show no change at all.
const NO_CHANGE: &[&str] = &["move", "redundant-host", "rename", "reorder", "split"];

#[test]
fn every_pair_gives_the_diff_a_person_wrote() {
    let pairs = pairs();
    assert!(pairs.len() >= 20, "{pairs:?}");
    let mut failures = Vec::new();
    for pair in &pairs {
        let (base, head) = (side(pair, "base"), side(pair, "head"));
        // A pair's own flags (`args.txt`), such as `--gateway-auth=header`.
        let flags = std::fs::read_to_string(root().join(pair).join("args.txt")).unwrap_or_default();
        let mut more: Vec<&str> = flags.split_whitespace().collect();
        more.extend(["--color", "never"]);
        let run = diff(&base, &head, &more);
        let expect = std::fs::read_to_string(root().join(pair).join("expect.txt"))
            .unwrap_or_else(|_| panic!("{}: no expect.txt", pair.display()));
        if run.code != 0 || run.stdout != expect {
            failures.push(format!(
                "{} (exit {}):\n--- expected\n{expect}--- got\n{}{}",
                pair.display(),
                run.code,
                run.stdout,
                run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for name in NO_CHANGE {
        let pair = Path::new("fixtures/diff").join(name);
        let doc = json(&side(&pair, "base"), &side(&pair, "head"));
        assert!(entries(&doc).is_empty(), "{name}: {doc}");
        assert_eq!(doc["summary"]["text"], "no access change");
    }
}

#[test]
fn the_pairs_cover_every_kind_of_entry() {
    let mut kinds = BTreeSet::new();
    for pair in pairs() {
        for e in entries(&json(&side(&pair, "base"), &side(&pair, "head"))) {
            let s = |k: &str| e[k].as_str().unwrap_or("?").to_owned();
            kinds.insert(format!("{} {} {}", s("subject"), s("change"), s("effect")));
            if !e["covers"].as_array().is_none_or(Vec::is_empty) {
                kinds.insert("covers".into());
            }
            if !e["still_allowed"].as_array().is_none_or(Vec::is_empty) {
                kinds.insert("still_allowed".into());
            }
        }
    }
    for want in [
        "access added widens",
        "access removed narrows",
        "access changed widens",
        "access changed narrows",
        "access added neutral",
        "access removed neutral",
        "covers",
        "still_allowed",
        "identity added neutral",
        "identity removed neutral",
        "passthrough changed widens",
        "passthrough changed narrows",
        "policies changed narrows",
        "gateway added narrows",
        "gateway removed widens",
        "gateway changed neutral",
        "excluded-addresses added widens",
        "inclusion-list added widens",
        "included-addresses added narrows",
        "included-addresses removed widens",
        "excluded-port added widens",
        "excluded-port removed narrows",
        "in-mesh added widens",
        "in-mesh removed narrows",
        "dns changed widens",
    ] {
        assert!(kinds.contains(want), "no pair gives `{want}`: {kinds:#?}");
    }
}

#[test]
fn a_side_against_itself_is_empty() {
    let mut sides: Vec<String> = fixtures()
        .into_iter()
        .filter(|d| !root().join(d).join("expect.txt").exists())
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    sides.push("example/mesh".into());
    for pair in pairs() {
        sides.push(side(&pair, "base"));
        sides.push(side(&pair, "head"));
    }
    for s in &sides {
        let run = diff(s, s, &["--format", "json", "--fail-on", "any"]);
        assert_eq!(run.code, 0, "{s}: {}{}", run.stdout, run.stderr);
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(entries(&doc).is_empty(), "{s}: {doc}");
        assert_eq!(doc["changed"], false);
    }
}

/// An entry seen from the other side: base and head, added and removed, what it covers and
/// what is still allowed swap; its text and effect are compared apart.
fn swapped(e: &Value) -> Value {
    let mut v = e.clone();
    let o = v.as_object_mut().unwrap();
    o.remove("text");
    o.remove("effect");
    for (a, b) in [
        ("base", "head"),
        ("base_at", "head_at"),
        ("covers", "still_allowed"),
    ] {
        let (x, y) = (o.remove(a), o.remove(b));
        if let Some(y) = y {
            o.insert(a.into(), y);
        }
        if let Some(x) = x {
            o.insert(b.into(), x);
        }
    }
    let change = match o["change"].as_str().unwrap() {
        "added" => "removed",
        "removed" => "added",
        c => c,
    };
    o.insert("change".into(), change.into());
    v
}

fn without_effect(e: &Value) -> Value {
    let mut v = e.clone();
    let o = v.as_object_mut().unwrap();
    o.remove("text");
    o.remove("effect");
    v
}

#[test]
fn swapping_the_sides_swaps_added_and_removed() {
    for pair in pairs() {
        let (a, b) = (side(&pair, "base"), side(&pair, "head"));
        let (forward, back) = (json(&a, &b), json(&b, &a));
        let key = |v: &Value| v.to_string();
        let f: BTreeSet<String> = entries(&forward).iter().map(|e| key(&swapped(e))).collect();
        let r: BTreeSet<String> = entries(&back)
            .iter()
            .map(|e| key(&without_effect(e)))
            .collect();
        assert_eq!(f, r, "{}", pair.display());
        // A narrowing seen backwards widens; a widening backwards narrows, or still widens
        // when it was a change not provably wider either way.
        for e in entries(&forward) {
            let twin = entries(&back)
                .iter()
                .find(|x| key(&without_effect(x)) == key(&swapped(e)))
                .unwrap();
            let ok = match (e["effect"].as_str(), twin["effect"].as_str()) {
                (Some("narrows"), Some(t)) => t == "widens",
                // A SOCKS5 gateway added widens (the union of every list) and narrows
                // (its refusals) at once; removed, its refusals go: both ways widen.
                (Some("widens"), Some(t)) => {
                    t == "narrows" || e["change"] == "changed" || e["subject"] == "gateway"
                }
                (Some("neutral"), Some(t)) => t == "neutral",
                _ => false,
            };
            assert!(ok, "{}: {e} backwards is {twin}", pair.display());
        }
    }
}

#[test]
fn fail_on_widen_and_any() {
    let pair = |name: &str| {
        let p = Path::new("fixtures/diff").join(name);
        (side(&p, "base"), side(&p, "head"))
    };
    for (name, widen, any) in [
        ("host-added", 6, 6),
        ("wildcard-narrowed", 0, 6),
        ("gateway-mode", 6, 6),
        ("gateway-mode-mtls", 0, 6),
        ("gateway-weight", 0, 6),
        ("under-passthrough", 6, 6),
        ("under-passthrough-cidr", 0, 6),
        ("rename", 0, 0),
        ("passthrough-on", 6, 6),
    ] {
        let (b, h) = pair(name);
        let auth = if name == "gateway-mode" {
            "header"
        } else {
            "mtls"
        };
        let auth = format!("--gateway-auth={auth}");
        assert_eq!(diff(&b, &h, &[&auth]).code, 0, "{name}");
        assert_eq!(
            diff(&b, &h, &[&auth, "--fail-on", "widen"]).code,
            widen,
            "{name}"
        );
        let run = diff(&b, &h, &[&auth, "--fail-on", "any", "--format", "markdown"]);
        assert_eq!(run.code, any, "{name}");
        assert!(
            run.stdout.starts_with("**egressc diff**: "),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn errors_on_either_side_exit_1_naming_the_side() {
    let bad = "fixtures/bad-e0301-port-range";
    let good = "fixtures/fsm-docs";
    for (base, head, named) in [(bad, good, "in the base"), (good, bad, "in the head")] {
        let run = diff(base, head, &["--color", "never"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        has(&run.stderr, &format!("egressc diff: {named} ({bad}):"));
        has(&run.stderr, "error[E0301]");
    }
    // Warnings are shown and pass, unless --deny-warnings.
    let w = "fixtures/bad-w0403-open-port";
    assert_eq!(diff(w, w, &[]).code, 0);
    assert_eq!(diff(w, w, &["--deny-warnings"]).code, 1);
    assert_eq!(diff(w, w, &["--allow", "W0403", "--deny-warnings"]).code, 0);
    // An unreadable input is exit 2, as for check.
    assert_eq!(diff("fixtures/missing", good, &[]).code, 2);
    assert_eq!(diff("-", "-", &[]).code, 2);
}

#[test]
fn one_side_may_come_from_stdin() {
    let text = std::fs::read(root().join("fixtures/good-defaults/egress.yaml")).unwrap();
    let run = egressc_stdin(
        &["diff", "--base", "-", "--head", "fixtures/good-defaults"],
        Some(&text),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "no access change\n");
}

#[test]
fn snapshots_of_markdown_and_json() {
    insta_settings("diff").bind(|| {
        for name in ["wildcard-covers", "routes", "interception", "identities"] {
            let p = Path::new("fixtures/diff").join(name);
            let (b, h) = (side(&p, "base"), side(&p, "head"));
            insta::assert_snapshot!(
                format!("markdown@{name}"),
                diff(&b, &h, &["--format", "markdown"]).stdout
            );
            insta::assert_snapshot!(
                format!("json@{name}"),
                diff(&b, &h, &["--format", "json"]).stdout
            );
        }
    });
}
