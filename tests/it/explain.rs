//! `egressc explain` and `egressc test`: verdicts, exit codes, and the hand-written case files.

use crate::support::*;

/// (cases file, inputs): the example's and every `fixtures/<name>.cases.yaml`.
fn case_files() -> Vec<(String, String)> {
    let mut v = vec![("example/cases.yaml".to_owned(), "example/mesh".to_owned())];
    let mut entries: Vec<_> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(fixture) = name.strip_suffix(".cases.yaml") {
            v.push((format!("fixtures/{name}"), format!("fixtures/{fixture}")));
        }
    }
    v
}

#[test]
fn every_hand_written_case_passes() {
    let files = case_files();
    assert!(files.len() >= 3, "{files:?}");
    for (cases, inputs) in files {
        let run = egressc(&["test", &cases, &inputs]);
        assert_eq!(run.code, 0, "{cases}:\n{}{}", run.stdout, run.stderr);
        assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
        assert!(
            run.stdout.contains(" cases passed, 0 failed"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_failing_case_exits_5_with_a_diff_and_bad_files_exit_1() {
    let dir = std::env::temp_dir().join(format!("egressc-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.yaml");
    std::fs::write(
        &wrong,
        "cases:\n- name: POST is not allowed\n  from: curl/curl\n  to: httpbin.org:80\n  http: {method: POST, path: /get}\n  expect: allowed\n",
    )
    .unwrap();
    let run = egressc(&["test", wrong.to_str().unwrap(), "example/mesh"]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAIL POST is not allowed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("- expected: allowed"), "{}", run.stdout);
    assert!(run.stdout.contains("+ actual:   denied"), "{}", run.stdout);
    assert!(
        run.stdout.contains("0 cases passed, 1 failed"),
        "{}",
        run.stdout
    );

    let typo = dir.join("typo.yaml");
    std::fs::write(
        &typo,
        "cases:\n- name: x\n  from: a/b\n  to: h.test:80\n  expect: alowed\n",
    )
    .unwrap();
    let run = egressc(&["test", typo.to_str().unwrap(), "example/mesh"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("alowed"), "{}", run.stderr);
    // No case at all, a duplicated key (in the user's words), a cases file over the input
    // limit (E0002, as for INPUTs: `/dev/zero` used to grow without bound): exit 1.
    for (name, text, says) in [
        ("empty.yaml", "cases: []\n", "`cases` is empty"),
        (
            "dup.yaml",
            "cases:\n- name: x\n  name: y\n  from: a/b\n  to: h.test:80\n  expect: allowed\n",
            "duplicate",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let run = egressc(&["test", path.to_str().unwrap(), "example/mesh"]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("DuplicateKeyPolicy"), "{}", run.stderr);
    }
    let big = egressc(&["test", "/dev/zero", "example/mesh", "--max-input-mib", "1"]);
    assert_eq!(big.code, 1, "{}", big.stderr);
    assert!(big.stderr.contains("E0002"), "{}", big.stderr);
    // Input errors are exit 1 too.
    let run = egressc(&[
        "test",
        "example/cases.yaml",
        "fixtures/bad-e0301-port-range",
    ]);
    assert_eq!(run.code, 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_exit_codes_and_output() {
    let allowed = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--to",
        "httpbin.org:80",
        "--path",
        "/get",
    ]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let denied = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--to",
        "httpbin.org:80",
        "--method",
        "POST",
        "--path",
        "/get",
    ]);
    assert_eq!(denied.code, 4);
    let needs = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--to",
        "db.example.com:8080",
    ]);
    assert_eq!(needs.code, 4);
    assert!(needs.stdout.contains("needs-address"), "{}", needs.stdout);
    // A workload's own connection to the gateway Service: denied (only the sidecar's tunnels
    // reach it).
    let gateway = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--to",
        "fsm-egress-gateway.fsm.svc.cluster.local:1080",
    ]);
    assert_eq!(gateway.code, 4, "{}", gateway.stdout);
    assert!(
        gateway
            .stdout
            .contains("is the egress gateway fsm/fsm-egress-gateway")
    );
    let in_mesh = egressc(&[
        "explain",
        "fixtures/e2e-mesh",
        "--from",
        "app/other",
        "--to",
        "inventory.app.svc.cluster.local:9000",
    ]);
    assert_eq!(in_mesh.code, 0, "{}", in_mesh.stdout);
    assert!(in_mesh.stdout.contains("in-mesh"));
    assert_eq!(
        egressc(&[
            "explain",
            "fixtures/bad-e0301-port-range",
            "--from",
            "a/b",
            "--to",
            "x.test:1"
        ])
        .code,
        1
    );
    assert_eq!(
        egressc(&[
            "explain",
            "example/mesh",
            "--from",
            "a/b",
            "--to",
            "no-port"
        ])
        .code,
        2
    );
    assert_eq!(
        egressc(&["explain", "example/mesh", "--from", "curl"]).code,
        2
    );
    let reach = egressc(&["explain", "example/mesh", "--from", "curl/curl"]);
    assert_eq!(reach.code, 0);
    // Another identity's rule is named for a deny.
    let other = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "default/other",
        "--to",
        "3.1.1.1:8080",
    ]);
    assert_eq!(other.code, 4);
    assert!(
        other
            .stdout
            .contains("curl/curl by Egress curl/httpbin-8080"),
        "{}",
        other.stdout
    );
    let json = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--to",
        "4.1.1.1:8080",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(v["verdict"], "denied");
    assert_eq!(v["misses"][0]["policy"], "curl/httpbin-8080");
    insta_settings("explain").bind(|| {
        insta::assert_snapshot!("allowed", allowed.stdout);
        insta::assert_snapshot!("denied", denied.stdout);
        insta::assert_snapshot!("reach", reach.stdout);
        insta::assert_snapshot!("json-denied", json.stdout);
    });
}

#[test]
fn explain_json_has_no_duplicate_keys() {
    // JSON is YAML, and the YAML parser refuses duplicate keys where serde_json keeps one.
    for args in [
        vec![
            "explain",
            "example/mesh",
            "--from",
            "curl/curl",
            "--format",
            "json",
        ],
        vec![
            "explain",
            "example/mesh",
            "--from",
            "curl/curl",
            "--to",
            "httpbin.org:80",
            "--path",
            "/post",
            "--format",
            "json",
        ],
    ] {
        let run = egressc(&args);
        assert!(
            egressc::parse_documents(&run.stdout).is_ok(),
            "{args:?}: duplicate keys in\n{}",
            run.stdout
        );
    }
}

#[test]
fn audit_mode_is_a_verdict_of_its_own() {
    let mesh = "fixtures/bad-w0415-audit-identity";
    let to = [
        "explain",
        mesh,
        "--from",
        "curl/curl",
        "--to",
        "203.0.113.9:443",
    ];
    let run = egressc(&to);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("verdict:     audit — allowed in audit mode: would be denied because"),
        "{}",
        run.stdout
    );
    let cases = "cases:\n- {name: audited, from: curl/curl, to: '203.0.113.9:443', expect: audit}\n- {name: not denied, from: curl/curl, to: '203.0.113.9:443', expect: denied}\n";
    let run = egressc_stdin(&["test", "-", mesh], Some(cases.as_bytes()));
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("PASS audited"), "{}", run.stdout);
}

#[test]
fn replay_exits_5_when_a_connection_let_through_would_now_be_denied() {
    let log = "2026-12-03 00:00:00.000 [INF] {\"v\":1,\"egressc\":\"audit\",\"identity\":\"curl/curl\",\"destination\":\"203.0.113.9:443\",\"protocol\":\"tls\",\"sni\":\"api.example.com\",\"count\":2}\n\
[pod/p/egressc-sidecar] 2026-12-03T00:00:00Z {\"v\":1,\"egressc\":\"deny\",\"identity\":\"curl/curl\",\"destination\":\"203.0.113.10:5432\",\"protocol\":\"tcp\"}\n\
other output\n";
    // The audited identity still lets the first through: the second now widens, exit 0.
    let audit = ["test", "--replay", "-", "fixtures/bad-w0415-audit-identity"];
    let run = egressc_stdin(&audit, Some(log.as_bytes()));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("1 unchanged, 0 breaking, 1 widening, 0 undecidable"),
        "{}",
        run.stdout
    );
    // Inputs with errors: exit 1 before any replay.
    let broken = [
        "test",
        "--replay",
        "-",
        "fixtures/bad-e0325-enforcement-value",
    ];
    let run = egressc_stdin(&broken, Some(log.as_bytes()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The example mesh (passthrough off, no rule for that SNI): the audited one breaks, exit 5.
    let closed = ["test", "--replay", "-", "example/mesh", "--format", "json"];
    let run = egressc_stdin(&closed, Some(log.as_bytes()));
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    assert_eq!(doc["breaking"][0]["sni"], "api.example.com");
    assert_eq!(doc["breaking"][0]["count"], 2);
    assert_eq!(
        (doc["lines"].as_u64(), doc["ignored"].as_u64()),
        (Some(3), Some(1))
    );
    let missing = egressc(&[
        "test",
        "--replay",
        "/nonexistent.log",
        "fixtures/good-defaults",
    ]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

#[test]
fn suggest_closes_the_loop_that_replay_checks() {
    let log = "tests/replay/sample.log";
    let run = egressc(&["suggest", "--logs", log, "example/mesh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("4 policies suggested"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("  - api.example.com\n  - cdn.example.com\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  - 10.1.2.3/32\n"), "{}", run.stdout);
    assert!(run.stdout.contains("# suggested by egressc: covers 2 logged decision lines of curl/curl to port 443, first seen 2026-12-03T23:51:15.540, last seen 2026-12-03T23:52:15.540"), "{}", run.stdout);
    // Deterministic.
    assert_eq!(
        egressc(&["suggest", "--logs", log, "example/mesh"]).stdout,
        run.stdout
    );
    // The inputs with the suggestion: check accepts them, and the replay no longer breaks.
    let dir = example_with("suggest", &run.stdout);
    let with = dir.to_str().unwrap();
    assert_eq!(egressc(&["check", "--deny-warnings", with]).code, 0);
    assert_eq!(egressc(&["test", "--replay", log, "example/mesh"]).code, 5);
    let replay = egressc(&["test", "--replay", log, with]);
    assert_eq!(replay.code, 0, "{}", replay.stdout);
    assert!(replay.stdout.contains("0 breaking"), "{}", replay.stdout);
    let missing = egressc(&["suggest", "--logs", "/nonexistent.log", "example/mesh"]);
    assert_eq!(missing.code, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn suggest_routes_exact_writes_the_paths_seen() {
    let log = "tests/replay/routes.log";
    let run = egressc(&[
        "suggest",
        "--routes",
        "exact",
        "--logs",
        log,
        "example/mesh",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("kind: HTTPRouteGroup"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("pathRegex: /y/v1\\.2/items\n    methods:\n    - GET\n    - POST\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("pathRegex: /status/\\(x\\)\\+\n"),
        "{}",
        run.stdout
    );
    let dir = example_with("routes", &run.stdout);
    let with = dir.to_str().unwrap();
    assert_eq!(
        egressc(&["check", "--deny-warnings", "--allow", "N0002", with]).code,
        0
    );
    assert_eq!(egressc(&["test", "--replay", log, with]).code, 0);
    // Another path of the same host is not allowed by the exact routes.
    let other = "{\"v\":1,\"egressc\":\"audit\",\"identity\":\"curl/curl\",\"destination\":\"198.51.100.8:80\",\"protocol\":\"http\",\"host\":\"new.example.org\",\"method\":\"GET\",\"path\":\"/y/v1x2/items\"}\n";
    let run = egressc_stdin(&["test", "--replay", "-", with], Some(other.as_bytes()));
    assert_eq!(run.code, 5, "{}", run.stdout);
    std::fs::remove_dir_all(&dir).ok();
}

/// A scratch copy of the example mesh with `suggested` added as `suggested.yaml`.
fn example_with(name: &str, suggested: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("egressc-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&root().join("example/mesh"), &dir);
    std::fs::write(dir.join("suggested.yaml"), suggested).unwrap();
    dir
}
