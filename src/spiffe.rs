//! SPIFFE identities (README, "Security model"): the ID `spiffe://TRUST_DOMAIN/ns/NS/sa/SA`
//! that cert-manager's csi-driver-spiffe puts in the URI SAN of a pod's certificate, and
//! reading it from the certificate's DER. The gateway and the sidecar read it the same way
//! (`templates/sidecar/spiffe.js`); the `spiffe` group of the shared decision vectors runs both.

use crate::net::{is_dns1123_label, is_dns1123_subdomain};
use schemars::JsonSchema;
use serde::Serialize;

/// How the gateway learns a tunnel's identity (`--gateway-auth`): mutual TLS (the SPIFFE ID
/// of the sidecar's certificate, both modes), or the `egressc-identity` header of an
/// http2tunnel CONNECT (a label; SOCKS5 gets the union of every identity's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Mtls,
    Header,
}

/// The gateway's authentication: its mode and the SPIFFE trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayAuth {
    pub mode: AuthMode,
    pub trust_domain: String,
}

/// The trust domain csi-driver-spiffe uses unless told otherwise.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

impl Default for GatewayAuth {
    fn default() -> GatewayAuth {
        let trust_domain = DEFAULT_TRUST_DOMAIN.to_owned();
        GatewayAuth {
            mode: AuthMode::Mtls,
            trust_domain,
        }
    }
}

impl GatewayAuth {
    /// Whether the gateway gives a SOCKS5 tunnel the union of every identity's list (it
    /// cannot tell who is calling): under `header`.
    pub fn socks_gets_union(&self) -> bool {
        self.mode == AuthMode::Header
    }
}

/// A SPIFFE trust domain: lower-case letters, digits, `.`, `-` and `_`, at most 255 bytes
/// (the SPIFFE ID specification, §2.1).
pub fn is_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// The SPIFFE ID of the ServiceAccount `sa` of namespace `ns`.
pub fn id_of(trust_domain: &str, ns: &str, sa: &str) -> String {
    format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}")
}

/// The ServiceAccount (namespace, name) a SPIFFE ID of `trust_domain` names, or why it names
/// none.
pub fn identity_of(id: &str, trust_domain: &str) -> Result<(String, String), String> {
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return Err("not a SPIFFE ID".into());
    };
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    if domain != trust_domain {
        return Err(format!(
            "SPIFFE ID of another trust domain ({})",
            domain.escape_debug()
        ));
    }
    match path.split('/').collect::<Vec<_>>()[..] {
        ["ns", ns, "sa", sa] if is_dns1123_label(ns) && is_dns1123_subdomain(sa) => {
            Ok((ns.to_owned(), sa.to_owned()))
        }
        _ => Err("SPIFFE ID is not /ns/NAMESPACE/sa/SERVICEACCOUNT".into()),
    }
}

/// The identity a certificate (DER) holds: its one SPIFFE ID, in `trust_domain`, naming a
/// ServiceAccount. A certificate with no SPIFFE ID, two, or one of another trust domain, or
/// DER that does not parse, holds none (`Err(why)`). DNS names never count, whatever they
/// look like.
pub fn certificate_identity(der: &[u8], trust_domain: &str) -> Result<(String, String), String> {
    let uris = uri_sans(der).ok_or_else(|| "certificate DER does not parse".to_owned())?;
    let ids: Vec<&String> = uris
        .iter()
        .filter(|u| u.to_ascii_lowercase().starts_with("spiffe:"))
        .collect();
    match ids[..] {
        [] => Err("certificate holds no SPIFFE ID".into()),
        [one] => identity_of(one, trust_domain),
        _ => Err("certificate holds more than one SPIFFE ID".into()),
    }
}

/// One DER element: its tag, and where its content starts and ends in the input.
struct Tlv {
    tag: u8,
    start: usize,
    end: usize,
}

/// The element at `at` that must end by `end` (definite lengths of at most 4 bytes; no
/// high tag numbers).
fn tlv(der: &[u8], at: usize, end: usize) -> Option<Tlv> {
    let tag = *der.get(at)?;
    if tag & 0x1f == 0x1f || at + 2 > end {
        return None;
    }
    let first = der[at + 1];
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || at + 2 + n > end {
            return None;
        }
        let len = der[at + 2..at + 2 + n]
            .iter()
            .fold(0usize, |l, b| (l << 8) | *b as usize);
        (len, 2 + n)
    };
    let start = at + head;
    let stop = start.checked_add(len)?;
    (stop <= end).then_some(Tlv {
        tag,
        start,
        end: stop,
    })
}

/// The elements inside a constructed element, in order; `None` when one does not parse.
fn children(der: &[u8], parent: &Tlv) -> Option<Vec<Tlv>> {
    let mut out = Vec::new();
    let mut at = parent.start;
    while at < parent.end {
        let t = tlv(der, at, parent.end)?;
        at = t.end;
        out.push(t);
    }
    Some(out)
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// `id-ce-subjectAltName`, 2.5.29.17.
const SAN_OID: [u8; 3] = [0x55, 0x1d, 0x11];
/// A GeneralName's `uniformResourceIdentifier` (`[6] IMPLICIT IA5String`).
const URI_NAME: u8 = 0x86;

/// The URIs of a certificate's subjectAltName extension (empty without one); `None` when the
/// DER is not a certificate's structure as far as it is read.
pub fn uri_sans(der: &[u8]) -> Option<Vec<String>> {
    let cert = tlv(der, 0, der.len()).filter(|t| t.tag == SEQUENCE && t.end == der.len())?;
    let tbs = children(der, &cert)?
        .into_iter()
        .next()
        .filter(|t| t.tag == SEQUENCE)?;
    // version, serial, signature, issuer, validity, subject, key, then optional [1] [2] [3].
    let Some(extensions) = children(der, &tbs)?.into_iter().find(|t| t.tag == 0xa3) else {
        return Some(Vec::new());
    };
    let list = children(der, &extensions)?
        .into_iter()
        .next()
        .filter(|t| t.tag == SEQUENCE)?;
    let mut uris = Vec::new();
    let mut seen_san = false;
    for ext in children(der, &list)? {
        if ext.tag != SEQUENCE {
            return None;
        }
        let parts = children(der, &ext)?;
        let (Some(oid), Some(value)) = (parts.first(), parts.last()) else {
            return None;
        };
        if oid.tag != OID || der[oid.start..oid.end] != SAN_OID {
            continue;
        }
        // An extension appears at most once (RFC 5280, 4.2).
        if seen_san || value.tag != 0x04 {
            return None;
        }
        seen_san = true;
        let names =
            tlv(der, value.start, value.end).filter(|t| t.tag == SEQUENCE && t.end == value.end)?;
        for name in children(der, &names)? {
            if name.tag == URI_NAME {
                let bytes = &der[name.start..name.end];
                if !bytes.iter().all(|b| (0x21..0x7f).contains(b)) {
                    return None;
                }
                uris.push(String::from_utf8(bytes.to_vec()).ok()?);
            }
        }
    }
    Some(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domains() {
        assert!(is_trust_domain("cluster.local"));
        assert!(is_trust_domain("prod_1.example-corp"));
        assert!(!is_trust_domain(""));
        assert!(!is_trust_domain("Cluster.local"));
        assert!(!is_trust_domain("a/b"));
        assert!(!is_trust_domain("a:80"));
    }

    #[test]
    fn ids_name_service_accounts() {
        let (ns, sa) =
            identity_of("spiffe://cluster.local/ns/app/sa/client", "cluster.local").unwrap();
        assert_eq!(
            id_of("cluster.local", &ns, &sa),
            "spiffe://cluster.local/ns/app/sa/client"
        );
        for bad in [
            "spiffe://other.local/ns/app/sa/client",
            "spiffe://cluster.local/ns/app/sa/client/x",
            "spiffe://cluster.local/ns/App/sa/client",
            "spiffe://cluster.local/ns/app/sa/",
            "spiffe://cluster.local",
            "https://cluster.local/ns/app/sa/client",
        ] {
            assert!(identity_of(bad, "cluster.local").is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_past_the_end_do_not_parse() {
        assert!(uri_sans(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(uri_sans(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(uri_sans(&[]).is_none());
        assert!(uri_sans(&[0x30, 0x00]).is_none());
    }
}
