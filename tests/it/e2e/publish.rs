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

#[test]
fn e2e_publish_retries_a_failed_commit_and_shows_no_password() {
    if !enabled("publishing through a repo proxy that fails the first commit") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    let work = ns.dir.clone();
    let with_gw = work.join("in-gw");
    copy_tree(&root().join("fixtures/good-wildcards-socks"), &with_gw);
    let out_gw = work.join("out-gw");
    build_tree(&with_gw, &out_gw);
    let no_gw = work.join("in-nogw");
    copy_tree(&with_gw, &no_gw);
    std::fs::remove_file(no_gw.join("gateway.yaml")).unwrap();
    let out_nogw = work.join("out-nogw");
    build_tree(&no_gw, &out_nogw);

    let mut repo = ns.cmd(pipy().to_str().unwrap());
    repo.arg("--admin-port=127.0.0.1:6060");
    ns.spawn("repo", repo);
    assert!(ns.wait_for("repo", "6060"), "{}", ns.log("repo"));
    let mut proxy = ns.cmd("python3");
    proxy
        .arg(root().join("tests/e2e/failing_proxy.py"))
        .args(["6061", "6060"]);
    ns.spawn("proxy", proxy);
    assert!(ns.wait_for("proxy", "ready"), "{}", ns.log("proxy"));

    let via = ["--repo", "http://admin:hunter2@127.0.0.1:6061"];
    let run = |out: &Path, check: bool| {
        let mut args = via.to_vec();
        if check {
            args.push("--check");
        }
        let mut cmd = ns.cmd(env!("CARGO_BIN_EXE_egressc"));
        let o = cmd.arg("publish").arg(out).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code().unwrap_or(-1), text)
    };
    let mut failures = Vec::new();
    let mut expect = |what: &str, (code, text): (i32, String), want: i32, has: &str| {
        if code != want || !text.contains(has) || text.contains("hunter2") {
            failures.push(format!(
                "{what}: exit {code} (want {want}, `{has}`):\n{text}"
            ));
        }
    };
    // The first commit fails: the error names the repo without its password.
    expect(
        "the failed commit",
        run(&out_gw, false),
        2,
        "http://***@127.0.0.1:6061",
    );
    // Its edits are staged but not committed: --check must not call the repo in sync.
    expect(
        "--check after it",
        run(&out_gw, true),
        3,
        "commit  /egressc/_base",
    );
    expect("the retry", run(&out_gw, false), 0, "published");
    expect("--check after the retry", run(&out_gw, true), 0, "");
    // The gateway goes: its codebase goes too.
    expect(
        "without the gateway",
        run(&out_nogw, false),
        0,
        "remove  /egressc/_gateway",
    );
    expect("--check without it", run(&out_nogw, true), 0, "");
    ns.stop("proxy");
    ns.stop("repo");
    if failures.is_empty() {
        say("publish: a failed commit is committed by the next run; no password shown");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
