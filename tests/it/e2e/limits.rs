//! Limits the sidecar keeps under load.

use super::*;

/// 300 denied connections in a burst: at most the budget (50 a second) is logged, and one
/// line reports how many were suppressed.
pub fn deny_log_is_rate_limited(ns: &mut Netns) -> Result<(), String> {
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
