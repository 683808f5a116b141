//! Unit tests of the canonical access: CIDR sets, route and host coverage, merging.

use super::*;
use crate::net::parse_cidr;
use crate::pipeline::testing::{enforced, plan};

fn c(s: &str) -> Cidr {
    parse_cidr(s).unwrap()
}

fn cs(v: &[&str]) -> Vec<Cidr> {
    v.iter().map(|s| c(s)).collect()
}

fn route(path: &str, methods: &[&str], headers: &[(&str, &str)]) -> RouteAtom {
    RouteAtom {
        path: path.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The canonical access of `ns/sa` in a mesh with passthrough off.
fn access(yaml: &str, who: &str) -> Access {
    let p = plan(&enforced(yaml));
    Access::of(p.identities.iter().find(|i| i.name == who).unwrap(), false)
}

fn egress(name: &str, spec: &str) -> String {
    format!(
        "kind: Egress\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {{name: {name}, namespace: a}}\nspec:\n  sources: [{{kind: ServiceAccount, name: s, namespace: a}}]\n{spec}---\n"
    )
}

fn described(a: &Access) -> Vec<String> {
    a.atoms
        .iter()
        .map(|t| {
            let dest = match &t.key.dest {
                Dest::AnyAddress => "any".to_owned(),
                Dest::Cidr(c) => c.to_string(),
                Dest::Host(h) => h.to_string(),
            };
            let by: Vec<&str> = t.by.iter().map(|p| p.policy.as_str()).collect();
            format!(
                "{} {dest}:{} {:?} {:?} {by:?}",
                t.key.protocol.as_str(),
                t.key.port,
                t.addresses
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>(),
                t.route.as_ref().map(|r| r.path.as_str()),
            )
        })
        .collect()
}

#[test]
fn cidr_sets_merge_siblings_and_drop_contained_networks() {
    assert_eq!(
        canonical_set(cs(&["10.128.0.0/9", "10.1.0.0/16", "10.0.0.0/9"])),
        cs(&["10.0.0.0/8"])
    );
    assert_eq!(
        canonical_set(cs(&["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])),
        cs(&["10.0.0.0/23", "10.0.2.0/24"])
    );
    // Not siblings: 10.0.1.0/24 and 10.0.2.0/24 have different parents.
    assert_eq!(
        canonical_set(cs(&["10.0.1.0/24", "10.0.2.0/24"])),
        cs(&["10.0.1.0/24", "10.0.2.0/24"])
    );
    // The whole address space is "any address".
    assert!(canonical_set(cs(&["0.0.0.0/1", "128.0.0.0/1"])).is_empty());
    assert_eq!(supernet(c("10.1.2.0/24"), 8), c("10.0.0.0/8"));
    assert!(overlaps(&c("10.0.0.0/8"), &c("10.9.0.0/16")));
    assert!(!overlaps(&c("10.0.0.0/8"), &c("11.0.0.0/8")));
}

#[test]
fn a_route_is_within_another_only_provably() {
    let get = route("/items", &["GET"], &[]);
    assert!(route_within(&get, &route("/items", &["GET", "POST"], &[])));
    assert!(route_within(&get, &route("/items", &[], &[])));
    assert!(!route_within(&route("/items", &[], &[]), &get));
    // A literal path inside the other's regex; not a regex inside a literal.
    assert!(route_within(
        &route("/items/7", &["GET"], &[]),
        &route("/items/[0-9]+", &["GET"], &[])
    ));
    assert!(!route_within(
        &route("/items/[0-9]+", &["GET"], &[]),
        &route("/items/7", &["GET"], &[])
    ));
    // Different regexes are never provably within each other.
    assert!(!route_within(
        &route("/items/[0-9]+", &["GET"], &[]),
        &route("/items/.*", &["GET"], &[])
    ));
    // More headers required: narrower.
    let tenant = route("/items", &["GET"], &[("x-tenant", "^t-")]);
    assert!(route_within(&tenant, &get));
    assert!(!route_within(&get, &tenant));
}

#[test]
fn host_patterns_that_may_cover_a_name() {
    let names = |h: HostPattern| -> Vec<String> {
        covering_patterns(&h)
            .iter()
            .map(|p| p.to_string())
            .collect()
    };
    assert_eq!(
        names(HostPattern::Exact("a.b.example.com".into())),
        [
            "a.b.example.com",
            "*.b.example.com",
            "*.example.com",
            "*.com"
        ]
    );
    assert_eq!(
        names(HostPattern::Wildcard("b.example.com".into())),
        ["*.b.example.com", "*.example.com", "*.com"]
    );
}

#[test]
fn equal_tuples_merge_and_covered_ones_drop() {
    let yaml = egress(
        "wild",
        "  hosts: [\"*.example.com\"]\n  ports: [{number: 443, protocol: https}]\n",
    ) + &egress(
        "api",
        "  hosts: [api.example.com, other.org]\n  ports: [{number: 443, protocol: https}]\n",
    ) + &egress(
        "again",
        "  hosts: [other.org]\n  ports: [{number: 443, protocol: https}]\n",
    ) + &egress(
        "db-low",
        "  ipAddresses: [10.0.0.0/9]\n  ports: [{number: 5432, protocol: tcp}]\n",
    ) + &egress(
        "db-high",
        "  ipAddresses: [10.128.0.0/9]\n  ports: [{number: 5432, protocol: tcp-server-first}]\n",
    );
    assert_eq!(
        described(&access(&yaml, "a/s")),
        [
            "https other.org:443 [] None [\"a/again\", \"a/api\"]",
            "https *.example.com:443 [] None [\"a/wild\"]",
            "tcp 10.0.0.0/8:5432 [] None [\"a/db-high\", \"a/db-low\"]",
        ]
    );
}

#[test]
fn every_address_covers_narrower_addresses() {
    let yaml = egress(
        "open",
        "  ipAddresses: [0.0.0.0/0]\n  ports: [{number: 22, protocol: tcp}]\n",
    ) + &egress(
        "narrow",
        "  ipAddresses: [10.0.0.0/8]\n  ports: [{number: 22, protocol: tcp}]\n",
    );
    // 0.0.0.0/0 covers the narrower rule; it stays apart from any address (no
    // `ipAddresses`): through a gateway it also names the refused ranges.
    assert_eq!(
        described(&access(&yaml, "a/s")),
        ["tcp 0.0.0.0/0:22 [] None [\"a/narrow\", \"a/open\"]"]
    );
}

fn atom(protocol: ProtocolClass, dest: Dest, addresses: &[&str]) -> Atom {
    Atom {
        key: Key {
            port: 443,
            protocol,
            dest,
        },
        addresses: cs(addresses),
        route: None,
        by: Vec::new(),
    }
}

#[test]
fn a_host_is_covered_by_any_address_but_not_by_a_cidr() {
    let host = || Dest::Host(HostPattern::Exact("api.example.com".into()));
    let side = |atoms: Vec<Atom>| Access::indexed(atoms, false);
    let cidr = side(vec![atom(
        ProtocolClass::Https,
        Dest::Cidr(c("10.0.0.0/8")),
        &[],
    )]);
    // A host rule dials the name wherever it resolves: a CIDR rule does not reach that.
    assert!(
        cidr.covering(
            &atom(ProtocolClass::Https, host(), &["10.0.0.0/8"]),
            &|_| false
        )
        .is_none()
    );
    let tcp_any = side(vec![atom(ProtocolClass::Tcp, Dest::AnyAddress, &[])]);
    assert!(
        tcp_any
            .covering(&atom(ProtocolClass::Https, host(), &[]), &|_| false)
            .is_some()
    );
    // https does not cover tcp.
    let https_any = side(vec![atom(ProtocolClass::Https, Dest::AnyAddress, &[])]);
    assert!(
        https_any
            .covering(
                &atom(ProtocolClass::Tcp, Dest::Cidr(c("10.0.0.0/8")), &[]),
                &|_| false
            )
            .is_none()
    );
}

#[test]
fn a_host_restriction_is_covered_by_the_union_of_other_tuples() {
    let exact = Dest::Host(HostPattern::Exact("api.example.com".into()));
    let wild = Dest::Host(HostPattern::Wildcard("example.com".into()));
    let side = Access::indexed(
        vec![
            atom(ProtocolClass::Https, exact.clone(), &["10.0.0.0/9"]),
            atom(ProtocolClass::Https, wild, &["10.128.0.0/9"]),
        ],
        false,
    );
    let wanted = atom(ProtocolClass::Https, exact.clone(), &["10.0.0.0/8"]);
    assert_eq!(side.covering(&wanted, &|_| false), Some(vec![0, 1]));
    let wider = atom(ProtocolClass::Https, exact, &["0.0.0.0/1"]);
    assert!(side.covering(&wider, &|_| false).is_none());
}

thread_local! {
    /// How many times `route_within` ran on this thread.
    pub static ROUTE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[test]
fn literal_routes_are_found_by_value_not_compared_pairwise() {
    // One host, 2,000 literal routes: each route's coverage looks at the routes of its own
    // literal (and regexes), not at all 2,000 (a regex compiled per pair took minutes).
    let mut routes = String::from(
        "kind: HTTPRouteGroup\napiVersion: specs.smi-spec.io/v1alpha4\nmetadata: {name: r, namespace: a}\nspec:\n  matches:\n",
    );
    for i in 0..2000 {
        routes.push_str(&format!(
            "  - {{name: r{i}, pathRegex: /item{i}, methods: [GET]}}\n"
        ));
    }
    routes.push_str("  - {name: any, pathRegex: /other/.*}\n---\n");
    let spec = "  hosts: [api.example.com]\n  ports: [{number: 80, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: r}]\n";
    ROUTE_CHECKS.with(|n| n.set(0));
    let a = access(&format!("{routes}{}", egress("p", spec)), "a/s");
    assert_eq!(a.atoms.len(), 2001);
    let checks = ROUTE_CHECKS.with(|n| n.get());
    assert!(
        checks <= 3 * 2001,
        "{checks} route comparisons for 2,001 routes"
    );
    // The regex still covers a literal inside it, and not one outside.
    let probe = |path: &str| Atom {
        route: Some(route(path, &["GET"], &[])),
        ..a.atoms[0].clone()
    };
    assert!(a.covering(&probe("/other/x"), &|_| false).is_some());
    assert!(a.covering(&probe("/item7"), &|_| false).is_some());
    assert!(a.covering(&probe("/item7x"), &|_| false).is_none());
}
