//! Limits the sidecar keeps under load.

use super::*;

/// A decision line of the sidecar's log (after Pipy's prefix), as JSON.
pub fn decision_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .collect()
}

fn burst(ns: &Netns, ports: &str) -> Result<(), String> {
    let script = format!(
        "import socket\nfor p in {ports}:\n    s = socket.create_connection(('10.77.0.71', p), timeout=5); s.recv(10); s.close()\n"
    );
    let out = ns
        .cmd("python3")
        .args(["-c", &script])
        .output()
        .expect("python runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "deny burst: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// 300 denied connections to one destination in a burst are folded: a line at once, then one
/// with the count of the repeats, so the counts add up to 300 and nothing is lost. 300 to 300
/// destinations: at most the budget (50 a second) is logged, and one line reports how many
/// were suppressed.
pub fn deny_log_is_rate_limited(ns: &mut Netns) -> Result<(), String> {
    burst(ns, "[7500] * 300")?;
    // The folded line comes when the second ends.
    std::thread::sleep(Duration::from_millis(2200));
    let one: Vec<serde_json::Value> = decision_lines(&ns.log("sidecar"))
        .into_iter()
        .filter(|l| l["egressc"] == "deny" && l["destination"] == "10.77.0.71:7500")
        .collect();
    let total: u64 = one.iter().map(|l| l["count"].as_u64().unwrap_or(0)).sum();
    if total != 300 || one.len() > 4 {
        return Err(format!(
            "300 denials of one destination: {} lines counting {total}, expected a few lines counting 300",
            one.len()
        ));
    }
    burst(ns, "range(7501, 7801)")?;
    let logged = |ns: &Netns| {
        decision_lines(&ns.log("sidecar"))
            .iter()
            .filter(|l| {
                l["egressc"] == "deny"
                    && l["destination"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("10.77.0.71:7"))
                    && l["destination"] != "10.77.0.71:7500"
            })
            .count()
    };
    if !ns.wait_for("sidecar", "\"egressc\":\"deny-suppressed\"") {
        let n = logged(ns);
        return Err(format!(
            "no deny-suppressed line after 300 denials of 300 destinations ({n} logged)"
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
