//! The attacks of the issue "Hardening (requests)", as e2e cases: each failed on the output
//! before its fix (a forbidden origin saw the connection, or the sidecar crashed under a
//! small stack) and passes after. Long strings are written `((N*S))` (client.py repeats S).

use super::{Case, Expect::*, case, curl, py};

fn raw(name: &str, addr: &str, head: &str, expect: super::Expect) -> Case {
    case(name, py(&["http-raw", addr, "8080", head]), expect)
}

/// One cleartext HTTP/2 request: `mode` is `prior` or `upgrade`; `extra` holds header
/// (name, value) pairs.
fn h2c(mode: &str, path: &str, authority: &str, extra: &[&str]) -> Vec<String> {
    let addr = if authority.starts_with("plain") {
        "10.77.0.53"
    } else {
        "10.77.0.50"
    };
    let mut args = vec!["h2c", addr, "8080", mode, "GET", path, authority];
    args.extend(extra);
    py(&args)
}

/// A plain allowed request: it passes only while the sidecar runs.
fn still_serving(name: &str) -> Case {
    case(
        name,
        curl(&["http://web.test:8080/get"]),
        Reaches("web", "origin=web", &[]),
    )
}

const SMUGGLED: &str =
    "1\\r\\n\\r\\nPOST /admin HTTP/1.1\\r\\nHost: evil.test\\r\\nContent-Length: 0\\r\\n\\r\\n";

/// Item 1, a second request smuggled in a value; item 2, targets that are not origin-form.
pub fn smuggling_cases() -> Vec<Case> {
    vec![
        case(
            "h2c (prior knowledge): CR LF in a header value smuggles a second request",
            h2c("prior", "/get", "web.test", &["x-a", SMUGGLED]),
            Denied(&["web", "evil-web"]),
        ),
        case(
            "h2c (prior knowledge): NUL then CR LF in a header value",
            h2c(
                "prior",
                "/get",
                "web.test",
                &["x-a", &format!("1\\x00{SMUGGLED}")],
            ),
            Denied(&["web", "evil-web"]),
        ),
        case(
            "h2c (prior knowledge): CR LF in :path on a host-only rule",
            h2c("prior", &format!("/x{SMUGGLED}"), "plain.test", &[]),
            Denied(&["plain", "evil-web"]),
        ),
        case(
            "h2c (Upgrade): the upgrade request is refused, not answered over HTTP/2",
            h2c("upgrade", "/get", "web.test", &[]),
            Denied(&["web"]),
        ),
        raw(
            "http/1: a NUL in a header value",
            "10.77.0.50",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nX-A: 1\\x00POST /admin\\r\\n\\r\\n",
            Forbidden(&["web"]),
        ),
        raw(
            "http/1: an absolute-form target on a host-only rule",
            "10.77.0.53",
            "GET http://evil.test/x HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
            Forbidden(&["plain", "evil-web"]),
        ),
        raw(
            "http/1: CONNECT on an http port",
            "10.77.0.53",
            "CONNECT evil.test:443 HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
            Forbidden(&["plain", "evil"]),
        ),
        raw(
            "http/1: a chunked body (exactly `chunked`) is still allowed",
            "10.77.0.53",
            "POST /x HTTP/1.1\\r\\nHost: plain.test\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n4\\r\\nabcd\\r\\n0\\r\\n\\r\\n",
            Reaches("plain", "origin=plain", &[]),
        ),
        raw(
            "http/1: OPTIONS * (asterisk-form) is still allowed on a host-only rule",
            "10.77.0.53",
            "OPTIONS * HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
            Reaches("plain", "origin=plain", &[]),
        ),
    ]
}

/// Item 3, dot segments that the first round's check missed (Tomcat maps them to /admin).
pub fn dot_segment_cases() -> Vec<Case> {
    let get = |name: &str, path: &str| {
        raw(
            name,
            "10.77.0.50",
            &format!("GET {path} HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n"),
            Forbidden(&["web"]),
        )
    };
    vec![
        get(
            "http: `..;` (a dot segment with a parameter)",
            "/public/..;/admin",
        ),
        get("http: `.;` and `..;`", "/public/.;/..;/admin"),
        get(
            "http: double-encoded dots (%252e)",
            "/public/%252e%252e/admin",
        ),
        get("http: double-encoded slash (%252f)", "/public/..%252fadmin"),
        get(
            "http: double-encoded backslash (%255c)",
            "/public/..%255cadmin",
        ),
    ]
}

/// Item 4, one request must not kill the sidecar (it runs with a small stack, as in the musl
/// image); item 5, text after a colon in Host and SNI.
pub fn crash_and_colon_cases() -> Vec<Case> {
    vec![
        case(
            "h2c: a 60,000-byte header name",
            h2c("prior", "/get", "web.test", &["((60000*a))", "1"]),
            Denied(&["web"]),
        ),
        case(
            "h2c: an :authority of 100,000 dots",
            h2c("prior", "/get", "((100000*.))", &[]),
            Denied(&["web"]),
        ),
        case(
            "h2c: a 100 KiB :path",
            h2c("prior", "/public/((102400*a))", "web.test", &[]),
            Denied(&["web"]),
        ),
        case(
            "h2c: a 1 MiB header name (CONTINUATION frames)",
            h2c("prior", "/get", "web.test", &["((1048576*a))", "1"]),
            Denied(&["web"]),
        ),
        still_serving("after the long HTTP/2 requests the sidecar still serves"),
        raw(
            "http/1: a 10,000-byte header name",
            "10.77.0.50",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\n((10000*a)): 1\\r\\n\\r\\n",
            Forbidden(&["web"]),
        ),
        raw(
            "http/1: a Host of 10,000 dots",
            "10.77.0.50",
            "GET /get HTTP/1.1\\r\\nHost: ((10000*.))\\r\\n\\r\\n",
            Forbidden(&["web"]),
        ),
        raw(
            "http/1: an 8,000-byte path under a route rule is matched, not a crash",
            "10.77.0.50",
            "GET /public/((8000*a)) HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n",
            Reaches("web", "origin=web", &[]),
        ),
        raw(
            "http/1: a 10,000-byte request target is refused (the limit is 8 KiB)",
            "10.77.0.50",
            "GET /public/((10000*a)) HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n",
            Forbidden(&["web"]),
        ),
        still_serving("after the long HTTP/1 requests the sidecar still serves"),
        raw(
            "http/1: text after the Host's colon that is not a port",
            "10.77.0.50",
            "GET /get HTTP/1.1\\r\\nHost: web.test:@evil.test\\r\\n\\r\\n",
            Forbidden(&["web", "evil-web"]),
        ),
        case(
            "https: an SNI with a colon",
            py(&["sni-raw", "10.77.0.40", "8443", "secure.test:evil.test"]),
            Denied(&["secure", "evil"]),
        ),
    ]
}

/// The issue "Hardening (network and resources)": DNS only to the pod's resolvers (its
/// `/etc/resolv.conf` names 10.77.0.80), and a WebSocket tunnel that carries data stays up
/// past the head bound (3 s in the e2e mesh).
pub fn network_cases() -> Vec<Case> {
    vec![
        case(
            "udp: DNS to the pod's resolver (resolv.conf) leaves",
            py(&["udp", "10.77.0.80", "53"]),
            Reaches("dns", "dns:ping", &[]),
        ),
        case(
            "udp: port 53 of another address does not leave",
            py(&["udp", "10.77.0.81", "53"]),
            Denied(&["dns-other"]),
        ),
        case(
            "tcp: DNS over TCP to the pod's resolver is not redirected",
            py(&["tcp", "10.77.0.80", "53"]),
            Reaches("dns-tcp", "dns-tcp:ping", &[]),
        ),
        case(
            "tcp: port 53 of another address goes to the sidecar (and is denied)",
            py(&["tcp", "10.77.0.81", "53"]),
            Denied(&["dns-tcp-other"]),
        ),
        case(
            "http: a WebSocket tunnel that carries a message a second outlives the head bound",
            py(&["ws", "10.77.0.53", "8080", "plain.test", "8"]),
            Reaches("plain", "TUNNEL UP FOR 8 MESSAGES", &[]),
        ),
    ]
}

/// With passthrough on: the sidecar never dials its own listener, nor relays to loopback.
pub fn self_dial_cases() -> Vec<Case> {
    vec![
        case(
            "passthrough: a connection to the sidecar's own listener is refused",
            py(&["tcp", "127.0.0.1", "15001"]),
            Denied(&[]),
        ),
        case(
            "passthrough: a loopback address is not relayed",
            py(&["tcp", "127.0.0.70", "7500"]),
            Denied(&["anywhere-lo"]),
        ),
        case(
            "passthrough still works after them",
            py(&["tcp", "10.77.0.70", "7500"]),
            Reaches("anywhere", "anywhere:ping", &[]),
        ),
    ]
}

/// A workload that dials the gateway's pod (not its Service) through passthrough: the gateway
/// would tunnel to itself, and inside that tunnel the workload would speak to the gateway
/// directly, naming another identity (app/other, whose policy names a loopback address). The
/// gateway refuses itself as a target.
pub fn gateway_itself_cases() -> Vec<Case> {
    let pod = super::gateway::GATEWAY_POD_IP;
    vec![
        case(
            "gateway: a CONNECT through a tunnel to the gateway's own pod, naming another identity",
            py(&["h2connect", pod, "1080", "127.0.0.70:7500", "other.app"]),
            Denied(&["anywhere-lo"]),
        ),
        case(
            "gateway: SOCKS5 through a tunnel to the gateway's own pod",
            py(&["socks", pod, "1080", "127.0.0.70", "7500"]),
            Denied(&["anywhere-lo"]),
        ),
        case(
            "gateway: the gateway's own pod on another port",
            py(&["tcp", pod, "7500"]),
            Denied(&[]),
        ),
    ]
}
