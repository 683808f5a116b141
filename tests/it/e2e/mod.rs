//! End to end in a real Pipy: the generated sidecar (and gateway) run in a private network
//! namespace with the generated iptables rules (IPv4 and IPv6); origin servers listen on
//! in-namespace addresses (10.77.0.x through a local route, 127.0.0.70 for loopback, IPv6
//! fd77::50 and ::1; TCP and UDP); names resolve through the namespace's own hosts file; the sidecar and
//! the gateway run as uid 1500; real clients (curl, Python) connect.
//!
//! Needs: `EGRESSC_PIPY=/path/to/pipy` (Pipy 1.5), root (network namespaces, iptables),
//! `ip`, `iptables-restore`, `setpriv`, `curl`, `python3` (with `h2` and `prometheus_client`),
//! `openssl`. Without `EGRESSC_PIPY`
//! each test prints one line saying it skipped; with it, a test that cannot set up fails.

mod attacks;
mod audit;
mod bodies;
mod clients;
mod gateway;
mod hardening;
mod harness;
mod limits;
mod mtls;
mod pki;
mod publish;
mod reload;
mod scenarios;
mod scripts;

pub use crate::support::*;
pub use attacks::*;
pub use clients::*;
pub use harness::*;
pub use limits::*;
pub use std::collections::BTreeMap;
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Stdio};
pub use std::time::{Duration, Instant};

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
    let modules = Command::new("python3")
        .args(["-c", "import h2, prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !modules {
        return Some("Python's `h2` and `prometheus_client` are not installed (pip install h2 prometheus-client)".into());
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

/// A result line of the suite (`e2e: …`), on stderr past libtest's capture.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "e2e: {line}");
}

/// Said on stderr directly, past the test harness's capture, so that CI's log shows it.
fn skip(what: &str, why: &str) {
    crate::support::skip("e2e", what, why);
}
