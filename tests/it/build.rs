//! `egressc build`: the output tree of every good fixture (snapshots, output schema,
//! determinism), `--check`, and the writer's safety rules.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn good_fixtures() -> Vec<PathBuf> {
    fixtures()
        .into_iter()
        .filter(|d| !root().join(d).join("expect.txt").exists())
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("egressc-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn input_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root()).unwrap().to_path_buf();
            if p.is_dir() {
                walk(&rel, out);
            } else if p
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    walk(dir, &mut files);
    files
}

fn build(inputs: &[String], out: &Path) -> Run {
    build_with(inputs, out, &[])
}

fn build_with(inputs: &[String], out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "-o", out.to_str().unwrap()];
    args.extend(extra);
    args.extend(inputs.iter().map(String::as_str));
    egressc(&args)
}

/// The determinism test's builds also write the optional objects (every object is covered).
const EVERY_OBJECT: [&str; 3] = [
    "--grafana-dashboard",
    "--pin-egress",
    "--gateway-replicas=3",
];

#[test]
fn good_fixtures_build_and_check_clean_and_match_snapshots() {
    let config_schema =
        jsonschema::validator_for(&sidecar_config_schema()).expect("config schema compiles");
    assert!(good_fixtures().len() >= 3);
    insta_settings("build").bind(|| {
        insta::glob!("../../fixtures", "*", |path| {
            // The walk also yields the fixtures folder itself, and the diff pairs.
            let dir = path.strip_prefix(root()).expect("inside the repository");
            if dir == Path::new("fixtures") || is_diff_pairs(dir) {
                return;
            }
            if !path.is_dir() || path.join("expect.txt").exists() {
                return;
            }

            build_and_snapshot(dir, &config_schema);
        });
    });
}

/// Build one good fixture, check that `--check` finds it fresh and that every config matches
/// the output schema, and snapshot every file of the tree.
fn build_and_snapshot(dir: &Path, config_schema: &jsonschema::Validator) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = tmp(&format!("good-{name}"));
    let inputs = vec![dir.to_string_lossy().into_owned()];
    let run = build(&inputs, &out);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    let mut args = vec!["build", "--check", "-o", out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    let check = egressc(&args);
    assert_eq!(
        check.code, 0,
        "{name}: fresh output is stale: {}",
        check.stdout
    );
    for (path, bytes) in &read_tree(&out) {
        let text = String::from_utf8(bytes.clone()).unwrap();
        if path.starts_with("configs/") || path == "sidecar/config.json" {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let errors: Vec<String> = config_schema
                .iter_errors(&json)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{name}/{path} does not match the config schema: {errors:?}"
            );
        }
        insta::assert_snapshot!(path.replace('/', "__"), text);
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn output_is_identical_for_any_input_order_and_for_stdin() {
    for dir in good_fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files = input_files(&dir);
        let forward = tmp(&format!("fwd-{name}"));
        assert_eq!(build_with(&files, &forward, &EVERY_OBJECT).code, 0);
        let reference = read_tree(&forward);

        let mut reversed = files.clone();
        reversed.reverse();
        let mut shuffled = files.clone();
        // A fixed permutation: rotate, then swap pairs.
        shuffled.rotate_left(files.len() / 2);
        for pair in shuffled.chunks_mut(2) {
            pair.reverse();
        }
        for (label, order) in [("reversed", reversed), ("shuffled", shuffled)] {
            let out = tmp(&format!("{label}-{name}"));
            assert_eq!(build_with(&order, &out, &EVERY_OBJECT).code, 0);
            assert_eq!(
                read_tree(&out),
                reference,
                "{name}: {label} order changed the output"
            );
            std::fs::remove_dir_all(&out).ok();
        }

        // All documents concatenated into one stdin stream, in reverse file order.
        let mut stream = Vec::new();
        for f in files.iter().rev() {
            stream.extend_from_slice(b"---\n");
            stream.extend(std::fs::read(root().join(f)).unwrap());
            stream.push(b'\n');
        }
        let out = tmp(&format!("stdin-{name}"));
        let mut args = vec!["build", "-o", out.to_str().unwrap(), "-"];
        args.extend(EVERY_OBJECT);
        let run = egressc_stdin(&args, Some(&stream));
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mut got = read_tree(&out);
        let mut want = reference.clone();
        got.remove("manifest.json");
        want.remove("manifest.json");
        assert_eq!(got, want, "{name}: stdin stream changed the output");
        std::fs::remove_dir_all(&out).ok();
        std::fs::remove_dir_all(&forward).ok();
    }
}

#[test]
fn check_reports_stale_files_after_an_edit() {
    let work = tmp("edit-inputs");
    std::fs::create_dir_all(&work).unwrap();
    for f in input_files(Path::new("fixtures/fsm-docs")) {
        let p = root().join(&f);
        std::fs::copy(&p, work.join(p.file_name().unwrap())).unwrap();
    }
    let out = tmp("edit-out");
    let inputs = vec![work.to_string_lossy().into_owned()];
    assert_eq!(build(&inputs, &out).code, 0);
    let egress = work.join("egress-https.yaml");
    let text = std::fs::read_to_string(&egress)
        .unwrap()
        .replace("- httpbin.org", "- api.github.com");
    std::fs::write(&egress, text).unwrap();
    let run = egressc(&[
        "build",
        "--check",
        "-o",
        out.to_str().unwrap(),
        work.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("changed  configs/curl/curl.json"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("changed  manifest.json"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("sidecar/mesh.json"), "{}", run.stderr);
    // With --format json, stdout holds only the diagnostics' JSON.
    let json = egressc(&[
        "build",
        "--check",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
        work.to_str().unwrap(),
    ]);
    assert_eq!(json.code, 3);
    serde_json::from_str::<serde_json::Value>(&json.stdout).expect("only JSON on stdout");
    // Rebuilding over the previous output (unchanged files are linked from it) gives the new
    // content and keeps the unchanged.
    let before_mesh = std::fs::read(out.join("sidecar/mesh.json")).unwrap();
    assert_eq!(build(&inputs, &out).code, 0);
    let config = std::fs::read_to_string(out.join("configs/curl/curl.json")).unwrap();
    assert!(
        config.contains("api.github.com") && !config.contains("\"httpbin.org\": ["),
        "{config}"
    );
    assert_eq!(
        std::fs::read(out.join("sidecar/mesh.json")).unwrap(),
        before_mesh
    );
    let recheck = egressc(&[
        "build",
        "--check",
        "-o",
        out.to_str().unwrap(),
        work.to_str().unwrap(),
    ]);
    assert_eq!(recheck.code, 0, "{}", recheck.stdout);
    std::fs::remove_dir_all(&work).ok();
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn failed_build_leaves_previous_output_untouched() {
    let out = tmp("keep");
    assert_eq!(build(&["fixtures/fsm-docs".into()], &out).code, 0);
    let before = read_tree(&out);
    let run = build(&["fixtures/bad-e0301-port-range".into()], &out);
    assert_eq!(run.code, 1);
    assert_eq!(read_tree(&out), before);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn refuses_to_replace_a_folder_it_did_not_write() {
    let out = tmp("foreign");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("precious.txt"), "keep me").unwrap();
    let run = build(&["fixtures/fsm-docs".into()], &out);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not written by egressc"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("precious.txt")).unwrap(),
        "keep me"
    );
    // An empty folder is fine, and so is rebuilding over our own output.
    std::fs::remove_file(out.join("precious.txt")).unwrap();
    assert_eq!(build(&["fixtures/fsm-docs".into()], &out).code, 0);
    assert_eq!(build(&["fixtures/fsm-docs".into()], &out).code, 0);
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!(
                ".{}.egressc-",
                out.file_name().unwrap().to_string_lossy()
            ))
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary folders left behind");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn hostile_names_never_escape_the_output_directory() {
    // Names are validated before anything is written: `..` and `/` in a namespace are errors.
    let doc = b"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: ../../etc}\n";
    let out = tmp("hostile");
    let run = egressc_stdin(&["build", "-o", out.to_str().unwrap(), "-"], Some(doc));
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("E0310"));
    assert!(!out.exists());
}

#[test]
fn scripts_are_the_same_bytes_for_every_input_and_pass_a_syntax_check() {
    let mut seen: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for dir in good_fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = tmp(&format!("scripts-{name}"));
        assert_eq!(build(&[dir.to_string_lossy().into_owned()], &out).code, 0);
        for (path, bytes) in read_tree(&out) {
            if !path.ends_with(".js") && !path.ends_with(".sh") {
                continue;
            }
            match seen.get(&path) {
                Some((first, b)) => {
                    assert!(b == &bytes, "{path} differs between {first} and {name}")
                }
                None => {
                    let checked = if path.ends_with(".sh") {
                        sh_check(&bytes)
                    } else {
                        node_check(&bytes)
                    };
                    if let Some(Err(e)) = checked {
                        panic!("{path}: {e}");
                    }
                    seen.insert(path, (name.clone(), bytes));
                }
            }
        }
        std::fs::remove_dir_all(&out).ok();
    }
    assert!(
        seen.contains_key("sidecar/main.js")
            && seen.contains_key("gateway/main.js")
            && seen.contains_key("iptables/init.sh"),
        "{:?}",
        seen.keys()
    );
}

/// `sh -n` on a shell script: `None` where there is no `sh` (off Unix).
fn sh_check(bytes: &[u8]) -> Option<Result<(), String>> {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// `sh init.sh` with stand-ins for `iptables-restore` and `ip6tables-restore` that record
/// what they are given: the rules the init container would apply, without root. `None` where
/// there is no `sh`.
fn run_init_sh(out: &Path, resolv_conf: &str) -> Option<(bool, String, String)> {
    run_init_sh_with(out, resolv_conf, &[])
}

/// [`run_init_sh`] with more environment (the downward API's addresses).
fn run_init_sh_with(
    out: &Path,
    resolv_conf: &str,
    env: &[(&str, &str)],
) -> Option<(bool, String, String)> {
    let bin = out.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = out.join("restored.txt");
    let _ = std::fs::remove_file(&log);
    for tool in ["iptables-restore", "ip6tables-restore"] {
        if bin.join(tool).exists() {
            continue; // a test's own stand-in
        }
        let fake = format!(
            "#!/bin/sh\necho \"== {tool} $*\" >>'{}'\ncat >>'{}'\n",
            log.display(),
            log.display()
        );
        std::fs::write(bin.join(tool), fake).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
    }
    std::fs::write(out.join("resolv.conf"), resolv_conf).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = std::process::Command::new("sh")
        .arg(out.join("iptables/init.sh"))
        .env("PATH", path)
        .env("EGRESSC_RESOLV_CONF", out.join("resolv.conf"))
        .envs(env.iter().copied())
        .output()
        .ok()?;
    let restored = std::fs::read_to_string(&log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    Some((run.status.success(), restored, stderr))
}

#[test]
fn init_sh_adds_the_pods_nameservers_only_when_the_build_names_no_resolver() {
    let resolv = "search ns.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 010.0.0.1\n\
                  nameserver 1.2.3.256\nnameserver fd00::10\nnameserver 10.0.0.2;x\n\
                  options ndots:5\nnameserver 192.168.1.1";
    let input = "fixtures/e2e-mesh".to_owned();
    let out = tmp("init-sh");
    assert_eq!(build(std::slice::from_ref(&input), &out).code, 0);
    let Some((ok, restored, stderr)) = run_init_sh(&out, resolv) else {
        return skip("build", "init.sh", "there is no sh");
    };
    assert!(ok, "{stderr}");
    let rules = std::fs::read_to_string(out.join("iptables/outbound.rules")).unwrap();
    // The rule files as they are, then exactly the two valid IPv4 nameservers, UDP and TCP.
    assert!(restored.contains(&rules), "{restored}");
    let added: Vec<&str> = restored
        .lines()
        .filter(|l| {
            (l.starts_with("-I EGRESSC_PROXY_DNS ") || l.starts_with("-A EGRESSC_PROXY_DNS_TCP "))
                && l.contains("/32")
        })
        .collect();
    assert_eq!(
        added,
        [
            "-I EGRESSC_PROXY_DNS 1 -d 10.96.0.10/32 -p udp -j RETURN",
            "-I EGRESSC_PROXY_DNS 1 -d 192.168.1.1/32 -p udp -j RETURN",
            "-A EGRESSC_PROXY_DNS_TCP -d 10.96.0.10/32 -p tcp -j ACCEPT",
            "-A EGRESSC_PROXY_DNS_TCP -d 192.168.1.1/32 -p tcp -j ACCEPT",
        ],
        "{restored}"
    );
    assert_eq!(
        stderr.matches("skipped a nameserver").count(),
        3,
        "{stderr}"
    );
    // The IPv6 nameserver, where the machine has IPv6 (as a pod would).
    if Path::new("/proc/net/if_inet6").exists() {
        let v6 = "== ip6tables-restore --noflush\n*filter\n-I EGRESSC_PROXY_DNS 1 -d fd00::10/128 -j RETURN\nCOMMIT\n";
        assert!(restored.contains(v6), "{restored}");
        assert!(
            stderr.contains("DNS may reach the 3 nameserver(s)"),
            "{stderr}"
        );
    } else {
        assert!(
            stderr.contains("DNS may reach the 2 nameserver(s)"),
            "{stderr}"
        );
    }

    // With --dns the rules name the resolvers and init.sh adds nothing, whatever resolv.conf says.
    let named = tmp("init-sh-named");
    let mut args = vec!["build", "--dns", "10.9.9.9", "-o", named.to_str().unwrap()];
    args.push(&input);
    assert_eq!(egressc(&args).code, 0);
    let (ok, restored, stderr) = run_init_sh(&named, resolv).unwrap();
    assert!(ok, "{stderr}");
    assert!(!restored.contains("10.96.0.10"), "{restored}");
    assert!(restored.contains("-A EGRESSC_PROXY_DNS -d 10.9.9.9/32 -p udp -j RETURN"));
    assert!(restored.contains("-A EGRESSC_PROXY_DNS_TCP -d 10.9.9.9/32 -p tcp -j ACCEPT"));

    // No nameserver at all: no DNS leaves, and it says so; a failing restore fails the script.
    let (ok, restored, stderr) = run_init_sh(&out, "options ndots:5\n").unwrap();
    assert!(ok && stderr.contains("no DNS leaves this pod"), "{stderr}");
    assert_eq!(
        restored.matches("== iptables-restore").count(),
        1,
        "{restored}"
    );
    std::fs::write(out.join("fake-bin/iptables-restore"), "#!/bin/sh\nexit 2\n").unwrap();
    let (ok, _, stderr) = run_init_sh(&out, resolv).unwrap();
    assert!(
        !ok && !stderr.contains("applied outbound.rules")
            && stderr.contains("iptables-restore could not apply"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&named).ok();
}

#[test]
fn init_sh_refuses_a_pod_on_the_nodes_network_before_applying_anything() {
    let out = tmp("init-sh-host");
    assert_eq!(build(&["fixtures/e2e-mesh".to_owned()], &out).code, 0);
    let resolv = "nameserver 10.96.0.10\n";
    let host = [
        ("EGRESSC_POD_IP", "10.0.0.5"),
        ("EGRESSC_HOST_IP", "10.0.0.5"),
    ];
    let Some((ok, restored, stderr)) = run_init_sh_with(&out, resolv, &host) else {
        return skip("build", "init.sh", "there is no sh");
    };
    assert!(!ok, "{stderr}");
    assert!(restored.is_empty(), "applied before refusing: {restored}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("hostNetwork"), "{stderr}");
    // A pod of its own network, and a namespace without the downward API: applied.
    for env in [
        &[
            ("EGRESSC_POD_IP", "10.244.1.7"),
            ("EGRESSC_HOST_IP", "10.0.0.5"),
        ][..],
        &[],
    ] {
        let (ok, restored, stderr) = run_init_sh_with(&out, resolv, env).unwrap();
        assert!(ok && restored.contains("== iptables-restore"), "{stderr}");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// `node --check` on a script (read as an ES module from stdin, as Pipy reads it): `None`
/// (said on stderr, once) when there is no node to run; else what node said of a broken one.
/// (With `EGRESSC_PIPY`, the e2e suite loads every script in Pipy itself.)
fn node_check(bytes: &[u8]) -> Option<Result<(), String>> {
    use std::io::Write;
    static MISSING: std::sync::Once = std::sync::Once::new();
    let child = std::process::Command::new("node")
        .args(["--check", "--input-type=module"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            MISSING.call_once(|| {
                skip(
                    "build",
                    "the JavaScript syntax check",
                    &format!("cannot run `node` ({e})"),
                )
            });
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[test]
fn syntax_check_rejects_a_broken_script() {
    match node_check(b"var x = [1, 2}") {
        None => {}
        Some(result) => assert!(result.is_err(), "node --check accepted a broken script"),
    }
    if let Some(result) = node_check(b"var x = [1, 2];") {
        assert_eq!(result, Ok(()), "node --check refused a good script");
    }
}

#[test]
fn hostile_strings_stay_json_data() {
    let out = tmp("hostile-strings");
    assert_eq!(
        build(&["fixtures/good-hostile-strings".into()], &out).code,
        0
    );
    let config = std::fs::read_to_string(out.join("configs/hostile/app.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&config).unwrap();
    // The hostile match name reaches the config intact, as JSON data.
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    strings(&json, &mut all);
    let hostile = "#q'\"`${x}`*/</script>\nalert(1)";
    assert!(all.iter().any(|s| s.ends_with(hostile)), "{all:?}");
    for script in [
        "sidecar/main.js",
        "sidecar/decide.js",
        "sidecar/rules.js",
        "sidecar/clock.js",
        "sidecar/files.js",
    ] {
        let text = std::fs::read_to_string(out.join(script)).unwrap();
        assert!(
            !text.contains("</script>") && !text.contains("alert(1)"),
            "{script}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
}

fn sidecar_config_schema() -> serde_json::Value {
    let files = egressc::schema_files();
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == "sidecar-config.schema.json")
        .expect("the sidecar config schema");
    serde_json::from_str(text).expect("schema is JSON")
}

#[test]
fn an_output_inside_an_input_folder_is_never_read_back() {
    let dir = tmp("out-inside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("fixtures/good-defaults/egress.yaml"),
        dir.join("egress.yaml"),
    )
    .unwrap();
    let out = dir.join("out");
    let inputs = vec![dir.to_string_lossy().into_owned()];
    for _ in 0..2 {
        let run = build(&inputs, &out);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stderr.contains("N0001"), "{}", run.stderr);
    }
    let mut args = vec!["build", "--check", "-o", out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    assert_eq!(egressc(&args).code, 0, "the build does not converge");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_longest_names_check_accepts_build() {
    // 238 characters: the longest ServiceAccount name whose ConfigMap key
    // `<name>.json.part-NNNN` fits the API server's 253.
    let name = [
        &"b".repeat(62)[..],
        &"b".repeat(62),
        &"b".repeat(62),
        &"b".repeat(49),
    ]
    .join(".");
    assert_eq!(name.len(), 238);
    let ns = "n".repeat(63);
    let dir = tmp("long-names");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("sa.yaml");
    std::fs::write(
        &input,
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {ns}}}\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let run = build(&[input.to_string_lossy().into_owned()], &out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(out.join(format!("configs/{ns}/{name}.json")).is_file());
    // Every ConfigMap key the output has fits the API server's 253 characters.
    for e in walkdir::WalkDir::new(out.join("kubernetes")) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            for line in text.lines() {
                let key = line.trim_start().split(':').next().unwrap_or("");
                assert!(
                    key.len() <= 253,
                    "a key of {} characters in {}",
                    key.len(),
                    e.path().display()
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_compares_the_tree_exactly() {
    let out = tmp("exact");
    let inputs = vec!["fixtures/good-defaults".to_owned()];
    assert_eq!(build(&inputs, &out).code, 0);
    let check = |out: &Path| {
        let mut args = vec!["build", "--check", "-o", out.to_str().unwrap()];
        args.extend(inputs.iter().map(String::as_str));
        egressc(&args)
    };
    assert_eq!(check(&out).code, 0);
    // An extra folder, a link where a file belongs, a link beside the files.
    std::fs::create_dir_all(out.join("stray/deeper")).unwrap();
    let config = out.join("sidecar/config.json");
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    std::fs::write(out.join("saved.json"), &saved).unwrap();
    std::os::unix::fs::symlink(out.join("saved.json"), &config).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", out.join("sidecar/link.json")).unwrap();
    let run = check(&out);
    assert_eq!(run.code, 3, "{}", run.stderr);
    for line in [
        "extra    stray",
        "not-file sidecar/config.json",
        "not-file sidecar/link.json",
        "extra    saved.json",
    ] {
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
    }
    // A rebuild replaces it all with regular files.
    assert_eq!(build(&inputs, &out).code, 0);
    assert_eq!(check(&out).code, 0, "{}", check(&out).stderr);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn replacing_out_is_atomic_cleans_up_and_writes_through_a_link() {
    let base = tmp("atomic");
    std::fs::create_dir_all(&base).unwrap();
    let out = base.join("out");
    let inputs = vec!["fixtures/good-defaults".to_owned()];
    // A temporary folder left by a run that was killed (its process is gone).
    let stale = base.join(".out.egressc-tmp-999999999");
    std::fs::create_dir_all(stale.join("configs")).unwrap();
    assert_eq!(build(&inputs, &out).code, 0);
    assert!(!stale.exists(), "stale temporary folder left behind");
    // Rebuild: the folder is exchanged in place, nothing is left beside it.
    assert_eq!(build(&inputs, &out).code, 0);
    let beside: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["out"], "{beside:?}");
    // OUT as a link: written through, the link stays a link.
    let real = base.join("real");
    std::fs::rename(&out, &real).unwrap();
    std::os::unix::fs::symlink(&real, &out).unwrap();
    assert_eq!(build(&inputs, &out).code, 0);
    assert!(
        std::fs::symlink_metadata(&out)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(real.join("manifest.json").is_file());
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn the_manifest_records_inputs_by_a_stable_path() {
    let rel = tmp("manifest-rel");
    let abs = tmp("manifest-abs");
    assert_eq!(build(&["fixtures/good-defaults".to_owned()], &rel).code, 0);
    let absolute = root().join("fixtures/good-defaults");
    assert_eq!(
        build(&[absolute.to_string_lossy().into_owned()], &abs).code,
        0
    );
    assert_eq!(
        std::fs::read(rel.join("manifest.json")).unwrap(),
        std::fs::read(abs.join("manifest.json")).unwrap()
    );
    std::fs::remove_dir_all(&rel).ok();
    std::fs::remove_dir_all(&abs).ok();
}

#[test]
fn build_says_what_it_did() {
    let out = tmp("summary");
    let run = build(&["example/mesh".to_owned()], &out);
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("identities compiled into") && run.stderr.contains("files written"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn every_write_error_fails_the_run() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        skip(
            "build",
            "the write-error checks",
            "there is no /dev/full here",
        );
        return;
    };
    drop(full);
    for args in [
        vec!["check", "--format", "json", "example/mesh"],
        vec!["check", "--format", "sarif", "example/mesh"],
        vec!["explain", "example/mesh", "--from", "curl/curl"],
        vec!["test", "example/cases.yaml", "example/mesh"],
        vec!["schema"],
    ] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_egressc"))
            .args(&args)
            .current_dir(root())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn publish_refuses_what_is_not_a_build_or_not_http() {
    let publish = |out: &str, repo: &str| egressc(&["publish", out, "--repo", repo]);
    let run = publish("fixtures/good-defaults", "http://127.0.0.1:9");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not egressc's output"),
        "{}",
        run.stderr
    );
    let out = std::env::temp_dir().join(format!("egressc-publish-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(
        egressc(&[
            "build",
            "fixtures/good-defaults",
            "-o",
            out.to_str().unwrap()
        ])
        .code,
        0
    );
    let run = publish(out.to_str().unwrap(), "https://repo");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not an http:// URL"), "{}", run.stderr);
    // Nothing listens on port 9: a clear error, exit 2.
    let run = publish(out.to_str().unwrap(), "http://127.0.0.1:9");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("127.0.0.1:9"), "{}", run.stderr);
    // An edited OUT is refused.
    std::fs::write(out.join("sidecar/mesh.json"), "{}").unwrap();
    let run = publish(out.to_str().unwrap(), "http://127.0.0.1:9");
    assert!(
        run.stderr.contains("differs from its manifest"),
        "{}",
        run.stderr
    );
    // A manifest that lists a path out of OUT (its hash right, as a hostile tree would have
    // it) is refused before anything is read or sent; so is a password in the output.
    let outside = out.with_extension("secret");
    std::fs::write(&outside, "secret").unwrap();
    let manifest = out.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let name = format!("../{}", outside.file_name().unwrap().to_string_lossy());
    m["files"][&name] =
        serde_json::json!("2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let run = publish(out.to_str().unwrap(), "http://user:hunter2@127.0.0.1:9");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a plain path inside OUT"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    std::fs::remove_file(&outside).ok();
    std::fs::remove_dir_all(&out).ok();
}

/// What PipyJS does not take, found by running the scripts in Pipy (CI has no Pipy): no
/// `while` or `do` loops, no `for` without an initialiser, and no NUL escape in a string
/// literal (`\0`, `\x00`, `\u0000` read as nothing).
#[test]
fn templates_use_only_what_pipyjs_parses() {
    let mut problems = Vec::new();
    for dir in ["templates/sidecar", "templates/gateway", "tests/e2e"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "js") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let bad = [
                    "while (", "while(", "do {", "for (;", "for(;", "\\0", "\\x00", "\\u0000",
                ]
                .iter()
                .find(|b| code.contains(**b));
                if let Some(b) = bad {
                    problems.push(format!("{}:{}: `{b}`", p.display(), n + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
