//! What `publish` takes from outside and must not trust: the paths OUT's `manifest.json`
//! lists, the codebase and file names the repo server returns, and the `--repo` URL, whose
//! user and password are never shown.

/// A `--repo` URL as shown in messages: `http://user:password@host/` is `http://***@host/`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The host (and port) of an http URL, lower-cased, without user information.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A file name inside a codebase: one plain name of letters, digits, `.`, `-`, `_` (not
/// `.` or `..`), or a `name.part-N` of one.
pub fn is_file_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// A path of OUT's `manifest.json`: relative, plain components only (no `..`, no absolute
/// path, no backslash), each a [`is_file_name`] (a namespace or identity folder is a
/// Kubernetes name, which is one).
pub fn is_out_path(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('/') && s.split('/').all(is_file_name)
}

/// A name as shown: control characters (a newline the server put in a name) escaped.
pub fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            redacted("http://admin:s3cret@repo.example:6060/x"),
            "http://***@repo.example:6060/x"
        );
        assert_eq!(redacted("http://repo:6060"), "http://repo:6060");
        assert_eq!(
            host_of("http://a:b@Repo.example:6060/p"),
            Some("repo.example:6060".into())
        );
    }

    #[test]
    fn paths_and_names_from_outside_are_plain() {
        for ok in [
            "sidecar/main.js",
            "configs/ns/sa.json",
            "configs/ns/sa.json.part-1",
        ] {
            assert!(is_out_path(ok), "{ok}");
        }
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "configs/../x",
            "a\\b",
            "a//b",
            "",
            "a/\n",
        ] {
            assert!(!is_out_path(bad), "{bad:?}");
        }
        // Identity codebases are named as `model::Identity::parse` takes them.
        let id = |s: &str| crate::model::Identity::parse(s).is_ok();
        assert!(id("team-1/a.b") && !id("../x") && !id("ns/A") && !id("ns/a/b"));
        assert!(!is_file_name("x\ny") && !is_file_name("..") && is_file_name("config.json"));
        assert_eq!(shown("a\nb"), "a\\nb");
    }
}
