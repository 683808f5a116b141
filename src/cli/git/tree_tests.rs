use super::*;

fn listing(entries: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, kind, oid, path) in entries {
        out.extend_from_slice(format!("{mode} {kind} {oid}\t{path}").as_bytes());
        out.push(0);
    }
    out
}

fn tree(entries: &[(&str, &str, &str, &str)]) -> Tree {
    Tree::parse(&listing(entries)).expect("a safe tree")
}

/// Link targets: the blob id of a link is its target here.
fn targets(oid: &str) -> Result<String, String> {
    Ok(oid.to_owned())
}

#[test]
fn duplicate_conflicting_and_unsafe_paths_are_refused() {
    let (m, k) = ("100644", "blob");
    let dup = listing(&[
        ("120000", "blob", "/etc", "deploy/mesh.yaml"),
        (m, k, "a", "deploy/mesh.yaml"),
    ]);
    let err = Tree::parse(&dup).unwrap_err();
    assert!(
        err.contains("two entries named `deploy/mesh.yaml`"),
        "{err}"
    );
    let conflict = listing(&[(m, k, "a", "deploy"), (m, k, "b", "deploy/x.yaml")]);
    assert!(
        Tree::parse(&conflict)
            .unwrap_err()
            .contains("a file and a folder")
    );
    for bad in [
        "../x.yaml",
        "/etc/x.yaml",
        "a//b.yaml",
        "a/./b.yaml",
        "a/../b",
    ] {
        let err = Tree::parse(&listing(&[(m, k, "a", bad)])).unwrap_err();
        assert!(err.contains("unsafe path"), "{bad}: {err}");
    }
}

#[test]
fn links_are_followed_inside_the_tree_and_never_out_of_it() {
    let t = tree(&[
        ("100644", "blob", "f1", "real/mesh.yaml"),
        ("120000", "blob", "real", "deploy"),
        ("120000", "blob", "../../etc/passwd", "real/up.yaml"),
        ("120000", "blob", "/etc/passwd", "abs.yaml"),
        ("120000", "blob", "loop.yaml", "loop.yaml"),
        ("160000", "commit", "c1", "vendor/policies"),
    ]);
    let mut read = targets;
    assert_eq!(
        t.resolve("deploy/mesh.yaml", &mut read).unwrap(),
        Resolved::File {
            oid: "f1".into(),
            real: "real/mesh.yaml".into()
        }
    );
    assert_eq!(
        t.resolve("deploy", &mut read).unwrap(),
        Resolved::Dir("real".into())
    );
    assert_eq!(t.resolve("nothing", &mut read).unwrap(), Resolved::Missing);
    assert!(
        t.resolve("real/up.yaml", &mut read)
            .unwrap_err()
            .contains("outside")
    );
    assert!(
        t.resolve("abs.yaml", &mut read)
            .unwrap_err()
            .contains("absolute")
    );
    assert!(
        t.resolve("loop.yaml", &mut read)
            .unwrap_err()
            .contains("loop")
    );
    assert_eq!(
        t.resolve("vendor/policies/a.yaml", &mut read).unwrap(),
        Resolved::Submodule("vendor/policies".into())
    );
}

#[test]
fn the_selection_is_what_the_walker_reads() {
    let t = tree(&[
        ("100644", "blob", "m", "deploy/mesh.yaml"),
        ("100644", "blob", "r", "deploy/README.md"),
        ("100644", "blob", "h", "deploy/.hidden/x.yaml"),
        ("100644", "blob", "e", "deploy/egress/a.yml"),
        ("120000", "blob", "mesh.yaml", "deploy/again.yaml"),
        ("120000", "blob", "../shared", "deploy/shared"),
        ("100644", "blob", "s", "shared/s.yaml"),
        ("100644", "blob", "x", "other/explicit.txt"),
    ]);
    let inputs = vec![
        ("deploy".to_owned(), "deploy".to_owned()),
        ("x.txt".to_owned(), "other/explicit.txt".to_owned()),
        ("gone".to_owned(), "gone".to_owned()),
    ];
    // `deploy/shared` leads outside the inputs: refused, as E0107 is on disk.
    let err = select(&t, &inputs, &mut targets).unwrap_err();
    assert!(err.contains("`deploy/shared` is a link"), "{err}");
    let mut with_shared = inputs.clone();
    with_shared.push(("shared".to_owned(), "shared".to_owned()));
    let s = select(&t, &with_shared[1..], &mut targets).unwrap();
    assert_eq!(s.missing, vec!["gone".to_owned()]);
    let s = select(&t, &with_shared, &mut targets).unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<(&str, &str)> = s
        .files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("deploy/egress/a.yml", "e"),
            ("deploy/mesh.yaml", "m"),
            ("shared/s.yaml", "s"),
            ("x.txt", "x"),
        ]
    );
}

#[test]
fn a_submodule_at_or_under_an_input_is_an_error() {
    let t = tree(&[
        ("160000", "commit", "c1", "deploy/vendor"),
        ("100644", "blob", "m", "deploy/mesh.yaml"),
    ]);
    let at = |p: &str| vec![(p.to_owned(), p.to_owned())];
    let err = select(&t, &at("deploy/vendor"), &mut targets).unwrap_err();
    assert!(err.contains("submodule"), "{err}");
    let err = select(&t, &at("deploy"), &mut targets).unwrap_err();
    assert!(err.contains("`deploy/vendor` is a submodule"), "{err}");
}
