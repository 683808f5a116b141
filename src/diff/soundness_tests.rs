//! The soundness of `diff`, by property: for generated pairs of meshes (mutations of one
//! another: CIDRs, hosts, wildcards, routes, gateway presence and mode, passthrough,
//! exclusion and inclusion lists, sources) and a fixed set of probe connections, whenever a
//! probe's `explain` verdict goes from denied to allowed, `diff` reports a widening for that
//! identity (or a mesh-wide one), never "no access change". `EGRESSC_DIFF_PAIRS=N` runs N
//! pairs (default 1,000), `EGRESSC_DIFF_SEED=S` starts from another seed; both are printed.

use crate::diff::{Effect, diff};
use crate::model::Identity;
use crate::pipeline::testing::try_plan;
use crate::plan::Plan;
use crate::query::eval::evaluate;
use crate::query::question::{Dest, HttpRequest, Outcome, Query};
use std::net::Ipv4Addr;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn some<T: Clone>(&mut self, v: &[T], percent: u64) -> Vec<T> {
        v.iter().filter(|_| self.chance(percent)).cloned().collect()
    }
}

const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.2.3/32",
    "169.254.169.254/32",
    "0.0.0.0/0",
    "127.0.0.0/8",
    "203.0.113.0/24",
    "10.96.0.40/32",
];
const HOSTS: &[&str] = &[
    "api.example.com",
    "*.example.com",
    "other.test",
    "x.api.example.com",
];
const PATHS: &[&str] = &["/get", "/api/.*", "/item1", "/api/v1"];
const IDENTITIES: &[&str] = &["api", "web"];

#[derive(Clone, Debug)]
struct Policy {
    source: &'static str,
    port: u16,
    protocol: &'static str,
    hosts: Vec<&'static str>,
    cidrs: Vec<&'static str>,
    /// http: (path, methods) routes of an HTTPRouteGroup; `None`: no `matches`.
    routes: Option<Vec<(&'static str, Vec<&'static str>)>>,
}

#[derive(Clone, Debug)]
struct Mesh {
    passthrough: bool,
    excluded: Vec<&'static str>,
    included: Vec<&'static str>,
    /// `None`: no gateway; else its mode.
    gateway: Option<&'static str>,
    policies: Vec<Policy>,
}

fn policy(rng: &mut Rng) -> Policy {
    let (port, protocol) = *rng.pick(&[(80, "http"), (443, "https"), (5432, "tcp"), (8080, "tcp")]);
    let hosts = match protocol {
        "http" => {
            let mut h = rng.some(HOSTS, 40);
            if h.is_empty() {
                h.push(*rng.pick(HOSTS));
            }
            h
        }
        "https" if rng.chance(70) => rng.some(HOSTS, 50),
        _ => Vec::new(),
    };
    let cidrs = if rng.chance(50) {
        rng.some(CIDRS, 30)
    } else {
        Vec::new()
    };
    let routes = (protocol == "http" && rng.chance(50)).then(|| {
        (0..1 + rng.below(2))
            .map(|_| (*rng.pick(PATHS), rng.some(&["GET", "POST"], 50)))
            .collect()
    });
    Policy {
        source: IDENTITIES[rng.below(IDENTITIES.len())],
        port,
        protocol,
        hosts,
        cidrs,
        routes,
    }
}

fn mesh(rng: &mut Rng) -> Mesh {
    Mesh {
        passthrough: rng.chance(40),
        excluded: if rng.chance(25) {
            rng.some(&["203.0.113.0/24", "169.254.169.254/32", "10.1.0.0/16"], 50)
        } else {
            Vec::new()
        },
        included: if rng.chance(15) {
            vec!["10.0.0.0/8"]
        } else {
            Vec::new()
        },
        gateway: rng
            .chance(40)
            .then(|| *rng.pick(&["http2tunnel", "socks5"])),
        policies: (0..rng.below(4)).map(|_| policy(rng)).collect(),
    }
}

/// One or two changes of the kinds a pull request makes.
fn mutate(rng: &mut Rng, m: &Mesh) -> Mesh {
    let mut m = m.clone();
    for _ in 0..1 + rng.below(2) {
        match rng.below(9) {
            0 => m.passthrough = !m.passthrough,
            1 => {
                m.gateway = if m.gateway.is_some() && rng.chance(50) {
                    None
                } else {
                    Some(*rng.pick(&["http2tunnel", "socks5"]))
                }
            }
            2 => {
                m.excluded = rng.some(&["203.0.113.0/24", "169.254.169.254/32", "10.1.0.0/16"], 40)
            }
            3 => {
                m.included = if m.included.is_empty() {
                    vec!["10.0.0.0/8"]
                } else {
                    Vec::new()
                }
            }
            4 => m.policies.push(policy(rng)),
            5 if !m.policies.is_empty() => {
                let i = rng.below(m.policies.len());
                m.policies.remove(i);
            }
            6 if !m.policies.is_empty() => {
                let i = rng.below(m.policies.len());
                m.policies[i].cidrs = if rng.chance(30) {
                    Vec::new()
                } else {
                    rng.some(CIDRS, 30)
                };
            }
            7 if !m.policies.is_empty() => {
                let i = rng.below(m.policies.len());
                let p = &mut m.policies[i];
                if p.protocol != "tcp" {
                    let h = rng.some(HOSTS, 40);
                    if !h.is_empty() || p.protocol == "https" {
                        p.hosts = h;
                    }
                }
                if p.protocol == "http" && rng.chance(50) {
                    p.routes = policy(rng).routes.filter(|_| true);
                }
            }
            _ if !m.policies.is_empty() => {
                let i = rng.below(m.policies.len());
                m.policies[i].source = *rng.pick(IDENTITIES);
            }
            _ => m.policies.push(policy(rng)),
        }
    }
    m
}

fn list(v: &[&str]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn yaml(m: &Mesh) -> String {
    let mut out = format!(
        "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {{name: m, namespace: fsm}}\nspec:\n  traffic: {{enableEgress: {}, outboundIPRangeExclusionList: {}, outboundIPRangeInclusionList: {}}}\n  featureFlags: {{enableEgressPolicy: true}}\n---\n",
        m.passthrough,
        list(&m.excluded),
        list(&m.included)
    );
    for sa in IDENTITIES {
        out.push_str(&format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {sa}, namespace: shop}}\n---\n"
        ));
    }
    if let Some(mode) = m.gateway {
        out.push_str(&format!("apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {{name: global, namespace: fsm}}\nspec: {{global: [{{service: gw, namespace: fsm}}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: gw, namespace: fsm, annotations: {{flomesh.io/egress-gateway-mode: {mode}}}}}\nspec: {{clusterIP: 10.96.0.40, selector: {{app: gw}}, ports: [{{port: 1080, targetPort: 1080}}]}}\n---\n"));
    }
    for (i, p) in m.policies.iter().enumerate() {
        out.push_str(&format!(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: p{i}, namespace: shop}}\nspec:\n  sources: [{{kind: ServiceAccount, name: {}, namespace: shop}}]\n  ports: [{{number: {}, protocol: {}}}]\n",
            p.source, p.port, p.protocol
        ));
        if !p.hosts.is_empty() {
            out.push_str(&format!("  hosts: {}\n", list(&p.hosts)));
        }
        if !p.cidrs.is_empty() {
            out.push_str(&format!("  ipAddresses: {}\n", list(&p.cidrs)));
        }
        if let Some(routes) = &p.routes {
            out.push_str(&format!("  matches: [{{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: r{i}}}]\n---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {{name: r{i}, namespace: shop}}\nspec:\n  matches:\n"));
            for (j, (path, methods)) in routes.iter().enumerate() {
                out.push_str(&format!(
                    "  - {{name: m{j}, pathRegex: \"{path}\", methods: {}}}\n",
                    list(methods)
                ));
            }
        }
        out.push_str("---\n");
    }
    out
}

/// The probe connections, for one identity.
fn probes(identity: &Identity) -> Vec<Query> {
    let q = |dest: Dest, port: u16, sni: Option<&str>, http: Option<HttpRequest>| Query {
        identity: identity.clone(),
        dest,
        port,
        sni: sni.map(str::to_owned),
        http,
    };
    let ips: Vec<Ipv4Addr> = [
        "10.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "127.0.0.5",
        "203.0.113.9",
        "8.8.8.8",
        "10.1.0.7",
        "10.96.0.40",
        "0.0.0.1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let names = [
        "api.example.com",
        "y.example.com",
        "other.test",
        "x.api.example.com",
        "elsewhere.test",
    ];
    let mut out = Vec::new();
    for ip in &ips {
        for port in [80, 443, 5432, 8080, 1080] {
            out.push(q(Dest::Ip(*ip), port, None, None));
        }
        for n in names {
            out.push(q(Dest::Ip(*ip), 443, Some(n), None));
        }
    }
    for n in names {
        out.push(q(Dest::Name(n.into()), 443, Some(n), None));
        for path in ["/get", "/api/x", "/item1", "/", "/api/v1"] {
            for method in ["GET", "POST"] {
                let req =
                    HttpRequest::new(None, Some(method.into()), Some(path.into()), Vec::new());
                out.push(q(Dest::Name(n.into()), 80, None, Some(req.clone())));
                out.push(q(
                    Dest::Ip(ips[1]),
                    80,
                    None,
                    Some(HttpRequest {
                        host: Some(n.into()),
                        ..req
                    }),
                ));
            }
        }
    }
    out
}

fn allowed(plan: &Plan, q: &Query) -> Option<bool> {
    match evaluate(plan, q).verdict {
        Outcome::NeedsAddress => None,
        o => Some(o.is_allowed()),
    }
}

/// The first probe that `diff` misses, if any.
fn unsound(base: &Plan, head: &Plan) -> Option<String> {
    let d = diff(base, head);
    let mesh_widens = d.mesh.iter().any(|e| e.effect == Effect::Widens);
    for sa in IDENTITIES.iter().chain(&["nobody"]) {
        let identity = Identity::parse(&format!("shop/{sa}")).unwrap();
        let name = if head
            .identities
            .iter()
            .chain(&base.identities)
            .any(|i| i.name == format!("shop/{sa}"))
        {
            format!("shop/{sa}")
        } else {
            "_default".to_owned()
        };
        let widens = mesh_widens
            || d.identities
                .iter()
                .any(|i| i.name == name && i.entries.iter().any(|e| e.effect == Effect::Widens));
        if widens {
            continue;
        }
        for q in probes(&identity) {
            if allowed(base, &q) == Some(false) && allowed(head, &q) == Some(true) {
                return Some(format!(
                    "{name}: {} (sni {:?}, http {:?}) denied → allowed, diff has no widening",
                    q.destination(),
                    q.sni,
                    q.http
                ));
            }
        }
    }
    None
}

#[test]
fn every_widening_explain_sees_diff_reports() {
    let pairs: usize = std::env::var("EGRESSC_DIFF_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let seed: u64 = std::env::var("EGRESSC_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_d1ff);
    eprintln!(
        "diff soundness: {pairs} generated pairs from seed {seed} (EGRESSC_DIFF_PAIRS, EGRESSC_DIFF_SEED)"
    );
    let mut rng = Rng(seed | 1);
    let mut failures = Vec::new();
    let (mut tried, mut valid) = (0usize, 0usize);
    // Pairs where a side has errors (two protocols on a port…) do not count.
    while valid < pairs && tried < pairs * 20 {
        tried += 1;
        let base = mesh(&mut rng);
        let head = mutate(&mut rng, &base);
        let (by, hy) = (yaml(&base), yaml(&head));
        let (Some(mut bp), Some(mut hp)) = (try_plan(&by), try_plan(&hy)) else {
            continue;
        };
        // `--gateway-auth` applies to both sides: header (SOCKS5 gets the union) or mtls.
        if rng.chance(50) {
            bp.auth.mode = crate::model::AuthMode::Header;
            hp.auth.mode = crate::model::AuthMode::Header;
        }
        valid += 1;
        if let Some(why) = unsound(&bp, &hp) {
            failures.push(format!("pair {tried}: {why}\n--- base\n{by}--- head\n{hy}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    eprintln!(
        "diff soundness: {valid} pairs checked ({tried} generated), {} unsound",
        failures.len()
    );
    assert!(
        valid >= pairs || !failures.is_empty(),
        "only {valid} of {tried} pairs were valid"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
