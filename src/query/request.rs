//! What the sidecar reads of an HTTP request before its rules: the normalised Host, and what
//! it refuses whatever the rules say (cleartext HTTP/2, methods, targets, header names and
//! values, framing that a proxy and an origin may read differently, paths and values that
//! routes never match). Each function has its twin of the same name in
//! `templates/sidecar/decide.js`, and a vector group in `tests/vectors/decisions.json` run in
//! both; the reasons are the same words.

use crate::model::RequestLimits;
use crate::query::question::HttpRequest;

/// A Host or `:authority` as the sidecar reads it: lower-case, without its port and trailing
/// dots; empty (never a DNS name) when what follows the last colon is not a port (1 to 5
/// digits).
pub fn normalize_host(h: &str) -> String {
    let mut s = h;
    if let Some(colon) = s.rfind(':')
        && !s[colon..].contains(']')
    {
        let port = &s[colon + 1..];
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return String::new();
        }
        s = &s[..colon];
    }
    normalize_name(s)
}

/// A name as the sidecar reads it (an SNI, or a Host without its port): lower-case, without
/// trailing dots; empty (never a DNS name) when it is not ASCII.
pub fn normalize_name(h: &str) -> String {
    if !h.is_ascii() {
        return String::new();
    }
    h.to_ascii_lowercase().trim_end_matches('.').to_owned()
}

/// Whether a path is printable ASCII (as a request target must be): routes match only such
/// paths, so that `.` in a route regex means the same in RE2 and the sidecar's matcher.
pub fn printable_path(path: &str) -> bool {
    path.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether a header value is printable ASCII, space or tab (header regexes match only these).
pub fn printable_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) || b == b'\t')
}

/// Dot segments (also with a `;parameter`: Tomcat reads `..;` as `..`) and encoded `.`, `/`,
/// `\` (also encoded again, `%252e`): such a path never passes a route of an HTTPRouteGroup.
pub fn suspicious(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains('\\') {
        return true;
    }
    let bytes = lower.as_bytes();
    for (p, _) in lower.match_indices('%') {
        let mut q = p + 1;
        while bytes.get(q..q + 2) == Some(b"25") {
            q += 2;
        }
        if matches!(bytes.get(q..q + 2), Some(b"2e" | b"2f" | b"5c")) {
            return true;
        }
    }
    lower.split('/').any(|seg| {
        let seg = seg.split(';').next().unwrap_or("");
        seg == "." || seg == ".."
    })
}

/// Whether a text (at least one character) is an RFC 9110 token: a method, or a header name
/// (as lower-cased by the proxy).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn has_cr_lf_nul(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The headers as Pipy gives them to the sidecar: names lower-cased, in the order they first
/// appear, the last value of a repeated name (but `cookie` and `set-cookie`, whose values are
/// kept as a list).
pub fn pipy_headers(headers: &[(String, String)]) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let list = name == "cookie" || name == "set-cookie";
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) if list => values.push(value),
            Some((_, values)) => *values = vec![value],
            None => out.push((name, vec![value])),
        }
    }
    out
}

/// Why the sidecar refuses a request before any rule, or `None`, in the sidecar's order:
/// cleartext HTTP/2 (an `:authority`, or `Upgrade: h2c`), a method that is not a token or is CONNECT, a request
/// target that is too long, holds CR, LF or NUL, or is not origin-form (`*` only for
/// OPTIONS), header names that are too long or not tokens, values that are too long or hold
/// CR, LF or NUL, and framing a proxy and an origin may read differently.
pub fn request_problem(req: &HttpRequest, limits: &RequestLimits) -> Option<&'static str> {
    if req.authority.is_some() {
        return Some("cleartext HTTP/2 is refused on http ports");
    }
    let headers = pipy_headers(&req.headers);
    let last = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.last().copied())
    };
    if last("upgrade") == Some("h2c") {
        return Some("cleartext HTTP/2 (Upgrade: h2c) is refused on http ports");
    }
    let m = req.method.as_str();
    if m.len() > limits.method || !is_token(m) {
        return Some("the method is not a token");
    }
    if m == "CONNECT" {
        return Some("CONNECT is refused on http ports");
    }
    let t = req.path.as_str();
    if t.len() > limits.target {
        return Some("the request target is too long");
    }
    if has_cr_lf_nul(t) {
        return Some("the request target holds CR, LF or NUL");
    }
    let origin_form = t.starts_with('/') || (t == "*" && m == "OPTIONS");
    if !origin_form {
        return Some("the request target is not origin-form");
    }
    for (name, _) in &headers {
        if name.len() > limits.header_name {
            return Some("a header name is too long");
        }
        if !is_token(name) {
            return Some("a header name is not a token");
        }
    }
    for value in headers.iter().flat_map(|(_, v)| v) {
        if value.len() > limits.header_value {
            return Some("a header value is too long");
        }
        if has_cr_lf_nul(value) {
            return Some("a header value holds CR, LF or NUL");
        }
    }
    framing_problem(&headers)
}

/// Framing a proxy and an origin may read differently (request smuggling): a
/// Transfer-Encoding must be a sole `chunked` (exactly), and never come with a Content-Length.
pub fn framing_problem(headers: &[(String, Vec<&str>)]) -> Option<&'static str> {
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.last().copied().unwrap_or(""))
    };
    let te = value("transfer-encoding")?;
    // Exactly `chunked`: what Pipy's decoder frames as chunked (it compares the start of the
    // value, case-sensitive), and nothing an origin may read otherwise.
    if te != "chunked" {
        return Some("Transfer-Encoding is not a sole chunked");
    }
    if value("content-length").is_some() {
        return Some("Transfer-Encoding with Content-Length");
    }
    None
}

#[cfg(test)]
#[path = "vectors_tests.rs"]
mod tests;
