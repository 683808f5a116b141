//! `egressc check` on every fixture: expected codes at the right places, exit codes, and
//! snapshots of the diagnostics in human and JSON form.

use crate::support::*;
use serde_json::Value;

fn json_diags(run: &Run) -> Vec<Value> {
    match serde_json::from_str::<Value>(&run.stdout) {
        Ok(Value::Array(items)) => items,
        _ => panic!("not a JSON array:\n{}\n{}", run.stdout, run.stderr),
    }
}

fn place(d: &Value) -> String {
    match (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
        (Some(f), _, _) => f.to_owned(),
        _ => "-".to_owned(),
    }
}

#[test]
fn fixtures_report_expected_codes_at_expected_places() {
    let mut failures = Vec::new();
    let fixtures = fixtures();
    assert!(fixtures.len() > 1, "no fixtures found");
    for dir in fixtures {
        let inputs = fixture_inputs(&dir);
        let mut args = vec!["check", "--format", "json"];
        args.extend(inputs.iter().map(String::as_str));
        let run = egressc(&args);
        let diags = json_diags(&run);
        let errors = diags.iter().any(|d| d["severity"] == "error");
        let expect = std::fs::read_to_string(root().join(&dir).join("expect.txt"));
        match expect {
            Err(_) => {
                // A good fixture: no errors, exit 0.
                if errors || run.code != 0 {
                    failures.push(format!(
                        "{}: good fixture has errors (exit {}):\n{}",
                        dir.display(),
                        run.code,
                        run.stdout
                    ));
                }
            }
            Ok(text) => {
                let mut expects_error = false;
                for line in text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                {
                    let (code, at) = line.split_once(' ').unwrap_or((line, "-"));
                    expects_error |= code.starts_with('E');
                    let at = if at == "-" {
                        "-".to_owned()
                    } else {
                        format!("{}/{}", dir.display(), at.trim())
                    };
                    let found = diags.iter().any(|d| d["code"] == code && place(d) == at);
                    if !found {
                        let got: Vec<String> = diags
                            .iter()
                            .map(|d| format!("{} {}", d["code"].as_str().unwrap_or("?"), place(d)))
                            .collect();
                        failures.push(format!(
                            "{}: expected {code} at {at}; got {got:?}",
                            dir.display()
                        ));
                    }
                }
                let want = if expects_error { 1 } else { 0 };
                if run.code != want {
                    failures.push(format!(
                        "{}: exit {} (want {want})",
                        dir.display(),
                        run.code
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn snapshots_of_diagnostics() {
    insta_settings("check").bind(|| {
        insta::glob!("../../fixtures", "*", |path| {
            // The walk also yields the fixtures folder itself, and the diff pairs.
            let dir = path.strip_prefix(root()).expect("inside the repository");
            if dir == Path::new("fixtures") || is_diff_pairs(dir) {
                return;
            }
            if !path.is_dir() {
                return;
            }

            let inputs = fixture_inputs(dir);
            let mut args = vec!["check", "--color", "never"];
            args.extend(inputs.iter().map(String::as_str));
            let human = egressc(&args);
            insta::assert_snapshot!("human", human.stderr);
            args[1] = "--format";
            args[2] = "json";
            let json = egressc(&args);
            insta::assert_snapshot!("json", json.stdout);
        });
    });
}

#[test]
fn sarif_has_rules_results_and_regions() {
    let run = egressc(&[
        "check",
        "--format",
        "sarif",
        "fixtures/bad-e0301-port-range",
    ]);
    assert_eq!(run.code, 1);
    let doc: Value = serde_json::from_str(&run.stdout).expect("sarif is JSON");
    assert_eq!(doc["version"], "2.1.0");
    let run0 = &doc["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "egressc");
    let results = run0["results"].as_array().expect("results");
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "E0301")
        .expect("E0301 result");
    assert_eq!(r["level"], "error");
    let region = &r["locations"][0]["physicalLocation"]["region"];
    assert!(region["startLine"].as_u64().unwrap() > 0);
    let idx = r["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run0["tool"]["driver"]["rules"][idx]["id"], "E0301");
    insta_settings("check")
        .bind(|| insta::assert_snapshot!("sarif@bad-e0301-port-range", run.stdout));
}

#[test]
fn exit_codes() {
    assert_eq!(egressc(&["check", "example/mesh"]).code, 0);
    let missing = egressc(&["check", "fixtures/does-not-exist.yaml"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("E0001"));
    assert_eq!(egressc(&["check"]).code, 2, "no input is a usage error");
    assert_eq!(
        egressc(&["check", "--allow", "E0301", "fixtures/fsm-docs"]).code,
        2
    );
    assert_eq!(
        egressc(&["check", "--allow", "W9999", "fixtures/fsm-docs"]).code,
        2
    );
    assert_eq!(egressc(&["check", "--bogus"]).code, 2);
    let v = egressc(&["--version"]);
    assert_eq!(v.code, 0);
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn warnings_pass_unless_denied_and_can_be_allowed() {
    let dir = "fixtures/bad-w0403-open-port";
    assert_eq!(egressc(&["check", dir]).code, 0);
    assert_eq!(egressc(&["check", "--deny-warnings", dir]).code, 1);
    let allowed = egressc(&[
        "check",
        "--deny-warnings",
        "--allow",
        "W0403",
        "--format",
        "json",
        dir,
    ]);
    assert!(!allowed.stdout.contains("W0403"), "{}", allowed.stdout);
}

#[test]
fn color_is_off_for_pipes_and_on_when_asked() {
    let args = ["check", "fixtures/bad-e0301-port-range"];
    assert!(!egressc(&args).stderr.contains('\x1b'));
    let mut always = vec!["check", "--color", "always"];
    always.extend(&args[1..]);
    assert!(egressc(&always).stderr.contains('\x1b'));
}

#[test]
fn stdin_is_read_for_dash() {
    let text = std::fs::read(root().join("fixtures/fsm-docs/egress-https.yaml")).unwrap();
    let run = egressc_stdin(&["check", "--format", "json", "-"], Some(&text));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bad = b"apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: x}\nspec:\n  sources: []\n  ports: [{number: 0, protocol: tcp}]\n";
    let run = egressc_stdin(&["check", "--format", "json", "-"], Some(bad));
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("\"file\": \"<stdin>\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("E0301"));
}

#[test]
fn closed_stdout_is_not_a_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // Many diagnostics, and a reader that stops after a few bytes, as `| head -c 10` does.
    let mut doc = String::new();
    for i in 0..3000 {
        doc.push_str(&format!(
            "---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e{i}}}\nspec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: b}}]\n  ports: [{{number: 70000, protocol: tcp}}]\n"
        ));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["check", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(doc.as_bytes()).unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 10];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn readme_code_tables_are_generated_from_the_code_table() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let tables = egressc::readme_tables();
    assert!(
        readme.contains(&tables),
        "README's code tables differ from the code table in src/diagnostics/codes.rs; they should read:\n{tables}"
    );
}

#[test]
fn every_code_has_a_fixture() {
    let mut missing = Vec::new();
    for code in egressc::Code::ALL.iter().map(|c| c.as_str()) {
        if code == "E0001" {
            continue; // an unreadable file: covered by `exit_codes`
        }
        let has = fixtures().iter().any(|d| {
            std::fs::read_to_string(root().join(d).join("expect.txt"))
                .is_ok_and(|t| t.lines().any(|l| l.split_whitespace().next() == Some(code)))
        });
        if !has {
            missing.push(code);
        }
    }
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

fn scratch(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("egressc-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn walked_links_are_followed_inside_the_inputs_and_refused_outside_or_in_loops() {
    let dir = scratch("links");
    let policy = root().join("fixtures/good-defaults/egress.yaml");
    std::fs::copy(&policy, dir.join("egress.yaml")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    // A link inside the input: followed (the policy is read once, not twice).
    std::os::unix::fs::symlink("../egress.yaml", dir.join("sub/again.yaml")).unwrap();
    let run = egressc(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("E0311"), "{}", run.stdout);
    // A loop of folder links.
    std::os::unix::fs::symlink("..", dir.join("sub/loop")).unwrap();
    let run = egressc(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("E0107"), "{}", run.stdout);
    std::fs::remove_file(dir.join("sub/loop")).unwrap();
    // A link to a file outside every input.
    std::os::unix::fs::symlink(&policy, dir.join("outside.yaml")).unwrap();
    let run = egressc(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("E0107"), "{}", run.stdout);
    // Named as an input, the same file is read once: no "defined twice".
    let file = dir.join("egress.yaml");
    let run = egressc(&[
        "check",
        "--format",
        "json",
        file.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inputs_over_the_size_limit_are_errors_not_hangs() {
    let run = egressc(&["check", "--max-input-mib", "1", "/dev/zero"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("E0002"), "{}", run.stderr);
    let big = vec![b'#'; (1 << 20) + 10];
    let run = egressc_stdin(&["check", "--max-input-mib", "1", "-"], Some(&big));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("E0002"), "{}", run.stderr);
}

#[test]
fn explain_and_test_refuse_malformed_questions() {
    for from in ["Curl/Curl", "*/*", "curl/curl ", "curl", "a/b/c"] {
        let run = egressc(&["explain", "example/mesh", "--from", from]);
        assert_eq!(run.code, 2, "--from {from:?}: {}", run.stderr);
    }
    let run = egressc(&[
        "explain",
        "example/mesh",
        "--from",
        "curl/curl",
        "--format",
        "sarif",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let bad_via =
        "cases:\n- {name: x, from: curl/curl, to: httpbin.org:80, expect: allowed, via: tunnel}\n";
    let run = egressc_stdin(&["test", "-", "example/mesh"], Some(bad_via.as_bytes()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let bad_expect = "cases:\n- {name: x, from: curl/curl, to: httpbin.org:80, expect: ok}\n";
    let run = egressc_stdin(&["test", "-", "example/mesh"], Some(bad_expect.as_bytes()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let bad_from = "cases:\n- {name: x, from: Curl/curl, to: httpbin.org:80, expect: denied}\n";
    let run = egressc_stdin(&["test", "-", "example/mesh"], Some(bad_from.as_bytes()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let good = "cases:\n- {name: x, from: curl/curl, to: 127.0.0.1:80, expect: not-intercepted}\n";
    let run = egressc_stdin(&["test", "-", "example/mesh"], Some(good.as_bytes()));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/sarif/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    for dir in [
        "fixtures/bad-e0301-port-range",
        "fixtures/bad-e0107-link-outside",
        "example/mesh",
    ] {
        let run = egressc(&["check", "--format", "sarif", dir]);
        let doc: Value = serde_json::from_str(&run.stdout).expect("SARIF is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{dir}: {errors:?}");
        assert_eq!(doc["runs"][0]["columnKind"], "unicodeCodePoints");
    }
    // Names are URI references: a space or `<` is percent-encoded.
    let run = egressc_stdin(&["check", "--format", "sarif", "-"], Some(b"kind: [\n"));
    assert!(run.stdout.contains("%3Cstdin%3E"), "{}", run.stdout);
}
