//! Host patterns and IPv4 CIDRs, parsed strictly.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A host pattern from `hosts`: an exact name, or `*.suffix` (any name ending in `.suffix`,
/// at any depth, but not `suffix` itself). Stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    Exact(String),
    /// The part after `*.`.
    Wildcard(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Wildcard(s) => {
                host.len() > s.len() + 1
                    && host.ends_with(s.as_str())
                    && host.as_bytes()[host.len() - s.len() - 1] == b'.'
            }
        }
    }

    /// Whether every name this pattern matches is also matched by `other`.
    pub fn is_covered_by(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(a), _) => other.matches(a),
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => {
                a == b || HostPattern::Wildcard(b.clone()).matches(a)
            }
            (HostPattern::Wildcard(_), HostPattern::Exact(_)) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HostError {
    Ipv6,
    Invalid { reason: String, help: String },
}

fn invalid(reason: impl Into<String>, help: impl Into<String>) -> HostError {
    HostError::Invalid {
        reason: reason.into(),
        help: help.into(),
    }
}

/// Check a DNS name (no wildcard): labels of letters, digits and inner hyphens, 1..63
/// characters each, at most 253 in all.
fn check_dns_name(name: &str) -> Result<(), HostError> {
    if name.contains("://") {
        return Err(invalid(
            "the name is a URL",
            "write the host name alone, e.g. `example.com`",
        ));
    }
    if name.is_empty() {
        return Err(invalid(
            "the name is empty",
            "write a host name such as `api.example.com`",
        ));
    }
    if name.len() > 253 {
        return Err(invalid(
            "the name is longer than 253 characters",
            "shorten the name",
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid(
                "the name has an empty label (`..`, or a leading or trailing dot)",
                "remove the extra dot",
            ));
        }
        if label.len() > 63 {
            return Err(invalid(
                "a label is longer than 63 characters",
                "shorten the label",
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            let help = match c {
                '*' => "a wildcard may only be the whole first label: `*.example.com`".to_owned(),
                ':' => "a port does not belong in `hosts`; list it in `ports`".to_owned(),
                '/' => "write a host name, not a URL".to_owned(),
                _ => "use only letters, digits, hyphens and dots".to_owned(),
            };
            return Err(invalid(format!("the name contains `{c}`"), help));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                "a label starts or ends with a hyphen",
                "remove the hyphen at the label's edge",
            ));
        }
    }
    Ok(())
}

/// Whether a name from the wire (a Host header, an SNI, a tunnel target; already lower-cased)
/// is a DNS name that may match a host rule or be dialled: LDH labels of 1 to 63 characters,
/// at most 253 in all, and not an IPv4 literal. Control bytes, NULs and the like never are.
pub fn is_dns_name(name: &str) -> bool {
    !name.bytes().any(|b| b.is_ascii_uppercase())
        && check_dns_name(name).is_ok()
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

pub fn parse_host(s: &str) -> Result<HostPattern, HostError> {
    let t = s.trim_start_matches('[').trim_end_matches(']');
    if t.contains(':') && std::net::Ipv6Addr::from_str(t).is_ok() {
        return Err(HostError::Ipv6);
    }
    let lower = s.to_ascii_lowercase();
    if lower == "*" {
        return Err(invalid(
            "`*` alone is not a host pattern",
            "leave `hosts` out to allow any host, or write `*.example.com`",
        ));
    }
    if let Some(rest) = lower.strip_prefix("*.") {
        check_dns_name(rest)?;
        if Ipv4Addr::from_str(rest).is_ok() {
            return Err(invalid(
                "a wildcard cannot stand in front of an IP address",
                "list the address itself, or use `ipAddresses`",
            ));
        }
        return Ok(HostPattern::Wildcard(rest.to_owned()));
    }
    check_dns_name(&lower)?;
    // The proxies match names only (an IPv4 SNI or Host is never a DNS name): such a host
    // would allow nothing while its author believes it allows the address.
    if Ipv4Addr::from_str(&lower).is_ok() {
        return Err(invalid(
            "an IP address never matches a host rule",
            "hosts are matched by name (SNI, Host); list the address in `ipAddresses`",
        ));
    }
    Ok(HostPattern::Exact(lower))
}

/// Whether a wildcard's suffix is itself a public suffix in the ICANN section of the public
/// suffix list (`com`, `co.uk`): the pattern then admits every domain under it.
pub fn is_public_suffix(suffix: &str) -> bool {
    match psl::suffix(suffix.as_bytes()) {
        Some(s) => s.as_bytes() == suffix.as_bytes() && s.typ() == Some(psl::Type::Icann),
        None => false,
    }
}

/// The names a Service answers to in the cluster's DNS, longest first.
pub fn service_names(service: &str, namespace: &str) -> [String; 3] {
    let base = format!("{service}.{namespace}");
    [
        format!("{base}.svc.cluster.local"),
        format!("{base}.svc"),
        base,
    ]
}

/// The address ranges the egress gateway never tunnels to unless a policy's `ipAddresses`
/// names them, and why: its own loopback, link-local (cloud metadata at 169.254.169.254),
/// "this network", multicast and broadcast. The one definition: the evaluator, `diff` and
/// the gateway (`RefusedRanges` of `gateway/config.json`) all read it.
const REFUSED_RANGES: [(&str, &str); 5] = [
    ("0.0.0.0/8", "in 0.0.0.0/8"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast or broadcast"),
    ("255.255.255.255/32", "multicast or broadcast"),
];

/// [`REFUSED_RANGES`], parsed.
pub fn refused_ranges() -> &'static [(Cidr, &'static str)] {
    static PARSED: std::sync::LazyLock<Vec<(Cidr, &'static str)>> =
        std::sync::LazyLock::new(|| {
            REFUSED_RANGES
                .iter()
                .map(|(c, why)| (parse_cidr(c).expect("refused ranges parse"), *why))
                .collect()
        });
    &PARSED
}

/// Why the egress gateway refuses an address (a refused range), unless a CIDR names it.
pub fn refused_address(ip: Ipv4Addr) -> Option<&'static str> {
    refused_ranges()
        .iter()
        .find(|(c, _)| c.contains(ip))
        .map(|(_, why)| *why)
}

/// A port as the gateway reads a tunnel's target: decimal digits without a sign or leading
/// zero, 1 to 65535 (the gateway script parses it the same way).
pub fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A strictly parsed IPv4 CIDR: explicit prefix, no host bits, no leading zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub cidr::Ipv4Cidr);

impl Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip)
    }
    pub fn is_within(&self, other: &Cidr) -> bool {
        other.0.network_length() <= self.0.network_length()
            && other.0.contains(&self.0.first_address())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.first_address(), self.0.network_length())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CidrError {
    Ipv6,
    Invalid { reason: String, help: String },
}

pub fn parse_cidr(s: &str) -> Result<Cidr, CidrError> {
    let bad = |reason: &str, help: String| CidrError::Invalid {
        reason: reason.to_owned(),
        help,
    };
    let Some((addr, prefix)) = s.split_once('/') else {
        if s.contains(':') {
            return Err(CidrError::Ipv6);
        }
        let help = if Ipv4Addr::from_str(s).is_ok() {
            format!("write `{s}/32` for one address")
        } else {
            "write an IPv4 network such as `10.0.0.0/8`".to_owned()
        };
        return Err(bad("the CIDR has no prefix length", help));
    };
    if addr.contains(':') {
        return Err(CidrError::Ipv6);
    }
    let Ok(ip) = Ipv4Addr::from_str(addr) else {
        let help = if addr.split('.').any(|o| o.len() > 1 && o.starts_with('0')) {
            "remove the leading zeros: they mean octal to some parsers and decimal to others"
                .to_owned()
        } else {
            "write an IPv4 network such as `10.0.0.0/8`".to_owned()
        };
        return Err(bad("the address is not a valid IPv4 address", help));
    };
    let len = match prefix.parse::<u8>() {
        Ok(n)
            if n <= 32
                && !(prefix.len() > 1 && prefix.starts_with('0'))
                && !prefix.starts_with('+') =>
        {
            n
        }
        _ => {
            return Err(bad(
                "the prefix length is not a number from 0 to 32",
                "write the prefix as a plain number, e.g. `/24`".into(),
            ));
        }
    };
    match cidr::Ipv4Cidr::new(ip, len) {
        Ok(c) => Ok(Cidr(c)),
        Err(_) => {
            let net = cidr::Ipv4Inet::new(ip, len)
                .map(|i| i.network().to_string())
                .unwrap_or_default();
            Err(bad(
                "the address has bits set outside the prefix",
                format!("did you mean `{net}`?"),
            ))
        }
    }
}

/// A DNS-1123 label: lower-case letters, digits and `-`, at most 63, no `-` at either end
/// (Kubernetes namespaces).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 (most Kubernetes object names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ranges_are_the_special_addresses_std_names() {
        let special = |ip: Ipv4Addr| {
            ip.is_loopback()
                || ip.is_link_local()
                || ip.octets()[0] == 0
                || ip.is_multicast()
                || ip.is_broadcast()
        };
        for (c, _) in refused_ranges() {
            let first = u32::from(c.0.first_address());
            let last = first
                | u32::MAX
                    .checked_shr(c.0.network_length().into())
                    .unwrap_or(0);
            for ip in [first, last, first.wrapping_sub(1), last.wrapping_add(1)] {
                let ip = Ipv4Addr::from(ip);
                assert_eq!(refused_address(ip).is_some(), special(ip), "{c} {ip}");
            }
        }
        assert_eq!(
            refused_address(Ipv4Addr::new(169, 254, 169, 254)),
            Some("link-local")
        );
    }

    #[test]
    fn ports_parse_as_the_gateway_reads_them() {
        for (text, port) in [("80", Some(80)), ("65535", Some(65535)), ("1", Some(1))] {
            assert_eq!(parse_port(text), port, "{text}");
        }
        for text in [
            "", "0", "080", "+80", "-1", "65536", "8 0", "80 ", "１", "999999",
        ] {
            assert_eq!(parse_port(text), None, "{text}");
        }
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            parse_host("API.Example.com"),
            Ok(HostPattern::Exact("api.example.com".into()))
        );
        assert_eq!(
            parse_host("*.example.com"),
            Ok(HostPattern::Wildcard("example.com".into()))
        );
        assert_eq!(parse_host("[2001:db8::1]"), Err(HostError::Ipv6));
        for bad in [
            "",
            "*",
            "a.*.com",
            "foo..bar",
            "example.com:443",
            "http://x",
            "-a.com",
            "*.1.2.3.4",
        ] {
            assert!(
                matches!(parse_host(bad), Err(HostError::Invalid { .. })),
                "{bad}"
            );
        }
        let w = parse_host("*.example.com").unwrap();
        assert!(parse_host("a.example.com").unwrap().is_covered_by(&w));
        assert!(parse_host("*.a.example.com").unwrap().is_covered_by(&w));
        assert!(!parse_host("example.com").unwrap().is_covered_by(&w));
        assert!(is_public_suffix("co.uk") && !is_public_suffix("example.com"));
    }

    #[test]
    fn cidrs() {
        let c = parse_cidr("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.0".parse().unwrap()));
        assert!(parse_cidr("10.1.0.0/16").unwrap().is_within(&c));
        assert_eq!(parse_cidr("2001:db8::/32"), Err(CidrError::Ipv6));
        for bad in [
            "10.0.0.1/8",
            "010.0.0.0/8",
            "10.0.0.1",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/08",
        ] {
            assert!(
                matches!(parse_cidr(bad), Err(CidrError::Invalid { .. })),
                "{bad}"
            );
        }
    }
}
