//! Origins and clients: the servers the namespace runs, the client commands of a case, what
//! a case must show, and the comparison of each connection with `explain`.

use super::*;

/// Origins: name, address, port, kind.
pub const ORIGINS: &[(&str, &str, u16, &str)] = &[
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
    ("plain", "10.77.0.53", 8080, "http"),
    ("bulk", "10.77.0.54", 8080, "bulk"),
    ("v6", "fd77::50", 7600, "echo"),
    ("v6-lo", "::1", 7600, "echo"),
    ("udp", "10.77.0.80", 5353, "udp"),
    ("dns", "10.77.0.80", 53, "udp"),
    ("dns-other", "10.77.0.81", 53, "udp"),
    ("dns-tcp", "10.77.0.80", 53, "echo"),
    ("dns-tcp-other", "10.77.0.81", 53, "echo"),
];

pub const HOSTS: &str = "127.0.0.1 localhost\n\
10.77.0.40 secure.test\n\
10.77.0.41 a.wild.test\n\
10.77.0.42 evil.test\n\
10.77.0.50 web.test\n\
10.77.0.50 api.web.test\n\
10.77.0.50 x.deep.web.test\n\
10.77.0.51 other.test\n\
10.77.0.53 plain.test\n\
10.77.0.54 bulk.test\n\
10.77.0.30 fsm-egress-gateway.fsm.svc.cluster.local\n";

pub fn start_origins(ns: &mut Netns) {
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

pub fn accepts(ns: &Netns) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in ns.log("accepts").lines() {
        if let Some(n) = line.strip_prefix("ACCEPT ") {
            *m.entry(n.to_owned()).or_default() += 1;
        }
    }
    m
}

/// What a client run must show.
pub enum Expect {
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
pub fn client_ran(text: &str) -> bool {
    !text.trim().is_empty()
        && !["Traceback", "Permission denied", "No such file"]
            .iter()
            .any(|m| text.contains(m))
}

/// Text in a client's output that only an origin's reply puts there.
pub fn replied(text: &str) -> bool {
    ["origin=", ":ping", "HELLO from", "ECHO REPLY"]
        .iter()
        .any(|m| text.contains(m))
}

pub struct Case {
    pub name: String,
    pub client: Vec<String>,
    pub expect: Expect,
}

pub fn curl(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["curl", "-sS", "-m", "5", "-w", "\nHTTP %{http_code}\n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

pub fn py(args: &[&str]) -> Vec<String> {
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

pub fn case(name: &str, client: Vec<String>, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        client,
        expect,
    }
}

/// The connection a client command makes, as an `explain` query (None for the keep-alive
/// client, whose two requests get two verdicts).
pub fn query_of(identity: &str, client: &[String]) -> Option<egressc::Query> {
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
                authority: None,
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
        if ![
            "tcp",
            "greet",
            "raw",
            "tls-split",
            "sni-raw",
            "http-raw",
            "h2c",
        ]
        .contains(&mode)
        {
            return None;
        }
        let dest = format!("{}:{}", client[3], client[4]);
        match mode {
            "tls-split" => (dest, Some(client[5].clone()), None),
            "sni-raw" => (dest, Some(unescape(&client[5])), None),
            "http-raw" => (dest, None, Some(raw_request(&unescape(&client[5])))),
            "h2c" => (dest, None, Some(h2c_request(&client[5..]))),
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

/// The request of client.py's `h2c` (MODE METHOD PATH AUTHORITY [NAME VALUE]...): HTTP/2 by
/// prior knowledge (an `:authority`), or an HTTP/1.1 head with `Upgrade: h2c`.
fn h2c_request(args: &[String]) -> egressc::HttpRequest {
    let a: Vec<String> = args.iter().map(|s| unescape(s)).collect();
    let mut headers: Vec<(String, String)> = a[4..]
        .chunks(2)
        .map(|kv| (kv[0].to_ascii_lowercase(), kv[1].clone()))
        .collect();
    let (host, authority) = if a[0] == "upgrade" {
        headers.push(("upgrade".into(), "h2c".into()));
        (Some(a[3].clone()), None)
    } else {
        (None, Some(a[3].clone()))
    };
    egressc::HttpRequest {
        host,
        authority,
        method: a[1].clone(),
        path: a[2].clone(),
        headers,
    }
}

/// client.py's `((N*S))`: S repeated N times.
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("((") {
        let Some(star) = rest[open..].find('*').map(|i| open + i) else {
            break;
        };
        let Some(close) = rest[star..].find("))").map(|i| star + i) else {
            break;
        };
        let Ok(n) = rest[open + 2..star].parse::<usize>() else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[star + 1..close].repeat(n));
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

/// Python's escapes as client.py reads them (`\\r`, `\\n`, `\\t`, `\\xNN`, `\\\\`), after
/// `((N*S))`.
pub fn unescape(s: &str) -> String {
    let s = expand(s);
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

/// The request a raw HTTP/1.1 head asks, as Pipy's decoder reads it: lines end at LF, a value
/// starts after the colon's spaces and ends at its first CR, names are lower-cased.
pub fn raw_request(text: &str) -> egressc::HttpRequest {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split('\n');
    let mut line = lines.next().unwrap_or_default().split(' ');
    let method = line.next().unwrap_or_default().to_owned();
    let path = line.next().unwrap_or("/").to_owned();
    let mut host = None;
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        let v = v.trim_start_matches(' ');
        let v = v.split('\r').next().unwrap_or_default();
        let (k, v) = (k.to_ascii_lowercase(), v.to_owned());
        if k == "host" {
            host = Some(v.clone());
        }
        headers.push((k, v));
    }
    egressc::HttpRequest::new(host, Some(method), Some(path), headers)
}

/// Counts of the comparison between explain and Pipy.
#[derive(Default)]
pub struct Agreement {
    pub compared: usize,
    pub disagreements: Vec<String>,
}

/// The sidecar's identity and plan, for comparing with explain.
pub struct SidecarRun<'a> {
    pub label: &'a str,
    pub identity: &'a str,
    pub plan: Option<&'a egressc::Plan>,
}

/// Run cases against the running sidecar; failures are collected, not fatal. Each connection
/// is also put to `explain` (when `run.plan` is given) and compared with what Pipy did.
pub fn run_cases(
    ns: &Netns,
    run: &SidecarRun,
    cases: &[Case],
    failures: &mut Vec<String>,
    agreement: &mut Agreement,
) -> usize {
    let label = run.label;
    let mut passed = 0;
    for c in cases {
        let before = accepts(ns);
        let started = Instant::now();
        let out = ns
            .cmd(&c.client[0])
            .args(&c.client[1..])
            .output()
            .expect("client runs");
        if std::env::var_os("EGRESSC_E2E_TIMES").is_some() {
            super::say(&format!(
                "{:.1} s: {}",
                started.elapsed().as_secs_f64(),
                c.name
            ));
        }
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
