//! The resolved, typed mesh that `check` hands on to `plan`: every port, host, CIDR, source,
//! route and setting already parsed, looked up and defaulted, so that lowering never parses,
//! looks up or filters anything again. Also the domain words every later stage shares
//! (protocols, gateway modes, connection settings). A leaf module: it imports nothing of the
//! pipeline but the host/CIDR types of `net`.

use crate::net::{Cidr, HostPattern};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The Service annotation that sets a gateway's mode.
pub const MODE_ANNOTATION: &str = "flomesh.io/egress-gateway-mode";

/// Egress protocols, normalised (FSM lower-cases them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    TcpServerFirst,
}

/// `tcp` and `tcp-server-first` are one protocol for the per-port rule (and for FSM's config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolClass {
    Http,
    Https,
    Tcp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Protocol::Http),
            "https" => Some(Protocol::Https),
            "tcp" => Some(Protocol::Tcp),
            "tcp-server-first" => Some(Protocol::TcpServerFirst),
            _ => None,
        }
    }
    pub fn class(self) -> ProtocolClass {
        match self {
            Protocol::Http => ProtocolClass::Http,
            Protocol::Https => ProtocolClass::Https,
            Protocol::Tcp | Protocol::TcpServerFirst => ProtocolClass::Tcp,
        }
    }
}

impl ProtocolClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolClass::Http => "http",
            ProtocolClass::Https => "https",
            ProtocolClass::Tcp => "tcp",
        }
    }
}

/// How the sidecar reaches an egress gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum GatewayMode {
    /// One HTTP/2 CONNECT stream per connection.
    #[serde(rename = "http2tunnel")]
    Http2Tunnel,
    /// SOCKS5 CONNECT; FSM spells it `sock5` in its config.
    #[serde(rename = "sock5")]
    Socks5,
}

impl GatewayMode {
    /// `http2tunnel`, `sock5`, and `socks5` as the same as `sock5`.
    pub fn parse(s: &str) -> Option<GatewayMode> {
        match s {
            "http2tunnel" => Some(GatewayMode::Http2Tunnel),
            "sock5" | "socks5" => Some(GatewayMode::Socks5),
            _ => None,
        }
    }
    /// FSM's spelling in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayMode::Http2Tunnel => "http2tunnel",
            GatewayMode::Socks5 => "sock5",
        }
    }
}

pub use crate::spiffe::{AuthMode, DEFAULT_TRUST_DOMAIN, GatewayAuth};

/// `egressc.io/enforcement` (on a ServiceAccount, or the MeshConfig's metadata for the mesh).
pub const ENFORCEMENT_ANNOTATION: &str = "egressc.io/enforcement";
/// `egressc.io/log-allowed: "true"`: allow decisions are logged too.
pub const LOG_ALLOWED_ANNOTATION: &str = "egressc.io/log-allowed";

/// How an identity's decisions are enforced and logged. In audit mode what would be denied
/// because no rule matched is let through as passthrough would route it, and logged `audit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observe {
    pub audit: bool,
    pub log_allowed: bool,
}

/// A workload identity: a ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub namespace: String,
    pub name: String,
}

impl Identity {
    /// `NAMESPACE/SERVICEACCOUNT`, as Kubernetes names them (a DNS-1123 label, then a
    /// DNS-1123 subdomain).
    pub fn parse(text: &str) -> Result<Identity, String> {
        match text.split_once('/') {
            Some((ns, sa)) if is_dns1123_label(ns) && is_dns1123_subdomain(sa) => Ok(Identity {
                namespace: ns.to_owned(),
                name: sa.to_owned(),
            }),
            _ => Err(format!(
                "`{text}` is not NAMESPACE/SERVICEACCOUNT as Kubernetes names them (lower-case DNS names)"
            )),
        }
    }
}

pub use crate::net::{is_dns1123_label, is_dns1123_subdomain};

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An UpstreamTrafficSetting's `connectionSettings`: read in Kubernetes' camelCase, written in
/// FSM's sidecar config with Go's field names (and lower-case `tcp`/`http`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpConnectionSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConnectionSettings>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(
    rename_all(deserialize = "camelCase", serialize = "PascalCase"),
    deny_unknown_fields
)]
pub struct TcpConnectionSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295u32))]
    pub max_connections: Option<u32>,
    /// A Go duration such as `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub connect_timeout: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(
    rename_all(deserialize = "camelCase", serialize = "PascalCase"),
    deny_unknown_fields
)]
pub struct HttpConnectionSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaking: Option<CircuitBreaking>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(
    rename_all(deserialize = "camelCase", serialize = "PascalCase"),
    deny_unknown_fields
)]
pub struct CircuitBreaking {
    pub stat_time_window: String,
    pub min_request_amount: u32,
    pub degraded_time_window: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_time_threshold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_amount_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ratio_threshold: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_amount_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ratio_threshold: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_status_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_response_content: Option<String>,
}

/// Mesh-wide settings, with FSM's defaults written out.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub enable_egress: bool,
    pub enable_egress_policy: bool,
    pub log_level: String,
    pub sidecar_timeout: i64,
    pub gateway_mode: GatewayMode,
    pub gateway_port: u16,
    /// Sorted, without duplicates.
    pub outbound_ip_range_exclusions: Vec<Cidr>,
    pub outbound_ip_range_inclusions: Vec<Cidr>,
    pub outbound_port_exclusions: Vec<u16>,
    /// The MeshConfig these settings come from; `None`: FSM's defaults (no MeshConfig).
    pub mesh_config: Option<Provenance>,
}

impl Default for Settings {
    /// FSM's defaults, used when the inputs have no MeshConfig.
    fn default() -> Settings {
        Settings {
            enable_egress: true,
            enable_egress_policy: true,
            log_level: "error".into(),
            sidecar_timeout: 60,
            gateway_mode: GatewayMode::Http2Tunnel,
            gateway_port: 1080,
            outbound_ip_range_exclusions: Vec::new(),
            outbound_ip_range_inclusions: Vec::new(),
            outbound_port_exclusions: Vec::new(),
            mesh_config: None,
        }
    }
}

/// Where a policy (or the MeshConfig) came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Provenance {
    /// `namespace/name` of the Egress policy (or the MeshConfig).
    pub policy: String,
    pub file: String,
    pub line: u32,
}

/// One match of an HTTPRouteGroup, resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// The path regex, matched against the whole path (anchored by the sidecar).
    pub path: String,
    /// Sorted, without duplicates; empty means any method.
    pub methods: Vec<String>,
    /// Lower-case header name → value regex.
    pub headers: BTreeMap<String, String>,
    /// `namespace/name#match` of the HTTPRouteGroup match.
    pub route_group: Option<String>,
}

/// A route regex compiled to a DFA over ASCII bytes (`check::matcher`): the sidecar and
/// explain both walk this table, so they mean the same thing, and no regex engine runs on
/// request input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Matcher {
    /// The class of each ASCII byte (128 entries).
    pub classes: Vec<u16>,
    /// Classes per state.
    pub width: u32,
    /// `Next[state * Width + class]`: the next state, -1 for none (no match). State 0 is the
    /// start.
    pub next: Vec<i32>,
    /// 1 for the states in which a match has been found (the input matches, whatever follows).
    pub hit: Vec<u8>,
    /// 1 for the states in which a match ends with the input.
    pub end: Vec<u8>,
}

impl Matcher {
    /// Whether `text` matches: a walk over its bytes (a byte outside ASCII never matches).
    pub fn matches(&self, text: &str) -> bool {
        let mut state = 0usize;
        for b in text.bytes() {
            if b >= 128 {
                return false;
            }
            let next = self.next[state * self.width as usize + self.classes[b as usize] as usize];
            let Ok(next) = usize::try_from(next) else {
                return false;
            };
            if self.hit[next] == 1 {
                return true;
            }
            state = next;
        }
        self.end[state] == 1
    }
}

/// What the sidecar refuses of an HTTP request before any rule, by length (bytes); emitted
/// into every sidecar config (`Limits`), and used by the evaluator as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RequestLimits {
    /// The method.
    pub method: usize,
    /// The request target (path and query).
    pub target: usize,
    /// A header name.
    pub header_name: usize,
    /// A header value (each of a list's).
    pub header_value: usize,
}

/// The limits every sidecar applies (README, "Security model").
pub const REQUEST_LIMITS: RequestLimits = RequestLimits {
    method: 32,
    target: 8192,
    header_name: 256,
    header_value: 8192,
};

/// The egress gateway's own bounds, emitted into `gateway/config.json` (`Limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayLimits {
    /// Seconds to connect to a target.
    pub connect_timeout: u32,
    /// Seconds a tunnel (and a client connection) may be idle either way before it is closed.
    pub idle_timeout: u32,
    /// Connections a listener holds at once (it stops accepting until one closes), as the
    /// sidecar's.
    pub max_connections: u32,
}

/// The limits every gateway applies (README, "Security model").
pub const GATEWAY_LIMITS: GatewayLimits = GatewayLimits {
    connect_timeout: 10,
    idle_timeout: 600,
    max_connections: 8192,
};

/// What a route regex is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchMode {
    /// A path, whole (query excluded).
    WholePath,
    /// A header value, anywhere in it (as FSM).
    Anywhere,
}

impl MatchMode {
    /// The key of a regex's matcher in a sidecar config's `Matchers`: `path:REGEX` or
    /// `value:REGEX`.
    pub fn key(self, regex: &str) -> String {
        match self {
            MatchMode::WholePath => format!("path:{regex}"),
            MatchMode::Anywhere => format!("value:{regex}"),
        }
    }
}

/// Every route regex's matcher, by [`MatchMode::key`].
pub type Matchers = BTreeMap<String, std::sync::Arc<Matcher>>;

/// One port entry of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyPort {
    pub number: u16,
    pub protocol: Protocol,
}

/// An Egress policy that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub provenance: Provenance,
    /// Sorted, without duplicates.
    pub sources: Vec<Identity>,
    pub ports: Vec<PolicyPort>,
    /// Sorted, without duplicates.
    pub hosts: Vec<HostPattern>,
    /// Sorted, without duplicates; empty means any address.
    pub cidrs: Vec<Cidr>,
    /// The routes of its HTTPRouteGroups (sorted, without duplicates); `None` when it names
    /// none, so that any request is allowed.
    pub routes: Option<std::sync::Arc<Vec<Route>>>,
    pub connection_settings: Option<ConnectionSettings>,
}

/// An in-mesh destination: a Service's clusterIP and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeshDestination {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// `namespace/name` of the Service.
    pub service: String,
}

/// A global egress gateway, resolved against its Service and the MeshConfig.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayTarget {
    pub service: String,
    pub namespace: String,
    /// 0 or absent in the input means 100, as in FSM.
    pub weight: u32,
    /// The Service's port, else `egressGateway.port`.
    pub port: u16,
    /// The Service's numeric targetPort, else `port`.
    pub listen_port: u16,
    /// The Service's annotation, else the MeshConfig's mode.
    pub mode: GatewayMode,
    /// Whether the Service is in the inputs, and the pods it selects.
    pub service_in_inputs: bool,
    pub selector: BTreeMap<String, String>,
}

/// The port the sidecar listens on (FSM's outbound port), and the proxy's uid.
pub const SIDECAR_PORT: u16 = 15001;
pub const PROXY_UID: u32 = 1500;

/// The resolvers workload DNS may reach (UDP and TCP port 53, TCP without the sidecar); every
/// other UDP datagram (and every other protocol but TCP) leaving the workload is dropped, and
/// TCP to port 53 of another address goes to the sidecar (README, "Security model").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DnsResolvers {
    /// Named by `--dns`.
    Flag(Vec<Ipv4Addr>),
    /// The clusterIP of the Service `kube-system/kube-dns` in the inputs.
    KubeDns(Ipv4Addr),
    /// Neither: the IPv4 nameservers of the pod's own `/etc/resolv.conf`, which
    /// `iptables/init.sh` reads when the pod starts (none: no DNS leaves).
    #[default]
    PodResolvConf,
}

/// What `check` hands on: everything lowering needs, already resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    pub settings: Settings,
    /// Every ServiceAccount in the inputs.
    pub service_accounts: Vec<Identity>,
    /// Egress policies without errors, in input order.
    pub policies: Vec<Policy>,
    pub mesh: Vec<MeshDestination>,
    pub gateways: Vec<GatewayTarget>,
    pub dns: DnsResolvers,
    /// The matcher of every route regex of the HTTPRouteGroups.
    pub matchers: Matchers,
    /// How the gateway authenticates tunnels (`--gateway-auth`, `--trust-domain`).
    pub auth: GatewayAuth,
    /// The mesh's enforcement (MeshConfig annotations), and each annotated ServiceAccount's.
    pub observe: (Observe, BTreeMap<Identity, Observe>),
}

/// What the user tells `check` beyond the inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckOptions {
    /// Egress policies without a MeshConfig are an error.
    pub require_meshconfig: bool,
    /// `--strict`: a MeshConfig key FSM does not define is an error (`E0109`, not `W0412`).
    pub strict: bool,
    /// The cluster's Service CIDRs (`--service-cidr`).
    pub service_cidrs: Vec<Cidr>,
    /// The DNS resolvers workload DNS (UDP and TCP port 53) may reach (`--dns`); empty: see [`DnsResolvers`].
    pub dns: Vec<Ipv4Addr>,
    /// `--gateway-auth`, `--trust-domain`.
    pub auth: GatewayAuth,
}
