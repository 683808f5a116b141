//! The generated scripts in Pipy itself: every script loads, and the shared decision vectors
//! agree with the sidecar's decision module.

use super::*;
use std::io::{BufRead, BufReader};

/// Every generated script loads in Pipy (node accepts syntax that PipyJS rejects).
#[test]
fn every_generated_script_loads_in_pipy() {
    if !enabled("loading the generated scripts in Pipy") {
        return;
    }
    let mut failures = Vec::new();
    for dir in fixtures() {
        if root().join(&dir).join("expect.txt").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = std::env::temp_dir().join(format!("egressc-load-{}-{name}", std::process::id()));
        build_tree(&root().join(&dir), &out);
        let mut scripts = vec![(out.join("sidecar/main.js"), None)];
        for e in walk_json(&out.join("configs")) {
            scripts.push((out.join("sidecar/main.js"), Some(e)));
        }
        if out.join("gateway/main.js").exists() {
            scripts.push((out.join("gateway/main.js"), None));
        }
        for (script, config) in scripts {
            // In a private network namespace of its own: it can listen, and reach nothing.
            let mut cmd = Command::new("unshare");
            cmd.args(["-n", "sh", "-c", "ip link set lo up; exec \"$@\"", "sh"]);
            cmd.arg(pipy()).arg("--admin-port-off").arg(&script);
            if let Some(c) = &config {
                cmd.env("EGRESSC_CONFIG", c);
            }
            // Pipy logs to stderr.
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut all = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    all.push_str(&line);
                    all.push('\n');
                    if line.contains("Listening") {
                        let _ = tx.send(Ok(all.clone()));
                    }
                }
                let _ = tx.send(Err(all));
            });
            let result = rx.recv_timeout(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            if !matches!(result, Ok(Ok(_))) {
                failures.push(format!(
                    "{name}: {} ({config:?}) did not load: {result:?}",
                    script.display()
                ));
            }
        }
        std::fs::remove_dir_all(&out).ok();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shared decision vectors agree with the generated sidecar's decision module, in Pipy
/// (the Rust evaluator's unit tests read the same file).
#[test]
fn decision_vectors_agree_in_pipy() {
    if !enabled("the decision vectors in Pipy") {
        return;
    }
    let out = std::env::temp_dir().join(format!("egressc-vectors-{}", std::process::id()));
    // A mesh with a gateway: its admission module and config are needed too.
    build_tree(&root().join("fixtures/good-wildcards-socks"), &out);
    let dir = out.join("selftest");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(out.join("sidecar/decide.js"), dir.join("decide.js")).unwrap();
    std::fs::copy(out.join("gateway/admit.js"), dir.join("admit.js")).unwrap();
    std::fs::copy(out.join("gateway/spiffe.js"), dir.join("spiffe.js")).unwrap();
    std::fs::copy(root().join("tests/e2e/selftest.js"), dir.join("main.js")).unwrap();
    let vectors = dir.join("vectors.json");
    let gateway: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("gateway/config.json")).unwrap()).unwrap();
    let mut v = vectors_with_matchers();
    for g in v["gatewayAdmission"].as_array_mut().unwrap() {
        g["config"]["RefusedRanges"] = gateway["RefusedRanges"].clone();
        g["config"]["Limits"] = gateway["Limits"].clone();
    }
    std::fs::write(&vectors, v.to_string()).unwrap();
    let report = dir.join("report.txt");
    // The stack of the proxies (the long vectors must not overflow it).
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -s {} && exec \"$@\"", proxy_stack_kib()),
            "sh",
        ])
        .arg(pipy())
        .arg("--admin-port-off")
        .arg(dir.join("main.js"))
        .env("EGRESSC_VECTORS", &vectors)
        .env("EGRESSC_SELFTEST_OUT", &report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pipy starts");
    // The verdict is the report's closing line; Pipy's own exit is not waited for (it does not
    // always come promptly after `pipy.exit()`).
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = |log: &str| log.lines().any(|l| l.starts_with("selftest: "));
    let log = loop {
        let log = std::fs::read_to_string(&report).unwrap_or_default();
        if finished(&log) || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&out).ok();
    let summary = log
        .lines()
        .find(|l| l.starts_with("selftest: "))
        .unwrap_or("");
    say(summary);
    assert!(
        finished(&log),
        "the self-test did not report within 20 s:\n{log}"
    );
    assert!(
        summary.contains(" vectors agree, "),
        "self-test did not finish:\n{log}"
    );
    assert!(summary.contains(" 0 disagree"), "{log}");
}

/// The shared vectors, with `matchers`: the matcher of every route regex they name, as
/// egressc compiles it into a sidecar config.
fn vectors_with_matchers() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("tests/vectors/decisions.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut regexes: Vec<(String, bool)> = Vec::new();
    for c in v["routeMatch"].as_array().unwrap() {
        let path = c["mode"] == "path";
        regexes.push((c["regex"].as_str().unwrap().to_owned(), path));
    }
    for c in v["route"].as_array().unwrap() {
        regexes.push((c["route"]["path"].as_str().unwrap().to_owned(), true));
        for value in c["route"]["headers"].as_object().unwrap().values() {
            regexes.push((value.as_str().unwrap().to_owned(), false));
        }
    }
    let mut matchers = serde_json::Map::new();
    for (re, path) in regexes {
        let (key, m) = egressc::route_matcher(&re, path).expect("a vector's regex compiles");
        matchers.insert(key, m);
    }
    v["matchers"] = serde_json::Value::Object(matchers);
    v
}

fn walk_json(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_json(&p));
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
