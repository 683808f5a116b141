//! Unit tests of the evaluator, and the shared decision vectors.

use super::*;
use crate::model::Identity;
use crate::pipeline::testing::{enforced, plan};

fn http_query(host: &str, method: &str, path: &str) -> Query {
    Query {
        identity: Identity::parse("ns/a").unwrap(),
        dest: Dest::Name(host.into()),
        port: 80,
        sni: None,
        http: Some(HttpRequest::new(
            None,
            Some(method.into()),
            Some(path.into()),
            Vec::new(),
        )),
    }
}

#[test]
fn http_routes_methods_and_passthrough_off() {
    let p = plan(&enforced(
        "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: [{kind: ServiceAccount, name: a, namespace: ns}]\n  hosts: ['*.example.com']\n  ports: [{number: 80, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: g}]\n---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: ns}\nspec:\n  matches: [{name: get, pathRegex: /get, methods: [GET]}]\n",
    ));
    let v = evaluate(&p, &http_query("api.example.com", "GET", "/get?x=1"));
    assert_eq!(v.verdict, Outcome::Allowed, "{v:?}");
    assert_eq!(v.target.as_deref(), Some("api.example.com:80"));
    for (host, method, path) in [
        ("api.example.com", "POST", "/get"),
        ("api.example.com", "GET", "/get/../admin"),
        ("example.com", "GET", "/get"),
    ] {
        let v = evaluate(&p, &http_query(host, method, path));
        assert_eq!(v.verdict, Outcome::Denied, "{host} {method} {path}: {v:?}");
    }
    let mut other = http_query("api.example.com", "GET", "/get");
    other.identity = Identity::parse("ns/b").unwrap();
    let v = evaluate(&p, &other);
    assert_eq!(v.verdict, Outcome::Denied);
    assert_eq!(v.other_identities.len(), 1, "{v:?}");
}

#[test]
fn destinations_parse_strictly() {
    assert!(parse_destination("10.0.0.1:443").is_ok());
    assert!(parse_destination("api.example.com:80").is_ok());
    for bad in ["api.example.com", "a:0", "a:99999", "*.x.com:80", "a b:80"] {
        assert!(parse_destination(bad).is_err(), "{bad}");
    }
}

const GATEWAY: &str = "apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {name: gw, namespace: fsm}\nspec:\n  global: [{service: egress, namespace: fsm}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: egress, namespace: fsm}\nspec:\n  clusterIP: 10.96.0.30\n  ports: [{port: 1080}]\n---\napiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: [{kind: ServiceAccount, name: a, namespace: ns}]\n  ipAddresses: [127.0.0.16/30]\n  ports: [{number: 7000, protocol: tcp}]\n";

fn tcp_query(identity: &str, to: &str) -> Query {
    let (dest, port) = parse_destination(to).unwrap();
    Query {
        identity: Identity::parse(identity).unwrap(),
        dest,
        port,
        sni: None,
        http: None,
    }
}

#[test]
fn the_gateway_service_is_denied_to_workloads_and_never_in_mesh() {
    let p = plan(&enforced(GATEWAY));
    assert!(p.mesh.is_empty(), "{:?}", p.mesh);
    for to in [
        "10.96.0.30:1080",
        "10.96.0.30:22",
        "egress.fsm.svc.cluster.local:1080",
    ] {
        let v = evaluate(&p, &tcp_query("ns/a", to));
        assert_eq!(v.verdict, Outcome::Denied, "{to}: {v:?}");
        assert!(v.reason.contains("egress gateway fsm/egress"), "{v:?}");
    }
}

#[test]
fn the_gateway_leg_refuses_loopback_unless_a_cidr_names_it() {
    // Passthrough on: through the gateway, any target but the refused ones.
    let passthrough = GATEWAY.to_owned()
        + "---\napiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec: {traffic: {enableEgress: true}}\n";
    let p = plan(&passthrough);
    let v = evaluate(&p, &tcp_query("ns/a", "127.0.0.70:7500"));
    assert_eq!(v.verdict, Outcome::Denied, "{v:?}");
    assert!(v.reason.contains("loopback"), "{v:?}");
    let v = evaluate(&p, &tcp_query("ns/a", "169.254.169.254:80"));
    assert!(v.reason.contains("link-local"), "{v:?}");
    assert_eq!(
        evaluate(&p, &tcp_query("ns/a", "10.1.2.3:80")).verdict,
        Outcome::Passthrough
    );
    // A CIDR that names a loopback address admits it.
    let v = evaluate(&p, &tcp_query("ns/a", "127.0.0.17:7000"));
    assert_eq!(v.verdict, Outcome::Allowed, "{v:?}");
    // Under mtls both modes get the identity's own list.
    let id = p.identity(&Identity::parse("ns/b").unwrap());
    assert!(gateway::admits(&p, id, crate::model::GatewayMode::Socks5, "127.0.0.17:7000").is_err());
    // Under header SOCKS5 gets the union, http2tunnel the identity's own list.
    let mut header = p.clone();
    header.auth.mode = crate::model::AuthMode::Header;
    assert!(
        gateway::admits(
            &header,
            id,
            crate::model::GatewayMode::Socks5,
            "127.0.0.17:7000"
        )
        .is_ok()
    );
    assert!(
        gateway::admits(
            &p,
            id,
            crate::model::GatewayMode::Http2Tunnel,
            "127.0.0.17:7000"
        )
        .is_err()
    );
    assert!(gateway::admits(&p, id, crate::model::GatewayMode::Socks5, "x\0.y:80").is_err());
}

#[test]
fn ambiguous_framing_is_refused_before_any_rule() {
    let p = plan(&enforced(
        "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: [{kind: ServiceAccount, name: a, namespace: ns}]\n  hosts: [web.test]\n  ports: [{number: 80, protocol: http}]\n",
    ));
    let mut q = http_query("web.test", "GET", "/");
    assert_eq!(evaluate(&p, &q).verdict, Outcome::Allowed);
    q.http.as_mut().unwrap().headers = vec![("transfer-encoding ".into(), "chunked".into())];
    let v = evaluate(&p, &q);
    assert_eq!(v.verdict, Outcome::Denied, "{v:?}");
    assert_eq!(v.reason, "request refused: a header name is not a token");
    let mut h2 = http_query("web.test", "GET", "/");
    h2.http.as_mut().unwrap().authority = Some("web.test".into());
    let v = evaluate(&p, &h2);
    assert_eq!(
        v.reason,
        "request refused: cleartext HTTP/2 is refused on http ports"
    );
}

#[test]
fn an_http_request_on_an_https_port_is_closed_as_the_sidecar_closes_it() {
    // The sidecar reads a TLS ClientHello on a port an https rule decides and closes other
    // bytes, passthrough or not: explain used to call the request allowed.
    for passthrough in [false, true] {
        let mesh = enforced(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: ns}\nspec:\n  sources: [{kind: ServiceAccount, name: a, namespace: ns}]\n  hosts: [api.example.com]\n  ports: [{number: 443, protocol: https}]\n",
        )
        .replace("enableEgress: false", &format!("enableEgress: {passthrough}"));
        let p = plan(&mesh);
        let mut q = http_query("api.example.com", "GET", "/");
        q.port = 443;
        let v = evaluate(&p, &q);
        assert_eq!(v.verdict, Outcome::Denied, "{v:?}");
        assert!(v.reason.contains("not a TLS ClientHello"), "{}", v.reason);
        q.http = None;
        q.sni = Some("api.example.com".into());
        assert_eq!(evaluate(&p, &q).verdict, Outcome::Allowed);
    }
}

#[test]
fn audit_mode_relaxes_only_no_rule_matched() {
    let sa = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  namespace: ns\n  annotations: {egressc.io/enforcement: audit}\n";
    let p = plan(&enforced(sa));
    let v = evaluate(&p, &tcp_query("ns/a", "203.0.113.9:5432"));
    assert_eq!(v.verdict, Outcome::Audit, "{v:?}");
    assert!(
        v.reason
            .starts_with("allowed in audit mode: would be denied because"),
        "{v:?}"
    );
    assert!(v.verdict.is_allowed());
    // Never to the pod itself, as passthrough.
    assert_eq!(
        evaluate(&p, &tcp_query("ns/a", "127.0.0.9:80")).verdict,
        Outcome::Denied
    );
    // Another identity is enforced.
    assert_eq!(
        evaluate(&p, &tcp_query("ns/b", "203.0.113.9:5432")).verdict,
        Outcome::Denied
    );
    // Through a gateway: its refused ranges stay refused, anything else is admitted.
    let p = plan(&enforced(&(GATEWAY.to_owned() + sa)));
    assert_eq!(
        evaluate(&p, &tcp_query("ns/a", "203.0.113.9:5432")).verdict,
        Outcome::Audit
    );
    let v = evaluate(&p, &tcp_query("ns/a", "169.254.169.254:80"));
    assert_eq!(v.verdict, Outcome::Denied, "{v:?}");
    assert!(v.reason.contains("link-local"), "{v:?}");
}
