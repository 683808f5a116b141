//! Services: in-mesh destinations (each TCP clusterIP:port, checked for what it claims to be)
//! and their gateway mode annotations.

use crate::check::common::ipv6_unsupported;
use crate::check::common::unknown_mode;
use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::{ServicePort, ServiceSpec};
use crate::load::loaded::{Loaded, Res};
use crate::model::{CheckOptions, DnsResolvers, GatewayMode, MODE_ANNOTATION, MeshDestination};
use crate::net::Cidr;
use crate::path;
use crate::span::Span;
use std::collections::HashMap;
use std::net::Ipv4Addr;

enum NoClusterIp {
    Headless,
    Missing,
}

fn no_cluster_ip(s: &Res<ServiceSpec>, why: NoClusterIp, span: Span) -> Diagnostic {
    let (what, help) = match why {
        NoClusterIp::Headless => (
            "is headless: in-mesh traffic to it goes to pod addresses egressc cannot know",
            "traffic to its pods is treated as egress; allow it with an Egress policy or passthrough",
        ),
        NoClusterIp::Missing => (
            "has no clusterIP: in-mesh traffic to it cannot be recognised",
            "add `spec.clusterIP` as the cluster assigned it (`kubectl get svc -o yaml`), or traffic to it is treated as egress",
        ),
    };
    Diagnostic::new(
        Code::W0407,
        format!("Service `{}/{}` {what}", s.ns(), s.name()),
    )
    .at(span)
    .help(help)
}

/// A Service's gateway mode annotation, checked.
fn service_mode(
    s: &Res<ServiceSpec>,
    inputs: &Loaded,
    diags: &mut Vec<Diagnostic>,
) -> Option<GatewayMode> {
    let mode = s.meta.annotation(MODE_ANNOTATION)?;
    let parsed = GatewayMode::parse(mode);
    if parsed.is_none() {
        let span = inputs
            .doc(s)
            .span(path!["metadata", "annotations", MODE_ANNOTATION]);
        diags.push(unknown_mode(mode, span, true));
    }
    parsed
}

/// What a clusterIP is, for the in-mesh rule.
#[derive(Debug, PartialEq, Eq)]
enum AddressClass {
    /// Private (RFC 1918), shared (100.64/10), or inside a `--service-cidr`.
    Cluster,
    Loopback,
    /// Globally routable, or link-local (cloud metadata lives there).
    Public,
    /// Reserved, documentation, multicast and the like.
    Unusual,
}

fn classify(ip: Ipv4Addr, service_cidrs: &[Cidr]) -> AddressClass {
    let o = ip.octets();
    let shared = o[0] == 100 && (o[1] & 0xc0) == 64;
    if service_cidrs.iter().any(|c| c.contains(ip)) || ip.is_private() || shared {
        return AddressClass::Cluster;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let documentation = matches!(
        (o[0], o[1], o[2]),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
    );
    let benchmarking = o[0] == 198 && (o[1] & 0xfe) == 18;
    let unusual = o[0] == 0
        || o[0] >= 224
        || documentation
        || benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0);
    if unusual {
        AddressClass::Unusual
    } else {
        AddressClass::Public
    }
}

/// E0320 or W0409: a clusterIP that is not a cluster address.
fn odd_cluster_ip(
    s: &Res<ServiceSpec>,
    ip: Ipv4Addr,
    class: &AddressClass,
    span: Span,
) -> Option<Diagnostic> {
    let what = match class {
        AddressClass::Cluster => return None,
        AddressClass::Public if ip.is_link_local() => {
            "is link-local (where cloud metadata services live)"
        }
        AddressClass::Public => "is a public address",
        AddressClass::Loopback => "is a loopback address",
        AddressClass::Unusual => {
            "is outside the private and shared ranges (RFC 1918, 100.64.0.0/10)"
        }
    };
    let code = if *class == AddressClass::Public {
        Code::E0320
    } else {
        Code::W0409
    };
    Some(
        Diagnostic::new(
            code,
            format!(
                "Service `{}/{}` has clusterIP `{ip}`, which {what}: every identity may reach it as in-mesh",
                s.ns(),
                s.name()
            ),
        )
        .at(span)
        .help("write the clusterIP the cluster assigned; when your Service CIDR is outside the private ranges, name it with `--service-cidr`"),
    )
}

/// Whether a Service port carries TCP (the only protocol the sidecar intercepts).
fn is_tcp(p: &ServicePort) -> bool {
    p.protocol
        .as_deref()
        .is_none_or(|proto| proto.eq_ignore_ascii_case("TCP"))
}

/// The resolvers workload DNS may reach: `--dns`, else the clusterIP of `kube-system/kube-dns`
/// when the inputs have it, else the nameservers of the pod's `/etc/resolv.conf` at start.
pub fn dns_resolvers(inputs: &Loaded, options: &CheckOptions) -> DnsResolvers {
    if !options.dns.is_empty() {
        let mut v = options.dns.clone();
        v.sort();
        v.dedup();
        return DnsResolvers::Flag(v);
    }
    inputs
        .services
        .iter()
        .filter(|s| s.ns() == "kube-system" && s.name() == "kube-dns")
        .find_map(|s| s.spec.cluster_ip.as_deref()?.parse::<Ipv4Addr>().ok())
        .map_or(DnsResolvers::PodResolvConf, DnsResolvers::KubeDns)
}

/// The in-mesh destinations: every Service's IPv4 clusterIP with each of its TCP ports.
pub fn check_services(
    inputs: &Loaded,
    options: &CheckOptions,
    diags: &mut Vec<Diagnostic>,
) -> Vec<MeshDestination> {
    let mut out = Vec::new();
    let mut first: HashMap<(Ipv4Addr, u16), (&Res<ServiceSpec>, usize)> = HashMap::new();
    for s in &inputs.services {
        let doc = inputs.doc(s);
        service_mode(s, inputs, diags);
        if s.spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ip_span = doc.span(path!["spec", "clusterIP"]);
        let ip = match s.spec.cluster_ip.as_deref() {
            Some("None") => {
                diags.push(no_cluster_ip(s, NoClusterIp::Headless, ip_span));
                continue;
            }
            None | Some("") => {
                let span = doc.span(path!["metadata", "name"]);
                diags.push(no_cluster_ip(s, NoClusterIp::Missing, span));
                continue;
            }
            Some(ip) => ip,
        };
        let ip = match ip.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                diags.push(ipv6_unsupported("clusterIP", ip, ip_span));
                continue;
            }
            Err(_) => {
                diags.push(
                    Diagnostic::new(
                        Code::E0318,
                        format!("clusterIP `{ip}` is not an IPv4 address"),
                    )
                    .at(ip_span)
                    .help("write the address as the cluster assigned it, e.g. `10.96.0.10`"),
                );
                continue;
            }
        };
        let class = classify(ip, &options.service_cidrs);
        diags.extend(odd_cluster_ip(s, ip, &class, ip_span));
        if class == AddressClass::Public {
            continue;
        }
        for (i, p) in s.spec.ports.iter().flatten().enumerate() {
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            if !is_tcp(p) {
                // A UDP (or SCTP) port is never an in-mesh destination for TCP.
                continue;
            }
            let port_span = doc.span(path!["spec", "ports", i, "port"]);
            match first.get(&(ip, port)) {
                Some((other, j)) => diags.push(
                    Diagnostic::new(
                        Code::E0321,
                        format!(
                            "Services `{}/{}` and `{}/{}` both claim {ip}:{port}",
                            other.ns(),
                            other.name(),
                            s.ns(),
                            s.name()
                        ),
                    )
                    .at(port_span)
                    .related(
                        inputs.doc(*other).span(path!["spec", "ports", *j, "port"]),
                        "claimed first here",
                    )
                    .help("a clusterIP:port belongs to one Service; fix the clusterIP or the port"),
                ),
                None => {
                    first.insert((ip, port), (s, i));
                    out.push(MeshDestination {
                        ip,
                        port,
                        service: format!("{}/{}", s.ns(), s.name()),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::places;

    #[test]
    fn cluster_ips_and_modes() {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: ns}\nspec: {clusterIP: 10.96.1, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: ns}\nspec: {clusterIP: None}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: c\n  namespace: ns\n  annotations: {flomesh.io/egress-gateway-mode: socks}\nspec: {clusterIP: 'fd00::1'}\n";
        assert_eq!(
            places(yaml),
            ["E0318 4:19", "W0407 9:19", "E0314 16:49", "E0317 17:19"]
        );
    }
}
