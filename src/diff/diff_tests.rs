//! Unit tests of the comparison: inline YAML for each side, the entries it gives.

use super::*;
use crate::diff::render::{render_human, summary_text};
use crate::pipeline::testing::{enforced, plan};

const PASSTHROUGH: &str = "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec: {traffic: {enableEgress: true}}\n---\n";

const GATEWAY: &str = "apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {name: gw, namespace: fsm}\nspec:\n  global: [{service: egress, namespace: fsm}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: egress, namespace: fsm}\nspec: {clusterIP: 10.96.0.30, ports: [{port: 1080}]}\n---\n";

fn egress(name: &str, spec: &str) -> String {
    format!(
        "kind: Egress\napiVersion: policy.flomesh.io/v1alpha1\nmetadata: {{name: {name}, namespace: a}}\nspec:\n  sources: [{{kind: ServiceAccount, name: s, namespace: a}}]\n{spec}---\n"
    )
}

fn tcp(name: &str, cidrs: &str, port: u16) -> String {
    egress(
        name,
        &format!("  ipAddresses: [{cidrs}]\n  ports: [{{number: {port}, protocol: tcp}}]\n"),
    )
}

fn https(name: &str, hosts: &str) -> String {
    egress(
        name,
        &format!("  hosts: [{hosts}]\n  ports: [{{number: 443, protocol: https}}]\n"),
    )
}

/// `effect change destination` of every access entry.
fn entries(d: &Diff) -> Vec<String> {
    d.identities
        .iter()
        .flat_map(|i| &i.entries)
        .map(|e| {
            let line = super::render::entry_line(e);
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn diff_of(base: &str, head: &str) -> Diff {
    diff(&plan(base), &plan(head))
}

#[test]
fn a_side_against_itself_is_empty_and_renaming_is_no_change() {
    let base = enforced(&https("one", "api.example.com, \"*.example.org\""));
    assert!(diff_of(&base, &base).is_empty());
    let head = enforced(&https("two", "\"*.example.org\", API.example.com"));
    let d = diff_of(&base, &head);
    assert!(d.is_empty(), "{}", render_human(&d));
    assert_eq!(summary_text(&d), "no access change");
}

#[test]
fn a_wildcard_covers_what_was_allowed_before() {
    let base = enforced(&(https("api", "api.example.com") + &https("www", "www.example.com")));
    let head = enforced(&(https("api", "api.example.com") + &https("wild", "\"*.example.com\"")));
    let d = diff_of(&base, &head);
    assert_eq!(entries(&d), ["widens added https *.example.com:443"]);
    let e = &d.identities[0].entries[0];
    let covered: Vec<String> = e
        .covers
        .iter()
        .map(|a| format!("{:?}", a.key.dest))
        .collect();
    // The head's own api.example.com is redundant there: both were allowed before.
    assert_eq!(covered.len(), 2, "{covered:?}");
    assert!(e.still.is_empty());
    assert!(d.widens());
}

#[test]
fn a_changed_address_restriction_is_a_change_of_the_same_destination() {
    let with = |cidrs: &str| {
        enforced(&egress(
            "api",
            &format!(
                "  hosts: [api.example.com]\n  ipAddresses: [{cidrs}]\n  ports: [{{number: 443, protocol: https}}]\n"
            ),
        ))
    };
    let d = diff_of(&with("10.0.0.0/16"), &with("10.0.0.0/8"));
    assert_eq!(entries(&d), ["widens changed https api.example.com:443"]);
    let d = diff_of(&with("10.0.0.0/8"), &with("10.0.0.0/16"));
    assert_eq!(entries(&d), ["narrows changed https api.example.com:443"]);
    // Disjoint: not provably narrower, so it widens.
    let d = diff_of(&with("10.0.0.0/16"), &with("192.168.0.0/16"));
    assert_eq!(entries(&d), ["widens changed https api.example.com:443"]);
    // Dropping the restriction widens; the same addresses split in two do not change.
    let d = diff_of(
        &with("10.0.0.0/16"),
        &enforced(&https("api", "api.example.com")),
    );
    assert_eq!(entries(&d), ["widens changed https api.example.com:443"]);
    assert!(diff_of(&with("10.0.0.0/16"), &with("10.0.0.0/17, 10.0.128.0/17")).is_empty());
}

#[test]
fn tcp_on_a_port_covers_https_there_by_address_only() {
    // Raw tcp to any address reaches whatever an https host rule did.
    let base = enforced(&tcp("raw", "0.0.0.0/0", 443));
    let head = enforced(&https("api", "api.example.com"));
    let d = diff_of(&base, &head);
    assert_eq!(entries(&d), ["narrows removed tcp 0.0.0.0/0 port 443"]);
    assert_eq!(d.identities[0].entries[0].still.len(), 1);
    // A CIDR does not cover a host rule: that dials the name, wherever it resolves.
    let base = enforced(&tcp("raw", "10.0.0.0/8", 443));
    let d = diff_of(&base, &head);
    assert_eq!(
        entries(&d),
        [
            "widens added https api.example.com:443",
            "narrows removed tcp 10.0.0.0/8 port 443"
        ]
    );
}

#[test]
fn under_passthrough_rules_change_nothing_unless_a_gateway_refuses_without_them() {
    let base = format!("{PASSTHROUGH}{}", https("api", "api.example.com"));
    let head = format!("{base}{}", tcp("db", "10.1.0.0/16", 5432));
    let d = diff_of(&base, &head);
    assert_eq!(entries(&d), ["neutral added tcp 10.1.0.0/16 port 5432"]);
    assert!(!d.widens() && d.all_neutral());
    // With a gateway, passthrough does not reach cloud metadata; a policy naming it does.
    let base = format!("{PASSTHROUGH}{GATEWAY}{}", https("api", "api.example.com"));
    let head = format!(
        "{base}{}{}",
        tcp("metadata", "169.254.169.254/32", 80),
        tcp("db", "10.1.0.0/16", 5432)
    );
    let d = diff_of(&base, &head);
    assert_eq!(
        entries(&d),
        [
            "widens added tcp 169.254.169.254/32 port 80",
            "neutral added tcp 10.1.0.0/16 port 5432"
        ]
    );
}

#[test]
fn mesh_wide_entries_and_the_summary() {
    let base = enforced(&https("api", "api.example.com"));
    let head = format!("{PASSTHROUGH}{GATEWAY}{}", https("api", "api.example.com"));
    let d = diff_of(&base, &head);
    let what: Vec<(Effect, &MeshWide)> = d.mesh.iter().map(|e| (e.effect, &e.what)).collect();
    assert!(
        matches!(
            what[0],
            (Effect::Widens, MeshWide::Passthrough { head: true })
        ),
        "{what:?}"
    );
    assert!(
        matches!(what[1], (Effect::Narrows, MeshWide::Gateway { .. })),
        "{what:?}"
    );
    assert_eq!(
        summary_text(&d),
        "passthrough on: every identity may now reach anything; 1 mesh-wide change"
    );
    let s = d.summary();
    assert_eq!((s.gaining, s.losing, s.mesh), (0, 0, 1));
}

#[test]
fn identities_that_appear_are_compared_with_the_default_config() {
    let base =
        enforced("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s, namespace: a}\n");
    let head = enforced(&https("api", "api.example.com"));
    let d = diff_of(&base, &head);
    // The ServiceAccount of the base and the policy's source in the head are one identity.
    assert_eq!(entries(&d), ["widens added https api.example.com:443"]);
    assert_eq!(d.identities[0].presence, Presence::Both);
    let head = enforced(&https("api", "api.example.com").replace("name: s,", "name: t,"));
    let d = diff_of(&base, &head);
    let who: Vec<(&str, Presence, usize)> = d
        .identities
        .iter()
        .map(|i| (i.name.as_str(), i.presence, i.entries.len()))
        .collect();
    assert_eq!(who, [("a/t", Presence::New, 1), ("a/s", Presence::Gone, 0)]);
    assert_eq!(
        summary_text(&d),
        "1 identity gains access to 1 destination; 1 new identity, 1 identity gone"
    );
}

#[test]
fn a_changed_destination_shows_only_the_constraints_that_differ() {
    let http = |methods: &str| {
        enforced(&format!(
            "{}apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {{name: g, namespace: a}}\nspec:\n  matches:\n  - {{name: get, pathRegex: /get, methods: [{methods}]}}\n  - {{name: status, pathRegex: \"/status/[0-9]+\"}}\n",
            egress(
                "web",
                "  hosts: [httpbin.org]\n  ports: [{number: 80, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: g}]\n"
            )
        ))
    };
    let d = diff_of(&http("GET"), &http("GET, POST"));
    assert_eq!(entries(&d), ["widens changed http httpbin.org:80"]);
    let e = &d.identities[0].entries[0];
    assert_eq!((e.base.len(), e.head.len()), (2, 2));
    let lines: Vec<String> = super::render::access_details(e)
        .into_iter()
        .map(|l| l.split(" — ").next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(lines, ["base: GET /get", "head: GET,POST /get"]);
}

#[test]
fn markdown_cells_escape_pipes() {
    let http = |path: &str| {
        enforced(&format!(
            "{}apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {{name: g, namespace: a}}\nspec:\n  matches:\n  - {{name: r, pathRegex: \"{path}\"}}\n",
            egress(
                "web",
                "  hosts: [httpbin.org]\n  ports: [{number: 80, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: g}]\n"
            )
        ))
    };
    let d = diff_of(&http("/(a|b)"), &http("/(a|b|c)"));
    let md = super::render::markdown::render_markdown(&d);
    let row = md.lines().find(|l| l.contains("httpbin.org")).unwrap();
    assert!(row.contains("`any method /(a\\|b\\|c)`"), "{row}");
    // Six cell borders, however many pipes the regexes hold.
    assert_eq!(row.replace("\\|", "").matches('|').count(), 6, "{row}");
}

#[test]
fn dns_narrows_only_to_a_subset_of_named_resolvers() {
    use crate::model::DnsResolvers;
    let effect = |base: DnsResolvers, head: DnsResolvers| {
        let (mut b, mut h) = (plan(PASSTHROUGH), plan(PASSTHROUGH));
        (b.dns, h.dns) = (base, head);
        let d = diff(&b, &h);
        assert_eq!(d.mesh.len(), 1, "{d:?}");
        d.mesh[0].effect
    };
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
    let named = |v: &[&str]| DnsResolvers::Flag(v.iter().map(|s| ip(s)).collect());
    assert_eq!(
        effect(named(&["10.0.0.1", "10.0.0.2"]), named(&["10.0.0.2"])),
        Effect::Narrows
    );
    assert_eq!(
        effect(named(&["10.0.0.2"]), named(&["10.0.0.1", "10.0.0.2"])),
        Effect::Widens
    );
    assert_eq!(
        effect(
            DnsResolvers::KubeDns(ip("10.0.0.1")),
            DnsResolvers::KubeDns(ip("10.0.0.2"))
        ),
        Effect::Widens
    );
    // The pod's resolv.conf may name any address: a change to or from it widens.
    assert_eq!(
        effect(DnsResolvers::PodResolvConf, named(&["10.0.0.1"])),
        Effect::Widens
    );
    assert_eq!(
        effect(
            DnsResolvers::KubeDns(ip("10.0.0.1")),
            DnsResolvers::PodResolvConf
        ),
        Effect::Widens
    );
}
