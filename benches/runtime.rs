//! Runtime benchmark: what the generated proxies cost per request, side by side in one run
//! with the references they are measured against — the direct path, a bare transparent Pipy
//! relay (L4) and a bare HTTP proxy (L7), both in `benches/runtime/` — interleaved over
//! rounds, in private network namespaces with the generated iptables rules.
//!
//! Needs root, `ip`, `iptables-restore`, `setpriv`, `openssl`, `wrk` (Debian's package) and a
//! Pipy 1.5 binary in `EGRESSC_PIPY`; without them it prints one line saying what is missing.
//!
//!   sudo EGRESSC_PIPY=/path/to/pipy cargo bench --bench runtime
//!
//! `EGRESSC_BENCH_ROUNDS` (default 5) and `EGRESSC_BENCH_SECONDS` (default 5, per wrk run)
//! trade time for precision. `EGRESSC_BENCH_INSTRUCTIONS=1` measures instead what CPU time
//! here cannot resolve: the user-space instructions per request of every plain-HTTP case,
//! counted under valgrind (callgrind; `valgrind` and `python3` needed) as the difference
//! between 3,000 and 1,000 requests on one kept-alive connection: the same to a few tenths of
//! a percent run to run, whatever else the machine does. Each proxy runs one worker thread;
//! wrk runs `-t1 -c4` with keep-alive; the proxy's own CPU (user + system, from /proc) per request is the main figure
//! (the sidecar's and the gateway's together for the gateway cases).
//!
//! `EGRESSC_BENCH_BASELINE=DIR[,DIR…]` adds a case for each DIR: the HTTP case's sidecar as another build wrote it
//! (DIR is the `egressc build` output of `EGRESSC_BENCH_WRITE_INPUTS`'s file, made by that
//! build), interleaved with this build's, so that a change's cost is read off one run.
//! `EGRESSC_BENCH_WRITE_INPUTS=FILE` writes that case's inputs to FILE and exits.
//! `EGRESSC_BENCH_CASES=NAME,…` runs only the cases whose names hold one of these (with the
//! references they are compared with).

// The e2e suite's throwaway PKI (the benchmark uses part of it).
#[allow(dead_code)]
#[path = "../tests/it/e2e/pki.rs"]
mod pki;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pipy() -> Option<PathBuf> {
    std::env::var_os("EGRESSC_PIPY").map(PathBuf::from)
}

fn missing() -> Option<String> {
    if pipy().is_none() {
        return Some("EGRESSC_PIPY is not set".into());
    }
    let counting_tools: &[&str] = if counting() {
        &["valgrind", "python3"]
    } else {
        &[]
    };
    for tool in ["ip", "iptables-restore", "setpriv", "openssl", "wrk"]
        .iter()
        .chain(counting_tools)
    {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if uid.as_deref() != Some("0") {
        return Some("it needs root (network namespaces, iptables)".into());
    }
    None
}

const MESH: &str = "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec:\n  traffic: {enableEgress: PASS}\n  featureFlags: {enableEgressPolicy: true}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: client, namespace: bench}\n";
const ROUTES: &str = "---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: routes, namespace: bench}\nspec:\n  matches:\n  - {name: get, pathRegex: /get, methods: [GET]}\n";

fn policy(name: &str, hosts: &[String], extra: &str) -> String {
    format!(
        "---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  sources: [{{kind: ServiceAccount, name: client, namespace: bench}}]\n{}{extra}",
        if hosts.is_empty() {
            String::new()
        } else {
            format!("  hosts: [{}]\n", hosts.join(", "))
        }
    )
}

fn http_policy(name: &str, hosts: &[String]) -> String {
    policy(
        name,
        hosts,
        "  ports: [{number: 8080, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: routes}]\n",
    )
}

fn gateway(mode: &str) -> String {
    format!(
        "---\nkind: EgressGateway\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {{name: gw, namespace: fsm}}\nspec:\n  global: [{{service: fsm-egress-gateway, namespace: fsm}}]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: fsm-egress-gateway\n  namespace: fsm\n  annotations: {{flomesh.io/egress-gateway-mode: {mode}}}\nspec:\n  clusterIP: 10.77.0.30\n  selector: {{app: gw}}\n  ports: [{{port: 1080, targetPort: 1080}}]\n"
    )
}

/// The L7 reference, and the reference that adds the one check a faithful policy cannot drop.
const REFERENCE_L7: &str = "bare L7 proxy";
const CHECK_FLOOR: &str = "bare L7 + header-name check";

/// What runs between wrk and the origin.
enum Proxy {
    Direct,
    Bare(&'static str),
    /// Generated from these inputs; `watched`: the config comes from EGRESSC_CONFIG (polled
    /// every second) rather than the codebase.
    Sidecar {
        inputs: String,
        watched: bool,
        /// With the gateway, authenticated as `--gateway-auth` says (mtls: certificates from
        /// a throwaway CA in EGRESSC_TLS_DIR of both proxies).
        gateway: Option<egressc::AuthMode>,
    },
    /// Another build's output (`EGRESSC_BENCH_BASELINE`) of the HTTP case's inputs.
    Baseline(PathBuf),
}

struct Case {
    name: &'static str,
    url: &'static str,
    proxy: Proxy,
    /// The case whose CPU per request this one is compared with.
    reference: Option<&'static str>,
    /// wrk sends `Connection: close`: a new connection (and tunnel) per request.
    close: bool,
}

/// The inputs of the HTTP case (a host and a route), which a baseline build compiles too.
fn http_inputs() -> String {
    let closed = MESH.replace("PASS", "false");
    let web = http_policy("web", &["web.test".into()]);
    format!("{closed}{ROUTES}{web}")
}

fn cases() -> Vec<Case> {
    let passthrough = MESH.replace("PASS", "true");
    let closed = MESH.replace("PASS", "false");
    let exact: Vec<String> = (0..10_000).map(|i| format!("h{i}.exact.test")).collect();
    let wild: Vec<String> = (0..1_000).map(|i| format!("'*.w{i}.test'")).collect();
    let http = http_inputs();
    let sidecar = |inputs: String| Proxy::Sidecar {
        inputs,
        watched: true,
        gateway: None,
    };
    use egressc::AuthMode::{Header, Mtls};
    let via = |mode: &str, auth| Proxy::Sidecar {
        inputs: format!("{passthrough}{}", gateway(mode)),
        watched: true,
        gateway: Some(auth),
    };
    let baselines = std::env::var("EGRESSC_BENCH_BASELINE").unwrap_or_default();
    let baseline = baselines
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|dir| Case {
            // A name lives as long as the run.
            name: Box::leak(
                format!("sidecar http host+route, baseline build {dir}").into_boxed_str(),
            ),
            url: "http://web.test:8080/get",
            proxy: Proxy::Baseline(PathBuf::from(dir)),
            reference: Some("sidecar http host+route"),
            close: false,
        });
    let mut all = vec![
        Case {
            name: "direct",
            url: "http://web.test:8080/get",
            proxy: Proxy::Direct,
            reference: None,
            close: false,
        },
        Case {
            name: "bare L4 relay",
            url: "http://web.test:8080/get",
            proxy: Proxy::Bare("bare-l4.js"),
            reference: None,
            close: false,
        },
        Case {
            name: REFERENCE_L7,
            url: "http://web.test:8080/get",
            proxy: Proxy::Bare("bare-l7.js"),
            reference: None,
            close: false,
        },
        Case {
            name: CHECK_FLOOR,
            url: "http://web.test:8080/get",
            proxy: Proxy::Bare("bare-l7-check.js"),
            reference: Some(REFERENCE_L7),
            close: false,
        },
        Case {
            name: "sidecar passthrough",
            url: "http://10.77.0.50:8080/get",
            proxy: sidecar(passthrough.clone()),
            reference: Some("bare L4 relay"),
            close: false,
        },
        Case {
            name: "sidecar tcp rule",
            url: "http://10.77.0.50:8080/get",
            proxy: sidecar(format!(
                "{closed}{}",
                policy(
                    "tcp",
                    &[],
                    "  ipAddresses: [10.77.0.50/32]\n  ports: [{number: 8080, protocol: tcp}]\n"
                )
            )),
            reference: Some("bare L4 relay"),
            close: false,
        },
        Case {
            name: "sidecar https (SNI)",
            url: "https://secure.test:8443/get",
            proxy: sidecar(format!(
                "{closed}{}",
                policy(
                    "tls",
                    &["secure.test".into()],
                    "  ports: [{number: 8443, protocol: https}]\n"
                )
            )),
            reference: Some("bare L4 relay (TLS)"),
            close: false,
        },
        Case {
            name: "bare L4 relay (TLS)",
            url: "https://secure.test:8443/get",
            proxy: Proxy::Bare("bare-l4.js"),
            reference: None,
            close: false,
        },
        Case {
            name: "sidecar http host+route",
            url: "http://web.test:8080/get",
            proxy: sidecar(http.clone()),
            reference: Some(REFERENCE_L7),
            close: false,
        },
        Case {
            name: "sidecar http, config not watched",
            url: "http://web.test:8080/get",
            proxy: Proxy::Sidecar {
                inputs: http.clone(),
                watched: false,
                gateway: None,
            },
            reference: Some("sidecar http host+route"),
            close: false,
        },
        Case {
            name: "sidecar http + 10,000 exact hosts",
            url: "http://web.test:8080/get",
            proxy: sidecar(format!("{http}{}", http_policy("exact", &exact))),
            reference: Some("sidecar http host+route"),
            close: false,
        },
        Case {
            name: "sidecar http + 1,000 wildcards (the last matches)",
            url: "http://x.w999.test:8080/get",
            proxy: sidecar(format!("{http}{}", http_policy("wild", &wild))),
            reference: Some("sidecar http host+route"),
            close: false,
        },
        Case {
            name: "sidecar + gateway, http2tunnel, header",
            url: "http://10.77.0.50:8080/get",
            proxy: via("http2tunnel", Header),
            reference: Some("sidecar passthrough"),
            close: false,
        },
        Case {
            name: "sidecar + gateway, http2tunnel, mTLS",
            url: "http://10.77.0.50:8080/get",
            proxy: via("http2tunnel", Mtls),
            reference: Some("sidecar + gateway, http2tunnel, header"),
            close: false,
        },
        Case {
            name: "sidecar + gateway, socks5, header",
            url: "http://10.77.0.50:8080/get",
            proxy: via("socks5", Header),
            reference: Some("sidecar passthrough"),
            close: false,
        },
        Case {
            name: "sidecar + gateway, socks5, mTLS",
            url: "http://10.77.0.50:8080/get",
            proxy: via("socks5", Mtls),
            reference: Some("sidecar + gateway, socks5, header"),
            close: false,
        },
        Case {
            name: "sidecar + gateway, http2tunnel, header, a connection per request",
            url: "http://10.77.0.50:8080/get",
            proxy: via("http2tunnel", Header),
            reference: Some("sidecar passthrough"),
            close: true,
        },
        Case {
            name: "sidecar + gateway, http2tunnel, mTLS, a connection per request",
            url: "http://10.77.0.50:8080/get",
            proxy: via("http2tunnel", Mtls),
            reference: Some("sidecar + gateway, http2tunnel, header, a connection per request"),
            close: true,
        },
        Case {
            name: "sidecar + gateway, socks5, mTLS, a connection per request",
            url: "http://10.77.0.50:8080/get",
            proxy: via("socks5", Mtls),
            reference: Some("sidecar + gateway, http2tunnel, header, a connection per request"),
            close: true,
        },
    ];
    all.extend(baseline);
    all
}

const HOSTS: &str = "127.0.0.1 localhost\n10.77.0.50 web.test secure.test x.w999.test\n10.77.0.54 bulk.test\n10.77.0.30 fsm-egress-gateway.fsm.svc.cluster.local\n";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One case's namespace with its origin and proxies.
struct Bed {
    ns: String,
    dir: PathBuf,
    children: Vec<Child>,
    /// The proxies whose CPU counts.
    proxies: Vec<u32>,
    start_secs: f64,
    rss_kib: u64,
    /// Start-up and memory of decoding the sidecar's config alone (`decode-only.js`).
    decode_floor: Option<(f64, u64)>,
}

impl Bed {
    /// Start a proxy running `script` as uid 1500 (under valgrind when `counted`), wait until
    /// it listens and count its CPU: its pid and start-up time.
    fn start_proxy(
        &mut self,
        name: &str,
        script: &Path,
        env: &[(String, String)],
        counted: Option<&Path>,
    ) -> (u32, f64) {
        let cmd = proxy_cmd(&self.ns, &[script.to_str().unwrap()], env, counted);
        let (pid, log) = spawn(&self.ns, &self.dir, name, cmd, &mut self.children);
        let secs = wait_listening(&log);
        self.proxies.push(pid);
        (pid, secs)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.ns));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway PKI as csi-driver-spiffe lays it out (tls.crt, tls.key, ca.crt), the e2e
/// suite's: `gateway`'s certificate names the gateway's ServiceAccount, `sidecar`'s
/// bench/client.
fn certificates(dir: &Path) {
    let pki = pki::Pki::new(dir);
    pki.issue(
        "gateway",
        "mesh",
        "URI:spiffe://cluster.local/ns/fsm/sa/fsm-egress-gateway",
        None,
    );
    pki.issue(
        "sidecar",
        "mesh",
        "URI:spiffe://cluster.local/ns/bench/sa/client",
        None,
    );
}

fn exec(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

fn spawn(
    ns: &str,
    dir: &Path,
    name: &str,
    mut cmd: Command,
    children: &mut Vec<Child>,
) -> (u32, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::File::create(&log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{ns}: {name}: {e}"));
    let pid = child.id();
    children.push(child);
    (pid, log)
}

fn wait_listening(log: &Path) -> f64 {
    let start = Instant::now();
    // Under valgrind a big config takes a minute to load.
    let limit = Duration::from_secs(if counting() { 300 } else { 30 });
    while start.elapsed() < limit {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("Listening")
        {
            return start.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "{} never listened: {}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The pid of the Pipy process under an `ip netns exec … setpriv … env … pipy` chain (exec
/// replaces each, so it is the spawned pid).
/// `counted`: run it under callgrind, its counts written there.
fn proxy_cmd(ns: &str, args: &[&str], env: &[(String, String)], counted: Option<&Path>) -> Command {
    let mut c = exec(ns, "setpriv");
    c.args(["--reuid=1500", "--regid=1500", "--clear-groups", "env"]);
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    if let Some(out) = counted {
        c.args(["valgrind", "--tool=callgrind"])
            .arg(format!("--callgrind-out-file={}", out.display()));
    }
    c.arg(pipy().unwrap())
        .args(["--admin-port-off", "--threads=1"])
        .args(args);
    c
}

fn setup(i: usize, case: &Case, cert: &Path, key: &Path) -> Bed {
    let ns = format!("egressc-bench-{}-{i}", std::process::id());
    let dir = std::env::temp_dir().join(&ns);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("chmod").arg("755").arg(&dir));
    run(Command::new("ip").args(["netns", "add", &ns]));
    run(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
    run(Command::new("ip").args([
        "-n",
        &ns,
        "route",
        "add",
        "local",
        "10.77.0.0/24",
        "dev",
        "lo",
    ]));
    let etc = PathBuf::from("/etc/netns").join(&ns);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), HOSTS).unwrap();
    let mut bed = Bed {
        ns: ns.clone(),
        dir: dir.clone(),
        children: Vec::new(),
        proxies: Vec::new(),
        start_secs: 0.0,
        rss_kib: 0,
        decode_floor: None,
    };
    let mut origin = exec(&ns, "env");
    origin
        .arg(format!("BENCH_CERT={}", cert.display()))
        .arg(format!("BENCH_KEY={}", key.display()))
        .arg(pipy().unwrap())
        .args(["--admin-port-off", "--threads=1"])
        .arg(root().join("benches/runtime/origin.js"));
    let (_, log) = spawn(&ns, &dir, "origin", origin, &mut bed.children);
    wait_listening(&log);
    let out = dir.join("out");
    // Written by the proxy's uid.
    let counted = counting().then(|| {
        let counts = dir.join("counts");
        std::fs::create_dir_all(&counts).unwrap();
        run(Command::new("chmod").arg("1777").arg(&counts));
        counts.join("callgrind.out")
    });
    let rules = match &case.proxy {
        Proxy::Direct => None,
        Proxy::Bare(script) => {
            // The same interception as the sidecar's, without a filter table.
            let analysis =
                egressc::analyze_texts(vec![("m.yaml".into(), MESH.replace("PASS", "true"))]);
            egressc::write_output(&analysis.compile(), &out).unwrap();
            let script = root().join("benches/runtime").join(script);
            bed.start_secs = bed.start_proxy("proxy", &script, &[], counted.as_deref()).1;
            Some(out.join("iptables/outbound.rules"))
        }
        Proxy::Sidecar {
            inputs,
            watched,
            gateway,
        } => {
            let auth = egressc::GatewayAuth {
                mode: gateway.unwrap_or(egressc::AuthMode::Mtls),
                ..Default::default()
            };
            let inputs_file = dir.join("mesh.yaml");
            std::fs::write(&inputs_file, inputs).unwrap();
            let opts = egressc::ReadOptions {
                auth,
                ..Default::default()
            };
            let files = [inputs_file.display().to_string()];
            let analysis = egressc::analyze(&files, &mut std::io::empty(), &opts);
            assert!(
                !analysis.has_errors(),
                "{}: {:?}",
                case.name,
                analysis.findings.diagnostics
            );
            egressc::write_output(&analysis.compile(), &out).unwrap();
            run(Command::new("chmod").args(["-R", "a+rX"]).arg(&out));
            let config = out.join("configs/bench/client.json");
            // Under mtls each proxy reads its certificate from its own folder.
            let tls = |name: &str| -> Vec<(String, String)> {
                match gateway {
                    Some(egressc::AuthMode::Mtls) => vec![(
                        "EGRESSC_TLS_DIR".to_owned(),
                        dir.join("pki").join(name).display().to_string(),
                    )],
                    _ => Vec::new(),
                }
            };
            if *gateway == Some(egressc::AuthMode::Mtls) {
                certificates(&dir.join("pki"));
            }
            if gateway.is_some() {
                let gateway_counted = counted.as_ref().map(|c| c.with_file_name("gateway.out"));
                let script = out.join("gateway/main.js");
                // Its metrics on another port than the sidecar's (one namespace).
                let mut env = tls("gateway");
                env.push(("EGRESSC_METRICS_PORT".to_owned(), "15011".to_owned()));
                bed.start_proxy("gateway", &script, &env, gateway_counted.as_deref());
            }
            let mut env = if *watched {
                vec![("EGRESSC_CONFIG".to_owned(), config.display().to_string())]
            } else {
                std::fs::copy(&config, out.join("sidecar/config.json")).unwrap();
                Vec::new()
            };
            env.extend(tls("sidecar"));
            let script = out.join("sidecar/main.js");
            let (pid, secs) = bed.start_proxy("sidecar", &script, &env, counted.as_deref());
            bed.start_secs = secs;
            bed.rss_kib = rss_kib(pid);
            if counted.is_none() {
                bed.decode_floor = Some(decode_floor(&ns, &dir, &config));
            }
            Some(out.join("iptables/outbound.rules"))
        }
        Proxy::Baseline(built) => {
            run(Command::new("cp").arg("-r").arg(built).arg(&out));
            run(Command::new("chmod").args(["-R", "a+rX"]).arg(&out));
            let config = out.join("configs/bench/client.json");
            let env = vec![("EGRESSC_CONFIG".to_owned(), config.display().to_string())];
            let script = out.join("sidecar/main.js");
            let (pid, secs) = bed.start_proxy("sidecar", &script, &env, counted.as_deref());
            bed.start_secs = secs;
            bed.rss_kib = rss_kib(pid);
            Some(out.join("iptables/outbound.rules"))
        }
    };
    if let Some(rules) = rules {
        let mut restore = exec(&ns, "iptables-restore");
        restore.arg("--noflush").stdin(Stdio::piped());
        let mut child = restore.spawn().unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            &std::fs::read(rules).unwrap(),
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
    }
    bed
}

/// How long decoding `config` alone takes to listening, and the memory it leaves: the floor
/// the config's size sets on the sidecar's start-up.
fn decode_floor(ns: &str, dir: &Path, config: &Path) -> (f64, u64) {
    let mut children = Vec::new();
    let script = root().join("benches/runtime/decode-only.js");
    let cmd = proxy_cmd(
        ns,
        &[script.to_str().unwrap()],
        &[("EGRESSC_CONFIG".to_owned(), config.display().to_string())],
        None,
    );
    let (pid, log) = spawn(ns, dir, "decode-only", cmd, &mut children);
    let secs = wait_listening(&log);
    let rss = rss_kib(pid);
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    (secs, rss)
}

fn counting() -> bool {
    std::env::var_os("EGRESSC_BENCH_INSTRUCTIONS").is_some_and(|v| v == "1")
}

/// The instructions a case's proxies ran for `requests` requests on one kept-alive
/// connection, from start to exit (start-up and the connection's set-up included, which the
/// difference of two counts removes): the proxy's (the sidecar's, or the bare script's), and
/// the gateway's when there is one.
fn count_instructions(
    i: usize,
    case: &Case,
    cert: &Path,
    key: &Path,
    requests: u32,
) -> (u64, Option<u64>) {
    let mut bed = setup(i, case, cert, key);
    let client = root().join("benches/runtime/keepalive.py");
    run(exec(&bed.ns, "python3")
        .arg(&client)
        .arg(case.url)
        .arg(requests.to_string()));
    // SIGINT: Pipy shuts down, and callgrind writes its counts at exit. Under valgrind the
    // drain sometimes never ends; a second SIGINT forces the shutdown (an exit all the same).
    for pid in bed.proxies.clone() {
        let Some(child) = bed.children.iter_mut().find(|c| c.id() == pid) else {
            continue;
        };
        for _ in 0..2 {
            run(Command::new("kill").args(["-INT", &pid.to_string()]));
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
        }
        assert!(
            child.try_wait().ok().flatten().is_some(),
            "{}: the proxy did not exit on SIGINT",
            case.name
        );
    }
    let totals = |file: &str| -> Option<u64> {
        std::fs::read_to_string(bed.dir.join("counts").join(file))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
    };
    let proxy =
        totals("callgrind.out").unwrap_or_else(|| panic!("{}: no callgrind totals", case.name));
    // `EGRESSC_BENCH_KEEP_COUNTS=DIR`: keep each count file, for callgrind_annotate.
    if let Some(keep) = std::env::var_os("EGRESSC_BENCH_KEEP_COUNTS") {
        let to = PathBuf::from(keep).join(format!("{i}-{requests}.callgrind.out"));
        let _ = std::fs::copy(bed.dir.join("counts/callgrind.out"), to);
    }
    (proxy, totals("gateway.out"))
}

/// Every case over plain HTTP, counted in instructions per request (TLS cases are left out:
/// the client speaks HTTP only).
fn instructions(cases: &[Case], cert: &Path, key: &Path) {
    const FEW: u32 = 1_000;
    const MANY: u32 = 3_000;
    let counted: Vec<(usize, &Case)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(c.proxy, Proxy::Direct) && c.url.starts_with("http:"))
        .collect();
    let per = |few: u64, many: u64| many.saturating_sub(few) as f64 / f64::from(MANY - FEW);
    // Per request: all proxies together, and the gateway's part.
    let mut per_request: BTreeMap<&str, (f64, Option<f64>)> = BTreeMap::new();
    for (i, c) in &counted {
        eprintln!("counting {}", c.name);
        let few = count_instructions(*i, c, cert, key, FEW);
        let many = count_instructions(*i, c, cert, key, MANY);
        let gateway = few.1.zip(many.1).map(|(f, m)| per(f, m));
        per_request.insert(
            c.name,
            (per(few.0, many.0) + gateway.unwrap_or(0.0), gateway),
        );
    }
    println!(
        "user-space instructions per request under valgrind (difference of {MANY} and {FEW} requests on one kept-alive connection):"
    );
    for (_, c) in &counted {
        let (n, gateway) = per_request[c.name];
        let mut vs = match c
            .reference
            .and_then(|r| per_request.get(r).map(|m| (r, m.0)))
        {
            Some((r, m)) => format!("{:.2}× {r}", n / m),
            None => String::new(),
        };
        if let (Some(REFERENCE_L7), Some(floor)) = (c.reference, per_request.get(CHECK_FLOOR))
            && c.name != CHECK_FLOOR
        {
            vs.push_str(&format!("; {:.2}× {CHECK_FLOOR}", n / floor.0));
        }
        if let Some(g) = gateway {
            vs.push_str(&format!(" (sidecar {:.0}, gateway {g:.0})", n - g));
        }
        println!("  {:<50} {:>8.0}  {vs}", c.name, n);
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The peak resident memory of a process (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A memory field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// user + system CPU ticks of a process.
fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

struct Sample {
    rps: f64,
    cpu_us: f64,
}

fn measure(bed: &Bed, url: &str, secs: u64, close: bool) -> Sample {
    let before: u64 = bed.proxies.iter().map(|p| ticks(*p)).sum();
    let mut wrk = exec(&bed.ns, "wrk");
    wrk.args(["-t1", "-c4", &format!("-d{secs}s"), url]);
    if close {
        wrk.args(["-H", "Connection: close"]);
    }
    let out = run(&mut wrk);
    let after: u64 = bed.proxies.iter().map(|p| ticks(*p)).sum();
    let requests: f64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let rps: f64 = out
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    assert!(requests > 0.0 && !out.contains("Non-2xx"), "{url}: {out}");
    let hz = 100.0; // USER_HZ on Linux
    Sample {
        rps,
        cpu_us: (after - before) as f64 / hz * 1e6 / requests,
    }
}

/// The streaming bound (`EGRESSC_BENCH_CASES=bodies`): `EGRESSC_BENCH_BODY_MIB` (1024) up
/// and down through the sidecar's http rule, with Content-Length and chunked framing (curl →
/// proxy → the e2e suite's bulk origin, one Pipy thread), beside the bare L7 proxy (demuxHTTP
/// → muxHTTP): throughput, the proxy's CPU per GiB, its peak resident memory after the uploads
/// and after the downloads, and the framing the far side read.
fn bodies(cert: &Path, key: &Path) {
    let mib: u64 = std::env::var("EGRESSC_BENCH_BODY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib << 20;
    let closed = MESH.replace("PASS", "false");
    let bulk = policy(
        "bulk",
        &["bulk.test".into()],
        "  ports: [{number: 8080, protocol: http}]\n",
    );
    let proxies = [
        (
            "sidecar http rule",
            Proxy::Sidecar {
                inputs: format!("{closed}{bulk}"),
                watched: true,
                gateway: None,
            },
        ),
        (REFERENCE_L7, Proxy::Bare("bare-l7.js")),
    ];
    println!("bodies: {mib} MiB through one proxy (curl, one Pipy thread); peak RSS is VmHWM:");
    for (i, (name, proxy)) in proxies.into_iter().enumerate() {
        let case = Case {
            name,
            url: "http://bulk.test:8080/",
            proxy,
            reference: None,
            close: false,
        };
        let bed = setup(900 + i, &case, cert, key);
        let spec = bed.dir.join("bulk.json");
        let log = bed.dir.join("bulk.log");
        std::fs::write(
            &spec,
            format!(
                r#"{{"log": "{}", "cert": "{}", "key": "{}", "origins": [{{"name": "bulk", "addr": "10.77.0.54", "port": 8080, "kind": "bulk"}}]}}"#,
                log.display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let mut children = Vec::new();
        let mut origin = exec(&bed.ns, "python3");
        origin.arg(root().join("tests/e2e/origins.py")).arg(&spec);
        let (_, out) = spawn(&bed.ns, &bed.dir, "bulk", origin, &mut children);
        let start = Instant::now();
        while !std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("READY")
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the bulk origin did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let file = bed.dir.join("body.bin");
        std::fs::File::create(&file).unwrap().set_len(size).unwrap();
        let pid = bed.proxies[0];
        let transfers: [(&str, Vec<String>, bool); 4] = [
            (
                "upload, Content-Length",
                vec![
                    "-T".into(),
                    file.display().to_string(),
                    "http://bulk.test:8080/up".into(),
                ],
                false,
            ),
            (
                "upload, chunked",
                vec!["-T".into(), "-".into(), "http://bulk.test:8080/up".into()],
                true,
            ),
            (
                "download, Content-Length",
                vec![
                    "-D".into(),
                    "-".into(),
                    "-o".into(),
                    "/dev/null".into(),
                    format!("http://bulk.test:8080/download/cl/{size}"),
                ],
                false,
            ),
            (
                "download, chunked",
                vec![
                    "-D".into(),
                    "-".into(),
                    "-o".into(),
                    "/dev/null".into(),
                    format!("http://bulk.test:8080/download/chunked/{size}"),
                ],
                false,
            ),
        ];
        for (what, args, stdin) in transfers {
            let before = ticks(pid);
            let t = Instant::now();
            let mut curl = exec(&bed.ns, "curl");
            curl.args(["-sS", "-H", "Expect:"]).args(&args);
            if stdin {
                curl.stdin(std::fs::File::open(&file).unwrap());
            }
            let text = run(&mut curl);
            let secs = t.elapsed().as_secs_f64();
            let cpu = (ticks(pid) - before) as f64 / 100.0 / (size as f64 / f64::from(1u32 << 30));
            let framing = if what.starts_with("upload") {
                let seen = std::fs::read_to_string(&log).unwrap_or_default();
                let last = seen
                    .lines()
                    .rfind(|l| l.starts_with("BULK "))
                    .unwrap_or("")
                    .to_owned();
                let want = if stdin {
                    "framing=chunked".to_owned()
                } else {
                    format!("framing=cl {size}")
                };
                if last.contains(&want) {
                    "kept"
                } else {
                    "changed"
                }
            } else {
                let chunked = text
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked");
                if chunked == what.ends_with("chunked") {
                    "kept"
                } else {
                    "changed"
                }
            };
            println!(
                "  {name:<28} {what:<26} {:>7.0} MiB/s {cpu:>6.2} s CPU/GiB  framing {framing:<8} peak RSS so far {:>5} MiB",
                mib as f64 / secs,
                peak_kib(pid) / 1024
            );
        }
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(file) = std::env::var_os("EGRESSC_BENCH_WRITE_INPUTS") {
        std::fs::write(&file, http_inputs()).unwrap();
        return;
    }
    if let Some(why) = missing() {
        println!("runtime benchmark skipped: {why}");
        return;
    }
    let rounds: usize = std::env::var("EGRESSC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let secs: u64 = std::env::var("EGRESSC_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let tmp = std::env::temp_dir().join(format!("egressc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (cert, key) = (tmp.join("cert.pem"), tmp.join("key.pem"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=bench",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    run(Command::new("chmod").arg("644").arg(&key));
    // `EGRESSC_BENCH_CASES=NAME,…`: only the cases whose names hold one of these (and the
    // references they are compared with, and theirs: a gateway case's reference, sidecar
    // passthrough, is reported against the bare relay).
    let mut cases = cases();
    if let Ok(only) = std::env::var("EGRESSC_BENCH_CASES") {
        let wanted = |name: &str| only.split(',').any(|w| !w.is_empty() && name.contains(w));
        let mut keep: Vec<&'static str> = cases
            .iter()
            .filter(|c| wanted(c.name))
            .map(|c| c.name)
            .collect();
        for i in 0.. {
            let Some(name) = keep.get(i) else { break };
            let reference = cases
                .iter()
                .find(|c| c.name == *name)
                .and_then(|c| c.reference);
            if let Some(r) = reference.filter(|r| !keep.contains(r)) {
                keep.push(r);
            }
        }
        cases.retain(|c| keep.contains(&c.name));
    }
    if std::env::var("EGRESSC_BENCH_CASES").is_ok_and(|c| c.split(',').any(|w| w == "bodies")) {
        bodies(&cert, &key);
        cases.retain(|c| !c.name.contains("bodies"));
        if cases.is_empty() {
            let _ = std::fs::remove_dir_all(&tmp);
            return;
        }
    }
    if counting() {
        // Counting runs one kept-alive connection: a connection-per-request case would repeat
        // its keep-alive twin.
        cases.retain(|c| !c.close);
        instructions(&cases, &cert, &key);
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    let beds: Vec<Bed> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| setup(i, c, &cert, &key))
        .collect();
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        for (c, bed) in cases.iter().zip(&beds) {
            // One short warm-up run per round, then the measured one.
            measure(bed, c.url, 1, c.close);
            samples
                .entry(c.name)
                .or_default()
                .push(measure(bed, c.url, secs, c.close));
        }
    }
    let cpu = |name: &str| median(samples[name].iter().map(|s| s.cpu_us).collect());
    let rps = |name: &str| median(samples[name].iter().map(|s| s.rps).collect());
    println!(
        "runtime, {rounds} interleaved rounds of {secs} s (wrk -t1 -c4, one Pipy thread); medians:"
    );
    println!(
        "{:<52} {:>10} {:>12}  vs reference (CPU; throughput)",
        "case", "req/s", "CPU µs/req"
    );
    for c in &cases {
        let mut vs = match c.reference {
            Some(r) if c.name != "direct" => format!(
                "{:.2}× {r} ({:.2}× its req/s)",
                cpu(c.name) / cpu(r),
                rps(c.name) / rps(r)
            ),
            _ => String::new(),
        };
        if c.reference == Some(REFERENCE_L7)
            && c.name != CHECK_FLOOR
            && samples.contains_key(CHECK_FLOOR)
        {
            vs.push_str(&format!(
                "; {:.2}× {CHECK_FLOOR}",
                cpu(c.name) / cpu(CHECK_FLOOR)
            ));
        }
        let cpu_text = if matches!(c.proxy, Proxy::Direct) {
            "-".to_owned()
        } else {
            format!("{:.1}", cpu(c.name))
        };
        println!(
            "{:<52} {:>10.0} {:>12}  {vs}",
            c.name,
            rps(c.name),
            cpu_text
        );
    }
    println!(
        "start-up to listening, and resident memory after start (and for its config's JSON.decode alone):"
    );
    for (c, bed) in cases.iter().zip(&beds) {
        // Every sidecar case has its decode-alone floor measured.
        if let Some((floor_secs, floor_kib)) = bed.decode_floor {
            println!(
                "  {:<50} {:.2} s, {} MiB (decode alone: {floor_secs:.2} s, {} MiB)",
                c.name,
                bed.start_secs,
                bed.rss_kib / 1024,
                floor_kib / 1024
            );
        }
    }
    drop(beds);
    let _ = std::fs::remove_dir_all(&tmp);
}
