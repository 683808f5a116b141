//! The global egress gateways (`EgressGateway.spec.global`), resolved against their Services
//! and the MeshConfig: port, listen port, mode and weight of each.

use crate::check::names::{NameRule, check_reference};
use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::{IntOrString, ServiceSpec};
use crate::load::loaded::{Loaded, Res};
use crate::model::{GatewayMode, GatewayTarget, MODE_ANNOTATION, Settings};
use crate::path;
use std::collections::HashMap;

/// The global egress gateways, resolved against their Services and the MeshConfig.
pub fn check_gateways(
    inputs: &Loaded,
    settings: &Settings,
    diags: &mut Vec<Diagnostic>,
) -> Vec<GatewayTarget> {
    let services: HashMap<(&str, &str), &Res<ServiceSpec>> = inputs
        .services
        .iter()
        .map(|s| ((s.ns(), s.name()), s))
        .collect();
    let mut out = Vec::new();
    let mut first_global = true;
    for g in &inputs.gateways {
        let doc = inputs.doc(g);
        let global = g.spec.global();
        for (i, b) in global.iter().enumerate() {
            check_reference(
                "service name",
                (
                    &b.service,
                    NameRule::ServiceName,
                    doc.span(path!["spec", "global", i, "service"]),
                ),
                (
                    &b.namespace,
                    doc.span(path!["spec", "global", i, "namespace"]),
                ),
                diags,
            );
            let svc = services.get(&(b.namespace.as_str(), b.service.as_str()));
            if svc.is_none() {
                diags.push(
                    Diagnostic::new(
                        Code::W0406,
                        format!(
                            "gateway Service `{}/{}` is not in the inputs: its DNS name `{}.{}.svc.cluster.local` and the default port will be used",
                            b.namespace, b.service, b.service, b.namespace
                        ),
                    )
                    .at(doc.span(path!["spec", "global", i, "service"]))
                    .help("add the gateway's Service manifest to the inputs so its port and mode annotation are known"),
                );
            }
            if let Some(s) = svc
                && s.spec.selector.as_ref().is_none_or(|m| m.is_empty())
            {
                diags.push(
                    Diagnostic::new(
                        Code::W0411,
                        format!(
                            "gateway Service `{}/{}` has no selector: it would not send traffic to the gateway Deployment of `kubernetes/`",
                            b.namespace, b.service
                        ),
                    )
                    .at(inputs.doc(s).span(path!["metadata", "name"]))
                    .help("give the Service a `selector` (for example `app: fsm-egress-gateway`); the Deployment egressc writes gets those labels"),
                );
            }
            if !first_global {
                // A second EgressGateway with global entries is an error (E0313).
                continue;
            }
            let first_port = svc.and_then(|s| s.spec.ports.as_ref()?.first());
            let port = first_port
                .and_then(|p| u16::try_from(p.port).ok())
                .unwrap_or(settings.gateway_port);
            let listen_port = match first_port.and_then(|p| p.target_port.as_ref()) {
                Some(IntOrString::Int(i)) => u16::try_from(*i).unwrap_or(port),
                Some(IntOrString::Str(n)) => named(n, svc.map(|s| inputs.doc(s)), port, diags),
                None => port,
            };
            let mode = svc
                .and_then(|s| s.meta.annotation(MODE_ANNOTATION))
                .and_then(GatewayMode::parse)
                .unwrap_or(settings.gateway_mode);
            let weight = match b.weight {
                Some(w) if w > 0 => u32::try_from(w).unwrap_or(u32::MAX),
                _ => 100,
            };
            out.push(GatewayTarget {
                service: b.service.clone(),
                namespace: b.namespace.clone(),
                weight,
                port,
                listen_port,
                mode,
                service_in_inputs: svc.is_some(),
                selector: svc
                    .and_then(|s| s.spec.selector.clone())
                    .unwrap_or_default(),
            });
        }
        if !global.is_empty() {
            first_global = false;
        }
    }
    out
}

/// E0323: a gateway Service whose targetPort is a name. The generated gateway container
/// names no port, so the name would resolve to nothing, and guessing a number is wrong.
fn named(
    name: &str,
    doc: Option<&crate::load::loaded::Document>,
    port: u16,
    diags: &mut Vec<Diagnostic>,
) -> u16 {
    let d = Diagnostic::new(
        Code::E0323,
        format!("the gateway Service's targetPort is the name `{name}`"),
    )
    .help("give the port number the gateway listens on (`targetPort: 1080`)");
    diags.push(match doc {
        Some(doc) => d.at(doc.span(path!["spec", "ports", 0, "targetPort"])),
        None => d,
    });
    port
}

#[cfg(test)]
mod tests {
    use crate::model::GatewayMode;
    use crate::pipeline::testing::{places, plan};

    const GATEWAY: &str = "apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {name: g, namespace: fsm}\nspec:\n  global:\n  - {service: gw, namespace: fsm, weight: 0}\n";

    #[test]
    fn a_gateway_service_should_be_in_the_inputs_with_a_selector() {
        assert_eq!(places(GATEWAY), ["W0406 6:15"]);
        let service = "---\napiVersion: v1\nkind: Service\nmetadata: {name: gw, namespace: fsm}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 1080}]}\n";
        assert_eq!(places(&format!("{GATEWAY}{service}")), ["W0411 10:18"]);
    }

    #[test]
    fn port_mode_and_weight_come_from_the_service() {
        let service = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: gw\n  namespace: fsm\n  annotations: {flomesh.io/egress-gateway-mode: socks5}\nspec: {clusterIP: 10.96.0.10, selector: {app: gw}, ports: [{port: 1090, targetPort: 1091}]}\n";
        let p = plan(&format!("{GATEWAY}{service}"));
        let g = &p.gateways[0];
        assert_eq!(
            (g.port, g.listen_port, g.mode, g.weight),
            (1090, 1091, GatewayMode::Socks5, 100)
        );
        let p = plan(GATEWAY);
        let g = &p.gateways[0];
        assert_eq!(
            (g.port, g.listen_port, g.mode),
            (1080, 1080, GatewayMode::Http2Tunnel)
        );
    }
}
