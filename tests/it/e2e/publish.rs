//! `egressc publish` against a real Pipy repo on loopback: a sidecar started from the repo's
//! URL runs its identity's config, and a republished policy reaches it without a restart.

use super::*;

fn publish(ns: &Netns, out: &Path, extra: &[&str]) -> (i32, String) {
    let o = ns
        .cmd(env!("CARGO_BIN_EXE_egressc"))
        .arg("publish")
        .arg(out)
        .args(["--repo", "http://127.0.0.1:6060"])
        .args(extra)
        .output()
        .expect("egressc runs");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn e2e_publish_to_a_pipy_repo() {
    if !enabled("publishing to a Pipy repo and running a sidecar from it") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    let work = ns.dir.clone();
    start_origins(&mut ns);
    let mut failures: Vec<String> = Vec::new();

    let before_in = copy_fixture(&work.join("in-before"));
    let before_out = work.join("out-before");
    build_tree(&before_in, &before_out);
    let after_in = fixture_without(&work.join("in-after"), &["tcp-range"]);
    let after_out = work.join("out-after");
    build_tree(&after_in, &after_out);
    ns.apply_rules(&before_out);

    // The repo: Pipy with no script, in memory, on loopback (its admin API has no
    // authentication).
    let mut repo = ns.cmd(pipy().to_str().unwrap());
    repo.arg("--admin-port=127.0.0.1:6060");
    ns.spawn("repo", repo);
    assert!(ns.wait_for("repo", "6060"), "{}", ns.log("repo"));

    let (code, text) = publish(&ns, &before_out, &[]);
    assert_eq!(code, 0, "publish: {text}");
    let mut sidecar = ns.proxy_cmd(&pipy());
    sidecar
        .arg("--admin-port-off")
        .arg("http://127.0.0.1:6060/repo/egressc/app/client/");
    ns.spawn("sidecar", sidecar);
    assert!(ns.wait_for("sidecar", "Listening"), "{}", ns.log("sidecar"));

    let tcp = || {
        let o = ns
            .cmd("python3")
            .arg(root().join("tests/e2e/client.py"))
            .args(["tcp", "10.77.0.17", "7000"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    if !tcp().contains("tcp-inside:ping") {
        failures.push(format!(
            "from the repo: the tcp policy does not allow:\n{}",
            ns.log("sidecar")
        ));
    }
    let (code, text) = publish(&ns, &before_out, &["--check"]);
    if code != 0 || !text.trim().is_empty() {
        failures.push(format!(
            "publish --check after publishing: exit {code}: {text}"
        ));
    }
    let (code, text) = publish(&ns, &after_out, &["--check"]);
    if code != 3 || !text.contains("upload  /egressc/app/client/config.json") {
        failures.push(format!("publish --check of a change: exit {code}: {text}"));
    }
    let (code, text) = publish(&ns, &after_out, &[]);
    if code != 0 || text.contains("_base/main.js") {
        failures.push(format!(
            "republish (only the changed config): exit {code}: {text}"
        ));
    }
    let start = Instant::now();
    let mut denied_after = None;
    while start.elapsed() < Duration::from_secs(15) {
        if !replied(&tcp()) {
            denied_after = Some(start.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    match denied_after {
        Some(secs) => say(&format!(
            "publish: the sidecar ran the republished policy {secs:.1} s after publish"
        )),
        None => failures.push(format!(
            "the republished policy never reached the sidecar:\n{}",
            ns.log("sidecar")
        )),
    }
    ns.stop("sidecar");
    ns.stop("repo");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
