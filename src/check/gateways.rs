//! The global egress gateways (`EgressGateway.spec.global`), resolved against their Services
//! and the MeshConfig: port, listen port, mode and weight of each.

use crate::check::names::{NameRule, check_reference};
use crate::diagnostics::{Code, Diagnostic};
use crate::load::kinds::{IntOrString, ServiceSpec};
use crate::load::loaded::{Loaded, Res};
use crate::model::{AuthMode, GatewayAuth, GatewayMode, GatewayTarget, MODE_ANNOTATION, Settings};
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

/// How the gateways authenticate (`--gateway-auth`): E0324 for a ServiceAccount that is a
/// gateway's own (a ServiceAccount document, or an Egress source), W0414 under `header`, N0002
/// under `mtls` (what the cluster needs), once per EgressGateway with global entries.
pub fn check_gateway_auth(
    inputs: &Loaded,
    gateways: &[GatewayTarget],
    auth: &GatewayAuth,
    diags: &mut Vec<Diagnostic>,
) {
    let own = |ns: &str, name: &str| {
        gateways
            .iter()
            .any(|g| g.namespace == ns && g.service == name)
    };
    let e0324 = |ns: &str, name: &str| {
        Diagnostic::new(
            Code::E0324,
            format!("ServiceAccount `{ns}/{name}` is the egress gateway's own: a workload running as it would hold the gateway's identity"),
        )
        .help("the gateway runs as the ServiceAccount named after its Service (egressc's kustomize base creates it); give the workload another ServiceAccount")
    };
    for sa in inputs
        .service_accounts
        .iter()
        .filter(|sa| own(sa.ns(), sa.name()))
    {
        diags.push(e0324(sa.ns(), sa.name()).at(inputs.doc(sa).span(path!["metadata", "name"])));
    }
    for e in &inputs.egresses {
        for (i, s) in e.spec.sources.iter().enumerate() {
            if own(&s.namespace, &s.name) {
                let at = inputs.doc(e).span(path!["spec", "sources", i, "name"]);
                diags.push(e0324(&s.namespace, &s.name).at(at));
            }
        }
    }
    let Some(g) = inputs.gateways.iter().find(|g| !g.spec.global().is_empty()) else {
        return;
    };
    let at = inputs.doc(g).span(path!["spec", "global"]);
    diags.push(match auth.mode {
        AuthMode::Header => Diagnostic::new(
            Code::W0414,
            "under `--gateway-auth header` the gateway applies the list of whatever identity a tunnel's `egressc-identity` header names, and gives SOCKS5 every identity's list: the identity is a label, not authentication".to_owned(),
        )
        .help("install cert-manager's csi-driver-spiffe and build with `--gateway-auth mtls` (the default): the gateway then reads the identity from each sidecar's certificate"),
        AuthMode::Mtls => Diagnostic::new(
            Code::N0002,
            format!("the gateway authenticates sidecars by their SPIFFE certificates (trust domain `{}`): the cluster needs cert-manager and csi-driver-spiffe with its approver, or every tunnel through the gateway fails", auth.trust_domain),
        )
        .help("see the README's \"Deploy\" section; `--gateway-auth header` keeps the previous behaviour (identity by header) for clusters without them"),
    }.at(at));
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
        assert_eq!(places(GATEWAY), ["N0002 6:5", "W0406 6:15"]);
        let service = "---\napiVersion: v1\nkind: Service\nmetadata: {name: gw, namespace: fsm}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 1080}]}\n";
        assert_eq!(
            places(&format!("{GATEWAY}{service}")),
            ["N0002 6:5", "W0411 10:18"]
        );
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

    /// The codes of a check of `yaml` under `mode`.
    fn codes(yaml: &str, mode: crate::model::AuthMode) -> Vec<String> {
        let mut sources = crate::input::source::Sources::default();
        let file = crate::input::source::SourceFile::new("t.yaml".into(), yaml.into(), true);
        sources.add(file);
        let mut diags = Vec::new();
        let inputs = crate::load::load(&sources, &mut diags);
        let auth = crate::model::GatewayAuth {
            mode,
            ..Default::default()
        };
        let options = crate::model::CheckOptions {
            auth,
            ..Default::default()
        };
        let (_, more) = crate::check::check(&inputs, &options);
        more.iter().map(|d| d.code.to_string()).collect()
    }

    #[test]
    fn the_gateways_own_service_account_is_refused_and_the_mode_is_said() {
        use crate::model::AuthMode::{Header, Mtls};
        let svc = "---\napiVersion: v1\nkind: Service\nmetadata: {name: gw, namespace: fsm}\nspec: {clusterIP: 10.96.0.9, selector: {app: gw}, ports: [{port: 1080}]}\n";
        let base = format!("{GATEWAY}{svc}");
        assert!(codes(&base, Mtls).contains(&"N0002".to_owned()));
        assert!(!codes(&base, Mtls).contains(&"W0414".to_owned()));
        assert!(codes(&base, Header).contains(&"W0414".to_owned()));
        let sa = format!(
            "{base}---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: gw, namespace: fsm}}\n"
        );
        assert!(codes(&sa, Mtls).contains(&"E0324".to_owned()));
        let source = format!(
            "{base}---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: fsm}}\nspec:\n  sources: [{{kind: ServiceAccount, name: gw, namespace: fsm}}]\n  hosts: [a.example]\n  ports: [{{number: 443, protocol: https}}]\n"
        );
        assert!(
            places(&source).iter().any(|p| p.starts_with("E0324 ")),
            "{:?}",
            places(&source)
        );
        // Another namespace's ServiceAccount of the same name is not the gateway's.
        let other = format!(
            "{base}---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: gw, namespace: app}}\n"
        );
        assert!(!codes(&other, Mtls).contains(&"E0324".to_owned()));
        // No gateway: nothing said.
        assert!(
            !codes(svc, Mtls)
                .iter()
                .any(|c| c == "N0002" || c == "W0414")
        );
    }
}
