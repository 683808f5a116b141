//! The Argo CD plugin (`deploy/argocd/`), run as Argo CD runs it.

use super::*;

struct Plugin {
    discover: Vec<String>,
    generate: Vec<String>,
}

/// deploy/argocd/plugin.yaml: its commands, as the CMP server puts them together (command, then
/// args).
fn plugin() -> Plugin {
    let p = yaml_file("deploy/argocd/plugin.yaml");
    assert_eq!(p["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(p["kind"], "ConfigManagementPlugin");
    assert_eq!(p["metadata"]["name"], "egressc");
    assert_eq!(p["spec"]["version"], "v1");
    let command = |v: &Value| {
        let mut c = strings(&v["command"]);
        c.extend(strings(&v["args"]));
        assert!(!c.is_empty(), "no command in {v}");
        c
    };
    Plugin {
        discover: command(&p["spec"]["discover"]["find"]),
        generate: command(&p["spec"]["generate"]),
    }
}

/// Run a plugin command as Argo CD's CMP server does: in the app path, with the sidecar's
/// environment (PATH with the egressc under test first, a scratch TMPDIR) and the app's build
/// environment.
fn run_plugin(command: &[String], app: &Path, path: &std::ffi::OsStr, tmp: &Path) -> Output {
    run_plugin_with(command, app, path, tmp, &[])
}

fn run_plugin_with(
    command: &[String],
    app: &Path,
    path: &std::ffi::OsStr,
    tmp: &Path,
    env: &[(&str, &str)],
) -> Output {
    std::fs::create_dir_all(tmp).unwrap();
    Command::new(&command[0])
        .args(&command[1..])
        .current_dir(app)
        .env_clear()
        .env("PATH", path)
        .env("HOME", tmp)
        .env("TMPDIR", tmp)
        .env("ARGOCD_APP_NAME", "mesh")
        .env("ARGOCD_APP_NAMESPACE", "argocd")
        .env(
            "ARGOCD_APP_REVISION",
            "4f1c0d9e2b7a6c5d8e9f0a1b2c3d4e5f6a7b8c9d",
        )
        .env("ARGOCD_APP_REVISION_SHORT", "4f1c0d9")
        .env("ARGOCD_APP_SOURCE_PATH", "apps/mesh")
        .env(
            "ARGOCD_APP_SOURCE_REPO_URL",
            "https://git.example.com/platform.git",
        )
        .env("ARGOCD_APP_SOURCE_TARGET_REVISION", "HEAD")
        .env("KUBE_VERSION", "1.33.0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the plugin command starts")
}

/// kubectl or kustomize, which `generate` renders with; says what is skipped when neither.
fn renderer(what: &str) -> bool {
    let found = ["kubectl", "kustomize"].iter().any(|t| {
        Command::new(t)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        skip(AREA, what, "neither `kubectl` nor `kustomize` is installed");
    }
    found
}

const APPS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: curl, namespace: curl, labels: {egressc.io/inject: \"true\"}}\nspec:\n  selector: {matchLabels: {app: curl}}\n  template:\n    metadata: {labels: {app: curl}}\n    spec:\n      serviceAccountName: curl\n      containers: [{name: curl, image: curlimages/curl}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain, namespace: curl}\nspec:\n  selector: {matchLabels: {app: plain}}\n  template:\n    metadata: {labels: {app: plain}}\n    spec:\n      containers: [{name: plain, image: busybox}]\n";

/// The example mesh's files as one YAML stream.
fn example_stream(names: &[&str]) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("example/mesh"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| names.is_empty() || names.iter().any(|n| p.ends_with(n)))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// What `generate` printed: a YAML stream of Kubernetes objects and nothing else.
fn manifests(stdout: &str) -> Vec<Value> {
    // A log line would start at the margin, where a YAML stream has only its top-level keys.
    for line in stdout.lines() {
        for log in [
            "egressc", "note[", "warning[", "error[", " --> ", "E1", "I1", "W1",
        ] {
            assert!(!line.starts_with(log), "a log line on stdout: {line}");
        }
    }
    let docs = egressc::yaml_as_json(stdout).expect("stdout is a YAML stream");
    for d in &docs {
        assert!(
            d["apiVersion"].is_string() && d["kind"].is_string() && d["metadata"].is_object(),
            "not a Kubernetes object: {d}"
        );
    }
    docs
}

fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn container_names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|a| a.iter().map(|c| c["name"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// The scratch TMPDIR holds nothing once `generate` is done: its trap removed the copy.
fn assert_empty(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn argocd_plugin_renders_an_app_with_its_own_kustomization() {
    if !renderer("the Argo CD plugin's generate") {
        return;
    }
    let dir = scratch();
    let app = dir.path().join("repo/apps/mesh");
    copy_tree(&root().join("example/mesh"), &app.join("egress"));
    write(&app.join("apps.yaml"), APPS);
    write(
        &app.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [egressc-out/kubernetes, apps.yaml]\ncomponents: [egressc-out/kubernetes/inject]\n",
    );
    let tmp = dir.path().join("tmp");
    let out = run_plugin_with(
        &plugin().generate,
        &app,
        &search_path(&[&bin_dir()]),
        &tmp,
        &[(
            "ARGOCD_ENV_EGRESSC_ARGS",
            "--pin-egress  --gateway-auth mtls",
        )],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let docs = manifests(&stdout);
    // egressc's objects: the identity namespace's ConfigMaps, the gateway.
    for (kind, ns, name) in [
        ("ConfigMap", "curl", "egressc-sidecar"),
        ("ConfigMap", "curl", "egressc-configs"),
        ("ConfigMap", "fsm", "egressc-gateway"),
        ("Deployment", "fsm", "fsm-egress-gateway"),
        // EGRESSC_ARGS reached egressc build.
        ("NetworkPolicy", "curl", "egressc-pin-egress"),
    ] {
        let o = object(&docs, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"));
        assert_eq!(o["metadata"]["namespace"], ns, "{kind} {name}");
    }
    let configs = object(&docs, "ConfigMap", "egressc-configs").unwrap();
    assert!(configs["data"]["curl.json"].is_string(), "{configs}");
    // The app's workloads: the labelled one injected, the other as written.
    let curl = &object(&docs, "Deployment", "curl").unwrap()["spec"]["template"]["spec"];
    let init = container_names(&curl["initContainers"]);
    assert_eq!(init.first(), Some(&"egressc-init"), "{curl}");
    // The sidecar: a container, or a native sidecar among the init containers.
    let all = [init.clone(), container_names(&curl["containers"])].concat();
    assert!(all.contains(&"egressc-sidecar"), "{all:?}");
    assert!(all.contains(&"curl"), "{all:?}");
    let plain = &object(&docs, "Deployment", "plain").unwrap()["spec"]["template"]["spec"];
    assert_eq!(container_names(&plain["containers"]), ["plain"]);
    assert!(plain["initContainers"].is_null());
    // The inputs are not manifests.
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Egress" || d["kind"] == "MeshConfig")
    );
    // egressc's own messages went to stderr; the app path was not written; the copy is gone.
    has(&stderr, "identities compiled into `egressc-out`");
    assert!(!app.join("egressc-out").exists());
    assert_empty(&tmp);
    validate(dir.path(), "argocd-app", &stdout);
}

#[test]
fn argocd_plugin_without_a_kustomization_renders_egressc_objects_only() {
    if !renderer("the Argo CD plugin's generate without a kustomization") {
        return;
    }
    let dir = scratch();
    let app = dir.path().join("app");
    // Both inputs at once: the MeshConfig, gateway and identity in egressc.yaml, the policies in
    // egress/ (without egress/ there is no identity config: the folder was read too).
    let shared = ["meshconfig.yaml", "egress-gateway.yaml", "curl.yaml"];
    write(&app.join("egressc.yaml"), &example_stream(&shared));
    for f in ["egress-http.yaml", "egress-https.yaml", "egress-tcp.yaml"] {
        std::fs::create_dir_all(app.join("egress")).unwrap();
        std::fs::copy(
            root().join("example/mesh").join(f),
            app.join("egress").join(f),
        )
        .unwrap();
    }
    write(&app.join("apps.yaml"), APPS);
    let tmp = dir.path().join("tmp");
    let out = run_plugin(&plugin().generate, &app, &search_path(&[&bin_dir()]), &tmp);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let docs = manifests(&stdout);
    let configs = object(&docs, "ConfigMap", "egressc-configs").expect("egressc-configs");
    assert!(configs["data"]["curl.json"].is_string(), "{configs}");
    assert!(object(&docs, "Deployment", "fsm-egress-gateway").is_some());
    // Only egressc's objects: other YAML of the app path is not picked up.
    assert!(object(&docs, "Deployment", "curl").is_none(), "{stdout}");
    assert!(object(&docs, "NetworkPolicy", "egressc-pin-egress").is_none());
    assert!(!app.join("kustomization.yaml").exists());
    assert_empty(&tmp);
    validate(dir.path(), "argocd-egressc-only", &stdout);
}

#[test]
fn argocd_plugin_discovers_apps_by_egressc_yaml_or_the_egress_folder() {
    let dir = scratch();
    let discover = plugin().discover;
    let path = search_path(&[&bin_dir()]);
    let cases: [(&str, &[&str], bool); 5] = [
        ("file", &["egressc.yaml"], true),
        ("folder", &["egress/a.yaml"], true),
        ("both", &["egressc.yaml", "egress/a.yaml"], true),
        (
            "other",
            &["kustomization.yaml", "egressc.yml", "sub/egressc.yaml"],
            false,
        ),
        ("egress-file", &["egress"], false),
    ];
    for (name, files, matches) in cases {
        let app = dir.path().join(name);
        std::fs::create_dir_all(&app).unwrap();
        for f in files {
            write(&app.join(f), "kind: MeshConfig\n");
        }
        let out = run_plugin(&discover, &app, &path, &dir.path().join("tmp"));
        // The CMP server: a match is exit 0 and some output; a non-zero exit is an error.
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(
            !out.stdout.is_empty(),
            matches,
            "{name}: {:?}",
            text(&out.stdout)
        );
    }
}

#[test]
fn argocd_plugin_fails_on_a_broken_input_with_nothing_on_stdout() {
    let dir = scratch();
    let app = dir.path().join("app");
    let broken = root().join("fixtures/bad-e0101-invalid-yaml/egress.yaml");
    write(
        &app.join("egressc.yaml"),
        &std::fs::read_to_string(broken).unwrap(),
    );
    let tmp = dir.path().join("tmp");
    let generate = plugin().generate;
    // A renderer for the check that comes first (never run: egressc fails before).
    let renderer = dir.path().join("renderer");
    script(&renderer.join("kustomize"), "#!/bin/sh\nexit 99\n");
    let path = search_path(&[&bin_dir(), &renderer]);
    let out = run_plugin(&generate, &app, &path, &tmp);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    has(&stderr, "E0101");
    has(
        &stderr,
        "egressc-cmp: mesh (apps/mesh): egressc build failed",
    );
    assert_empty(&tmp);

    // An image without kubectl or kustomize: one line that says so, nothing on stdout. PATH
    // holds only what the script needs besides them.
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_egressc"), bare.join("egressc")).unwrap();
    for t in ["cp", "mktemp", "rm", "cat"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(t))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no {t} on PATH"));
        std::os::unix::fs::symlink(found, bare.join(t)).unwrap();
    }
    write(&app.join("egressc.yaml"), &example_stream(&[]));
    let mut sh = generate.clone();
    sh[0] = "/bin/sh".into();
    let out = run_plugin(&sh, &app, bare.as_os_str(), &tmp);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "egressc-cmp: neither kubectl nor kustomize is on PATH in the plugin container"
    );
}

#[test]
fn argocd_plugin_passes_egressc_args_split_unglobbed_and_keeps_stdout_clean() {
    if !renderer("the Argo CD plugin's argument passing") {
        return;
    }
    // A stand-in egressc that logs its arguments, chatters on stdout, and writes a tiny base.
    let dir = scratch();
    let fake = dir.path().join("fake");
    script(
        &fake.join("egressc"),
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGV_LOG\"\necho 'egressc: chatter on standard output'\nout=\nprev=\nfor a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\nmkdir -p \"$out/kubernetes/inject\"\nprintf 'resources: [cm.yaml]\\n' > \"$out/kubernetes/kustomization.yaml\"\nprintf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: fake, namespace: ns}\\n' > \"$out/kubernetes/cm.yaml\"\nprintf 'apiVersion: kustomize.config.k8s.io/v1alpha1\\nkind: Component\\nresources: []\\n' > \"$out/kubernetes/inject/kustomization.yaml\"\n",
    );
    let app = dir.path().join("app");
    write(&app.join("egressc.yaml"), "kind: MeshConfig\n");
    write(&app.join("egress/a.yaml"), "kind: Egress\n");
    // Files a glob would expand to.
    write(&app.join("W0401"), "");
    write(&app.join("W0402"), "");
    let log = dir.path().join("argv");
    let out = run_plugin_with(
        &plugin().generate,
        &app,
        &search_path(&[&fake]),
        &dir.path().join("tmp"),
        &[
            ("ARGOCD_ENV_EGRESSC_ARGS", " --allow W04*  --dns 10.0.0.10 "),
            ("ARGV_LOG", log.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let argv = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "build",
            "--allow",
            "W04*",
            "--dns",
            "10.0.0.10",
            "-o",
            "egressc-out",
            "egressc.yaml",
            "egress"
        ]
    );
    let docs = manifests(&text(&out.stdout));
    assert_eq!(docs.len(), 1, "{}", text(&out.stdout));
    has(&text(&out.stderr), "chatter on standard output");
}

// ---------------------------------------------------------------------------------------------
// deploy/argocd: the ConfigMap and the repo-server patch.

#[test]
fn argocd_install_kustomization_is_the_plugin_configmap() {
    if !tool("kubectl", &["--help"], "the deploy/argocd kustomization") {
        return;
    }
    let r = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("deploy/argocd"))
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let stdout = text(&r.stdout);
    let docs = egressc::yaml_as_json(&stdout).unwrap();
    assert_eq!(docs.len(), 1, "{stdout}");
    let cm = &docs[0];
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "egressc-cmp-plugin");
    assert_eq!(cm["metadata"]["namespace"], "argocd");
    let file = std::fs::read_to_string(root().join("deploy/argocd/plugin.yaml")).unwrap();
    assert_eq!(cm["data"]["plugin.yaml"].as_str(), Some(file.as_str()));
    validate(scratch().path(), "argocd-configmap", &stdout);
}

/// Argo CD's repo server as its install manifests have it, cut to what the sidecar uses.
const REPO_SERVER: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argocd-repo-server\n  namespace: argocd\n  labels: {app.kubernetes.io/name: argocd-repo-server}\nspec:\n  selector:\n    matchLabels: {app.kubernetes.io/name: argocd-repo-server}\n  template:\n    metadata:\n      labels: {app.kubernetes.io/name: argocd-repo-server}\n    spec:\n      serviceAccountName: argocd-repo-server\n      initContainers:\n      - name: copyutil\n        image: quay.io/argoproj/argocd:v3.1.0\n        command: [/bin/cp, -n, /usr/local/bin/argocd, /var/run/argocd/argocd-cmp-server]\n        volumeMounts: [{name: var-files, mountPath: /var/run/argocd}]\n      containers:\n      - name: argocd-repo-server\n        image: quay.io/argoproj/argocd:v3.1.0\n        args: [/usr/local/bin/argocd-repo-server]\n        volumeMounts:\n        - {name: tmp, mountPath: /tmp}\n        - {name: var-files, mountPath: /var/run/argocd}\n        - {name: plugins, mountPath: /home/argocd/cmp-server/plugins}\n      volumes:\n      - {name: tmp, emptyDir: {}}\n      - {name: var-files, emptyDir: {}}\n      - {name: plugins, emptyDir: {}}\n";

#[test]
fn repo_server_patch_adds_the_sidecar_as_argocd_prescribes() {
    if !tool("kubectl", &["--help"], "the repo-server patch") {
        return;
    }
    let dir = scratch();
    let base = dir.path().join("repo-server.yaml");
    write(&base, REPO_SERVER);
    // What the README says to run, without a cluster.
    let r = Command::new("kubectl")
        .args([
            "patch",
            "--local",
            "--type",
            "strategic",
            "-o",
            "yaml",
            "-f",
        ])
        .arg(&base)
        .arg("--patch-file")
        .arg(root().join("deploy/argocd/repo-server-patch.yaml"))
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let patched = text(&r.stdout);
    let d = &egressc::yaml_as_json(&patched).unwrap()[0];
    let pod = &d["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(
        container_names(&pod["containers"]),
        ["egressc-cmp", "argocd-repo-server"]
    );
    let cmp = &containers[0];
    assert_eq!(
        strings(&cmp["command"]),
        ["/var/run/argocd/argocd-cmp-server"]
    );
    assert_eq!(cmp["securityContext"]["runAsNonRoot"], true);
    assert_eq!(cmp["securityContext"]["runAsUser"], 999);
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mounts: BTreeMap<&str, &Value> = cmp["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mountPath"].as_str().unwrap(), m))
        .collect();
    // Every mount has its volume; the repo server's shared ones by their upstream names.
    for m in mounts.values() {
        assert!(volumes.contains_key(m["name"].as_str().unwrap()), "{m}");
    }
    assert_eq!(mounts["/var/run/argocd"]["name"], "var-files");
    assert_eq!(mounts["/home/argocd/cmp-server/plugins"]["name"], "plugins");
    let config = mounts["/home/argocd/cmp-server/config/plugin.yaml"];
    assert_eq!(config["subPath"], "plugin.yaml");
    assert_eq!(
        volumes[config["name"].as_str().unwrap()]["configMap"]["name"],
        "egressc-cmp-plugin"
    );
    // Its own /tmp, not the repo server's.
    let tmp = mounts["/tmp"]["name"].as_str().unwrap();
    assert_ne!(tmp, "tmp");
    assert!(volumes[tmp]["emptyDir"].is_object());
    // The repo server itself is as it was.
    assert_eq!(
        containers[1],
        egressc::yaml_as_json(REPO_SERVER).unwrap()[0]["spec"]["template"]["spec"]["containers"][0]
    );
    validate(dir.path(), "argocd-repo-server", &patched);
}
