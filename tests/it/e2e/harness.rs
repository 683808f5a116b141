//! The e2e harness: a private network namespace with the generated rules applied and
//! processes started in it, and the build and fixture helpers every scenario shares.

use super::pipy;
pub use super::pki::run_ok;
use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Namespace set-up is serialised: two `ip netns add` at the same moment can make one fail.
pub static NETNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Build `inputs` into a fresh output directory with the library (as `egressc build` does);
/// returns the plan, for explain.
pub fn build_tree(inputs: &Path, out: &Path) -> egressc::Plan {
    build_tree_with(inputs, out, &egressc::ReadOptions::default())
}

/// [`build_tree`] under `--gateway-auth header`.
pub fn build_tree_header(inputs: &Path, out: &Path) -> egressc::Plan {
    let opts = egressc::ReadOptions {
        auth: egressc::GatewayAuth {
            mode: egressc::AuthMode::Header,
            ..Default::default()
        },
        ..Default::default()
    };
    build_tree_with(inputs, out, &opts)
}

/// [`build_tree`] with read options.
pub fn build_tree_with(inputs: &Path, out: &Path, opts: &egressc::ReadOptions) -> egressc::Plan {
    let analysis = egressc::analyze(
        &[inputs.to_string_lossy().into_owned()],
        &mut std::io::empty(),
        opts,
    );
    assert!(!analysis.has_errors(), "e2e inputs have errors");
    let _ = std::fs::remove_dir_all(out);
    egressc::write_output(&analysis.compile(), out).expect("write output");
    // The proxy runs as uid 1500: it must be able to read the tree.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(out).status();
    let mut plan = analysis.lower();
    // init.sh gives the namespace's resolv.conf nameserver: explain is told it, as
    // `explain --dns 10.77.0.80` would be.
    if plan.dns == egressc::DnsResolvers::PodResolvConf {
        plan.dns = egressc::DnsResolvers::Flag(vec![RESOLVER]);
    }
    plan
}

/// The nameserver of every namespace's resolv.conf.
pub const RESOLVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 80);

/// A private network namespace with processes in it; everything is torn down on drop.
pub struct Netns {
    pub name: String,
    pub dir: PathBuf,
    pub children: BTreeMap<String, Child>,
}

impl Netns {
    pub fn new(hosts: &str) -> Netns {
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
        // The pod's resolver, as the kubelet writes it (init.sh reads it).
        std::fs::write(etc.join("resolv.conf"), format!("nameserver {RESOLVER}\n")).unwrap();
        Netns {
            name,
            dir,
            children: BTreeMap::new(),
        }
    }

    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// A command run as the proxy's uid inside the namespace.
    pub fn proxy_cmd(&self, program: &Path) -> Command {
        let mut c = self.cmd("setpriv");
        c.args(["--reuid=1500", "--regid=1500", "--clear-groups"]);
        c.arg(program);
        c
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    pub fn spawn(&mut self, name: &str, mut cmd: Command) {
        let log = std::fs::File::create(self.log_path(name)).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("spawn");
        self.children.insert(name.to_owned(), child);
    }

    pub fn stop(&mut self, name: &str) {
        if let Some(mut c) = self.children.remove(name) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Wait until `name`'s log contains `text`; false if it exits or time runs out.
    pub fn wait_for(&mut self, name: &str, text: &str) -> bool {
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
    /// Set up the namespace's interception as the init container does: `sh init.sh` (it
    /// applies both rule files and the DNS rules of the namespace's resolv.conf); an output
    /// without it (an older build) gets its rule files applied as they are.
    pub fn apply_rules(&self, out: &Path) {
        let init = out.join("iptables/init.sh");
        if init.exists() {
            let status = self.cmd("sh").arg(&init).status().unwrap();
            assert!(status.success(), "init.sh failed");
            return;
        }
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

    /// Start a Pipy script as the proxy uid, with its config and more environment variables
    /// (`EGRESSC_POD_IPS`), and wait until it listens.
    pub fn start_pipy_env(
        &mut self,
        name: &str,
        script: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        // A small stack, as the threads of the musl image that FSM deploys have: a regex that
        // recurses per character on request input crashes here as it would there.
        let mut cmd = self.proxy_cmd(Path::new("sh"));
        let limit = format!("ulimit -s {} && exec \"$@\"", proxy_stack_kib());
        cmd.args(["-c", &limit, "sh", "env"]);
        if let Some(c) = config {
            cmd.arg(format!("EGRESSC_CONFIG={}", c.display()));
        }
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        // The sidecar serves its metrics on 15010; a gateway in the same namespace on 15011.
        if script.ends_with("gateway/main.js")
            && !env.iter().any(|(k, _)| *k == "EGRESSC_METRICS_PORT")
        {
            cmd.arg("EGRESSC_METRICS_PORT=15011");
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

/// The proxies' stack, in KiB (`EGRESSC_E2E_STACK_KIB`, default 256). The musl image's threads
/// have 128 KiB, but this glibc build of Pipy 1.5 needs more than that to serve one request of
/// a bare `demuxHTTP` (it works from about 150 KiB): 256 KiB is twice that, and a check whose
/// stack grows with its input (std::regex recurses per character) crashes under it long
/// before the lengths the suite sends.
pub fn proxy_stack_kib() -> u32 {
    std::env::var("EGRESSC_E2E_STACK_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
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

/// Insert (`-I`) or delete (`-D`) a nat rule that leaves the gateway's address (10.77.0.30:1080)
/// unintercepted: clients then reach the gateway as a workload that got to its pod would.
pub fn exempt_gateway(ns: &Netns, op: &str) {
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

/// Add Egress policies (a YAML document) to a copy of the e2e mesh.
pub fn add_policy(dir: &Path, yaml: &str) {
    let path = dir.join("egress.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("---\n");
    text.push_str(yaml);
    std::fs::write(path, text).unwrap();
}

/// A copy of the e2e mesh without the named Egress policies.
pub fn fixture_without(dir: &Path, policies: &[&str]) -> PathBuf {
    let dir = copy_fixture(dir);
    let egress = std::fs::read_to_string(dir.join("egress.yaml")).unwrap();
    let kept: Vec<&str> = egress
        .split("\n---\n")
        .filter(|d| !policies.iter().any(|p| d.contains(&format!("name: {p}\n"))))
        .collect();
    std::fs::write(dir.join("egress.yaml"), kept.join("\n---\n")).unwrap();
    dir
}

pub fn copy_fixture(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(root().join("fixtures/e2e-mesh")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir.to_path_buf()
}

pub fn set_passthrough(dir: &Path, on: bool) {
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

pub fn add_gateway(dir: &Path, mode: &str) {
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
