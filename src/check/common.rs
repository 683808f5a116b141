//! Diagnostics that several rule families raise, each from one constructor.

use crate::diagnostics::{Code, Diagnostic};
use crate::input::yaml::Seg;
use crate::load::loaded::Document;
use crate::net::{self, Cidr, CidrError};
use crate::span::Span;

/// Values sorted and without duplicates.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

/// E0317: an IPv6 address, CIDR or host.
pub fn ipv6_unsupported(what: &str, value: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E0317,
        format!("IPv6 {what} `{value}` is not supported"),
    )
    .at(span)
    .help("egressc supports IPv4 only for now (Pipy decodes IPv4 original destinations)")
}

/// W0408: a field egressc accepts but does not act on.
pub fn not_acted_on(span: Span, message: impl Into<String>, help: &str) -> Diagnostic {
    Diagnostic::new(Code::W0408, message).at(span).help(help)
}

/// A CIDR at `p`, parsed; E0303 or E0317 when it does not parse.
pub fn cidr(doc: &Document, p: &[Seg], value: &str, diags: &mut Vec<Diagnostic>) -> Option<Cidr> {
    match net::parse_cidr(value) {
        Ok(c) => Some(c),
        Err(CidrError::Ipv6) => {
            diags.push(ipv6_unsupported("CIDR", value, doc.span(p)));
            None
        }
        Err(CidrError::Invalid { reason, help }) => {
            diags.push(
                Diagnostic::new(Code::E0303, format!("invalid CIDR `{value}`: {reason}"))
                    .at(doc.span(p))
                    .help(help),
            );
            None
        }
    }
}

/// E0314: a gateway mode that is neither `http2tunnel` nor `sock5`/`socks5`.
pub fn unknown_mode(mode: &str, span: Span, on_annotation: bool) -> Diagnostic {
    let d = Diagnostic::new(Code::E0314, format!("unknown egress gateway mode `{mode}`"))
        .at(span)
        .help("use `http2tunnel` or `sock5` (`socks5` is accepted as the same)");
    if on_annotation {
        d.label("FSM would silently use http2tunnel")
    } else {
        d
    }
}
