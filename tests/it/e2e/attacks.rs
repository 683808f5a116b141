//! The attacks of the runtime-bypass issue, as e2e cases: each failed on the output before
//! its fix (the forbidden origin saw the connection) and passes after.

use super::{Case, Expect::*, case, curl, py};

/// Overlapping host patterns: the routes of every pattern that matches the Host count, as
/// in explain (the sidecar used to consult only the first pattern that matched).
pub fn overlap_cases() -> Vec<Case> {
    vec![
        case(
            "http: an exact host does not hide a wildcard's routes",
            curl(&["http://api.web.test:8080/wild"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: the exact host's own routes",
            curl(&["http://api.web.test:8080/deep"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: a narrower wildcard does not hide a wider one's routes",
            curl(&["http://x.deep.web.test:8080/wild"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: nor the wider the narrower's",
            curl(&["http://x.deep.web.test:8080/deep"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: a path no matching pattern allows",
            curl(&["http://x.deep.web.test:8080/get"]),
            Forbidden(&["web"]),
        ),
        case(
            // Passes `*.web.test`; a resolver would stop at the NUL and dial evil.test.
            "http: a Host with a NUL byte is not a name",
            py(&[
                "http-raw",
                "10.77.0.50",
                "8080",
                "GET /wild HTTP/1.1\\r\\nHost: evil.test\\x00.web.test\\r\\n\\r\\n",
            ]),
            Forbidden(&["evil-web", "web"]),
        ),
    ]
}

/// Request smuggling through framing headers Pipy does not normalise.
pub fn smuggling_cases() -> Vec<Case> {
    let raw = |name: &str, head: &str| {
        case(
            name,
            py(&["http-raw", "10.77.0.50", "8080", head]),
            Forbidden(&["web"]),
        )
    };
    vec![
        raw(
            "http: `Transfer-Encoding :` (space before the colon) is refused",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nContent-Length: 41\\r\\nTransfer-Encoding : chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /admin HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n",
        ),
        raw(
            "http: a Transfer-Encoding other than a sole chunked is refused",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nTransfer-Encoding: gzip, chunked\\r\\n\\r\\n0\\r\\n\\r\\n",
        ),
        raw(
            "http: Transfer-Encoding with Content-Length is refused",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\n0\\r\\n\\r\\n",
        ),
        raw(
            "http: a header name with a tab (a folded line, kept by Pipy) is refused",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nX-A: a\\r\\n\\tb: c\\r\\n\\r\\n",
        ),
        case(
            // Pipy's decoder closes the connection on a folded line without a colon.
            "http: obsolete line folding is refused",
            py(&[
                "http-raw",
                "10.77.0.50",
                "8080",
                "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nX-A: a\\r\\n b\\r\\n\\r\\n",
            ]),
            Denied(&["web"]),
        ),
        raw(
            "http: a header name that is not a token is refused",
            "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nX@Y: 1\\r\\n\\r\\n",
        ),
    ]
}

/// What iptables must stop before the sidecar: IPv6 (but ::1), UDP (but DNS), ICMP.
pub fn interception_cases() -> Vec<Case> {
    vec![
        case(
            "ipv6: a ULA destination does not leave",
            py(&["tcp", "fd77::50", "7600"]),
            Denied(&["v6"]),
        ),
        case(
            "ipv6: ::1 stays reachable",
            py(&["tcp", "::1", "7600"]),
            Reaches("v6-lo", "v6-lo:ping", &[]),
        ),
        case(
            "udp: a datagram to a non-DNS port does not leave",
            py(&["udp", "10.77.0.80", "5353"]),
            Denied(&["udp"]),
        ),
        case(
            "udp: DNS to the resolver leaves",
            py(&["udp", "10.77.0.80", "53"]),
            Reaches("dns", "dns:ping", &[]),
        ),
        case(
            "icmp: an echo request does not leave",
            py(&["icmp", "10.77.0.80"]),
            Denied(&[]),
        ),
    ]
}

/// Slow and idle clients are bounded (sidecarTimeout is 3 s in the e2e mesh).
pub fn slow_cases() -> Vec<Case> {
    vec![
        case(
            "https: a connection that sends nothing is closed",
            py(&["idle", "10.77.0.40", "8443"]),
            ClosedWithin(5, &["secure"]),
        ),
        case(
            "http: a trickled request head is closed",
            py(&[
                "trickle",
                "10.77.0.50",
                "8080",
                "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\r\\n\\r\\n",
            ]),
            ClosedWithin(5, &["web"]),
        ),
        case(
            "http: an idle keep-alive connection is closed",
            py(&[
                "idle",
                "10.77.0.50",
                "8080",
                "GET /get HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n",
            ]),
            ClosedWithin(5, &[]),
        ),
    ]
}

/// A workload's own tunnels to the gateway Service (passthrough off): denied by the sidecar.
pub fn gateway_service_cases() -> Vec<Case> {
    vec![
        case(
            "gateway: a workload's own SOCKS5 to the gateway Service is denied",
            py(&["socks", "10.77.0.30", "1080", "10.77.0.70", "7500"]),
            Denied(&["anywhere"]),
        ),
        case(
            "gateway: a workload's own h2 CONNECT to the gateway Service is denied",
            py(&[
                "h2connect",
                "10.77.0.30",
                "1080",
                "10.77.0.70:7500",
                "client.app",
            ]),
            Denied(&["anywhere"]),
        ),
    ]
}

/// Tunnels straight to the gateway (as a workload that reached its pod would send them,
/// passthrough off; the suite exempts the gateway's address from interception for these):
/// only what the allow-list admits.
pub fn gateway_direct_cases() -> Vec<Case> {
    let h2 =
        |target: &str, identity: &str| py(&["h2connect", "10.77.0.30", "1080", target, identity]);
    let socks = |host: &str, port: &str| py(&["socks", "10.77.0.30", "1080", host, port]);
    vec![
        case(
            "gateway: h2 CONNECT within the identity's list",
            h2("10.77.0.17:7000", "client.app"),
            Reaches("tcp-inside", "tcp-inside:ping", &[]),
        ),
        case(
            "gateway: h2 CONNECT of an identity without that rule",
            h2("10.77.0.17:7000", "other.app"),
            Denied(&["tcp-inside"]),
        ),
        case(
            "gateway: h2 CONNECT naming no identity",
            h2("10.77.0.17:7000", "-"),
            Denied(&["tcp-inside"]),
        ),
        case(
            "gateway: h2 CONNECT to an unlisted address",
            h2("10.77.0.70:7500", "client.app"),
            Denied(&["anywhere"]),
        ),
        case(
            "gateway: h2 CONNECT to the gateway's own loopback",
            h2("127.0.0.70:7500", "client.app"),
            Denied(&["anywhere-lo"]),
        ),
        case(
            "gateway: h2 CONNECT to cloud metadata",
            h2("169.254.169.254:80", "client.app"),
            Denied(&[]),
        ),
        case(
            // Pipy 1.5's HTTP/2 decoder refuses it (GOAWAY); the gateway serves on (next case).
            "gateway: RFC 9113 CONNECT without :path is refused, not a crash",
            py(&[
                "h2connect",
                "10.77.0.30",
                "1080",
                "10.77.0.17:7000",
                "client.app",
                "authority-only",
            ]),
            Denied(&["tcp-inside"]),
        ),
        case(
            "gateway: SOCKS5 within the union of the lists",
            socks("10.77.0.17", "7000"),
            Reaches("tcp-inside", "tcp-inside:ping", &[]),
        ),
        case(
            "gateway: SOCKS5 to an unlisted address",
            socks("10.77.0.70", "7500"),
            Denied(&["anywhere"]),
        ),
        case(
            // Passes `*.web.test`; a resolver would stop at the NUL and dial evil.test.
            "gateway: SOCKS5 to a name with a NUL byte",
            socks("evil.test\\x00.web.test", "8080"),
            Denied(&["evil-web", "web"]),
        ),
        case(
            "gateway: HTTP/1.1 CONNECT is not a form the sidecar sends",
            py(&["h1connect", "10.77.0.30", "1080", "10.77.0.17:7000"]),
            Denied(&["tcp-inside"]),
        ),
    ]
}
