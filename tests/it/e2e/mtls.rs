//! Mutual TLS between sidecar and gateway (`--gateway-auth mtls`, the default): the gateway
//! admits a tunnel only over TLS with a certificate of the cluster's CA, within its validity,
//! holding one SPIFFE ID of the trust domain, and applies that identity's list in both modes;
//! the sidecar takes up a certificate that appears or rotates on disk without a restart.

use super::gateway::{client_san, gateway_san};
use super::pki::{Pki, spiffe};
use super::scenarios::{Suite, main_js};
use super::*;
use Expect::{Denied, Reaches};

/// The certificates of the direct cases, by name: (CA, SAN, validity).
fn certificates(pki: &Pki) -> BTreeMap<&'static str, String> {
    let past = Some(("20200101000000Z", "20200102000000Z"));
    let two = format!("{},URI:{}", client_san(), spiffe("app", "other"));
    type Cert<'a> = (&'a str, &'a str, String, Option<(&'a str, &'a str)>);
    let list: [Cert; 6] = [
        ("client", "mesh", client_san(), None),
        (
            "other",
            "mesh",
            format!("URI:{}", spiffe("app", "other")),
            None,
        ),
        ("foreign", "foreign", client_san(), None),
        ("expired", "mesh", client_san(), past),
        ("two-ids", "mesh", two, None),
        (
            "other-domain",
            "mesh",
            "URI:spiffe://evil.local/ns/app/sa/client".to_owned(),
            None,
        ),
    ];
    list.into_iter()
        .map(|(name, ca, san, dates)| {
            let dir = pki.issue(&format!("direct-{name}"), ca, &san, dates);
            (name, dir.to_string_lossy().into_owned())
        })
        .collect()
}

/// Tunnels straight to the gateway (10.77.0.30:1080; the suite exempts its address from
/// interception for these, as a pod that is not meshed would reach it), passthrough off: only a
/// certificate of app/client gets app/client's tcp policy (10.77.0.17:7000), in both modes.
fn direct_cases(certs: &BTreeMap<&str, String>) -> Vec<Case> {
    let h2 = |cert: &str, identity: &str| {
        let dir = certs.get(cert).map_or("-", |d| d.as_str());
        py(&[
            "tls:h2connect",
            "10.77.0.30",
            "1080",
            dir,
            "10.77.0.17:7000",
            identity,
        ])
    };
    let socks = |cert: &str| {
        let dir = certs.get(cert).map_or("-", |d| d.as_str());
        py(&["tls:socks", "10.77.0.30", "1080", dir, "10.77.0.17", "7000"])
    };
    let reaches = || Reaches("tcp-inside", "tcp-inside:ping", &[]);
    let denied = || Denied(&["tcp-inside"]);
    vec![
        case(
            "mtls: h2 CONNECT with app/client's certificate",
            h2("client", "-"),
            reaches(),
        ),
        case(
            "mtls: SOCKS5 with app/client's certificate",
            socks("client"),
            reaches(),
        ),
        case(
            "mtls: plain h2c naming app/client is refused",
            py(&[
                "h2connect",
                "10.77.0.30",
                "1080",
                "10.77.0.17:7000",
                "client.app",
            ]),
            denied(),
        ),
        case(
            "mtls: plain SOCKS5 is refused",
            py(&["socks", "10.77.0.30", "1080", "10.77.0.17", "7000"]),
            denied(),
        ),
        case(
            "mtls: TLS without a certificate (h2)",
            h2("none", "client.app"),
            denied(),
        ),
        case(
            "mtls: TLS without a certificate (SOCKS5)",
            socks("none"),
            denied(),
        ),
        case(
            "mtls: a certificate of another CA",
            h2("foreign", "-"),
            denied(),
        ),
        case("mtls: an expired certificate", h2("expired", "-"), denied()),
        case(
            "mtls: app/other's certificate with a header claiming app/client",
            h2("other", "client.app"),
            denied(),
        ),
        case(
            "mtls: app/other's certificate, SOCKS5 (no union)",
            socks("other"),
            denied(),
        ),
        case(
            "mtls: a certificate with two SPIFFE IDs",
            h2("two-ids", "-"),
            denied(),
        ),
        case(
            "mtls: a SPIFFE ID of another trust domain",
            h2("other-domain", "-"),
            denied(),
        ),
    ]
}

/// The reasons the gateway logs for the refusals of [`direct_cases`].
const REASONS: &[&str] = &[
    "not TLS (plain h2c and SOCKS5 are refused",
    "peer did not return a certificate",
    "client certificate does not chain to ca.crt",
    "client certificate expired",
    "egressc-identity header names client.app; the certificate is other.app",
    "certificate holds more than one SPIFFE ID",
    "SPIFFE ID of another trust domain (evil.local)",
];

/// The gateway with passthrough off under mtls, reached directly.
pub fn gateway_authenticates(suite: &mut Suite, pki: &Pki) {
    let input = copy_fixture(&suite.work.join("in-mtls"));
    add_gateway(&input, "http2tunnel");
    let out = suite.work.join("out-mtls");
    build_tree(&input, &out);
    let gw_tls = pki.issue("gw-mtls", "mesh", &gateway_san(), None);
    let env = [("EGRESSC_TLS_DIR", &*gw_tls.to_string_lossy())];
    if !suite.start_env("gateway-mtls", &out.join("gateway/main.js"), None, &env) {
        return;
    }
    let certs = certificates(pki);
    exempt_gateway(&suite.ns, "-I");
    suite.run(
        "mtls, reached directly",
        "app/client",
        None,
        &direct_cases(&certs),
    );
    exempt_gateway(&suite.ns, "-D");
    let log = suite.ns.log("gateway-mtls");
    for reason in REASONS {
        suite.check(if log.contains(reason) {
            Ok(())
        } else {
            Err(format!("[mtls] the gateway did not log `{reason}`:\n{log}"))
        });
    }
    suite.ns.stop("gateway-mtls");
}

/// app/client's sidecar starts before its certificate exists (the CSI volume may be filled
/// later): tunnels fail, with one error line; the certificate appears and is taken up within
/// 5 s; then the CA rotates (the gateway trusts the old and the new, the sidecar's certificate
/// is re-issued by the new, the gateway stops trusting the old): the next tunnel works on a new
/// connection (the pool is keyed by the certificate), and a tunnel open across it is not cut.
pub fn rotation(suite: &mut Suite, pki: &Pki) {
    let input = copy_fixture(&suite.work.join("in-rotation"));
    add_gateway(&input, "http2tunnel");
    let out = suite.work.join("out-rotation");
    let plan = build_tree(&input, &out);
    let gw_tls = pki.issue("gw-rotation", "mesh", &gateway_san(), None);
    let client_tls = pki.dir.join("rotating");
    std::fs::create_dir_all(&client_tls).unwrap();
    let gw_env = [("EGRESSC_TLS_DIR", &*gw_tls.to_string_lossy())];
    if !suite.start_env("gateway-rot", &out.join("gateway/main.js"), None, &gw_env) {
        return;
    }
    let env = [("EGRESSC_TLS_DIR", &*client_tls.to_string_lossy())];
    let config = out.join("configs/app/client.json");
    if !suite.start_env("sidecar", &main_js(&out), Some(&config), &env) {
        suite.ns.stop("gateway-rot");
        return;
    }
    let tcp = || py(&["tcp", "10.77.0.17", "7000"]);
    let web = || curl(&["http://web.test:8080/get"]);
    let before = vec![
        case(
            "rotation: no certificate yet, no tunnel",
            tcp(),
            Denied(&["tcp-inside"]),
        ),
        case("rotation: still none", tcp(), Denied(&["tcp-inside"])),
        case(
            "rotation: without a certificate in-mesh traffic still flows",
            py(&["tcp", "10.77.0.60", "9000"]),
            Reaches("inventory", "inventory:ping", &[]),
        ),
    ];
    suite.run("mtls rotation", "app/client", None, &before);
    let errors = suite.ns.log("sidecar").matches("does not load").count();
    suite.check(if errors == 1 {
        Ok(())
    } else {
        Err(format!(
            "[rotation] expected one error line for the missing certificate, got {errors}:\n{}",
            suite.ns.log("sidecar")
        ))
    });
    pki.issue("rotating", "mesh", &client_san(), None);
    suite.check(reaches_within(
        &suite.ns,
        5,
        "a certificate that appears later",
    ));
    suite.run(
        "mtls rotation",
        "app/client",
        Some(&plan),
        &[case(
            "rotation: http through the pooled tunnel",
            web(),
            Reaches("web", "origin=web", &[]),
        )],
    );
    let mut hold = suite.ns.cmd("python3");
    hold.arg(root().join("tests/e2e/client.py"))
        .args(["hold", "10.77.0.17", "7000", "8"]);
    suite.ns.spawn("hold", hold);
    pki.authority("mesh2");
    pki.trust(&gw_tls, &["mesh", "mesh2"]);
    std::thread::sleep(Duration::from_secs(2));
    pki.issue("rotating", "mesh2", &client_san(), None);
    pki.trust(&client_tls, &["mesh", "mesh2"]);
    std::thread::sleep(Duration::from_secs(2));
    pki.trust(&gw_tls, &["mesh2"]);
    std::thread::sleep(Duration::from_secs(3));
    suite.run(
        "mtls rotation",
        "app/client",
        Some(&plan),
        &[
            case(
                "rotation: tcp with the new certificate",
                tcp(),
                Reaches("tcp-inside", "tcp-inside:ping", &[]),
            ),
            case(
                "rotation: http after it",
                web(),
                Reaches("web", "origin=web", &[]),
            ),
        ],
    );
    suite.check(new_connection(&suite.ns.log("gateway-rot")));
    std::thread::sleep(Duration::from_secs(2));
    let held = suite.ns.log("hold");
    suite.check(if held.matches("tcp-inside:ping").count() == 2 {
        Ok(())
    } else {
        Err(format!(
            "[rotation] a tunnel open across the rotation was cut:\n{held}"
        ))
    });
    suite.ns.stop("hold");
    suite.ns.stop("sidecar");
    suite.ns.stop("gateway-rot");
}

/// The tcp policy reaches its origin within `secs` seconds.
fn reaches_within(ns: &Netns, secs: u64, what: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let out = ns
            .cmd("python3")
            .arg(root().join("tests/e2e/client.py"))
            .args(["tcp", "10.77.0.17", "7000"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("tcp-inside:ping") {
            say(&format!(
                "mtls: {what} taken up in {:.1} s",
                start.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return Err(format!(
                "[rotation] {what} was not taken up within {secs} s:\n{}",
                ns.log("sidecar")
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The last tunnel to 10.77.0.17:7000 (after the rotation) came on another connection to the
/// gateway than the one held open across it: the pool is keyed by the certificate.
fn new_connection(log: &str) -> Result<(), String> {
    let sources: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tunnel-open") && l.contains("\"destination\":\"10.77.0.17:7000\""))
        .filter_map(|l| l.split("\"source\":\"").nth(1)?.split('"').next())
        .collect();
    match sources[..] {
        [.., held, last] if held != last => Ok(()),
        _ => Err(format!(
            "[rotation] expected the tunnel after the rotation on a new connection, got sources {sources:?}:\n{log}"
        )),
    }
}
