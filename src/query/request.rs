//! What the sidecar reads of an HTTP request before its rules: the normalised Host, and what
//! it refuses whatever the rules say (framing that a proxy and an origin may read
//! differently, paths and values that routes never match). Each has its twin in
//! `templates/sidecar/decide.js`, and a vector group in `tests/vectors/decisions.json` run in
//! both.

/// Same normalisation as the sidecar: lower-case, port and trailing dots removed.
pub fn normalize_host(h: &str) -> String {
    let mut s = h.to_ascii_lowercase();
    if let Some(colon) = s.rfind(':')
        && !s[colon..].contains(']')
    {
        s.truncate(colon);
    }
    while s.ends_with('.') {
        s.pop();
    }
    s
}

/// Whether a path is printable ASCII (as a request target must be): routes match only such
/// paths, so that `.` in a route regex means the same in RE2, ECMAScript and here.
pub fn printable_path(path: &str) -> bool {
    path.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether a header value is printable ASCII, space or tab (header regexes match only these).
pub fn printable_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) || b == b'\t')
}

/// Dot-segments or encoded `.`, `/`, `\`: such a path never passes a route of an HTTPRouteGroup.
pub fn suspicious(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains('\\')
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// Whether a header name is an RFC 9110 token (as lower-cased by the proxy).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why the sidecar refuses a request's head before any rule, whatever the rules say: framing
/// that a proxy and an origin may read differently (request smuggling). Header names must be
/// tokens (this also catches `Transfer-Encoding :` and obsolete line folding), a
/// Transfer-Encoding must be a sole `chunked`, and never come with a Content-Length.
pub fn framing_problem(headers: &[(String, String)]) -> Option<&'static str> {
    if headers.iter().any(|(n, _)| !is_token(n)) {
        return Some("a header name is not a token");
    }
    let te: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .map(|(_, v)| v.as_str())
        .collect();
    if te.is_empty() {
        return None;
    }
    if te.len() > 1 || !te[0].trim().eq_ignore_ascii_case("chunked") {
        return Some("Transfer-Encoding is not a sole chunked");
    }
    if headers.iter().any(|(n, _)| n == "content-length") {
        return Some("Transfer-Encoding with Content-Length");
    }
    None
}
