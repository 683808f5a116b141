//! The GitOps pieces, each run the way its host runs it: the Argo CD plugin's `discover` and
//! `generate` (`deploy/argocd/plugin.yaml`) on app paths, the plugin's ConfigMap and the
//! repo-server patch (`deploy/argocd/`), the composite GitHub Action's scripts (`action.yml`,
//! with fake `cargo` and `gh`), and the pre-commit hook (`.pre-commit-hooks.yaml`). egressc is
//! always the real binary. A test that needs a tool that is not installed (kubectl or
//! kustomize, kubernetes-validate, git, bash) says what it skipped.

use crate::diff::has;
use crate::diff_git::git;
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const AREA: &str = "gitops";

/// The one YAML document of a file of the repository.
fn yaml_file(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut docs = egressc::yaml_as_json(&text).unwrap_or_else(|| panic!("{rel}: not YAML"));
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Whether `name` runs (with `probe` as its arguments); says what is skipped when not.
fn tool(name: &str, probe: &[&str], what: &str) -> bool {
    let ok = Command::new(name)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(AREA, what, &format!("`{name}` is not installed"));
    }
    ok
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("egressc-gitops-")
        .tempdir()
        .unwrap()
}

/// The folder of the egressc binary under test.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_egressc"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A PATH of `dirs`, then the test's own.
fn search_path(dirs: &[&Path]) -> std::ffi::OsString {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    all.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(all).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A shell script, executable.
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run kubernetes-validate on `yaml` (written into `dir`), when installed.
fn validate(dir: &Path, name: &str, yaml: &str) {
    if !tool(
        "kubernetes-validate",
        &["--help"],
        &format!("validating {name}"),
    ) {
        return;
    }
    let file = dir.join(format!("{name}.yaml"));
    write(&file, yaml);
    let v = Command::new("kubernetes-validate")
        .args(["-k", "1.33.0", "--strict", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{name}: {}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The Argo CD plugin.

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

// ---------------------------------------------------------------------------------------------
// The composite GitHub Action.

/// One run of action.yml's steps, as the runner would: each `run` in bash, with the step's
/// `env` (expressions substituted) over the job's environment, stopping at the first failure.
struct ActionRun {
    /// Each step run: its name, exit status, stdout and outputs.
    steps: Vec<(String, i32, String, BTreeMap<String, String>)>,
    /// The action's outputs.
    outputs: BTreeMap<String, String>,
    /// What the fake `cargo` and `gh` were asked.
    calls: Vec<String>,
    summary: String,
    /// RUNNER_TEMP and the rest, kept while the run is looked at.
    _dir: tempfile::TempDir,
}

impl ActionRun {
    fn step(&self, name: &str) -> &(String, i32, String, BTreeMap<String, String>) {
        self.steps
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("step `{name}` did not run: {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.0.as_str()).collect()
    }

    /// The step that failed (the last one run), if any.
    fn failed(&self) -> Option<&str> {
        self.steps.last().filter(|s| s.1 != 0).map(|s| s.0.as_str())
    }
}

/// `${{ … }}` expressions replaced by `value`.
fn substitute(text: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("an unclosed expression") + i;
        out.push_str(&value(rest[i + 3..end].trim()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

const FAKE_CARGO: &str = "#!/bin/sh\necho \"cargo $*\" >> \"$FAKE_LOG\"\n";
/// `gh`: logs its call; `--edit-last` fails (no earlier comment) when FAKE_GH_FIRST is set.
const FAKE_GH: &str = "#!/bin/sh\necho \"gh $* token=$GH_TOKEN repo=$GH_REPO\" >> \"$FAKE_LOG\"\nfor a in \"$@\"; do\n  if [ \"$a\" = --edit-last ] && [ -n \"${FAKE_GH_FIRST:-}\" ]; then exit 1; fi\ndone\n";

/// Run action.yml in `workspace` with these inputs and job env.
fn run_action(workspace: &Path, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> ActionRun {
    run_steps(workspace, inputs, env, &[], usize::MAX)
}

/// Run the first `count` steps of action.yml in `workspace` with these inputs and job env,
/// and these fake tools (name, script) besides `cargo` and `gh`.
fn run_steps(
    workspace: &Path,
    inputs: &[(&str, &str)],
    env: &[(&str, &str)],
    fakes: &[(&str, &str)],
    count: usize,
) -> ActionRun {
    let action = yaml_file("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let dir = scratch();
    let (fake, temp) = (dir.path().join("bin"), dir.path().join("runner-temp"));
    std::fs::create_dir_all(&temp).unwrap();
    script(&fake.join("cargo"), FAKE_CARGO);
    script(&fake.join("gh"), FAKE_GH);
    for (name, body) in fakes {
        script(&fake.join(name), body);
    }
    let (log, summary, event) = (
        dir.path().join("calls"),
        dir.path().join("summary.md"),
        dir.path().join("event.json"),
    );
    write(&log, "");
    write(&summary, "");
    write(
        &event,
        "{\"action\": \"opened\", \"number\": 7, \"pull_request\": {\"number\": 7, \"base\": {\"ref\": \"main\"}}}",
    );
    let mut job: BTreeMap<String, String> = [
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_BASE_REF", "main"),
        ("GITHUB_REF", "refs/pull/7/merge"),
        ("GITHUB_ACTION_REPOSITORY", "your-org/egressc"),
        ("GITHUB_SERVER_URL", "https://github.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in [
        ("GITHUB_EVENT_PATH", &event),
        ("RUNNER_TEMP", &temp),
        ("GITHUB_WORKSPACE", &workspace.to_path_buf()),
        ("FAKE_LOG", &log),
        ("HOME", &dir.path().to_path_buf()),
    ] {
        job.insert(k.into(), v.to_string_lossy().into_owned());
    }
    job.insert(
        "PATH".into(),
        search_path(&[&fake, &bin_dir()])
            .to_string_lossy()
            .into_owned(),
    );
    for (k, v) in env {
        job.insert(k.to_string(), v.to_string());
    }
    let mut run = ActionRun {
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        calls: Vec::new(),
        summary: String::new(),
        _dir: dir,
    };
    let mut by_id: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (n, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .take(count)
        .enumerate()
    {
        let name = step["name"].as_str().unwrap().to_owned();
        assert!(
            step["if"].is_null(),
            "{name}: conditions belong in the script"
        );
        assert_eq!(step["shell"], "bash", "{name}");
        let body = step["run"].as_str().unwrap();
        assert!(
            !body.contains("${{"),
            "{name}: a script reads only its environment"
        );
        let value = |expr: &str| expression(expr, &action, inputs, &job, &by_id);
        let file = temp.join(format!("step-{n}.sh"));
        write(&file, body);
        let output = temp.join(format!("output-{n}"));
        write(&output, "");
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(workspace)
            .env_clear()
            .envs(&job)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .stdin(Stdio::null());
        if let Some(vars) = step["env"].as_object() {
            for (k, v) in vars {
                cmd.env(k, substitute(v.as_str().unwrap(), &value));
            }
        }
        let out = cmd.output().expect("bash runs");
        let outputs: BTreeMap<String, String> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .map(|l| {
                assert!(
                    !l.contains("<<"),
                    "multi-line outputs are not read here: {l}"
                );
                let (k, v) = l.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        if let Some(id) = step["id"].as_str() {
            by_id.insert(id.to_owned(), outputs.clone());
        }
        let code = out.status.code().unwrap_or(-1);
        let stdout = text(&out.stdout) + &text(&out.stderr);
        run.steps.push((name, code, stdout, outputs));
        if code != 0 {
            break;
        }
    }
    for (k, v) in action["outputs"].as_object().unwrap() {
        let value = |expr: &str| expression(expr, &action, inputs, &job, &by_id);
        run.outputs
            .insert(k.clone(), substitute(v["value"].as_str().unwrap(), &value));
    }
    run.calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    run.summary = std::fs::read_to_string(&summary).unwrap();
    run
}

/// The value of one of the expressions action.yml uses.
fn expression(
    expr: &str,
    action: &Value,
    inputs: &[(&str, &str)],
    job: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    if let Some(name) = expr.strip_prefix("inputs.") {
        let declared = &action["inputs"][name];
        assert!(declared.is_object(), "input `{name}` is not declared");
        return inputs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| declared["default"].as_str().unwrap_or("").to_owned());
    }
    if let Some(path) = expr.strip_prefix("steps.") {
        let (id, output) = path.split_once(".outputs.").expect("steps.ID.outputs.NAME");
        return steps
            .get(id)
            .and_then(|o| o.get(output))
            .cloned()
            .unwrap_or_default();
    }
    match expr {
        "github.token" => "dummy-token".into(),
        "github.repository" => "your-org/app".into(),
        "github.action_repository" => job["GITHUB_ACTION_REPOSITORY"].clone(),
        _ => panic!("an expression this test does not know: {expr}"),
    }
}

/// Whether bash runs; says what is skipped when not.
fn bash(what: &str) -> bool {
    tool("bash", &["--version"], what)
}

#[test]
fn action_installs_egressc_with_cargo_from_its_repository() {
    if !bash("the action's install step") {
        return;
    }
    let ws = scratch();
    let run = run_steps(ws.path(), &[], &[], &[], 1);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(
        run.calls,
        ["cargo install --locked --git https://github.com/your-org/egressc --branch main egressc"]
    );
    let tagged = [
        ("version", "v0.2.0"),
        ("repository", "https://git.example.com/egressc.git"),
    ];
    let run = run_steps(ws.path(), &tagged, &[], &[], 1);
    assert_eq!(
        run.calls,
        ["cargo install --locked --git https://git.example.com/egressc.git --tag v0.2.0 egressc"]
    );
    // Skipped on request; an error when there is no repository to install from.
    let run = run_steps(ws.path(), &[], &[("EGRESSC_SKIP_INSTALL", "true")], &[], 1);
    assert_eq!(run.failed(), None);
    assert!(run.calls.is_empty(), "{:?}", run.calls);
    let run = run_steps(ws.path(), &[], &[("GITHUB_ACTION_REPOSITORY", "")], &[], 1);
    assert_eq!(run.failed(), Some("Install egressc"));
    has(
        &run.steps[0].2,
        "::error title=egressc::cannot tell which repository",
    );
    assert!(run.calls.is_empty());
}

/// A git repository with the example mesh committed on `main` (and `origin/main`), then on
/// branch `change` the example with `edit` applied (not committed).
fn mesh_repo(edit: &dyn Fn(&Path)) -> tempfile::TempDir {
    let ws = scratch();
    copy_tree(&root().join("example/mesh"), &ws.path().join("mesh"));
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-q", "-m", "base"]);
    git(
        ws.path(),
        &["update-ref", "refs/remotes/origin/main", "main"],
    );
    git(ws.path(), &["checkout", "-q", "-b", "change"]);
    edit(&ws.path().join("mesh"));
    ws
}

fn add_host(mesh: &Path) {
    let f = mesh.join("egress-https.yaml");
    let yaml = std::fs::read_to_string(&f).unwrap();
    let widened = yaml.replace(
        "  - httpbin.org\n",
        "  - httpbin.org\n  - api.example.com\n",
    );
    assert_ne!(widened, yaml);
    std::fs::write(f, widened).unwrap();
}

#[test]
fn action_diff_comments_and_fails_when_access_is_gained() {
    if !bash("the action's diff") || !tool("git", &["--version"], "the action's diff") {
        return;
    }
    let ws = mesh_repo(&add_host);
    let inputs = [("command", "diff"), ("paths", "mesh"), ("base-ref", "main")];
    // No comment of ours yet: `--edit-last` fails and a new comment is posted.
    let run = run_action(ws.path(), &inputs, &[("FAKE_GH_FIRST", "1")]);
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    let outputs = &run.step("Run egressc").3;
    assert_eq!(outputs["code"], "6");
    assert_eq!(run.outputs["exit-code"], "6");
    let report = &outputs["report"];
    assert!(report.ends_with("/egress-diff.md"), "{report}");
    let markdown = std::fs::read_to_string(report).unwrap();
    has(
        &markdown,
        "**egressc diff**: 1 identity gains access to 1 destination",
    );
    has(&markdown, "`api.example.com:443`");
    assert_eq!(run.summary, markdown);
    let comment = format!(
        "gh pr comment 7 --edit-last --body-file {report} token=dummy-token repo=your-org/app"
    );
    let fallback =
        format!("gh pr comment 7 --body-file {report} token=dummy-token repo=your-org/app");
    assert_eq!(&run.calls[1..], [comment, fallback]);
    has(
        &run.step("Verdict").2,
        "::error title=egressc diff::this change widens egress",
    );
    // With a comment to edit: edited only. `fail-on: never`: reported, not failed.
    let never = [
        ("command", "diff"),
        ("paths", "mesh"),
        ("base-ref", "main"),
        ("fail-on", "never"),
    ];
    let run = run_action(ws.path(), &never, &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    has(&run.calls[1], "gh pr comment 7 --edit-last --body-file ");
    // `fail-on: any` says so in its own words.
    let any = [
        ("command", "diff"),
        ("paths", "mesh"),
        ("base-ref", "main"),
        ("fail-on", "any"),
    ];
    let run = run_action(ws.path(), &any, &[]);
    has(&run.step("Verdict").2, "this change alters egress access");
}

#[test]
fn action_diff_passes_when_access_is_only_lost() {
    if !bash("the action's diff") || !tool("git", &["--version"], "the action's diff") {
        return;
    }
    let ws = mesh_repo(&|mesh: &Path| std::fs::remove_file(mesh.join("egress-tcp.yaml")).unwrap());
    // base-ref empty: `origin/` and the pull request's base branch. A jq that fails: the pull
    // request's number comes from GITHUB_REF.
    let inputs = [("command", "diff"), ("paths", "mesh")];
    let no_jq = [("jq", "#!/bin/sh\nexit 127\n")];
    let run = run_steps(ws.path(), &inputs, &[], &no_jq, usize::MAX);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    let report = &run.step("Run egressc").3["report"];
    let markdown = std::fs::read_to_string(report).unwrap();
    has(&markdown, "loses access");
    assert_eq!(run.summary, markdown);
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    has(&run.calls[1], "gh pr comment 7 --edit-last --body-file ");
}

#[test]
fn action_check_annotates_errors_for_github() {
    if !bash("the action's check") {
        return;
    }
    let ws = scratch();
    copy_tree(
        &root().join("fixtures/bad-e0304-host"),
        &ws.path().join("mesh"),
    );
    let run = run_action(ws.path(), &[("command", "check"), ("paths", "mesh")], &[]);
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "1");
    let (_, _, stdout, _) = run.step("Run egressc");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 6, "{stdout}");
    for e in &errors {
        assert!(e.starts_with("::error file=mesh/egress.yaml,line="), "{e}");
        has(e, "title=E0304::");
    }
    assert!(
        errors[0].starts_with("::error file=mesh/egress.yaml,line=14,col=5,"),
        "{}",
        errors[0]
    );
    has(&run.step("Verdict").2, "::error title=egressc check::");
    // No comment outside diff.
    assert_eq!(run.calls.len(), 1, "{:?}", run.calls);
    // A clean mesh passes.
    copy_tree(&root().join("example/mesh"), &ws.path().join("clean"));
    let run = run_action(ws.path(), &[("command", "check"), ("paths", "clean")], &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert!(!run.step("Run egressc").2.contains("::error"));
}

#[test]
fn action_test_runs_the_cases_and_fails_on_a_wrong_verdict() {
    if !bash("the action's test") {
        return;
    }
    let ws = scratch();
    copy_tree(&root().join("example"), ws.path());
    let inputs = [("command", "test"), ("paths", "cases.yaml mesh")];
    let run = run_action(ws.path(), &inputs, &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    has(&run.step("Run egressc").2, "13 cases passed, 0 failed");
    write(
        &ws.path().join("wrong.yaml"),
        "cases:\n- name: curl may reach example.com\n  from: curl/curl\n  to: example.com:443\n  expect: allowed\n",
    );
    let run = run_action(
        ws.path(),
        &[("command", "test"), ("paths", "wrong.yaml mesh")],
        &[],
    );
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "5");
    has(&run.step("Verdict").2, "::error title=egressc test::");
    // An unknown command fails where it is read.
    let run = run_action(ws.path(), &[("command", "lint")], &[]);
    assert_eq!(run.failed(), Some("Run egressc"));
    has(&run.step("Run egressc").2, "command is `lint`");
}

// ---------------------------------------------------------------------------------------------
// The pre-commit hook.

#[test]
fn pre_commit_hook_checks_the_named_folder() {
    let hooks = yaml_file(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().expect("a list of hooks");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["id"], "egressc-check");
    assert_eq!(hook["entry"], "egressc check");
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["pass_filenames"], false);
    let files = regex::Regex::new(hook["files"].as_str().unwrap()).unwrap();
    for (name, runs) in [
        ("mesh/egress.yaml", true),
        ("a.yml", true),
        ("Cargo.toml", false),
        ("x.yaml.bak", false),
    ] {
        assert_eq!(files.is_match(name), runs, "{name}");
    }
    // pre-commit installs the hook with `cargo install --path .`: the entry is this crate's bin.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    has(&manifest, "[[bin]]\nname = \"egressc\"");
    // What pre-commit runs: the entry, then the user's args.
    let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(entry[0], "egressc");
    let mut args = entry[1..].to_vec();
    args.push("example/mesh");
    let run = egressc(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    args.pop();
    args.push("fixtures/bad-e0304-host");
    let run = egressc(&args);
    assert_ne!(run.code, 0, "{}", run.stderr);
    has(&run.stderr, "E0304");
}
