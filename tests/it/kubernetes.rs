//! `OUT/kubernetes/`: the ConfigMaps hold exactly the output, stay under the size limit (split
//! when needed), and `kubectl kustomize` and the Kubernetes schemas accept what is written
//! (those two run when installed; otherwise each says it skipped).

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("egressc-kube-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn build(inputs: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["build", inputs, "-o", out.to_str().unwrap()];
    args.extend(extra);
    let run = egressc(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Every document of every YAML file under `dir`, with its file.
fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            for d in egressc::yaml_as_json(&text).expect("YAML") {
                out.push((e.path().to_path_buf(), d));
            }
        }
    }
    out
}

fn read(out: &Path, rel: &str) -> String {
    std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn configmaps_hold_the_output_under_the_size_limit() {
    let out = scratch("example");
    build("example/mesh", &out, &[]);
    let docs = documents(&out.join("kubernetes"));
    let mut seen = 0;
    for (file, d) in &docs {
        let text = serde_json::to_string(d).unwrap();
        assert!(!text.contains("subPath"), "{}", file.display());
        if d["kind"] != "ConfigMap" {
            continue;
        }
        assert!(text.len() <= 256 << 10, "{} is too large", file.display());
        let name = d["metadata"]["name"].as_str().unwrap();
        let ns = d["metadata"]["namespace"].as_str().unwrap();
        let data = d["data"].as_object().unwrap();
        for (key, value) in data {
            let rel = match name {
                "egressc-sidecar" if key.ends_with(".rules") || key == "init.sh" => {
                    format!("iptables/{key}")
                }
                "egressc-sidecar" => format!("sidecar/{key}"),
                "egressc-gateway" => format!("gateway/{key}"),
                n if n.starts_with("egressc-configs") => format!("configs/{ns}/{key}"),
                n => panic!("unexpected ConfigMap {n}"),
            };
            assert_eq!(value.as_str().unwrap(), read(&out, &rel), "{name}: {key}");
            seen += 1;
        }
    }
    // The sidecar codebase (4 scripts, mesh, default config, 2 rules), 1 identity, the gateway.
    assert!(seen >= 12, "{seen} ConfigMap keys");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn identity_configs_are_split_across_configmaps_and_all_mounted() {
    let dir = scratch("many-in");
    std::fs::write(dir.join("mesh.yaml"), many_identities(false)).unwrap();
    let out = scratch("many-out");
    build(dir.to_str().unwrap(), &out, &["--configmap-max-kib=64"]);
    let docs = documents(&out.join("kubernetes/namespaces"));
    let parts: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| {
            d["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("egressc-configs")
        })
        .collect();
    assert!(parts.len() >= 2, "{} config ConfigMaps", parts.len());
    let mut keys = 0;
    for p in &parts {
        assert!(serde_json::to_string(p).unwrap().len() <= 64 << 10);
        keys += p["data"].as_object().unwrap().len();
    }
    assert_eq!(keys, 40);
    let patch = read(&out, "kubernetes/inject/deployment.yaml");
    for n in 2..=parts.len() {
        assert!(
            patch.contains(&format!("name: egressc-configs-{n}")),
            "{patch}"
        );
    }
    // One config over the limit is an error, and nothing is written.
    let small = scratch("small-out");
    let run = egressc(&[
        "build",
        dir.to_str().unwrap(),
        "-o",
        small.join("o").to_str().unwrap(),
        "--configmap-max-kib=1",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("E0601"), "{}", run.stderr);
    assert!(!small.join("o").exists());
    // The output is streamed into a scratch folder beside OUT as it is compiled: a build that
    // fails on the way removes it.
    let left: Vec<_> = std::fs::read_dir(&small)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left beside OUT: {left:?}");
    for d in [dir, out, small] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn the_sidecar_memory_limit_grows_with_the_largest_config_or_is_given() {
    let limit = |out: &Path| -> u64 {
        let patch = documents(&out.join("kubernetes/inject"))
            .into_iter()
            .find(|(f, _)| f.ends_with("deployment.yaml"))
            .unwrap()
            .1;
        let sidecar = patch["spec"]["template"]["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "egressc-sidecar")
            .unwrap()
            .clone();
        let text = sidecar["resources"]["limits"]["memory"].as_str().unwrap();
        text.strip_suffix("Mi").unwrap().parse().unwrap()
    };
    let small = scratch("mem-small");
    build("example/mesh", &small, &[]);
    // 64 MiB and 12 bytes per byte of the largest config (with the mesh data).
    let largest = walkdir::WalkDir::new(small.join("configs"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .chain([std::fs::metadata(small.join("sidecar/config.json"))
            .unwrap()
            .len()])
        .max()
        .unwrap();
    let mesh = std::fs::metadata(small.join("sidecar/mesh.json"))
        .unwrap()
        .len();
    assert_eq!(
        limit(&small),
        64 + ((largest + mesh) * 12).div_ceil(1 << 20)
    );
    // Many hosts in one identity's config: the limit grows with it.
    let dir = scratch("mem-many-in");
    let hosts: Vec<String> = (0..3000).map(|i| format!("h{i}.exact.test")).collect();
    std::fs::write(
        dir.join("mesh.yaml"),
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: a, namespace: ns}}\n---\n\
             apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: ns}}\n\
             spec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: ns}}]\n  hosts: [{}]\n  \
             ports: [{{number: 80, protocol: http}}]\n",
            hosts.join(", ")
        ),
    )
    .unwrap();
    let many = scratch("mem-many");
    build(dir.to_str().unwrap(), &many, &[]);
    let config = std::fs::metadata(many.join("configs/ns/a.json"))
        .unwrap()
        .len();
    assert!(config > 1 << 20, "{config} bytes");
    assert!(
        limit(&many) >= 64 + config * 12 / (1 << 20),
        "{}",
        limit(&many)
    );
    // The flag sets it; under the request (64 MiB) it is refused.
    let given = scratch("mem-given");
    build("example/mesh", &given, &["--sidecar-memory-limit", "300"]);
    assert_eq!(limit(&given), 300);
    let run = egressc(&[
        "build",
        "example/mesh",
        "-o",
        "/nonexistent/x",
        "--sidecar-memory-limit",
        "32",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for d in [small, dir, many, given] {
        std::fs::remove_dir_all(d).ok();
    }
}

fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            "kubernetes",
            &format!("the {name} checks"),
            &format!("`{name}` is not installed"),
        );
    }
    ok
}

const APPS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: curl, namespace: curl, labels: {egressc.io/inject: \"true\"}}\nspec:\n  selector: {matchLabels: {app: curl}}\n  template:\n    metadata: {labels: {app: curl}}\n    spec:\n      serviceAccountName: curl\n      initContainers: [{name: migrate, image: busybox}]\n      containers: [{name: curl, image: curlimages/curl}]\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cron, namespace: curl, labels: {egressc.io/inject: \"true\"}}\nspec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: job, image: busybox}]\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: job, namespace: curl, labels: {egressc.io/inject: \"true\"}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: job, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: pod, namespace: curl, labels: {egressc.io/inject: \"true\", app: pod}}\nspec:\n  containers: [{name: pod, image: busybox}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain, namespace: curl}\nspec:\n  selector: {matchLabels: {app: plain}}\n  template:\n    metadata: {labels: {app: plain}}\n    spec:\n      containers: [{name: plain, image: busybox}]\n";

/// The pod spec and metadata of a workload, wherever its kind keeps them.
fn pod_of(d: &Value) -> (Value, Value) {
    let template = match d["kind"].as_str() {
        Some("Pod") => d.clone(),
        Some("CronJob") => d["spec"]["jobTemplate"]["spec"]["template"].clone(),
        _ => d["spec"]["template"].clone(),
    };
    (template["spec"].clone(), template["metadata"].clone())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The injected workloads of a rendered overlay: each kind patched, the sidecar where the
/// mode puts it (native: an init container after egressc-init and before the app's own, with
/// a startup probe the kubelet can reach), the rest untouched.
fn assert_injected(docs: &[Value], native: bool) {
    let mut seen = Vec::new();
    for d in docs {
        let name = d["metadata"]["name"].as_str().unwrap_or("");
        if !["curl", "cron", "job", "pod", "plain"].contains(&name) {
            continue;
        }
        seen.push(name.to_owned());
        let (spec, metadata) = pod_of(d);
        let (init, containers) = (names(&spec["initContainers"]), names(&spec["containers"]));
        if name == "plain" {
            assert!(
                init.is_empty() && containers == ["plain"],
                "{init:?} {containers:?}"
            );
            continue;
        }
        assert_eq!(metadata["labels"]["egressc.io/meshed"], "true", "{name}");
        let sidecar_list = if native {
            &spec["initContainers"]
        } else {
            &spec["containers"]
        };
        let sidecar = sidecar_list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "egressc-sidecar")
            .unwrap_or_else(|| panic!("{name}: no sidecar in {sidecar_list}"))
            .clone();
        let own = if name == "curl" {
            vec!["migrate"]
        } else {
            vec![]
        };
        if native {
            let mut want = vec!["egressc-init", "egressc-sidecar"];
            want.extend(&own);
            assert_eq!(init, want, "{name}");
            assert!(
                !containers.contains(&"egressc-sidecar".to_owned()),
                "{name}"
            );
            assert_eq!(sidecar["restartPolicy"], "Always");
            let probe = &sidecar["startupProbe"]["httpGet"];
            assert_eq!(
                (probe["port"].as_i64(), probe["path"].as_str()),
                (Some(15010), Some("/metrics"))
            );
        } else {
            let mut want = vec!["egressc-init"];
            want.extend(&own);
            assert_eq!(init, want, "{name}");
            assert!(
                sidecar.get("restartPolicy").is_none() && sidecar.get("startupProbe").is_none()
            );
        }
        assert_eq!(sidecar["securityContext"]["runAsUser"], 1500);
        assert_eq!(sidecar["securityContext"]["readOnlyRootFilesystem"], true);
        let init = &spec["initContainers"][0];
        assert_eq!(
            init["securityContext"]["capabilities"]["add"],
            serde_json::json!(["NET_ADMIN"])
        );
        assert_eq!(init["securityContext"]["privileged"], false);
        let fields: Vec<&str> = init["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["status.podIP", "status.hostIP"]);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

/// The gateway stays up through a drain: replicas spread across nodes, a budget that lets one
/// go at a time, probes, requests and limits.
fn assert_gateway(docs: &[Value], replicas: i64) {
    let deployment = docs
        .iter()
        .find(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
        })
        .expect("the gateway Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_i64(), Some(replicas));
    let pod = &spec["template"]["spec"];
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    assert!(
        spread
            .iter()
            .any(|c| c["topologyKey"] == "kubernetes.io/hostname"
                && c["labelSelector"] == spec["selector"])
    );
    let c = &pod["containers"][0];
    assert!(
        c["livenessProbe"]["httpGet"]["port"] == 15010
            && c["readinessProbe"]["tcpSocket"].is_object()
    );
    assert!(
        c["resources"]["limits"]["memory"].is_string()
            && c["resources"]["requests"]["cpu"].is_string()
    );
    let pdb = docs
        .iter()
        .find(|d| d["kind"] == "PodDisruptionBudget")
        .expect("a PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], spec["selector"]);
}

/// `kubectl kustomize DIR`, written beside it as `rendered.yaml`.
fn kustomize(dir: &Path) -> PathBuf {
    let r = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let path = dir.join("rendered.yaml");
    std::fs::write(&path, &r.stdout).unwrap();
    path
}

/// `kubernetes-validate --strict` for Kubernetes 1.33.
fn assert_valid(rendered: &Path) {
    let v = Command::new("kubernetes-validate")
        .args(["-k", "1.33.0", "--strict", "--quiet"])
        .arg(rendered)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{}: {}{}",
        rendered.display(),
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn kubectl_kustomize_renders_and_the_schemas_accept_it() {
    let kubectl = tool("kubectl");
    let validate = tool("kubernetes-validate");
    if !kubectl {
        return;
    }
    for (mode, extra) in [
        ("native", &["--pin-egress", "--grafana-dashboard"][..]),
        (
            "classic",
            &["--sidecar-mode", "classic", "--gateway-replicas", "3"][..],
        ),
    ] {
        let out = scratch(&format!("kustomize-{mode}"));
        build("example/mesh", &out, extra);
        let overlay = out.join("overlay");
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../kubernetes, apps.yaml]\ncomponents: [../kubernetes/inject]\n",
        )
        .unwrap();
        std::fs::write(overlay.join("apps.yaml"), APPS).unwrap();
        let rendered = [kustomize(&out.join("kubernetes")), kustomize(&overlay)];
        let docs = egressc::yaml_as_json(&std::fs::read_to_string(&rendered[1]).unwrap()).unwrap();
        assert_injected(&docs, mode == "native");
        assert_gateway(&docs, if mode == "native" { 2 } else { 3 });
        let dashboards = docs
            .iter()
            .filter(|d| d["metadata"]["labels"]["grafana_dashboard"] == "1")
            .count();
        assert_eq!(dashboards, usize::from(mode == "native"));
        if validate {
            rendered.iter().for_each(|r| assert_valid(r));
        }
        std::fs::remove_dir_all(&out).ok();
    }
}

/// The ConfigMap data of every YAML under `dir`, as files: `NAME.part-N` keys joined back.
pub fn reassembled(dir: &Path) -> BTreeMap<(String, String), String> {
    let mut parts: BTreeMap<(String, String, String), BTreeMap<usize, String>> = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (_, d) in documents(dir) {
        if d["kind"] != "ConfigMap" {
            continue;
        }
        let ns = d["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = d["metadata"]["name"].as_str().unwrap();
        // The volume: `egressc-sidecar`, `egressc-configs`, `egressc-gateway` (parts `-N`).
        let volume = name
            .rsplit_once('-')
            .filter(|(_, n)| n.parse::<usize>().is_ok())
            .map_or(name, |(v, _)| v)
            .to_owned();
        for (key, value) in d["data"].as_object().unwrap() {
            let value = value.as_str().unwrap().to_owned();
            match key.rsplit_once(".part-") {
                Some((file, n)) => {
                    parts
                        .entry((ns.clone(), volume.clone(), file.to_owned()))
                        .or_default()
                        .insert(n.parse().unwrap(), value);
                }
                None => {
                    files.insert((format!("{ns}/{volume}"), key.clone()), value);
                }
            }
        }
    }
    for ((ns, volume, file), p) in parts {
        let numbers: Vec<usize> = p.keys().copied().collect();
        assert_eq!(numbers, (1..=numbers.len()).collect::<Vec<_>>(), "{file}");
        files.insert((format!("{ns}/{volume}"), file), p.into_values().collect());
    }
    files
}

#[test]
fn large_json_files_are_split_into_parts_that_join_back() {
    let dir = scratch("parts-in");
    std::fs::write(dir.join("mesh.yaml"), many_identities(true)).unwrap();
    let out = scratch("parts-out");
    build(dir.to_str().unwrap(), &out, &["--configmap-max-kib=32"]);
    let files = reassembled(&out.join("kubernetes"));
    let gateway = &files[&("fsm/egressc-gateway".to_owned(), "config.json".to_owned())];
    assert_eq!(gateway, &read(&out, "gateway/config.json"));
    assert!(
        read(&out, "gateway/config.json").len() > 32 << 10,
        "the test needs a gateway config over the limit"
    );
    for (_, d) in documents(&out.join("kubernetes")) {
        if d["kind"] == "ConfigMap" {
            assert!(serde_json::to_string(&d).unwrap().len() <= 32 << 10);
        }
    }
    for d in [dir, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn labels_and_images_that_kubernetes_would_refuse_are_usage_errors() {
    let out = scratch("bad-flags");
    for (flag, value) in [
        ("--inject-label", "A/b=c"),
        ("--inject-label", "x/y/z=1"),
        ("--inject-label", "/b=c"),
        ("--inject-label", "ok.io/b=c d"),
        ("--pipy-image", ""),
        ("--pipy-image", "flomesh/pipy 1.5"),
        ("--init-image", " "),
    ] {
        let run = egressc(&[
            "build",
            "example/mesh",
            "-o",
            out.to_str().unwrap(),
            flag,
            value,
        ]);
        assert_eq!(run.code, 2, "{flag} {value:?}: {}", run.stderr);
    }
    let ok = egressc(&[
        "build",
        "example/mesh",
        "-o",
        out.to_str().unwrap(),
        "--inject-label",
        "team.example.com/egress=on",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn configmaps_are_measured_as_the_api_server_keeps_them() {
    // Header regexes full of `&`: Go's JSON encoding (what a client-side apply stores in the
    // last-applied annotation) writes each as six bytes. Every ConfigMap must fit the limit
    // measured that way, with the annotation's key; serde's size alone passed 30% over.
    let mut routes = String::new();
    for i in 0..400 {
        routes.push_str(&format!(
            "  - {{name: r{i}, pathRegex: /p{i}, methods: [GET], headers: {{x-t: \"^{i}{}$\"}}}}\n",
            "&".repeat(40)
        ));
    }
    let dir = scratch("amp-in");
    std::fs::write(
        dir.join("mesh.yaml"),
        format!(
            "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {{name: m, namespace: fsm}}\nspec: {{traffic: {{enableEgress: false}}}}\n---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: ns}}\nspec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: ns}}]\n  hosts: [api.example.com]\n  ports: [{{number: 80, protocol: http}}]\n  matches: [{{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: g}}]\n---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {{name: g, namespace: ns}}\nspec:\n  matches:\n{routes}"
        ),
    )
    .unwrap();
    let out = scratch("amp-out");
    build(dir.to_str().unwrap(), &out, &["--configmap-max-kib=64"]);
    let mut checked = 0;
    for (file, d) in documents(&out.join("kubernetes")) {
        if d["kind"] != "ConfigMap" {
            continue;
        }
        let text = serde_json::to_string(&d).unwrap();
        let go = text.len()
            + 5 * text.matches(['<', '>', '&']).count()
            + "kubectl.kubernetes.io/last-applied-configuration".len();
        assert!(
            go <= 64 << 10,
            "{}: {go} bytes as the API server keeps it",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 3, "{checked} ConfigMaps");
    for d in [dir, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// The metric names the proxies' scripts define (`'egressc_…'` literals under `templates/`).
fn exposed_metrics() -> std::collections::BTreeSet<String> {
    let literal = regex::Regex::new(r"'(egressc_[a-z_]+)'").unwrap();
    let mut names = std::collections::BTreeSet::new();
    for e in walkdir::WalkDir::new(root().join("templates")) {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "js") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            names.extend(literal.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    names
}

/// Each metric's labels, from the README's table ("Metrics"): the backticked words of its
/// labels column outside parentheses.
fn readme_labels() -> BTreeMap<String, Vec<String>> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let paren = regex::Regex::new(r"\([^)]*\)").unwrap();
    let word = regex::Regex::new(r"`([a-z_]+)`").unwrap();
    let mut out = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 5 && cells[1].starts_with("`egressc_") {
            let name = cells[1].trim_matches('`').to_owned();
            let labels = paren.replace_all(cells[3], "");
            out.insert(
                name,
                word.captures_iter(&labels)
                    .map(|c| c[1].to_owned())
                    .collect(),
            );
        }
    }
    out
}

/// The metric names and label names a PromQL expression uses, and the functions it calls.
fn promql_names(expr: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let strings = regex::Regex::new(r#""[^"]*""#).unwrap();
    let matchers = regex::Regex::new(r"\{([^}]*)\}").unwrap();
    let grouping = regex::Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").unwrap();
    let ident = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?").unwrap();
    let expr = strings.replace_all(expr, "\"\"");
    let mut labels = Vec::new();
    for c in matchers.captures_iter(&expr) {
        for m in c[1].split(',').filter(|m| !m.trim().is_empty()) {
            let name = m.split(['=', '!', '~']).next().unwrap().trim();
            labels.push(name.to_owned());
        }
    }
    let expr = matchers.replace_all(&expr, "");
    for c in grouping.captures_iter(&expr) {
        labels.extend(
            c[1].split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty()),
        );
    }
    let expr = grouping.replace_all(&expr, "");
    let expr = regex::Regex::new(r"\[[^\]]*\]")
        .unwrap()
        .replace_all(&expr, "");
    let (mut metrics, mut functions) = (Vec::new(), Vec::new());
    for m in ident.find_iter(&expr) {
        let text = m.as_str();
        if text.ends_with('(') {
            functions.push(text.trim_end_matches('(').trim().to_owned());
        } else {
            metrics.push(text.to_owned());
        }
    }
    (metrics, labels, functions)
}

#[test]
fn every_dashboard_query_names_only_metrics_the_proxies_expose() {
    let out = scratch("dashboard");
    build("example/mesh", &out, &["--grafana-dashboard=observability"]);
    let docs = documents(&out.join("kubernetes"));
    let (_, map) = docs
        .iter()
        .find(|(f, _)| f.ends_with("grafana-dashboard.yaml"))
        .expect("the dashboard ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(map["metadata"]["namespace"], "observability");
    let dashboard: Value =
        serde_json::from_str(map["data"]["egressc.json"].as_str().unwrap()).unwrap();
    let exposed = exposed_metrics();
    let labels = readme_labels();
    assert_eq!(
        labels
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        exposed,
        "the README's table and the scripts"
    );
    // Prometheus's own labels, and those its Kubernetes discovery adds.
    let target_labels = ["namespace", "pod", "instance", "job"];
    let functions = [
        "sum",
        "rate",
        "increase",
        "topk",
        "count",
        "max",
        "min",
        "avg",
        "label_values",
    ];
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let panels = queries.len();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            queries.push(q.to_owned());
        }
    }
    let mut named = std::collections::BTreeSet::new();
    for q in &queries {
        let (metrics, used_labels, called) = promql_names(q);
        assert!(!metrics.is_empty(), "{q}: no metric");
        for f in &called {
            assert!(functions.contains(&f.as_str()), "{q}: unknown function {f}");
        }
        // label_values(METRIC, LABEL): the label is the last bare name.
        let (metrics, extra): (Vec<_>, Vec<_>) = metrics.into_iter().partition(|m| {
            m.starts_with("egressc_") || !called.contains(&"label_values".to_owned())
        });
        for m in &metrics {
            assert!(
                exposed.contains(m),
                "{q}: `{m}` is not a metric the proxies expose ({exposed:?})"
            );
            named.insert(m.clone());
        }
        for l in used_labels.iter().chain(&extra) {
            let known = target_labels.contains(&l.as_str())
                || metrics.iter().any(|m| labels[m].contains(l));
            assert!(known, "{q}: label `{l}` is not one of {metrics:?}'s");
        }
    }
    assert!(panels >= 8, "{panels} panel queries");
    // Every metric has a panel.
    assert_eq!(named, exposed);
    // And the check catches a name the proxies do not expose.
    let (metrics, _, _) =
        promql_names("sum by (verdict) (rate(egressc_decision_total{verdict=\"deny\"}[5m]))");
    assert_eq!(metrics, ["egressc_decision_total"]);
    assert!(!exposed.contains(&metrics[0]));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn the_dashboard_flag_takes_its_namespace_only_after_an_equals_sign() {
    let out = scratch("dashboard-flag");
    // A bare flag before the INPUT: the INPUT stays an input, the namespace is `monitoring`.
    let run = egressc(&[
        "build",
        "--grafana-dashboard",
        "example/mesh",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = read(&out, "kubernetes/grafana-dashboard.yaml");
    assert!(text.contains("namespace: monitoring"), "{text}");
    for bad in [
        "--grafana-dashboard=Bad",
        "--grafana-dashboard=a/b",
        "--gateway-replicas=0",
        "--sidecar-mode=sidecar",
    ] {
        let run = egressc(&["build", bad, "example/mesh", "-o", out.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
    }
    std::fs::remove_dir_all(&out).ok();
}
