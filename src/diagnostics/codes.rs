//! The one table of diagnostic codes: each code's severity, short title (SARIF rule
//! description), and the README's wording and example. `--allow` parses into [`Code`]; the
//! README's tables are generated from [`Code::ALL`] and a test keeps them in step.

use schemars::JsonSchema;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

macro_rules! codes {
    ($($code:ident $sev:ident $title:literal, $meaning:literal, $example:literal;)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($code),* }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$code),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code)),* }
            }
            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$sev),* }
            }
            /// A short title (SARIF's rule description).
            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title),* }
            }
            /// The README's "meaning" column.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$code => $meaning),* }
            }
            /// The README's "example" column (may be empty).
            pub fn example(self) -> &'static str {
                match self { $(Code::$code => $example),* }
            }
        }
    };
}

codes! {
    E0001 Error "an input cannot be read",
        "an input cannot be read", "`egressc check missing.yaml`";
    E0002 Error "an input exceeds a limit",
        "an input exceeds a limit: a file or stdin over `--max-input-mib`, or YAML that expands past the run's node budget (alias bombs)", "`egressc check /dev/zero`";
    E0101 Error "a named file is not valid YAML or UTF-8",
        "a named file is not valid YAML (or not UTF-8)", "`hosts: [a, b`";
    E0102 Error "a document has no apiVersion or kind",
        "a document in a named file has no `apiVersion` or `kind`", "a values file named explicitly";
    E0103 Error "unknown version of a known kind",
        "unknown version of a known kind", "`apiVersion: policy.flomesh.io/v1alpha2` with `kind: Egress`";
    E0104 Error "unknown kind in a flomesh.io or smi-spec.io group",
        "unknown kind in a `flomesh.io` or `smi-spec.io` group", "`kind: Egres` (help: did you mean `Egress`?)";
    E0105 Error "a walked file that names flomesh.io or smi-spec.io does not parse",
        "a file found by walking a folder does not parse, and it names `flomesh.io` or `smi-spec.io` (a policy in it would be lost); templates (`{{`, `{%`) are skipped with `W0101`", "a MeshConfig with a duplicated key in `config/`";
    E0106 Error "a malformed List",
        "a `kind: List` whose `items` is not a sequence, or a List inside a List", "`kind: List` with `items: {}`";
    E0107 Error "a link leaves the inputs, or links form a loop",
        "a symlink in a walked folder that points outside every input, or a loop of links", "`config/mesh.yaml -> /etc/other.yaml`";
    E0108 Error "Egress policies without a MeshConfig",
        "Egress policies but no MeshConfig, with `--require-meshconfig` or `--strict` (FSM's defaults would let everything through)", "policies alone, checked with `--strict`";
    E0109 Error "a MeshConfig key FSM does not define (--strict)",
        "with `--strict`, a key of `traffic`, `featureFlags`, `sidecar` or `egressGateway` that FSM's MeshConfig CRD does not define for the document's apiVersion (`W0412` without it)", "`traffic: {enableEgres: false}` checked with `--strict`";
    E0201 Error "schema violation",
        "schema violation: wrong type, missing required field, bad enum value", "`ports: 80`; `methods: [FETCH]`";
    E0202 Error "unknown field",
        "unknown field in a strict spec", "`ipAdresses:` (help: did you mean `ipAddresses`?)";
    E0301 Error "port outside 1..65535",
        "port outside 1..65535", "`number: 70000`";
    E0302 Error "unsupported protocol",
        "protocol other than `http`, `https`, `tcp`, `tcp-server-first` (FSM drops these silently)", "`protocol: grpc`";
    E0303 Error "invalid CIDR",
        "CIDR malformed, with host bits set, leading zeros or no prefix", "`10.0.0.1/8`, `010.0.0.0/8`, `10.0.0.1`";
    E0304 Error "invalid host pattern",
        "host that is not a DNS name or a single leading `*.` wildcard", "`a.*.example.com`, `foo..bar`, `example.com:443`";
    E0305 Error "http port without hosts",
        "an `http` port without `hosts`", "`ports: [{number: 80, protocol: http}]` and no hosts";
    E0306 Error "matches names a resource that is not in the inputs",
        "`matches` names an HTTPRouteGroup or UpstreamTrafficSetting that is not in the inputs (same namespace)", "`name: egress-http-route` with no such group";
    E0307 Error "matches names an unsupported kind or apiGroup",
        "`matches` names an unsupported kind/apiGroup", "`kind: HTTPRoute`, or a missing `apiGroup`";
    E0308 Error "more than one UpstreamTrafficSetting in matches",
        "more than one UpstreamTrafficSetting in one policy's `matches`", "two UpstreamTrafficSetting entries";
    E0309 Error "source kind is not ServiceAccount",
        "a source whose kind is not `ServiceAccount`", "`kind: Deployment`";
    E0310 Error "a name Kubernetes would reject",
        "a name or namespace Kubernetes would reject (namespaces: DNS-1123 labels; Service names: DNS-1035 labels, no dots, a letter first; other names: DNS-1123 subdomains)", "`name: Bad_Name`; a Service `api.v2`";
    E0311 Error "the same resource is defined twice",
        "the same kind/namespace/name defined twice", "two `Egress curl/httpbin-80`";
    E0312 Error "more than one MeshConfig",
        "more than one MeshConfig", "two MeshConfig documents";
    E0313 Error "more than one EgressGateway with global entries",
        "more than one EgressGateway with `global` entries", "two gateways with `global`";
    E0314 Error "unknown egress gateway mode",
        "gateway mode that is not `http2tunnel`, `sock5` or `socks5`", "`flomesh.io/egress-gateway-mode: socks`";
    E0315 Error "one identity has two protocols on one port",
        "one identity given two protocols on one port", "`curl` has `https` on 443 in one policy and `http` on 443 in another";
    E0316 Error "regex outside the portable RE2/ECMAScript subset",
        "route regex outside the subset that means the same in RE2 and ECMAScript, or too large for the sidecar's matcher (over 512 DFA states)", "`pathRegex: (?i)/get`, named groups, `\\A`, `\\p{L}`, lookaround, `[a-z]{1000}`";
    E0317 Error "IPv6 is not supported",
        "IPv6 address or CIDR (not supported yet)", "`ipAddresses: [2001:db8::/32]`";
    E0318 Error "clusterIP is not an IP address",
        "a Service's `clusterIP` that is neither an address nor `None`", "`clusterIP: 10.96.100`";
    E0319 Error "a header matched twice",
        "an HTTPRouteGroup match names one header twice (names are case-insensitive; the list form may repeat a name): one value would silently win", "`headers: {X-Tenant: a, x-tenant: b}`";
    E0320 Error "a public or link-local clusterIP",
        "a Service `clusterIP` that is globally routable or link-local: every identity would reach it as in-mesh", "`clusterIP: 8.8.8.8`, `169.254.169.254`";
    E0321 Error "two Services claim one clusterIP:port",
        "two Services with the same TCP `clusterIP:port`", "two Services on `10.96.0.10:80`";
    E0322 Error "a name too long for a ConfigMap key",
        "a ServiceAccount name longer than 238 characters: its config's ConfigMap key (`<name>.json.part-N`) would be longer than the 253 the API server takes", "a 245-character ServiceAccount name";
    E0323 Error "a gateway Service's targetPort is a name",
        "the first port of a gateway Service has a named `targetPort`: the generated gateway container names no port, so it would resolve to nothing", "`targetPort: tunnel`";
    E0324 Error "a ServiceAccount is the egress gateway's own",
        "a ServiceAccount document or an Egress source with the name and namespace of a gateway Service: the gateway runs as that ServiceAccount (`--gateway-auth mtls` names it in its certificate), so a workload running as it would hold the gateway's identity", "`kind: ServiceAccount` `fsm/fsm-egress-gateway`";
    E0325 Error "an egressc.io annotation with a value egressc does not know",
        "`egressc.io/enforcement` other than `enforce` or `audit`, or `egressc.io/log-allowed` other than `\"true\"` or `\"false\"`, on a ServiceAccount or the MeshConfig", "`egressc.io/enforcement: dry-run`";
    E0326 Error "an identity in audit mode (--strict)",
        "with `--strict`, an identity (or the mesh) in audit mode (`W0415` without it)", "`egressc.io/enforcement: audit` checked with `--strict`";
    E0601 Error "a file of the Kubernetes output does not fit a ConfigMap",
        "a file of `kubernetes/` that does not fit a ConfigMap of `--configmap-max-kib` (default 256, what client-side `kubectl apply` accepts) even split into parts: a script larger than the limit (JSON files are split), or a limit that leaves no room for a part", "`--configmap-max-kib=1`";
    W0101 Warning "a file in a walked directory is not YAML; skipped",
        "a file in a walked directory is not YAML; skipped", "a Helm template `templates/deploy.yaml`";
    W0102 Warning "a file in a walked directory holds no Kubernetes document; skipped",
        "a file in a walked directory holds no Kubernetes document; skipped", "`values.yaml`";
    W0401 Warning "Egress policies are ignored: enableEgressPolicy is false",
        "Egress policies while `featureFlags.enableEgressPolicy` is false: they are ignored", "`enableEgressPolicy: false`";
    W0402 Warning "Egress policies restrict nothing: enableEgress is true",
        "Egress policies while `traffic.enableEgress` is true (or no MeshConfig, whose default is true): they restrict nothing", "`enableEgress: true`";
    W0403 Warning "a port rule allows every address",
        "a port rule that allows every address: `tcp` without `ipAddresses`, `https` with neither hosts nor ipAddresses", "`ports: [{number: 5432, protocol: tcp}]` alone";
    W0404 Warning "a wildcard covers a whole public suffix",
        "a wildcard that covers a whole public suffix (ICANN section of the public suffix list)", "`*.com`, `*.co.uk`";
    W0405 Warning "an Egress policy duplicates or is contained in another",
        "an Egress policy that duplicates another or is contained in it (same sources, ports, protocols and matches; hosts and CIDRs a subset; routes not compared)", "`api.example.com` next to `*.example.com` for the same source and port";
    W0406 Warning "EgressGateway names a Service that is not in the inputs",
        "an EgressGateway names a Service that is not in the inputs (its DNS name will be used)", "`service: fsm-egress-gateway` without its Service";
    W0407 Warning "Service without a clusterIP",
        "a Service without a clusterIP: in-mesh traffic to it cannot be recognised", "a Service manifest without `spec.clusterIP`, or headless";
    W0408 Warning "field accepted but not acted on",
        "a field egressc accepts but does not act on", "`sources[].mtls`; `hosts` on a tcp-only policy; UpstreamTrafficSetting `rateLimit`";
    W0409 Warning "an unusual clusterIP",
        "a Service `clusterIP` outside the private and shared ranges (RFC 1918, 100.64.0.0/10) and outside every `--service-cidr`, or on loopback", "`clusterIP: 127.0.0.5`";
    W0410 Warning "an empty list that allows nothing",
        "an Egress policy with `ports: []` or `sources: []`: it allows nothing", "`sources: []`";
    W0411 Warning "the gateway Service selects no pods",
        "a gateway Service without a `selector`: the gateway Deployment of `kubernetes/` gets the labels `app.kubernetes.io/name: <service>`, which that Service does not select", "a gateway Service with `ports` but no `selector`";
    W0412 Warning "a MeshConfig key FSM does not define",
        "a key of `traffic`, `featureFlags`, `sidecar` or `egressGateway` that FSM's MeshConfig CRD does not define for the document's apiVersion: a typo that leaves FSM's default in force (an error, `E0109`, with `--strict`); keys FSM defines but egressc does not read stay quiet", "`traffic: {enableEgres: false}` (help: did you mean `enableEgress`?)";
    W0413 Warning "the MeshConfig does not set enableEgress",
        "a MeshConfig whose `traffic` does not set `enableEgress`: FSM's default, passthrough on, lets every destination through", "`spec: {featureFlags: {enableEgressPolicy: true}}` alone";
    W0414 Warning "the gateway trusts a header for identity (--gateway-auth header)",
        "a global egress gateway under `--gateway-auth header`: the identity a tunnel claims is a label any pod that reaches the gateway can set, and SOCKS5 gets every identity's list", "an EgressGateway built with `--gateway-auth header`";
    W0415 Warning "an identity in audit mode",
        "an identity (a ServiceAccount's annotation) or the whole mesh (the MeshConfig's) in audit mode: what no rule allows is let through and logged, not denied", "`egressc.io/enforcement: audit` on a ServiceAccount";
    N0001 Note "documents of other kinds were skipped",
        "documents of other kinds were skipped (one note with the count per kind)", "";
    N0002 Note "gateway egress needs csi-driver-spiffe (--gateway-auth mtls)",
        "a global egress gateway under `--gateway-auth mtls` (the default): sidecars and gateway need certificates from cert-manager's csi-driver-spiffe, or every gateway tunnel fails (README, \"Deploy\")", "an EgressGateway in a cluster without csi-driver-spiffe";
}

impl Code {
    /// Parse `E0301`-style text.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The README's tables of codes (errors, warnings, notes), generated from the table.
pub fn readme_tables() -> String {
    let mut out = String::new();
    for (sev, heading) in [
        (Severity::Error, "Errors"),
        (Severity::Warning, "Warnings"),
        (Severity::Note, "Notes"),
    ] {
        out.push_str(&format!(
            "### {heading}\n\n| code | meaning | example |\n|---|---|---|\n"
        ));
        for c in Code::ALL.iter().filter(|c| c.severity() == sev) {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.meaning(),
                c.example()
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_prefixed_by_severity() {
        let mut prev: Option<Code> = None;
        for c in Code::ALL {
            let prefix = match c.severity() {
                Severity::Error => 'E',
                Severity::Warning => 'W',
                Severity::Note => 'N',
            };
            assert!(c.as_str().starts_with(prefix), "{c}");
            assert_eq!(Code::parse(c.as_str()), Some(*c));
            if let Some(p) = prev.filter(|p| p.severity() == c.severity()) {
                assert!(p.as_str() < c.as_str(), "{p} before {c}");
            }
            prev = Some(*c);
        }
        assert_eq!(Code::parse("E9999"), None);
    }
}
