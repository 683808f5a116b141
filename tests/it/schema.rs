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
