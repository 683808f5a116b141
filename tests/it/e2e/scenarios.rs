//! The main scenarios: two identities with passthrough off, passthrough on, and (in
//! `gateway.rs`) both gateway modes; every connection also put to `explain`.

use super::*;

fn policy_cases() -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        case(
            "passthrough off: unlisted destination denied",
            py(&["tcp", "10.77.0.70", "7500"]),
            Denied(&["anywhere"]),
        ),
        case(
            "tcp policy: inside the CIDR allowed",
            py(&["tcp", "10.77.0.17", "7000"]),
            Reaches("tcp-inside", "tcp-inside:ping", &[]),
        ),
        case(
            "tcp policy: outside the CIDR denied",
            py(&["tcp", "10.77.0.21", "7000"]),
            Denied(&["tcp-outside"]),
        ),
        case(
            "tcp policy: other port denied",
            py(&["tcp", "10.77.0.17", "7001"]),
            Denied(&["tcp-otherport"]),
        ),
        case(
            "server-speaks-first origin works direct",
            py(&["greet", "10.77.0.22", "2525"]),
            Reaches("smtp", "HELLO from smtp", &[]),
        ),
        case(
            "https: exact SNI allowed",
            curl(&["-k", "https://secure.test:8443/"]),
            Reaches("secure", "origin=secure", &[]),
        ),
        case(
            "https: wildcard SNI allowed",
            curl(&["-k", "https://a.wild.test:8443/"]),
            Reaches("wild", "origin=wild", &[]),
        ),
        case(
            "https: unlisted SNI denied",
            curl(&["-k", "https://evil.test:8443/"]),
            Denied(&["evil"]),
        ),
        case(
            "https: listed SNI sent to another address reaches the listed host",
            curl(&[
                "-k",
                "--connect-to",
                "secure.test:8443:10.77.0.43:8443",
                "https://secure.test:8443/",
            ]),
            Reaches("secure", "origin=secure", &["tls-decoy"]),
        ),
        case(
            "https: ClientHello split across segments",
            py(&["tls-split", "10.77.0.40", "8443", "secure.test"]),
            Reaches("secure", "origin=secure", &[]),
        ),
        case(
            "https: non-TLS bytes closed",
            py(&["raw", "10.77.0.40", "8443"]),
            Denied(&["secure"]),
        ),
        case(
            // Passes a `*.wild.test` suffix match; a resolver would stop at the NUL and dial
            // evil.test.
            "https: an SNI with a NUL byte is not a name",
            py(&["sni-raw", "10.77.0.41", "8443", "evil.test\\x00.wild.test"]),
            Denied(&["evil", "wild"]),
        ),
        case(
            "http: listed host and route allowed",
            curl(&["http://web.test:8080/get"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: other path 403",
            curl(&["http://web.test:8080/admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: other method 403",
            curl(&["-X", "POST", "http://web.test:8080/get"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: other host 403",
            curl(&["http://other.test:8080/get"]),
            Forbidden(&["other-web", "web"]),
        ),
        case(
            "http: listed Host sent to another address reaches the listed host",
            curl(&[
                "--connect-to",
                "web.test:8080:10.77.0.52:8080",
                "http://web.test:8080/get",
            ]),
            Reaches("web", "origin=web", &["web-decoy"]),
        ),
        case(
            "http: prefix route allows a plain path",
            curl(&["http://web.test:8080/public/ok"]),
            Reaches("web", "origin=web", &[]),
        ),
        case(
            "http: dot-segments cannot pass a path rule",
            curl(&["--path-as-is", "http://web.test:8080/public/../admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: %2e cannot pass a path rule",
            curl(&["--path-as-is", "http://web.test:8080/public/%2e%2e/admin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: %2f cannot pass a path rule",
            curl(&["http://web.test:8080/public/..%2fadmin"]),
            Forbidden(&["web"]),
        ),
        case(
            "http: keep-alive requests decided one by one",
            py(&["keepalive", "10.77.0.50", "8080", "web.test", "other.test"]),
            Reaches("web", "HTTP/1.1 403", &[]),
        ),
        case(
            "in-mesh destination forwarded with passthrough off",
            py(&["tcp", "10.77.0.60", "9000"]),
            Reaches("inventory", "inventory:ping", &[]),
        ),
    ];
    cases.extend(overlap_cases());
    cases.extend(smuggling_cases());
    cases.extend(interception_cases());
    cases.extend(slow_cases());
    cases.extend(super::hardening::smuggling_cases());
    cases.extend(super::hardening::dot_segment_cases());
    cases.extend(super::hardening::crash_and_colon_cases());
    cases.extend(super::hardening::network_cases());
    cases
}

/// One run of the suite: the namespace, what passed and failed, and the comparison with
/// explain. Failures are collected, not fatal: the suite reports them all at the end.
pub struct Suite {
    pub ns: Netns,
    pub work: PathBuf,
    pub failures: Vec<String>,
    pub passed: usize,
    pub agreement: Agreement,
}

impl Suite {
    /// Run cases against the running sidecar as `identity`; compared with explain when `plan`
    /// is given.
    pub fn run(
        &mut self,
        label: &str,
        identity: &str,
        plan: Option<&egressc::Plan>,
        cases: &[Case],
    ) {
        let run = SidecarRun {
            label,
            identity,
            plan,
        };
        self.passed += run_cases(
            &self.ns,
            &run,
            cases,
            &mut self.failures,
            &mut self.agreement,
        );
    }

    /// Start `script` (with an identity's config) as `name`; a failure to start is recorded.
    pub fn start(&mut self, name: &str, script: &Path, config: Option<&Path>) -> bool {
        self.start_env(name, script, config, &[])
    }

    /// [`Suite::start`] with more environment variables.
    pub fn start_env(
        &mut self,
        name: &str,
        script: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> bool {
        match self.ns.start_pipy_env(name, script, config, env) {
            Ok(()) => true,
            Err(e) => {
                self.failures.push(e);
                false
            }
        }
    }

    /// A check of its own: passed, or a failure.
    pub fn check(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(e) => self.failures.push(e),
        }
    }
}

pub fn main_js(out: &Path) -> PathBuf {
    out.join("sidecar/main.js")
}

#[test]
fn e2e_policies_passthrough_and_gateways_in_pipy() {
    if !enabled("the end-to-end suite (policies, passthrough, gateways in Pipy)") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    let work = ns.dir.clone();
    start_origins(&mut ns);
    let mut suite = Suite {
        ns,
        work,
        failures: Vec::new(),
        passed: 0,
        agreement: Agreement::default(),
    };
    two_identities(&mut suite);
    passthrough_on(&mut suite);
    let pki = super::pki::Pki::new(&suite.work.join("pki"));
    for mode in ["http2tunnel", "socks5"] {
        super::gateway::through_gateway(&mut suite, mode, &pki);
    }
    super::mtls::gateway_authenticates(&mut suite, &pki);
    super::mtls::rotation(&mut suite, &pki);
    super::audit::audit_mode(&mut suite, &pki);
    super::gateway::gateway_with_passthrough_off(&mut suite);
    super::gateway::gateway_bounds(&mut suite);
    let Suite {
        failures,
        passed,
        agreement,
        ..
    } = suite;
    say(&format!(
        "{passed} checks passed, {} failed; explain vs Pipy: {} connections compared, {} disagreements",
        failures.len(),
        agreement.compared,
        agreement.disagreements.len()
    ));
    let mut failures = failures;
    failures.extend(agreement.disagreements);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Identity app/client with passthrough off and no gateway, as generated (its policies, the
/// deny log's budget); then app/other: the same destinations are denied (in-mesh still works).
fn two_identities(suite: &mut Suite) {
    let base = copy_fixture(&suite.work.join("in-policy"));
    let out = suite.work.join("out-policy");
    let plan = build_tree(&base, &out);
    suite.ns.apply_rules(&out);
    if suite.start(
        "sidecar",
        &main_js(&out),
        Some(&out.join("configs/app/client.json")),
    ) {
        suite.run("client", "app/client", Some(&plan), &policy_cases());
        let limited = deny_log_is_rate_limited(&mut suite.ns);
        suite.check(limited);
    }
    suite.ns.stop("sidecar");
    let other = vec![
        case(
            "other identity: tcp policy of client denied",
            py(&["tcp", "10.77.0.17", "7000"]),
            Expect::Denied(&["tcp-inside"]),
        ),
        case(
            "other identity: https denied",
            curl(&["-k", "https://secure.test:8443/"]),
            Expect::Denied(&["secure"]),
        ),
        case(
            "other identity: in-mesh allowed",
            py(&["tcp", "10.77.0.60", "9000"]),
            Expect::Reaches("inventory", "inventory:ping", &[]),
        ),
    ];
    if suite.start(
        "sidecar",
        &main_js(&out),
        Some(&out.join("configs/app/other.json")),
    ) {
        suite.run("other", "app/other", Some(&plan), &other);
    }
    suite.ns.stop("sidecar");
}

/// Passthrough on (the `_default` identity: sidecar/config.json).
fn passthrough_on(suite: &mut Suite) {
    let pass_in = copy_fixture(&suite.work.join("in-pass"));
    set_passthrough(&pass_in, true);
    let pass_out = suite.work.join("out-pass");
    let pass_plan = build_tree(&pass_in, &pass_out);
    let mut pass_cases = vec![
        case(
            "passthrough on: any destination reachable",
            py(&["tcp", "10.77.0.70", "7500"]),
            Expect::Reaches("anywhere", "anywhere:ping", &[]),
        ),
        case(
            "passthrough on: https to any name reachable",
            curl(&["-k", "https://evil.test:8443/"]),
            Expect::Reaches("evil", "origin=evil", &[]),
        ),
    ];
    pass_cases.extend(super::hardening::self_dial_cases());
    if suite.start("sidecar", &main_js(&pass_out), None) {
        suite.run(
            "passthrough",
            "default/nobody",
            Some(&pass_plan),
            &pass_cases,
        );
    }
    suite.ns.stop("sidecar");
}
