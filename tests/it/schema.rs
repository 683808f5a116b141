//! The committed schemas are what `egressc schema` generates, and they accept the good fixtures.

use crate::support::*;

#[test]
fn committed_schemas_are_fresh() {
    let dir = root().join("schemas");
    let mut stale = Vec::new();
    let files = egressc::schema_files();
    for (name, text) in &files {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(on_disk) if on_disk == *text => {}
            _ => stale.push(name.clone()),
        }
    }
    let on_disk = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert!(
        stale.is_empty() && on_disk == files.len(),
        "schemas/ is stale ({stale:?}); run `cargo run -- schema -o schemas`"
    );
}

#[test]
fn schema_subcommand_writes_the_same_files() {
    let tmp = std::env::temp_dir().join(format!("egressc-schema-{}", std::process::id()));
    let run = egressc(&["schema", "-o", tmp.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (name, text) in egressc::schema_files() {
        assert_eq!(
            std::fs::read_to_string(tmp.join(&name)).unwrap(),
            text,
            "{name}"
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
    let combined = egressc(&["schema"]);
    assert!(combined.stdout.contains("\"allOf\""));
}

#[test]
fn combined_schema_accepts_good_documents_and_rejects_typos() {
    let files = egressc::schema_files();
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == "egressc.schema.json")
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("combined schema compiles");
    let mut n = 0;
    for e in std::fs::read_dir(root().join("fixtures/fsm-docs")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for json in egressc::yaml_as_json(&text).expect("the fixture parses") {
            assert!(validator.is_valid(&json), "{json}");
            n += 1;
        }
    }
    assert!(n > 3, "only {n} documents");
    let typo = serde_json::json!({
        "apiVersion": "policy.flomesh.io/v1alpha1", "kind": "Egress",
        "metadata": {"name": "x"},
        "spec": {"sources": [], "ports": [], "ipAdresses": ["10.0.0.0/8"]}
    });
    assert!(!validator.is_valid(&typo));
    let other = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "anything": 1});
    assert!(validator.is_valid(&other));
}

/// A committed output schema, compiled.
fn output_validator(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas").join(name)).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `doc` is valid against `validator`, with every error shown when it is not.
fn assert_valid(validator: &jsonschema::Validator, doc: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

fn stdout_json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

#[test]
fn check_json_output_matches_its_schema() {
    let v = output_validator("check.schema.json");
    let mut diagnostics = 0;
    for dir in fixtures() {
        let mut args = vec!["check", "--format", "json"];
        let inputs = fixture_inputs(&dir);
        args.extend(inputs.iter().map(String::as_str));
        let run = egressc(&args);
        let doc = stdout_json(&run);
        diagnostics += doc.as_array().map_or(0, Vec::len);
        assert_valid(&v, &doc, &dir.display().to_string());
    }
    assert!(diagnostics > 40, "only {diagnostics} diagnostics");
    // Not vacuous: a diagnostic without its code, or with a field of its own, is refused.
    let bad = serde_json::json!([{"severity": "error", "file": null, "line": null, "column": null, "message": "m", "help": null}]);
    assert!(!v.is_valid(&bad));
    let extra = serde_json::json!([{"code": "E0001", "severity": "error", "file": null, "line": null, "column": null, "message": "m", "help": null, "x": 1}]);
    assert!(!v.is_valid(&extra));
}

#[test]
fn diff_json_output_matches_its_schema() {
    let v = output_validator("diff.schema.json");
    let mut entries = 0;
    for e in std::fs::read_dir(root().join("fixtures/diff")).unwrap() {
        let pair = e.unwrap().path();
        let rel = |side: &str| {
            pair.join(side)
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        let (base, head) = (rel("base"), rel("head"));
        let run = egressc(&["diff", "--base", &base, "--head", &head, "--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let doc = stdout_json(&run);
        entries += doc["entries"].as_array().map_or(0, Vec::len);
        assert_valid(&v, &doc, &pair.display().to_string());
    }
    assert!(entries > 30, "only {entries} entries");
    let bad = serde_json::json!({"summary": {}, "widens": true, "changed": true, "entries": []});
    assert!(!v.is_valid(&bad));
}

#[test]
fn test_json_output_matches_its_schema() {
    let v = output_validator("test.schema.json");
    let run = egressc(&[
        "test",
        "example/cases.yaml",
        "example/mesh/",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = stdout_json(&run);
    assert!(doc["passed"].as_u64().unwrap() > 3, "{doc}");
    assert_valid(&v, &doc, "test --format json");
}

#[test]
fn explain_test_and_diff_write_the_error_document_when_the_inputs_stop_them() {
    let v = output_validator("error.schema.json");
    let bad = "fixtures/bad-e0302-protocol";
    let good = "example/mesh/";
    let runs = [
        egressc(&["explain", bad, "--from", "a/b", "--format", "json"]),
        egressc(&["test", "example/cases.yaml", bad, "--format", "json"]),
        egressc(&["diff", "--base", good, "--head", bad, "--format", "json"]),
    ];
    for run in &runs {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("E0302"), "{}", run.stderr);
        let doc = stdout_json(run);
        assert_eq!(doc["error"], "input-errors", "{doc}");
        assert!(
            doc["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["code"] == "E0302"),
            "{doc}"
        );
        assert_valid(&v, &doc, &run.stderr);
    }
    // diff says which side each diagnostic is on.
    let sides: Vec<&str> = runs[2].stdout.matches("\"side\": \"head\"").collect();
    assert!(!sides.is_empty(), "{}", runs[2].stdout);
    // Unreadable input.
    let run = egressc(&[
        "explain",
        "no/such/file.yaml",
        "--from",
        "a/b",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = stdout_json(&run);
    assert_eq!(doc["error"], "unreadable-input", "{doc}");
    assert_valid(&v, &doc, "unreadable");
}
