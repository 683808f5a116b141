//! Audit mode and the decision log: an identity in audit mode whose only policy is one http
//! rule makes tcp, tls and http connections no rule allows — all go out, each logged `audit`
//! with what it carried (SNI, Host, method, path), every line valid against
//! `schemas/decision-log.schema.json`; a hardening refusal and loopback stay denied; the same
//! identity under `enforce` is denied.

use super::gateway::gateway_san;
use super::limits::decision_lines;
use super::pki::{Pki, spiffe};
use super::scenarios::{Suite, main_js};
use super::*;
use Expect::{Denied, Forbidden, Reaches};

/// app/auditor: audit mode, one http rule (web.test:8080).
const AUDITOR: &str = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: auditor\n  namespace: app\n  annotations: {egressc.io/enforcement: ENFORCEMENT}\n---\n\
kind: Egress\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {name: auditor-web, namespace: app}\nspec:\n  \
sources: [{kind: ServiceAccount, name: auditor, namespace: app}]\n  hosts: [web.test]\n  ports: [{number: 8080, protocol: http}]\n";

fn cases() -> Vec<Case> {
    let raw = |addr: &str, port: &str, head: &str| py(&["http-raw", addr, port, head]);
    vec![
        case(
            "audit: tcp no rule allows",
            py(&["tcp", "10.77.0.21", "7000"]),
            Reaches("tcp-outside", "tcp-outside:ping", &[]),
        ),
        case(
            "audit: tls no rule allows",
            curl(&["-k", "https://secure.test:8443/"]),
            Reaches("secure", "origin=secure", &[]),
        ),
        case(
            "audit: an http request the rule of its port does not allow",
            curl(&["http://other.test:8080/x?secret=1"]),
            Reaches("other-web", "origin=other-web", &[]),
        ),
        case(
            "audit: http on a port without a rule",
            // The echo origin sends the head back (`…:ping` tells the suite an origin replied).
            raw(
                "10.77.0.21",
                "7000",
                "GET /y?q=1 HTTP/1.1\\r\\nHost: echo.test\\r\\nX-Probe:ping\\r\\n\\r\\n",
            ),
            Reaches("tcp-outside", "tcp-outside:GET /y", &[]),
        ),
        case(
            "audit: server speaks first",
            py(&["greet", "10.77.0.22", "2525"]),
            Reaches("smtp", "HELLO from smtp", &[]),
        ),
        case(
            "audit: the rule still allows what it allows",
            curl(&["http://web.test:8080/get"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "audit: a hardening refusal stays denied",
            raw(
                "10.77.0.50",
                "8080",
                "CONNECT evil.test:443 HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n",
            ),
            Forbidden(&["web", "evil"]),
        ),
        case(
            "audit: never to loopback",
            py(&["tcp", "127.0.0.70", "7500"]),
            Denied(&["anywhere-lo"]),
        ),
    ]
}

/// An audit line the cases must have left: destination, protocol, what else it says.
type Line = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const EXPECTED: &[Line] = &[
    ("10.77.0.21:7000", "tcp", &[]),
    ("10.77.0.40:8443", "tls", &[("sni", "secure.test")]),
    (
        "10.77.0.51:8080",
        "http",
        &[("host", "other.test"), ("method", "GET"), ("path", "/x")],
    ),
    (
        "10.77.0.21:7000",
        "http",
        &[("host", "echo.test"), ("method", "GET"), ("path", "/y")],
    ),
    ("10.77.0.22:2525", "tcp", &[]),
];

pub fn audit_mode(suite: &mut Suite, pki: &Pki) {
    let input = copy_fixture(&suite.work.join("in-audit"));
    add_policy(&input, &AUDITOR.replace("ENFORCEMENT", "audit"));
    let out = suite.work.join("out-audit");
    let plan = build_tree(&input, &out);
    let config = out.join("configs/app/auditor.json");
    if !suite.start("sidecar", &main_js(&out), Some(&config)) {
        return;
    }
    suite.run("audit", "app/auditor", Some(&plan), &cases());
    // The server-speaks-first line is written when the sniffing time is over.
    std::thread::sleep(Duration::from_millis(2500));
    let log = suite.ns.log("sidecar");
    suite.check(audit_lines(&log));
    suite.check(valid_lines(&log));
    suite.check(counted(&suite.ns));
    suite.ns.stop("sidecar");
    the_loop(suite, &log);
    // The same identity enforced: denied.
    let input = copy_fixture(&suite.work.join("in-enforce"));
    add_policy(&input, &AUDITOR.replace("ENFORCEMENT", "enforce"));
    let out = suite.work.join("out-enforce");
    let plan = build_tree(&input, &out);
    if suite.start(
        "sidecar",
        &main_js(&out),
        Some(&out.join("configs/app/auditor.json")),
    ) {
        let denied = [case(
            "enforce: tcp no rule allows is denied",
            py(&["tcp", "10.77.0.21", "7000"]),
            Denied(&["tcp-outside"]),
        )];
        suite.run("enforce", "app/auditor", Some(&plan), &denied);
    }
    suite.ns.stop("sidecar");
    through_gateway(suite, pki);
}

/// Audit mode through a global gateway (mtls): the gateway admits what the audited identity
/// dials, but never itself (nor its refused ranges); its metrics count both.
fn through_gateway(suite: &mut Suite, pki: &Pki) {
    let input = copy_fixture(&suite.work.join("in-audit-gw"));
    add_policy(&input, &AUDITOR.replace("ENFORCEMENT", "audit"));
    add_gateway(&input, "http2tunnel");
    let out = suite.work.join("out-audit-gw");
    let plan = build_tree(&input, &out);
    let gw_tls = pki.issue("gw-audit", "mesh", &gateway_san(), None);
    let san = format!("URI:{}", spiffe("app", "auditor"));
    let auditor_tls = pki.issue("auditor", "mesh", &san, None);
    let gw_env = [
        ("EGRESSC_TLS_DIR", &*gw_tls.to_string_lossy()),
        ("EGRESSC_POD_IPS", super::gateway::GATEWAY_POD_IP),
    ];
    if !suite.start_env("gateway-audit", &out.join("gateway/main.js"), None, &gw_env) {
        return;
    }
    let env = [("EGRESSC_TLS_DIR", &*auditor_tls.to_string_lossy())];
    let config = out.join("configs/app/auditor.json");
    if suite.start_env("sidecar", &main_js(&out), Some(&config), &env) {
        let allowed = [case(
            "audit via the gateway: tcp no rule allows",
            py(&["tcp", "10.77.0.21", "7000"]),
            Reaches("tcp-outside", "tcp-outside:ping", &[]),
        )];
        suite.run("audit via gateway", "app/auditor", Some(&plan), &allowed);
        // The gateway's own pod address (explain knows only its Service's: no comparison).
        let refused = [case(
            "audit via the gateway: the gateway itself stays refused",
            py(&["tcp", super::gateway::GATEWAY_POD_IP, "7500"]),
            Denied(&["anywhere"]),
        )];
        suite.run("audit via gateway", "app/auditor", None, &refused);
        let metrics = scrape(&suite.ns, 15011);
        suite.check(metrics.and_then(|samples| {
            let tunnels = |verdict: &str| {
                sum(
                    &samples,
                    "egressc_gateway_tunnels_total",
                    &[("identity", "app/auditor"), ("verdict", verdict)],
                )
            };
            let open = samples
                .iter()
                .any(|(n, _, _)| n == "egressc_gateway_open_tunnels");
            if tunnels("allow") >= 1.0 && tunnels("deny") >= 1.0 && open {
                Ok(())
            } else {
                Err(format!(
                    "[audit via gateway] the gateway's metrics lack the tunnels: {samples:?}"
                ))
            }
        }));
        suite.check(valid_lines(&suite.ns.log("gateway-audit")));
    }
    suite.ns.stop("sidecar");
    suite.ns.stop("gateway-audit");
}

fn audit_lines(log: &str) -> Result<(), String> {
    let lines = decision_lines(log);
    let audits: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["egressc"] == "audit").collect();
    let mut missing = Vec::new();
    for (dest, protocol, more) in EXPECTED {
        let found = audits.iter().any(|l| {
            l["destination"] == *dest
                && l["protocol"] == *protocol
                && l["identity"] == "app/auditor"
                && more.iter().all(|(k, v)| l[*k] == *v)
        });
        if !found {
            missing.push(format!("{dest} {protocol} {more:?}"));
        }
    }
    let refused = lines
        .iter()
        .any(|l| l["egressc"] == "deny" && l["method"] == "CONNECT" && l["protocol"] == "http");
    if !refused {
        missing.push("a deny line for the CONNECT".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("[audit] the log lacks {missing:?}:\n{log}"))
    }
}

/// Every decision line of the log is valid against the committed schema.
pub fn valid_lines(log: &str) -> Result<(), String> {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/decision-log.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let lines = decision_lines(log);
    let bad: Vec<String> = lines
        .iter()
        .filter(|l| !validator.is_valid(l))
        .map(|l| l.to_string())
        .collect();
    if lines.is_empty() || !bad.is_empty() {
        return Err(format!(
            "[decision log] {} of {} lines do not match schemas/decision-log.schema.json:\n{}",
            bad.len(),
            lines.len(),
            bad.join("\n")
        ));
    }
    say(&format!(
        "decision log: {} lines valid against the schema",
        lines.len()
    ));
    Ok(())
}

type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// The metrics on `port` of the namespace, parsed with prometheus_client's text parser.
fn scrape(ns: &Netns, port: u16) -> Result<Samples, String> {
    let out = ns
        .cmd("python3")
        .arg(root().join("tests/e2e/scrape.py"))
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "[metrics] not parsed ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The sum of the samples of `name` whose labels include `want`.
fn sum(samples: &Samples, name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// The sidecar's metrics count the cases.
fn counted(ns: &Netns) -> Result<(), String> {
    let samples = scrape(ns, 15010)?;
    let sum = |name: &str, want: &[(&str, &str)]| sum(&samples, name, want);
    let decisions = "egressc_decisions_total";
    let checks = [
        ("audits", sum(decisions, &[("verdict", "audit")]), 5.0),
        (
            "tcp audits",
            sum(decisions, &[("verdict", "audit"), ("protocol", "tcp")]),
            2.0,
        ),
        (
            "tls audits",
            sum(decisions, &[("verdict", "audit"), ("protocol", "tls")]),
            1.0,
        ),
        (
            "http audits",
            sum(decisions, &[("verdict", "audit"), ("protocol", "http")]),
            2.0,
        ),
        (
            "http audits on the rule's port",
            sum(decisions, &[("verdict", "audit"), ("port", "8080")]),
            1.0,
        ),
        (
            "refused requests",
            sum(
                decisions,
                &[("verdict", "deny"), ("reason", "request-refused")],
            ),
            1.0,
        ),
        (
            "allows by the policy",
            sum(
                decisions,
                &[("verdict", "allow"), ("policy", "app/auditor-web")],
            ),
            1.0,
        ),
        (
            "config loads",
            sum("egressc_config_reloads_total", &[("result", "ok")]),
            1.0,
        ),
        ("config info", sum("egressc_config_info", &[]), 1.0),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: {got}, expected {want}"))
        .collect();
    if wrong.is_empty() {
        say(&format!(
            "metrics: {} samples parsed by prometheus_client, counts as expected",
            samples.len()
        ));
        Ok(())
    } else {
        Err(format!("[metrics] {}: {samples:?}", wrong.join("; ")))
    }
}

/// The adoption loop on the audit log: `suggest` turns it into policies `check` accepts;
/// `test --replay` exits 5 without them and 0 with them; with them and the identity enforced,
/// Pipy lets exactly those connections through and denies a new destination; `diff` shows
/// additions only.
fn the_loop(suite: &mut Suite, log: &str) {
    let log_file = suite.work.join("audit.log");
    std::fs::write(&log_file, log).unwrap();
    let log_arg = log_file.to_string_lossy().into_owned();
    // The inputs as enforced, without the suggestion.
    let base = copy_fixture(&suite.work.join("in-loop-base"));
    add_policy(&base, &AUDITOR.replace("ENFORCEMENT", "enforce"));
    let base_arg = base.to_string_lossy().into_owned();
    let suggestion = egressc(&["suggest", "--logs", &log_arg, &base_arg]);
    let head = copy_fixture(&suite.work.join("in-loop-head"));
    add_policy(&head, &AUDITOR.replace("ENFORCEMENT", "enforce"));
    std::fs::write(head.join("suggested.yaml"), &suggestion.stdout).unwrap();
    let head_arg = head.to_string_lossy().into_owned();
    let check = egressc(&["check", "--format", "json", &head_arg]);
    let errors = check.stdout.matches("\"severity\": \"error\"").count()
        + check.stdout.matches("\"severity\":\"error\"").count();
    let without = egressc(&["test", "--replay", &log_arg, &base_arg]).code;
    let with = egressc(&["test", "--replay", &log_arg, &head_arg]);
    let diff = egressc(&[
        "diff", "--base", &base_arg, "--head", &head_arg, "--format", "json",
    ]);
    let entries: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap_or_default();
    let not_added: Vec<&serde_json::Value> = entries["entries"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["change"] != "added").collect())
        .unwrap_or_default();
    suite.check(
        if suggestion.code == 0 && check.code == 0 && errors == 0 && without == 5 && with.code == 0 && diff.code == 0 && not_added.is_empty() {
            say(&format!(
                "loop: suggest wrote {} policies; check accepts them; replay exits 5 without, 0 with; diff: additions only",
                suggestion.stdout.matches("kind: Egress").count()
            ));
            Ok(())
        } else {
            Err(format!(
                "[loop] suggest {} ({}), check {} ({errors} errors), replay without {without}, with {} ({}), diff {} (not added: {not_added:?}):\n{}",
                suggestion.code, suggestion.stderr, check.code, with.code, with.stdout, diff.code, suggestion.stdout
            ))
        },
    );
    // Enforced with the suggestion: what was audited goes through, a new destination does not.
    let out = suite.work.join("out-loop");
    let plan = build_tree(&head, &out);
    if suite.start(
        "sidecar",
        &main_js(&out),
        Some(&out.join("configs/app/auditor.json")),
    ) {
        let mut cases: Vec<Case> = cases()
            .into_iter()
            .filter(|c| !c.name.contains("loopback") && !c.name.contains("hardening"))
            .collect();
        for c in &mut cases {
            c.name = c.name.replace("audit:", "enforced with the suggestion:");
        }
        cases.push(case(
            "enforced with the suggestion: a new destination is denied",
            py(&["tcp", "10.77.0.17", "7000"]),
            Denied(&["tcp-inside"]),
        ));
        suite.run("loop", "app/auditor", Some(&plan), &cases);
    }
    suite.ns.stop("sidecar");
}
