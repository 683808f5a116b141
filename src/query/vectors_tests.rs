//! The shared decision vectors (`tests/vectors/decisions.json`): the evaluator's functions
//! here, the sidecar's `decide.js` inside Pipy (the e2e suite's self-test), the same cases.

use crate::check::matcher::compile;
use crate::model::{MatchMode, Matchers, REQUEST_LIMITS, Route};
use crate::query::question::HttpRequest;
use crate::query::request::*;
use serde_json::Value;
use std::sync::Arc;

/// The vectors, with every `((N*S))` expanded (S repeated N times).
fn vectors() -> Value {
    fn expand(v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(expand_text(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(expand).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (expand_text(&k), expand(v)))
                    .collect(),
            ),
            other => other,
        }
    }
    let text = include_str!("../../tests/vectors/decisions.json");
    expand(serde_json::from_str(text).expect("JSON"))
}

fn expand_text(s: &str) -> String {
    let re = regex::Regex::new(r"\(\((\d+)\*(.*?)\)\)").unwrap();
    re.replace_all(s, |c: &regex::Captures| c[2].repeat(c[1].parse().unwrap()))
        .into_owned()
}

fn cases<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("a list of cases `{key}`"))
}

fn text(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn headers(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| (text(&h[0]).into(), text(&h[1]).into()))
        .collect()
}

fn mode(c: &Value) -> MatchMode {
    match text(&c["mode"]) {
        "path" => MatchMode::WholePath,
        _ => MatchMode::Anywhere,
    }
}

#[test]
fn the_vectors_limits_are_the_configs() {
    let v = vectors();
    assert_eq!(v["limits"], serde_json::to_value(REQUEST_LIMITS).unwrap());
}

#[test]
fn names_hosts_and_paths() {
    let v = vectors();
    let mut n = 0;
    for c in cases(&v, "normalizeHost") {
        assert_eq!(normalize_host(text(&c["in"])), c["out"], "{c}");
        n += 1;
    }
    for c in cases(&v, "normalizeName") {
        assert_eq!(normalize_name(text(&c["in"])), c["out"], "{c}");
        n += 1;
    }
    for c in cases(&v, "hostMatch") {
        let p = crate::net::parse_host(text(&c["pattern"])).expect("pattern");
        assert_eq!(p.matches(text(&c["host"])), c["match"], "{c}");
        n += 1;
    }
    for c in cases(&v, "hostPatterns") {
        let host = text(&c["host"]);
        let mut found: Vec<String> = c["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| crate::net::parse_host(text(p)).expect("pattern"))
            .filter(|p| p.matches(host))
            .map(|p| p.to_string())
            .collect();
        found.sort();
        assert_eq!(serde_json::json!(found), c["matches"], "{c}");
        n += 1;
    }
    for c in cases(&v, "dnsName") {
        assert_eq!(crate::net::is_dns_name(text(&c["name"])), c["ok"], "{c}");
        n += 1;
    }
    for c in cases(&v, "ipv4") {
        let ok = text(&c["text"]).parse::<std::net::Ipv4Addr>().is_ok();
        assert_eq!(ok, c["ok"], "{c}");
        n += 1;
    }
    for c in cases(&v, "suspiciousPath") {
        assert_eq!(suspicious(text(&c["path"])), c["suspicious"], "{c}");
        n += 1;
    }
    for c in cases(&v, "printablePath") {
        assert_eq!(printable_path(text(&c["path"])), c["ok"], "{c}");
        n += 1;
    }
    for c in cases(&v, "printableValue") {
        assert_eq!(printable_value(text(&c["value"])), c["ok"], "{c}");
        n += 1;
    }
    assert!(n >= 60, "only {n} vectors");
}

#[test]
fn requests_refused_before_any_rule() {
    let v = vectors();
    for c in cases(&v, "request") {
        let req = HttpRequest {
            host: None,
            authority: c.get("authority").map(|a| text(a).to_owned()),
            method: text(&c["method"]).to_owned(),
            path: text(&c["path"]).to_owned(),
            headers: headers(&c["headers"]),
        };
        let want = c["reason"].as_str();
        assert_eq!(request_problem(&req, &REQUEST_LIMITS), want, "{c}");
    }
    assert!(cases(&v, "request").len() >= 30);
}

#[test]
fn route_matchers_and_routes() {
    let v = vectors();
    for c in cases(&v, "routeMatch") {
        let re = text(&c["regex"]);
        let m = compile(re, mode(c)).expect("compiles");
        let subject = text(&c["text"]);
        assert_eq!(m.matches(subject), c["match"], "{c}");
        // What explain's regex crate says too, for the inputs it can take.
        if subject.len() < 10_000 {
            let anchored = match mode(c) {
                MatchMode::WholePath => format!("^(?:{re})$"),
                MatchMode::Anywhere => re.to_owned(),
            };
            let rx = regex::Regex::new(&anchored).unwrap();
            assert_eq!(rx.is_match(subject), c["match"], "regex crate: {c}");
        }
    }
    for c in cases(&v, "route") {
        let r = &c["route"];
        let route = Route {
            path: text(&r["path"]).to_owned(),
            methods: r["methods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| text(m).to_owned())
                .collect(),
            headers: r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), text(v).to_owned()))
                .collect(),
            route_group: Some("ns/g#m".into()),
        };
        let mut matchers = Matchers::new();
        let path_key = MatchMode::WholePath.key(&route.path);
        matchers.insert(
            path_key,
            Arc::new(compile(&route.path, MatchMode::WholePath).unwrap()),
        );
        for value in route.headers.values() {
            matchers.insert(
                MatchMode::Anywhere.key(value),
                Arc::new(compile(value, MatchMode::Anywhere).unwrap()),
            );
        }
        let q = &c["request"];
        let req = HttpRequest {
            host: None,
            authority: None,
            method: text(&q["method"]).to_owned(),
            path: text(&q["path"]).to_owned(),
            headers: headers(&q["headers"]),
        };
        let path = req.path.split('?').next().unwrap_or("");
        let miss = crate::query::eval::route_miss(&route, &req, path, &matchers);
        assert_eq!(miss.is_none(), c["match"], "{c}: {miss:?}");
    }
}

/// A gateway config of the vectors as the evaluator's [`Lists`].
fn gateway_lists(config: &Value) -> crate::query::gateway::Lists {
    use crate::net::{parse_cidr, parse_host};
    use crate::plan::GatewayPort;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| text(s).to_owned()).collect())
            .unwrap_or_default()
    };
    let port_list = |ports: &Value| {
        ports
            .as_object()
            .unwrap()
            .iter()
            .map(|(port, a)| {
                let allow = GatewayPort {
                    any_address: a["AnyAddress"] == true,
                    cidrs: strings(&a["Cidrs"])
                        .iter()
                        .map(|c| parse_cidr(c).unwrap())
                        .collect(),
                    hosts: strings(&a["Hosts"])
                        .iter()
                        .map(|h| parse_host(h).unwrap())
                        .collect(),
                };
                (port.parse().unwrap(), allow)
            })
            .collect()
    };
    crate::query::gateway::Lists {
        passthrough: config["Passthrough"] == true,
        identities: config["Identities"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, ports)| (id.clone(), port_list(ports)))
            .collect(),
        refused: config["Refused"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, service)| {
                let (ip, port) = k.rsplit_once(':').unwrap();
                (
                    (ip.parse().unwrap(), port.parse().unwrap()),
                    text(service).to_owned(),
                )
            })
            .collect(),
        own: strings(&config["OwnAddresses"])
            .iter()
            .map(|a| a.parse().unwrap())
            .collect(),
        audit: strings(&config["Audit"]).into_iter().collect(),
        // As admit.js reads it: anything but `header` is mtls.
        auth: crate::model::GatewayAuth {
            mode: if config["Auth"]["Mode"] == "header" {
                crate::model::AuthMode::Header
            } else {
                crate::model::AuthMode::Mtls
            },
            ..Default::default()
        },
    }
}

#[test]
fn gateway_admission() {
    let v = vectors();
    let mut n = 0;
    for group in cases(&v, "gatewayAdmission") {
        let lists = gateway_lists(&group["config"]);
        for t in cases(group, "tunnels") {
            // The address the tunnel arrived on and the pod's addresses (EGRESSC_POD_IPS).
            let own: Vec<std::net::Ipv4Addr> = std::iter::once(text(&t["local"]))
                .chain(text(&t["podIPs"]).split(','))
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            let got = crate::query::gateway::admit(
                &lists,
                t["identity"].as_str(),
                text(&t["target"]),
                &own,
            );
            assert_eq!(got.is_ok(), t["ok"], "{t}: {got:?}");
            n += 1;
        }
    }
    assert!(n >= 50, "{n} gateway vectors");
}

#[test]
fn spiffe() {
    let v = vectors();
    let mut n = 0;
    for c in cases(&v, "spiffe") {
        let hex = text(&c["der"]);
        let der: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let got = crate::spiffe::certificate_identity(&der, text(&c["trustDomain"]))
            .map(|(ns, sa)| format!("{ns}/{sa}"));
        assert_eq!(
            got.as_ref().ok().map(String::as_str),
            c["identity"].as_str(),
            "{}: {got:?}",
            c["about"]
        );
        n += 1;
    }
    assert!(n >= 20, "{n} spiffe vectors");
}
