//! End to end in a real Pipy: the generated sidecar (and gateway) run in a private network
//! namespace with the generated iptables rules (IPv4 and IPv6); origin servers listen on
//! in-namespace addresses (10.77.0.x through a local route, 127.0.0.70 for loopback, IPv6
//! fd77::50 and ::1; TCP and UDP); names resolve through the namespace's own hosts file; the sidecar and
//! the gateway run as uid 1500; real clients (curl, Python) connect.
//!
//! Needs: `EGRESSC_PIPY=/path/to/pipy` (Pipy 1.5), root (network namespaces, iptables),
//! `ip`, `iptables-restore`, `setpriv`, `curl`, `python3`, `openssl`. Without `EGRESSC_PIPY`
//! each test prints one line saying it skipped; with it, a test that cannot set up fails.

use crate::support::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Namespace set-up is serialised: two `ip netns add` at the same moment can make one fail.
static NETNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether the e2e tests run: without `EGRESSC_PIPY` a test prints one skip line and returns
/// false; with it, anything missing fails the test (it must not pass by skipping).
fn enabled(what: &str) -> bool {
    if std::env::var_os("EGRESSC_PIPY").is_none() {
        skip(
            what,
            "EGRESSC_PIPY is not set (point it at a Pipy 1.5 binary)",
        );
        return false;
    }
    if let Some(why) = unavailable() {
        panic!("e2e: cannot run {what}: {why}");
    }
    true
}

/// What is missing for the e2e tests, if anything.
fn unavailable() -> Option<String> {
    let pipy = std::env::var_os("EGRESSC_PIPY")?;
    if !Path::new(&pipy).is_file() {
        return Some(format!(
            "EGRESSC_PIPY={} is not a file",
            pipy.to_string_lossy()
        ));
    }
    for tool in [
        "ip",
        "iptables-restore",
        "setpriv",
        "curl",
        "python3",
        "openssl",
        "unshare",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let _lock = NETNS.lock().unwrap_or_else(|e| e.into_inner());
    let probe = format!("egressc-probe-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Some("cannot create a network namespace (not root?)".into());
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

fn pipy() -> PathBuf {
    PathBuf::from(std::env::var_os("EGRESSC_PIPY").expect("checked"))
}

/// Said on stderr directly, past the test harness's capture, so that CI's log shows it.
fn skip(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "e2e: skipped {what}: {why}");
}

/// Build `inputs` into a fresh output directory with the library (as `egressc build` does);
/// returns the plan, for explain.
fn build_tree(inputs: &Path, out: &Path) -> egressc::Plan {
    let analysis = egressc::analyze(
        &[inputs.to_string_lossy().into_owned()],
        &mut std::io::empty(),
        &egressc::ReadOptions::default(),
    );
    assert!(!analysis.has_errors(), "e2e inputs have errors");
    let _ = std::fs::remove_dir_all(out);
    egressc::write_output(&analysis.compile(), out).expect("write output");
    // The proxy runs as uid 1500: it must be able to read the tree.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(out).status();
    analysis.lower()
}

/// A private network namespace with processes in it; everything is torn down on drop.
struct Netns {
    name: String,
    dir: PathBuf,
    children: BTreeMap<String, Child>,
}

impl Netns {
    fn new(hosts: &str) -> Netns {
        // One name per namespace: the e2e tests run in parallel, in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("egressc-e2e-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chmod").args(["755"]).arg(&dir).status();
        let _lock = NETNS.lock().unwrap_or_else(|e| e.into_inner());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        run_ok(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        // Every 10.77.0.x is local (AnyIP), so origins bind there without an interface each.
        run_ok(Command::new("ip").args([
            "-n",
            &name,
            "route",
            "add",
            "local",
            "10.77.0.0/24",
            "dev",
            "lo",
        ]));
        run_ok(Command::new("ip").args(["-n", &name, "addr", "add", "fd77::50/128", "dev", "lo"]));
        // With a non-loopback IPv6 address and no such IPv4 one, getaddrinfo's AI_ADDRCONFIG
        // (Pipy's resolver) would return no IPv4 addresses at all.
        run_ok(Command::new("ip").args(["-n", &name, "addr", "add", "10.77.0.1/32", "dev", "lo"]));
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), hosts).unwrap();
        Netns {
            name,
            dir,
            children: BTreeMap::new(),
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// A command run as the proxy's uid inside the namespace.
    fn proxy_cmd(&self, program: &Path) -> Command {
        let mut c = self.cmd("setpriv");
        c.args(["--reuid=1500", "--regid=1500", "--clear-groups"]);
        c.arg(program);
        c
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) {
        let log = std::fs::File::create(self.log_path(name)).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("spawn");
        self.children.insert(name.to_owned(), child);
    }

    fn stop(&mut self, name: &str) {
        if let Some(mut c) = self.children.remove(name) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Wait until `name`'s log contains `text`; false if it exits or time runs out.
    fn wait_for(&mut self, name: &str, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.log(name).contains(text) {
                return true;
            }
            if let Some(c) = self.children.get_mut(name)
                && c.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Apply a build's interception rules (IPv4 and IPv6) inside the namespace.
    fn apply_rules(&self, out: &Path) {
        for (tool, file) in [
            ("iptables-restore", "outbound.rules"),
            ("ip6tables-restore", "outbound6.rules"),
        ] {
            let rules = std::fs::read(out.join("iptables").join(file)).unwrap();
            let mut restore = self.cmd(tool);
            restore.arg("--noflush").stdin(Stdio::piped());
            let mut child = restore.spawn().unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), &rules).unwrap();
            assert!(child.wait().unwrap().success(), "{tool} failed");
        }
    }

    fn start_pipy(
        &mut self,
        name: &str,
        script: &Path,
        config: Option<&Path>,
    ) -> Result<(), String> {
        let mut cmd = self.proxy_cmd(Path::new("env"));
        if let Some(c) = config {
            cmd.arg(format!("EGRESSC_CONFIG={}", c.display()));
        }
        cmd.arg(pipy()).arg("--admin-port-off").arg(script);
        self.spawn(name, cmd);
        if self.wait_for(name, "Listening") {
            Ok(())
        } else {
            Err(format!("{name} did not start:\n{}", self.log(name)))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let names: Vec<String> = self.children.keys().cloned().collect();
        for n in names {
            self.stop(&n);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
        if std::env::var_os("EGRESSC_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Origins: name, address, port, kind.
const ORIGINS: &[(&str, &str, u16, &str)] = &[
    ("tcp-inside", "10.77.0.17", 7000, "echo"),
    ("tcp-outside", "10.77.0.21", 7000, "echo"),
    ("tcp-otherport", "10.77.0.17", 7001, "echo"),
    ("smtp", "10.77.0.22", 2525, "greet"),
    ("secure", "10.77.0.40", 8443, "tls"),
    ("wild", "10.77.0.41", 8443, "tls"),
    ("evil", "10.77.0.42", 8443, "tls"),
    ("tls-decoy", "10.77.0.43", 8443, "tls"),
    ("web", "10.77.0.50", 8080, "http"),
    ("other-web", "10.77.0.51", 8080, "http"),
    ("web-decoy", "10.77.0.52", 8080, "http"),
    ("inventory", "10.77.0.60", 9000, "echo"),
    ("anywhere", "10.77.0.70", 7500, "echo"),
    ("anywhere-lo", "127.0.0.70", 7500, "echo"),
    ("evil-web", "10.77.0.42", 8080, "http"),
    ("v6", "fd77::50", 7600, "echo"),
    ("v6-lo", "::1", 7600, "echo"),
    ("udp", "10.77.0.80", 5353, "udp"),
    ("dns", "10.77.0.80", 53, "udp"),
];

const HOSTS: &str = "127.0.0.1 localhost\n\
10.77.0.40 secure.test\n\
10.77.0.41 a.wild.test\n\
10.77.0.42 evil.test\n\
10.77.0.50 web.test\n\
10.77.0.50 api.web.test\n\
10.77.0.50 x.deep.web.test\n\
10.77.0.51 other.test\n\
10.77.0.30 fsm-egress-gateway.fsm.svc.cluster.local\n";

fn start_origins(ns: &mut Netns) {
    let cert = ns.dir.join("cert.pem");
    let key = ns.dir.join("key.pem");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=egressc-e2e",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let origins: Vec<serde_json::Value> = ORIGINS
        .iter()
        .map(|(n, a, p, k)| serde_json::json!({"name": n, "addr": a, "port": p, "kind": k}))
        .collect();
    let spec = serde_json::json!({
        "log": ns.log_path("accepts"),
        "cert": cert, "key": key, "origins": origins,
    });
    let spec_path = ns.dir.join("origins.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let mut cmd = ns.cmd("python3");
    cmd.arg(root().join("tests/e2e/origins.py")).arg(&spec_path);
    ns.spawn("origins", cmd);
    assert!(
        ns.wait_for("origins", "READY"),
        "origins: {}",
        ns.log("origins")
    );
}

fn accepts(ns: &Netns) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in ns.log("accepts").lines() {
        if let Some(n) = line.strip_prefix("ACCEPT ") {
            *m.entry(n.to_owned()).or_default() += 1;
        }
    }
    m
}

/// What a client run must show.
enum Expect {
    /// The output contains this text, a reply that names the origin (HTTP upstream
    /// connections are pooled, so the origin need not see a new connection); the listed
    /// other origins saw no connection.
    Reaches(&'static str, &'static str, &'static [&'static str]),
    /// Denied: no origin reply in the output, and none of these origins saw a connection.
    Denied(&'static [&'static str]),
    /// An HTTP 403 from the sidecar; none of these origins saw a connection.
    Forbidden(&'static [&'static str]),
    /// The client saw the connection closed within this many seconds (`CLOSED after N s`),
    /// and none of these origins saw a connection.
    ClosedWithin(u64, &'static [&'static str]),
}

/// Whether a client ran and said what it saw (a denial must not pass because the client
/// could not start).
fn client_ran(text: &str) -> bool {
    !text.trim().is_empty()
        && !["Traceback", "Permission denied", "No such file"]
            .iter()
            .any(|m| text.contains(m))
}

/// Text in a client's output that only an origin's reply puts there.
fn replied(text: &str) -> bool {
    ["origin=", ":ping", "HELLO from", "ECHO REPLY"]
        .iter()
        .any(|m| text.contains(m))
}

struct Case {
    name: String,
    client: Vec<String>,
    expect: Expect,
}

fn curl(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["curl", "-sS", "-m", "5", "-w", "\nHTTP %{http_code}\n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn py(args: &[&str]) -> Vec<String> {
    let mut v = vec![
        "python3".to_owned(),
        root()
            .join("tests/e2e/client.py")
            .to_string_lossy()
            .into_owned(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn case(name: &str, client: Vec<String>, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        client,
        expect,
    }
}

/// The connection a client command makes, as an `explain` query (None for the keep-alive
/// client, whose two requests get two verdicts).
fn query_of(identity: &str, client: &[String]) -> Option<egressc::Query> {
    use egressc::{HttpRequest, Query, parse_destination};
    let (dest, sni, http) = if client[0] == "curl" {
        let url = client
            .iter()
            .find(|a| a.starts_with("http://") || a.starts_with("https://"))?;
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let method = client
            .iter()
            .position(|a| a == "-X")
            .map_or("GET".to_owned(), |i| client[i + 1].clone());
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned();
        // --connect-to HOST:PORT:ADDR:PORT dials ADDR instead of the URL's host.
        let connect_to = client.iter().position(|a| a == "--connect-to").map(|i| {
            client[i + 1]
                .splitn(3, ':')
                .nth(2)
                .unwrap_or_default()
                .to_owned()
        });
        let dest = connect_to.unwrap_or_else(|| authority.to_owned());
        if scheme == "https" {
            (dest, Some(host), None)
        } else {
            let req = HttpRequest {
                host: Some(host),
                method,
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.to_owned()
                },
                headers: Vec::new(),
            };
            (dest, None, Some(req))
        }
    } else if client[0] == "python3" {
        let mode = client[2].as_str();
        if !["tcp", "greet", "raw", "tls-split", "sni-raw", "http-raw"].contains(&mode) {
            return None;
        }
        let dest = format!("{}:{}", client[3], client[4]);
        match mode {
            "tls-split" => (dest, Some(client[5].clone()), None),
            "sni-raw" => (dest, Some(unescape(&client[5])), None),
            "http-raw" => (dest, None, Some(raw_request(&unescape(&client[5])))),
            _ => (dest, None, None),
        }
    } else {
        return None;
    };
    let (dest, port) = parse_destination(&dest).ok()?;
    Some(Query {
        identity: egressc::Identity::parse(identity).expect("an identity"),
        dest,
        port,
        sni,
        http,
    })
}

/// Python's escapes as client.py reads them (`\\r`, `\\n`, `\\t`, `\\xNN`, `\\\\`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).unwrap()));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The request a raw HTTP/1.1 head asks (header names lower-cased, as Pipy gives them).
fn raw_request(text: &str) -> egressc::HttpRequest {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let mut line = lines.next().unwrap_or_default().split(' ');
    let method = line.next().unwrap_or_default().to_owned();
    let path = line.next().unwrap_or("/").to_owned();
    let mut host = None;
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        let (k, v) = (k.to_ascii_lowercase(), v.trim().to_owned());
        if k == "host" {
            host = Some(v.clone());
        }
        headers.push((k, v));
    }
    egressc::HttpRequest::new(host, Some(method), Some(path), headers)
}

/// Counts of the comparison between explain and Pipy.
#[derive(Default)]
struct Agreement {
    compared: usize,
    disagreements: Vec<String>,
}

/// The sidecar's identity and plan, for comparing with explain.
struct Run<'a> {
    label: &'a str,
    identity: &'a str,
    plan: Option<&'a egressc::Plan>,
}

/// Run cases against the running sidecar; failures are collected, not fatal. Each connection
/// is also put to `explain` (when `run.plan` is given) and compared with what Pipy did.
fn run_cases(
    ns: &Netns,
    run: &Run,
    cases: &[Case],
    failures: &mut Vec<String>,
    agreement: &mut Agreement,
) -> usize {
    let label = run.label;
    let mut passed = 0;
    for c in cases {
        let before = accepts(ns);
        let out = ns
            .cmd(&c.client[0])
            .args(&c.client[1..])
            .output()
            .expect("client runs");
        // Let the origin's accept log catch up.
        std::thread::sleep(Duration::from_millis(150));
        let after = accepts(ns);
        let seen =
            |o: &str| after.get(o).copied().unwrap_or(0) > before.get(o).copied().unwrap_or(0);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let problem = match &c.expect {
            Expect::Reaches(origin, body, untouched) => {
                let touched: Vec<&&str> = untouched.iter().filter(|o| seen(o)).collect();
                if !text.contains(body) || !body.contains(origin) && !text.contains(origin) {
                    Some(format!("expected `{body}` from {origin} in the reply"))
                } else if !touched.is_empty() {
                    Some(format!("origins {touched:?} saw a connection"))
                } else {
                    None
                }
            }
            Expect::Denied(untouched) | Expect::Forbidden(untouched) => {
                let touched: Vec<&&str> = untouched.iter().filter(|o| seen(o)).collect();
                if replied(&text) {
                    Some("an origin replied".into())
                } else if !client_ran(&text) {
                    Some("the client did not run".into())
                } else if !touched.is_empty() {
                    Some(format!("origins {touched:?} saw a connection"))
                } else if matches!(c.expect, Expect::Forbidden(_))
                    && !text.contains("HTTP 403")
                    && !text.contains("HTTP/1.1 403")
                {
                    Some("expected HTTP 403".into())
                } else {
                    None
                }
            }
            Expect::ClosedWithin(secs, untouched) => {
                let touched: Vec<&&str> = untouched.iter().filter(|o| seen(o)).collect();
                let after = text
                    .split("CLOSED after ")
                    .nth(1)
                    .and_then(|t| t.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok());
                if !touched.is_empty() {
                    Some(format!("origins {touched:?} saw a connection"))
                } else if after.is_none_or(|n| n > *secs) {
                    Some(format!("expected the connection closed within {secs} s"))
                } else {
                    None
                }
            }
        };
        let reached = replied(&text);
        if let Some(plan) = run.plan
            && let Some(q) = query_of(run.identity, &c.client)
        {
            let explained = egressc::evaluate(plan, &q).verdict.is_allowed();
            agreement.compared += 1;
            if explained != reached {
                agreement.disagreements.push(format!(
                    "[{label}] {}: explain says {}, Pipy {}",
                    c.name,
                    if explained { "allowed" } else { "denied" },
                    if reached { "let it through" } else { "did not" }
                ));
            }
        }
        match problem {
            None => passed += 1,
            Some(p) => failures.push(format!(
                "[{label}] {}: {p}\n--- client output:\n{text}",
                c.name
            )),
        }
    }
    passed
}

/// 300 denied connections in a burst: at most the budget (50 a second) is logged, and one
/// line reports how many were suppressed.
fn deny_log_is_rate_limited(ns: &mut Netns) -> Result<(), String> {
    let burst = "import socket\nfor i in range(300):\n    s = socket.create_connection(('10.77.0.71', 7500), timeout=5); s.recv(10); s.close()\n";
    let out = ns
        .cmd("python3")
        .args(["-c", burst])
        .output()
        .expect("python runs");
    if !out.status.success() {
        return Err(format!(
            "deny burst: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let logged = |ns: &Netns| {
        ns.log("sidecar")
            .lines()
            .filter(|l| l.contains("\"egressc\":\"deny\"") && l.contains("10.77.0.71:7500"))
            .count()
    };
    if !ns.wait_for("sidecar", "\"egressc\":\"deny-suppressed\"") {
        let n = logged(ns);
        return Err(format!(
            "no deny-suppressed line after 300 denials ({n} logged)"
        ));
    }
    let n = logged(ns);
    if n == 0 || n >= 300 {
        return Err(format!(
            "{n} of 300 denials logged: expected the budget to cap them"
        ));
    }
    Ok(())
}

/// Insert (`-I`) or delete (`-D`) a nat rule that leaves the gateway's address (10.77.0.30:1080)
/// unintercepted: clients then reach the gateway as a workload that got to its pod would.
fn exempt_gateway(ns: &Netns, op: &str) {
    let mut c = ns.cmd("iptables");
    c.args([
        "-t",
        "nat",
        op,
        "EGRESSC_PROXY_OUTBOUND",
        "-d",
        "10.77.0.30/32",
    ])
    .args(["-p", "tcp", "--dport", "1080", "-j", "RETURN"]);
    run_ok(&mut c);
}

/// A copy of the e2e mesh without the named Egress policies.
fn fixture_without(dir: &Path, policies: &[&str]) -> PathBuf {
    let dir = copy_fixture(dir);
    let egress = std::fs::read_to_string(dir.join("egress.yaml")).unwrap();
    let kept: Vec<&str> = egress
        .split("\n---\n")
        .filter(|d| !policies.iter().any(|p| d.contains(&format!("name: {p}\n"))))
        .collect();
    std::fs::write(dir.join("egress.yaml"), kept.join("\n---\n")).unwrap();
    dir
}

fn copy_fixture(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(root().join("fixtures/e2e-mesh")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir.to_path_buf()
}

fn set_passthrough(dir: &Path, on: bool) {
    let p = dir.join("mesh.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replace(
        "enableEgress: false",
        if on {
            "enableEgress: true"
        } else {
            "enableEgress: false"
        },
    );
    std::fs::write(&p, text).unwrap();
}

fn add_gateway(dir: &Path, mode: &str) {
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "kind: EgressGateway\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {{name: global-egress-gateway, namespace: fsm}}\n\
spec:\n  global:\n  - {{service: fsm-egress-gateway, namespace: fsm}}\n---\n\
apiVersion: v1\nkind: Service\nmetadata:\n  name: fsm-egress-gateway\n  namespace: fsm\n  annotations:\n    flomesh.io/egress-gateway-mode: {mode}\n\
spec:\n  clusterIP: 10.77.0.30\n  ports:\n  - port: 1080\n    targetPort: 1080\n"
        ),
    )
    .unwrap();
}

mod attacks;
mod publish;
mod reload;
use attacks::*;

fn policy_cases() -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        case(
            "passthrough off: unlisted destination denied",
            py(&["tcp", "10.77.0.70", "7500"]),
            Denied(&["anywhere"]),
        ),
        case(
            "tcp policy: inside the CIDR allowed",
            py(&["tcp", "10.77.0.17", "7000"]),
            Reaches("tcp-inside", "tcp-inside:ping", &[]),
        ),
        case(
            "tcp policy: outside the CIDR denied",
            py(&["tcp", "10.77.0.21", "7000"]),
            Denied(&["tcp-outside"]),
        ),
        case(
            "tcp policy: other port denied",
            py(&["tcp", "10.77.0.17", "7001"]),
            Denied(&["tcp-otherport"]),
        ),
        case(
            "server-speaks-first origin works direct",
            py(&["greet", "10.77.0.22", "2525"]),
            Reaches("smtp", "HELLO from smtp", &[]),
        ),
        case(
            "https: exact SNI allowed",
            curl(&["-k", "https://secure.test:8443/"]),
            Reaches("secure", "origin=secure", &[]),
        ),
        case(
            "https: wildcard SNI allowed",
            curl(&["-k", "https://a.wild.test:8443/"]),
            Reaches("wild", "origin=wild", &[]),
        ),
        case(
            "https: unlisted SNI denied",
            curl(&["-k", "https://evil.test:8443/"]),
            Denied(&["evil"]),
        ),
        case(
            "https: listed SNI sent to another address reaches the listed host",
            curl(&[
                "-k",
                "--connect-to",
                "secure.test:8443:10.77.0.43:8443",
                "https://secure.test:8443/",
            ]),
            Reaches("secure", "origin=secure", &["tls-decoy"]),
        ),
        case(
            "https: ClientHello split across segments",
            py(&["tls-split", "10.77.0.40", "8443", "secure.test"]),
            Reaches("secure", "origin=secure", &[]),
        ),
        case(
            "https: non-TLS bytes closed",
            py(&["raw", "10.77.0.40", "8443"]),
            Denied(&["secure"]),
        ),
        case(
            // Passes a `*.wild.test` suffix match; a resolver would stop at the NUL and dial
            // evil.test.
            "https: an SNI with a NUL byte is not a name",
            py(&["sni-raw", "10.77.0.41", "8443", "evil.test\\x00.wild.test"]),
            Denied(&["evil", "wild"]),
        ),
        case(
            "http: listed host and route allowed",
            curl(&["http://web.test:8080/get"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: other path 403",
            curl(&["http://web.test:8080/admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: other method 403",
            curl(&["-X", "POST", "http://web.test:8080/get"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: other host 403",
            curl(&["http://other.test:8080/get"]),
            Forbidden(&["other-web", "web"]),
        ),
        case(
            "http: listed Host sent to another address reaches the listed host",
            curl(&[
                "--connect-to",
                "web.test:8080:10.77.0.52:8080",
                "http://web.test:8080/get",
            ]),
            Reaches("web", "origin=web", &["web-decoy"]),
        ),
        case(
            "http: prefix route allows a plain path",
            curl(&["http://web.test:8080/public/ok"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: dot-segments cannot pass a path rule",
            curl(&["--path-as-is", "http://web.test:8080/public/../admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: %2e cannot pass a path rule",
            curl(&["--path-as-is", "http://web.test:8080/public/%2e%2e/admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: %2f cannot pass a path rule",
            curl(&["http://web.test:8080/public/..%2fadmin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: keep-alive requests decided one by one",
            py(&["keepalive", "10.77.0.50", "8080", "web.test", "other.test"]),
            Reaches("web", "HTTP/1.1 403", &[]),
        ),
        case(
            "in-mesh destination forwarded with passthrough off",
            py(&["tcp", "10.77.0.60", "9000"]),
            Reaches("inventory", "inventory:ping", &[]),
        ),
    ];
    cases.extend(overlap_cases());
    cases.extend(smuggling_cases());
    cases.extend(interception_cases());
    cases.extend(slow_cases());
    cases
}

#[test]
fn e2e_policies_passthrough_and_gateways_in_pipy() {
    if !enabled("the end-to-end suite (policies, passthrough, gateways in Pipy)") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    let work = ns.dir.clone();
    start_origins(&mut ns);
    let mut failures = Vec::new();
    let mut passed = 0;

    // Interception as generated.
    let base = copy_fixture(&work.join("in-policy"));
    let out = work.join("out-policy");
    let plan = build_tree(&base, &out);
    let mut agreement = Agreement::default();
    ns.apply_rules(&out);

    let main_js = |o: &Path| o.join("sidecar/main.js");

    // 1. Identity app/client, passthrough off, no gateway.
    let cfg = out.join("configs/app/client.json");
    match ns.start_pipy("sidecar", &main_js(&out), Some(&cfg)) {
        Ok(()) => {
            passed += run_cases(
                &ns,
                &Run {
                    label: "client",
                    identity: "app/client",
                    plan: Some(&plan),
                },
                &policy_cases(),
                &mut failures,
                &mut agreement,
            );
            match deny_log_is_rate_limited(&mut ns) {
                Ok(()) => passed += 1,
                Err(e) => failures.push(e),
            }
        }
        Err(e) => failures.push(e),
    }
    ns.stop("sidecar");

    // 2. Identity app/other: the same destinations are denied (in-mesh still works).
    let other = vec![
        case(
            "other identity: tcp policy of client denied",
            py(&["tcp", "10.77.0.17", "7000"]),
            Expect::Denied(&["tcp-inside"]),
        ),
        case(
            "other identity: https denied",
            curl(&["-k", "https://secure.test:8443/"]),
            Expect::Denied(&["secure"]),
        ),
        case(
            "other identity: in-mesh allowed",
            py(&["tcp", "10.77.0.60", "9000"]),
            Expect::Reaches("inventory", "inventory:ping", &[]),
        ),
    ];
    match ns.start_pipy(
        "sidecar",
        &main_js(&out),
        Some(&out.join("configs/app/other.json")),
    ) {
        Ok(()) => {
            passed += run_cases(
                &ns,
                &Run {
                    label: "other",
                    identity: "app/other",
                    plan: Some(&plan),
                },
                &other,
                &mut failures,
                &mut agreement,
            )
        }
        Err(e) => failures.push(e),
    }
    ns.stop("sidecar");

    // 3. Passthrough on (the `_default` identity: sidecar/config.json).
    let pass_in = copy_fixture(&work.join("in-pass"));
    set_passthrough(&pass_in, true);
    let pass_out = work.join("out-pass");
    let pass_plan = build_tree(&pass_in, &pass_out);
    let pass_cases = vec![
        case(
            "passthrough on: any destination reachable",
            py(&["tcp", "10.77.0.70", "7500"]),
            Expect::Reaches("anywhere", "anywhere:ping", &[]),
        ),
        case(
            "passthrough on: https to any name reachable",
            curl(&["-k", "https://evil.test:8443/"]),
            Expect::Reaches("evil", "origin=evil", &[]),
        ),
    ];
    match ns.start_pipy("sidecar", &main_js(&pass_out), None) {
        Ok(()) => {
            passed += run_cases(
                &ns,
                &Run {
                    label: "passthrough",
                    identity: "default/nobody",
                    plan: Some(&pass_plan),
                },
                &pass_cases,
                &mut failures,
                &mut agreement,
            )
        }
        Err(e) => failures.push(e),
    }
    ns.stop("sidecar");

    // 4. Gateways: passthrough and policy traffic leave through the gateway; with the gateway
    //    stopped the same connections fail and no origin sees them.
    for mode in ["http2tunnel", "socks5"] {
        let gw_in = copy_fixture(&work.join(format!("in-{mode}")));
        set_passthrough(&gw_in, true);
        add_gateway(&gw_in, mode);
        let gw_out = work.join(format!("out-{mode}"));
        let gw_plan = build_tree(&gw_in, &gw_out);
        let gw_log = format!("gateway-{mode}");
        if let Err(e) = ns.start_pipy(&gw_log, &gw_out.join("gateway/main.js"), None) {
            failures.push(e);
            continue;
        }
        if let Err(e) = ns.start_pipy(
            "sidecar",
            &main_js(&gw_out),
            Some(&gw_out.join("configs/app/client.json")),
        ) {
            failures.push(e);
            ns.stop(&gw_log);
            continue;
        }
        let via = vec![
            case(
                "via gateway: passthrough",
                py(&["tcp", "10.77.0.70", "7500"]),
                Expect::Reaches("anywhere", "anywhere:ping", &[]),
            ),
            case(
                "via gateway: tcp policy",
                py(&["tcp", "10.77.0.17", "7000"]),
                Expect::Reaches("tcp-inside", "tcp-inside:ping", &[]),
            ),
            case(
                "via gateway: http policy",
                curl(&["http://web.test:8080/get"]),
                Expect::Reaches("web", "origin=web", &[]),
            ),
            case(
                "via gateway: https policy",
                curl(&["-k", "https://secure.test:8443/"]),
                Expect::Reaches("secure", "origin=secure", &[]),
            ),
            case(
                "via gateway: server-speaks-first",
                py(&["greet", "10.77.0.22", "2525"]),
                Expect::Reaches("smtp", "HELLO from smtp", &[]),
            ),
            case(
                "via gateway: in-mesh stays direct",
                py(&["tcp", "10.77.0.60", "9000"]),
                Expect::Reaches("inventory", "inventory:ping", &[]),
            ),
            case(
                "via gateway: passthrough to the gateway's own loopback is refused",
                py(&["tcp", "127.0.0.70", "7500"]),
                Expect::Denied(&["anywhere-lo"]),
            ),
        ];
        passed += run_cases(
            &ns,
            &Run {
                label: mode,
                identity: "app/client",
                plan: Some(&gw_plan),
            },
            &via,
            &mut failures,
            &mut agreement,
        );
        // The gateway logged each tunnel with its target.
        let deadline = Instant::now() + Duration::from_secs(5);
        let targets = [
            "10.77.0.70:7500",
            "10.77.0.17:7000",
            "web.test:8080",
            "secure.test:8443",
            "10.77.0.22:2525",
        ];
        loop {
            let log = ns.log(&gw_log);
            let missing: Vec<&&str> = targets
                .iter()
                .filter(|t| !log.contains(&format!("\"target\":\"{t}\"")))
                .collect();
            if missing.is_empty() {
                passed += 1;
                break;
            }
            if Instant::now() > deadline {
                failures.push(format!(
                    "[{mode}] gateway log lacks tunnels to {missing:?}:\n{log}"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if ns.log(&gw_log).contains("10.77.0.60:9000") {
            failures.push(format!("[{mode}] in-mesh traffic went through the gateway"));
        }
        ns.stop(&gw_log);
        let down = vec![
            case(
                "gateway stopped: passthrough fails",
                py(&["tcp", "10.77.0.70", "7500"]),
                Expect::Denied(&["anywhere"]),
            ),
            case(
                "gateway stopped: tcp policy fails",
                py(&["tcp", "10.77.0.17", "7000"]),
                Expect::Denied(&["tcp-inside"]),
            ),
            case(
                "gateway stopped: http policy fails",
                curl(&["http://web.test:8080/get"]),
                Expect::Denied(&["web"]),
            ),
            case(
                "gateway stopped: https policy fails",
                curl(&["-k", "https://secure.test:8443/"]),
                Expect::Denied(&["secure"]),
            ),
        ];
        passed += run_cases(
            &ns,
            // Explain has no notion of a stopped gateway: no comparison here.
            &Run {
                label: &format!("{mode} stopped"),
                identity: "app/client",
                plan: None,
            },
            &down,
            &mut failures,
            &mut agreement,
        );
        ns.stop("sidecar");
    }

    // 5. A gateway with passthrough off: a workload's own tunnels to it are denied by the
    //    sidecar, and tunnels that reach it directly get only what its allow-list admits.
    let closed_in = copy_fixture(&work.join("in-gateway-closed"));
    add_gateway(&closed_in, "http2tunnel");
    let closed_out = work.join("out-gateway-closed");
    let closed_plan = build_tree(&closed_in, &closed_out);
    match ns.start_pipy("gateway-closed", &closed_out.join("gateway/main.js"), None) {
        Err(e) => failures.push(e),
        Ok(()) => {
            let mut cases = gateway_service_cases();
            cases.push(case(
                "gateway: another identity's tcp policy is not reachable through it",
                py(&["tcp", "10.77.0.17", "7000"]),
                Expect::Denied(&["tcp-inside"]),
            ));
            match ns.start_pipy(
                "sidecar",
                &main_js(&closed_out),
                Some(&closed_out.join("configs/app/other.json")),
            ) {
                Ok(()) => {
                    passed += run_cases(
                        &ns,
                        &Run {
                            label: "gateway, passthrough off",
                            identity: "app/other",
                            plan: Some(&closed_plan),
                        },
                        &cases,
                        &mut failures,
                        &mut agreement,
                    )
                }
                Err(e) => failures.push(e),
            }
            ns.stop("sidecar");
            // As a workload that reached the gateway's pod directly (no NetworkPolicy):
            // its address is not intercepted while these run.
            exempt_gateway(&ns, "-I");
            passed += run_cases(
                &ns,
                &Run {
                    label: "gateway reached directly",
                    identity: "app/other",
                    plan: None,
                },
                &gateway_direct_cases(),
                &mut failures,
                &mut agreement,
            );
            exempt_gateway(&ns, "-D");
            ns.stop("gateway-closed");
        }
    }

    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "e2e: {passed} checks passed, {} failed; explain vs Pipy: {} connections compared, {} disagreements",
            failures.len(),
            agreement.compared,
            agreement.disagreements.len()
        );
    }
    failures.extend(agreement.disagreements);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every generated script loads in Pipy (node accepts syntax that PipyJS rejects).
#[test]
fn every_generated_script_loads_in_pipy() {
    if !enabled("loading the generated scripts in Pipy") {
        return;
    }
    let mut failures = Vec::new();
    for dir in fixtures() {
        if root().join(&dir).join("expect.txt").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = std::env::temp_dir().join(format!("egressc-load-{}-{name}", std::process::id()));
        build_tree(&root().join(&dir), &out);
        let mut scripts = vec![(out.join("sidecar/main.js"), None)];
        for e in walk_json(&out.join("configs")) {
            scripts.push((out.join("sidecar/main.js"), Some(e)));
        }
        if out.join("gateway/main.js").exists() {
            scripts.push((out.join("gateway/main.js"), None));
        }
        for (script, config) in scripts {
            // In a private network namespace of its own: it can listen, and reach nothing.
            let mut cmd = Command::new("unshare");
            cmd.args(["-n", "sh", "-c", "ip link set lo up; exec \"$@\"", "sh"]);
            cmd.arg(pipy()).arg("--admin-port-off").arg(&script);
            if let Some(c) = &config {
                cmd.env("EGRESSC_CONFIG", c);
            }
            // Pipy logs to stderr.
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut all = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    all.push_str(&line);
                    all.push('\n');
                    if line.contains("Listening") {
                        let _ = tx.send(Ok(all.clone()));
                    }
                }
                let _ = tx.send(Err(all));
            });
            let result = rx.recv_timeout(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            if !matches!(result, Ok(Ok(_))) {
                failures.push(format!(
                    "{name}: {} ({config:?}) did not load: {result:?}",
                    script.display()
                ));
            }
        }
        std::fs::remove_dir_all(&out).ok();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shared decision vectors agree with the generated sidecar's decision module, in Pipy
/// (the Rust evaluator's unit tests read the same file).
#[test]
fn decision_vectors_agree_in_pipy() {
    if !enabled("the decision vectors in Pipy") {
        return;
    }
    let out = std::env::temp_dir().join(format!("egressc-vectors-{}", std::process::id()));
    build_tree(&root().join("fixtures/good-defaults"), &out);
    let dir = out.join("selftest");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(out.join("sidecar/decide.js"), dir.join("decide.js")).unwrap();
    std::fs::copy(root().join("tests/e2e/selftest.js"), dir.join("main.js")).unwrap();
    let report = dir.join("report.txt");
    let mut child = Command::new(pipy())
        .arg("--admin-port-off")
        .arg(dir.join("main.js"))
        .env(
            "EGRESSC_VECTORS",
            root().join("tests/vectors/decisions.json"),
        )
        .env("EGRESSC_SELFTEST_OUT", &report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pipy starts");
    // The verdict is the report's closing line; Pipy's own exit is not waited for (it does not
    // always come promptly after `pipy.exit()`).
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = |log: &str| log.lines().any(|l| l.starts_with("selftest: "));
    let log = loop {
        let log = std::fs::read_to_string(&report).unwrap_or_default();
        if finished(&log) || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&out).ok();
    let summary = log
        .lines()
        .find(|l| l.starts_with("selftest: "))
        .unwrap_or("");
    {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "e2e: {summary}");
    }
    assert!(
        finished(&log),
        "the self-test did not report within 20 s:\n{log}"
    );
    assert!(
        summary.contains(" vectors agree, "),
        "self-test did not finish:\n{log}"
    );
    assert!(summary.contains(" 0 disagree"), "{log}");
}

fn walk_json(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_json(&p));
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
