//! Live reload in Pipy: the sidecar's config changes the way Kubernetes changes a mounted
//! ConfigMap (a new timestamped folder, then an atomic swap of the `..data` symlink), and the
//! sidecar follows within seconds without a restart; established streams go on.

use super::*;

/// A folder laid out as the kubelet lays out a ConfigMap volume: `..data` → `..<version>/`,
/// and each key a symlink through `..data`.
struct ConfigMapDir {
    dir: PathBuf,
    version: usize,
}

impl ConfigMapDir {
    fn new(dir: &Path, files: &[(&str, &[u8])]) -> ConfigMapDir {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let mut c = ConfigMapDir {
            dir: dir.to_path_buf(),
            version: 0,
        };
        c.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        c
    }

    /// Write a new version and swap `..data` to it atomically, as the kubelet does.
    fn update(&mut self, files: &[(&str, &[u8])]) {
        self.version += 1;
        let v = format!("..v{}", self.version);
        let vdir = self.dir.join(&v);
        std::fs::create_dir_all(&vdir).unwrap();
        for (name, bytes) in files {
            std::fs::write(vdir.join(name), bytes).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&v, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&self.dir)
            .status();
        if self.version > 1 {
            let _ = std::fs::remove_dir_all(self.dir.join(format!("..v{}", self.version - 1)));
        }
    }
}

/// The number of lines in `name`'s log that contain `text`.
fn count(ns: &Netns, name: &str, text: &str) -> usize {
    ns.log(name).lines().filter(|l| l.contains(text)).count()
}

/// Wait until `name`'s log has more than `before` lines containing `text`; the seconds it took.
fn wait_count(ns: &Netns, name: &str, text: &str, before: usize) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if count(ns, name, text) > before {
            return Some(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn e2e_live_reload_in_pipy() {
    if !enabled("live reload of the sidecar's config in Pipy") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    let work = ns.dir.clone();
    start_origins(&mut ns);
    let mut failures: Vec<String> = Vec::new();

    // Before: the e2e mesh with a gateway. After: the same without the tcp-range and web
    // policies. The sidecar and the gateway both follow the change (the gateway's lists are
    // probed with plain tunnels: `--gateway-auth header`; mtls.rs rotates certificates).
    let before_in = copy_fixture(&work.join("in-before"));
    add_gateway(&before_in, "http2tunnel");
    let before_out = work.join("out-before");
    build_tree_header(&before_in, &before_out);
    let after_in = fixture_without(&work.join("in-after"), &["tcp-range", "web"]);
    add_gateway(&after_in, "http2tunnel");
    let after_out = work.join("out-after");
    build_tree_header(&after_in, &after_out);
    let config = |out: &Path| std::fs::read(out.join("configs/app/client.json")).unwrap();

    ns.apply_rules(&before_out);

    let gateway_config = |out: &Path| std::fs::read(out.join("gateway/config.json")).unwrap();
    let mut gateway = ConfigMapDir::new(
        &work.join("gateway-config"),
        &[("config.json", &gateway_config(&before_out))],
    );
    let mut cmd = ns.proxy_cmd(Path::new("env"));
    cmd.arg(format!(
        "EGRESSC_CONFIG={}",
        gateway.dir.join("config.json").display()
    ))
    .arg("EGRESSC_METRICS_PORT=15011")
    .arg(pipy())
    .arg("--admin-port-off")
    .arg(before_out.join("gateway/main.js"));
    ns.spawn("gateway", cmd);
    assert!(ns.wait_for("gateway", "Listening"), "{}", ns.log("gateway"));

    let mut configs = ConfigMapDir::new(
        &work.join("configs"),
        &[("client.json", &config(&before_out))],
    );
    let mut cmd = ns.proxy_cmd(Path::new("env"));
    cmd.arg(format!("EGRESSC_CONFIG_DIR={}", configs.dir.display()))
        .arg("EGRESSC_SERVICE_ACCOUNT=client")
        .arg(pipy())
        .arg("--admin-port-off")
        .arg(before_out.join("sidecar/main.js"));
    ns.spawn("sidecar", cmd);
    assert!(ns.wait_for("sidecar", "Listening"), "{}", ns.log("sidecar"));

    let run = |client: Vec<String>| {
        let out = ns.cmd(&client[0]).args(&client[1..]).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let tcp = || run(py(&["tcp", "10.77.0.17", "7000"]));
    if !tcp().contains("tcp-inside:ping") {
        failures.push("before the change: the tcp policy does not allow".into());
    }
    // Opened before the change: a raw TCP stream, and an HTTP keep-alive connection.
    let mut hold = ns.cmd("python3");
    hold.arg(root().join("tests/e2e/client.py"))
        .args(["hold", "10.77.0.17", "7000", "6"])
        .stdout(Stdio::piped());
    let hold = hold.spawn().unwrap();
    let mut ka = ns.cmd("python3");
    ka.arg(root().join("tests/e2e/client.py"))
        // Within the keep-alive bound (sidecarTimeout, 3 s in the e2e mesh).
        .args(["ka-wait", "10.77.0.50", "8080", "web.test", "2.5"])
        .stdout(Stdio::piped());
    let ka = ka.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));

    // The change, as the kubelet makes it.
    let reloads = count(&ns, "sidecar", "\"egressc\":\"reload\"");
    let gateway_reloads = count(&ns, "gateway", "\"egressc\":\"reload\"");
    configs.update(&[("client.json", &config(&after_out))]);
    gateway.update(&[("config.json", &gateway_config(&after_out))]);
    match wait_count(&ns, "sidecar", "\"egressc\":\"reload\"", reloads) {
        Some(secs) => {
            say(&format!(
                "reload: the sidecar took up the new config {secs:.1} s after the swap"
            ));
            if secs > 3.0 {
                failures.push(format!("reload took {secs:.1} s"));
            }
        }
        None => failures.push(format!("no reload line:\n{}", ns.log("sidecar"))),
    }
    let before = accepts(&ns);
    if replied(&tcp()) {
        failures.push("after the change: the removed tcp policy still allows".into());
    }
    std::thread::sleep(Duration::from_millis(150));
    if accepts(&ns).get("tcp-inside") != before.get("tcp-inside") {
        failures.push("after the change: tcp-inside saw a new connection".into());
    }
    let held = String::from_utf8_lossy(&hold.wait_with_output().unwrap().stdout).into_owned();
    if held.matches("tcp-inside:ping").count() != 2 {
        failures.push(format!(
            "the stream opened before the change was cut: {held}"
        ));
    }
    let statuses = String::from_utf8_lossy(&ka.wait_with_output().unwrap().stdout).into_owned();
    let lines: Vec<&str> = statuses.lines().collect();
    if lines.len() != 2 || !lines[0].contains(" 200") || !lines[1].contains(" 403") {
        failures.push(format!(
            "keep-alive: expected 200 then 403 (the second request sees the new rules): {statuses}"
        ));
    }

    // The gateway took up its new lists: client.app may no longer tunnel to tcp-inside
    // (asked directly, as a workload that reached the gateway's pod would).
    if wait_count(&ns, "gateway", "\"egressc\":\"reload\"", gateway_reloads).is_none() {
        failures.push(format!(
            "the gateway logged no reload:\n{}",
            ns.log("gateway")
        ));
    }
    exempt_gateway(&ns, "-I");
    let direct = run(py(&[
        "h2connect",
        "10.77.0.30",
        "1080",
        "10.77.0.17:7000",
        "client.app",
    ]));
    if !direct.contains("STATUS 403") {
        failures.push(format!(
            "the gateway still admits the removed rule: {direct}"
        ));
    }
    exempt_gateway(&ns, "-D");

    // A config that does not load: one error line, the previous rules stay.
    let errors = count(&ns, "sidecar", "\"egressc\":\"error\"");
    configs.update(&[("client.json", b"{ not json")]);
    if wait_count(&ns, "sidecar", "\"egressc\":\"error\"", errors).is_none() {
        failures.push("a broken config logged no error".into());
    }
    std::thread::sleep(Duration::from_millis(2500));
    if count(&ns, "sidecar", "\"egressc\":\"error\"") != errors + 1 {
        failures.push("a broken config logged more than one error line".into());
    }
    if !run(py(&["tcp", "10.77.0.60", "9000"])).contains("inventory:ping") {
        failures.push("after a broken config: the sidecar stopped serving".into());
    }
    if replied(&tcp()) {
        failures.push("after a broken config: the old (wider) rules came back".into());
    }
    ns.stop("sidecar");
    ns.stop("gateway");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A gateway config too large for one ConfigMap is written in parts (`config.json.part-N`);
/// the gateway, given the folder as the kubelet mounts it, reads them back.
#[test]
fn e2e_gateway_reads_a_config_in_parts() {
    if !enabled("a gateway config in parts, in Pipy") {
        return;
    }
    let work = std::env::temp_dir().join(format!("egressc-parts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("mesh.yaml"), many_identities(true)).unwrap();
    let out = work.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["build", "--configmap-max-kib=32", "-o"])
        .arg(&out)
        .arg(work.join("mesh.yaml"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The ConfigMaps' keys as files, as a projected volume shows them.
    let mounted = work.join("mounted");
    std::fs::create_dir_all(&mounted).unwrap();
    let text = std::fs::read_to_string(out.join("kubernetes/gateway.yaml")).unwrap();
    let mut parts = 0;
    for d in egressc::yaml_as_json(&text).unwrap() {
        if d["kind"] != "ConfigMap" {
            continue;
        }
        for (key, value) in d["data"].as_object().unwrap() {
            parts += usize::from(key.contains(".part-"));
            std::fs::write(mounted.join(key), value.as_str().unwrap()).unwrap();
        }
    }
    assert!(parts >= 2, "the config was not split ({parts} parts)");
    assert!(!mounted.join("config.json").exists());
    let log = work.join("gateway.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up; exec \"$@\"", "sh"])
        .arg(pipy())
        .arg("--admin-port-off")
        .arg(mounted.join("main.js"))
        .env("EGRESSC_CONFIG", mounted.join("config.json"))
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Listening") || text.contains("Error") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&work).ok();
    assert!(
        text.contains("Listening") && !text.contains("Error"),
        "the gateway did not load its config from {parts} parts:\n{text}"
    );
}
