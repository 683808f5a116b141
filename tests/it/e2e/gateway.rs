//! Gateways: passthrough and policy traffic leave through the gateway in both modes; with
//! the gateway stopped the same connections fail and no origin sees them; with passthrough
//! off, a workload's own tunnels are denied and a tunnel that reaches the gateway directly
//! gets only what its allow-list admits.

use super::pki::{Pki, spiffe};
use super::scenarios::{Suite, main_js};
use super::*;

/// Both kinds of traffic through a gateway of `mode` (mutual TLS, the default), then with the
/// gateway stopped.
pub fn through_gateway(suite: &mut Suite, mode: &str, pki: &Pki) {
    let gw_in = copy_fixture(&suite.work.join(format!("in-{mode}")));
    set_passthrough(&gw_in, true);
    add_gateway(&gw_in, mode);
    // Another identity may reach a loopback address: what a tunnel naming it must not give
    // app/client.
    add_policy(&gw_in, OTHER_LOOPBACK);
    let gw_out = suite.work.join(format!("out-{mode}"));
    let gw_plan = build_tree(&gw_in, &gw_out);
    let gw_log = format!("gateway-{mode}");
    // The gateway's pod has its own address, as in a cluster (its Service is 10.77.0.30).
    let gw_tls = pki.issue(&format!("gw-{mode}"), "mesh", &gateway_san(), None);
    let client_tls = pki.issue(&format!("client-{mode}"), "mesh", &client_san(), None);
    let gw_env = [
        ("EGRESSC_POD_IPS", GATEWAY_POD_IP),
        ("EGRESSC_TLS_DIR", &*gw_tls.to_string_lossy()),
    ];
    if !suite.start_env(&gw_log, &gw_out.join("gateway/main.js"), None, &gw_env) {
        return;
    }
    if !suite.start_env(
        "sidecar",
        &main_js(&gw_out),
        Some(&gw_out.join("configs/app/client.json")),
        &[("EGRESSC_TLS_DIR", &*client_tls.to_string_lossy())],
    ) {
        suite.ns.stop(&gw_log);
        return;
    }
    suite.run(mode, "app/client", Some(&gw_plan), &via_gateway_cases());
    // Explain cannot know the gateway pod's address: no comparison here.
    suite.run(
        &format!("{mode}, the gateway's pod"),
        "app/client",
        None,
        &super::hardening::gateway_itself_cases(),
    );
    let logged = tunnels_logged(&suite.ns, &gw_log, mode);
    suite.check(logged);
    if suite.ns.log(&gw_log).contains("10.77.0.60:9000") {
        suite
            .failures
            .push(format!("[{mode}] in-mesh traffic went through the gateway"));
    }
    suite.ns.stop(&gw_log);
    // Explain has no notion of a stopped gateway: no comparison here.
    suite.run(
        &format!("{mode} stopped"),
        "app/client",
        None,
        &gateway_stopped_cases(),
    );
    suite.ns.stop("sidecar");
}

/// The SAN of the gateway's certificate: its ServiceAccount is named after its Service.
pub fn gateway_san() -> String {
    format!("URI:{}", spiffe("fsm", "fsm-egress-gateway"))
}

/// The SAN of app/client's certificate.
pub fn client_san() -> String {
    format!("URI:{}", spiffe("app", "client"))
}

/// The gateway pod's address (its Service's is 10.77.0.30).
pub const GATEWAY_POD_IP: &str = "10.77.0.31";

/// app/other may reach the loopback origin anywhere-lo through the gateway.
const OTHER_LOOPBACK: &str = "kind: Egress\napiVersion: policy.flomesh.io/v1alpha1\n\
metadata: {name: other-loopback, namespace: app}\nspec:\n  sources:\n  \
- {kind: ServiceAccount, name: other, namespace: app}\n  ipAddresses: [127.0.0.70/32]\n  \
ports: [{number: 7500, protocol: tcp}]\n";

/// The gateway's own bounds, with a config whose Limits are made small: connections over the
/// cap wait, and a connection idle past the bound is closed (then a waiting one is served).
pub fn gateway_bounds(suite: &mut Suite) {
    let gw_in = copy_fixture(&suite.work.join("in-bounds"));
    add_gateway(&gw_in, "sock5");
    let gw_out = suite.work.join("out-bounds");
    build_tree_header(&gw_in, &gw_out);
    let config_path = gw_out.join("gateway/config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["Limits"]["MaxConnections"] = 2.into();
    config["Limits"]["IdleTimeout"] = 2.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    if !suite.start("gateway-bounds", &gw_out.join("gateway/main.js"), None) {
        return;
    }
    exempt_gateway(&suite.ns, "-I");
    let out = suite
        .ns
        .cmd("python3")
        .arg(root().join("tests/e2e/client.py"))
        .args(["cap", "10.77.0.30", "1080", "2", "1", "4"])
        .output()
        .unwrap();
    exempt_gateway(&suite.ns, "-D");
    suite.ns.stop("gateway-bounds");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = "SERVED 2 OF 3\nIDLE CLOSED 2; THEN SERVED 1\n";
    suite.check(if text == want {
        Ok(())
    } else {
        Err(format!(
            "[gateway bounds] a cap of 2 and an idle bound of 2 s: expected\n{want}got\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    });
}

fn via_gateway_cases() -> Vec<Case> {
    vec![
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
            "via gateway: a chunked body streams on its own connection, still chunked",
            curl(&[
                "--data-binary",
                "hello",
                "-H",
                "Transfer-Encoding: chunked",
                "http://bulk.test:8080/up",
            ]),
            Expect::Reaches("bulk", "framing=chunked received=5", &[]),
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
    ]
}

fn gateway_stopped_cases() -> Vec<Case> {
    vec![
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
    ]
}

/// The gateway logged each tunnel with its target.
fn tunnels_logged(ns: &Netns, gw_log: &str, mode: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let targets = [
        "10.77.0.70:7500",
        "10.77.0.17:7000",
        "web.test:8080",
        "secure.test:8443",
        "10.77.0.22:2525",
    ];
    loop {
        let log = ns.log(gw_log);
        let missing: Vec<&&str> = targets
            .iter()
            .filter(|t| !log.contains(&format!("\"destination\":\"{t}\"")))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "[{mode}] gateway log lacks tunnels to {missing:?}:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A gateway with passthrough off, under `--gateway-auth header`: a workload's own tunnels to
/// it are denied by the sidecar, and tunnels that reach it directly get only what its
/// allow-list admits for the identity they name.
pub fn gateway_with_passthrough_off(suite: &mut Suite) {
    let closed_in = copy_fixture(&suite.work.join("in-gateway-closed"));
    add_gateway(&closed_in, "http2tunnel");
    let closed_out = suite.work.join("out-gateway-closed");
    let closed_plan = build_tree_header(&closed_in, &closed_out);
    if !suite.start("gateway-closed", &closed_out.join("gateway/main.js"), None) {
        return;
    }
    let mut cases = gateway_service_cases();
    cases.push(case(
        "gateway: another identity's tcp policy is not reachable through it",
        py(&["tcp", "10.77.0.17", "7000"]),
        Expect::Denied(&["tcp-inside"]),
    ));
    if suite.start(
        "sidecar",
        &main_js(&closed_out),
        Some(&closed_out.join("configs/app/other.json")),
    ) {
        suite.run(
            "gateway, passthrough off",
            "app/other",
            Some(&closed_plan),
            &cases,
        );
    }
    suite.ns.stop("sidecar");
    // As a workload that reached the gateway's pod directly (no NetworkPolicy): its address
    // is not intercepted while these run.
    exempt_gateway(&suite.ns, "-I");
    suite.run(
        "gateway reached directly",
        "app/other",
        None,
        &gateway_direct_cases(),
    );
    exempt_gateway(&suite.ns, "-D");
    suite.ns.stop("gateway-closed");
}
