//! Typed input kinds (serde + schemars). Field names and shapes follow FSM's Go types
//! (`pkg/apis/policy/v1alpha1`, `pkg/apis/config/v1alpha3`) and SMI specs v1alpha4.
//!
//! Strictness follows design §2: the `spec` of Egress, EgressGateway, HTTPRouteGroup and
//! UpstreamTrafficSetting rejects unknown fields; MeshConfig, Service and ServiceAccount accept
//! every field and type only what egressc reads.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The kinds egressc reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    MeshConfig,
    Egress,
    EgressGateway,
    UpstreamTrafficSetting,
    HTTPRouteGroup,
    Service,
    ServiceAccount,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::MeshConfig,
        Kind::Egress,
        Kind::EgressGateway,
        Kind::UpstreamTrafficSetting,
        Kind::HTTPRouteGroup,
        Kind::Service,
        Kind::ServiceAccount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::MeshConfig => "MeshConfig",
            Kind::Egress => "Egress",
            Kind::EgressGateway => "EgressGateway",
            Kind::UpstreamTrafficSetting => "UpstreamTrafficSetting",
            Kind::HTTPRouteGroup => "HTTPRouteGroup",
            Kind::Service => "Service",
            Kind::ServiceAccount => "ServiceAccount",
        }
    }

    /// API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::MeshConfig => "config.flomesh.io",
            Kind::Egress | Kind::EgressGateway | Kind::UpstreamTrafficSetting => {
                "policy.flomesh.io"
            }
            Kind::HTTPRouteGroup => "specs.smi-spec.io",
            Kind::Service | Kind::ServiceAccount => "",
        }
    }

    /// Accepted versions, newest first.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Kind::MeshConfig => &["v1alpha3", "v1alpha2", "v1alpha1"],
            Kind::HTTPRouteGroup => &["v1alpha4"],
            Kind::Service | Kind::ServiceAccount => &["v1"],
            _ => &["v1alpha1"],
        }
    }

    pub fn api_versions(self) -> Vec<String> {
        self.versions()
            .iter()
            .map(|v| {
                if self.group().is_empty() {
                    (*v).to_owned()
                } else {
                    format!("{}/{}", self.group(), v)
                }
            })
            .collect()
    }

    /// Lower-case file stem for schemas.
    pub fn file_stem(self) -> String {
        self.name().to_lowercase()
    }

    /// Whether `spec` is required.
    pub fn needs_spec(self) -> bool {
        !matches!(
            self,
            Kind::ServiceAccount | Kind::MeshConfig | Kind::Service
        )
    }
}

/// Kinds of FSM's and SMI's groups that egressc knows of and deliberately skips.
pub const OTHER_KNOWN_KINDS: &[(&str, &str)] = &[
    ("config.flomesh.io", "MeshRootCertificate"),
    ("connector.flomesh.io", "ConsulConnector"),
    ("connector.flomesh.io", "EurekaConnector"),
    ("connector.flomesh.io", "GatewayConnector"),
    ("connector.flomesh.io", "MachineConnector"),
    ("connector.flomesh.io", "NacosConnector"),
    ("connector.flomesh.io", "ZookeeperConnector"),
    ("extension.gateway.flomesh.io", "CircuitBreaker"),
    ("extension.gateway.flomesh.io", "ConcurrencyLimit"),
    ("extension.gateway.flomesh.io", "DNSModifier"),
    ("extension.gateway.flomesh.io", "ExternalRateLimit"),
    ("extension.gateway.flomesh.io", "FaultInjection"),
    ("extension.gateway.flomesh.io", "Filter"),
    ("extension.gateway.flomesh.io", "FilterConfig"),
    ("extension.gateway.flomesh.io", "FilterDefinition"),
    ("extension.gateway.flomesh.io", "HTTPLog"),
    ("extension.gateway.flomesh.io", "IPRestriction"),
    ("extension.gateway.flomesh.io", "ListenerFilter"),
    ("extension.gateway.flomesh.io", "Metrics"),
    ("extension.gateway.flomesh.io", "ProxyTag"),
    ("extension.gateway.flomesh.io", "RateLimit"),
    ("extension.gateway.flomesh.io", "RequestTermination"),
    ("extension.gateway.flomesh.io", "Zipkin"),
    ("gateway.flomesh.io", "BackendLBPolicy"),
    ("gateway.flomesh.io", "HealthCheckPolicy"),
    ("gateway.flomesh.io", "RouteRuleFilterPolicy"),
    ("machine.flomesh.io", "VirtualMachine"),
    ("multicluster.flomesh.io", "Cluster"),
    ("multicluster.flomesh.io", "GlobalTrafficPolicy"),
    ("multicluster.flomesh.io", "ServiceExport"),
    ("multicluster.flomesh.io", "ServiceImport"),
    ("networking.flomesh.io", "NamespacedIngress"),
    ("plugin.flomesh.io", "Plugin"),
    ("plugin.flomesh.io", "PluginChain"),
    ("plugin.flomesh.io", "PluginConfig"),
    ("policy.flomesh.io", "AccessCert"),
    ("policy.flomesh.io", "AccessControl"),
    ("policy.flomesh.io", "IngressBackend"),
    ("policy.flomesh.io", "Isolation"),
    ("policy.flomesh.io", "Retry"),
    ("policy.flomesh.io", "TrafficWarmup"),
    ("specs.smi-spec.io", "TCPRoute"),
    ("specs.smi-spec.io", "UDPRoute"),
    ("access.smi-spec.io", "TrafficTarget"),
    ("split.smi-spec.io", "TrafficSplit"),
    ("traffic.flomesh.io", "HTTPTrafficRule"),
    ("traffic.flomesh.io", "TrafficSplit"),
    ("xnetwork.flomesh.io", "AccessControl"),
    ("xnetwork.flomesh.io", "EIPAdvertisement"),
];

// ---------------------------------------------------------------- metadata

/// The part of Kubernetes' ObjectMeta that egressc reads; other fields are accepted.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    /// A missing namespace means `default`, as with kubectl.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ObjectMeta {
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

// ---------------------------------------------------------------- Egress

/// `policy.flomesh.io/v1alpha1` Egress spec.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSpec {
    /// The workload identities this policy applies to.
    pub sources: Vec<EgressSource>,
    /// Host names (http: Host header; https: SNI). `*.example.com` matches any subdomain.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// IPv4 CIDRs that the original destination address must be inside.
    #[serde(default)]
    pub ip_addresses: Option<Vec<String>>,
    pub ports: Vec<PortSpec>,
    /// HTTPRouteGroup and UpstreamTrafficSetting references (same namespace).
    #[serde(default)]
    pub matches: Option<Vec<TypedLocalObjectReference>>,
}

impl EgressSpec {
    pub fn hosts(&self) -> &[String] {
        self.hosts.as_deref().unwrap_or_default()
    }
    pub fn ip_addresses(&self) -> &[String] {
        self.ip_addresses.as_deref().unwrap_or_default()
    }
    pub fn matches(&self) -> &[TypedLocalObjectReference] {
        self.matches.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSource {
    /// Only `ServiceAccount` is supported.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub mtls: Option<EgressSourceMtls>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSourceMtls {
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub cert: Option<EgressSourceCert>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSourceCert {
    pub sn: i64,
    pub subject_alt_names: Vec<String>,
    pub expiration: String,
    pub secret: SecretReference,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretReference {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    #[schemars(range(min = 1, max = 65535))]
    pub number: i64,
    /// `http`, `https`, `tcp` or `tcp-server-first`.
    pub protocol: String,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedLocalObjectReference {
    #[serde(default)]
    pub api_group: Option<String>,
    pub kind: String,
    pub name: String,
}

// ---------------------------------------------------------------- EgressGateway

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGatewaySpec {
    /// Gateways every egress connection goes through, picked by weight.
    #[serde(default)]
    pub global: Option<Vec<GatewayBindingSubject>>,
}

impl EgressGatewaySpec {
    pub fn global(&self) -> &[GatewayBindingSubject] {
        self.global.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayBindingSubject {
    pub service: String,
    pub namespace: String,
    /// 0 or absent means 100, as in FSM.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
}

// ---------------------------------------------------------------- HTTPRouteGroup

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HTTPRouteGroupSpec {
    pub matches: Vec<HTTPMatch>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HTTPMatch {
    pub name: String,
    #[serde(default)]
    pub methods: Option<Vec<HttpMethod>>,
    /// A regex that must match the whole path (query excluded).
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Header name → value regex. SMI accepts a map or a list of one-entry maps.
    #[serde(default)]
    pub headers: Option<HttpHeaders>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpMethod {
    #[serde(rename = "*")]
    Any,
    GET,
    HEAD,
    PUT,
    POST,
    DELETE,
    CONNECT,
    OPTIONS,
    TRACE,
    PATCH,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Any => "*",
            HttpMethod::GET => "GET",
            HttpMethod::HEAD => "HEAD",
            HttpMethod::PUT => "PUT",
            HttpMethod::POST => "POST",
            HttpMethod::DELETE => "DELETE",
            HttpMethod::CONNECT => "CONNECT",
            HttpMethod::OPTIONS => "OPTIONS",
            HttpMethod::TRACE => "TRACE",
            HttpMethod::PATCH => "PATCH",
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HttpHeaders {
    Map(BTreeMap<String, String>),
    List(Vec<BTreeMap<String, String>>),
}

impl HttpHeaders {
    /// (index in the list or 0, name, value regex), in source order.
    pub fn entries(&self) -> Vec<(Option<usize>, &str, &str)> {
        match self {
            HttpHeaders::Map(m) => m
                .iter()
                .map(|(k, v)| (None, k.as_str(), v.as_str()))
                .collect(),
            HttpHeaders::List(l) => l
                .iter()
                .enumerate()
                .flat_map(|(i, m)| {
                    m.iter()
                        .map(move |(k, v)| (Some(i), k.as_str(), v.as_str()))
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------- UpstreamTrafficSetting

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTrafficSettingSpec {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub connection_settings: Option<ConnectionSettings>,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub rate_limit: Option<serde_json::Value>,
    /// Accepted for compatibility; egressc does not act on it.
    #[serde(default)]
    pub http_routes: Option<Vec<serde_json::Value>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionSettings {
    #[serde(default)]
    pub tcp: Option<TcpConnectionSettings>,
    #[serde(default)]
    pub http: Option<HttpConnectionSettings>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpConnectionSettings {
    #[serde(default)]
    #[schemars(range(min = 0, max = 4294967295u32))]
    pub max_connections: Option<u32>,
    /// A Go duration such as `5s`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub connect_timeout: Option<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpConnectionSettings {
    #[serde(default)]
    pub max_requests: Option<u32>,
    #[serde(default)]
    pub max_requests_per_connection: Option<u32>,
    #[serde(default)]
    pub max_pending_requests: Option<u32>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub circuit_breaking: Option<CircuitBreaking>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreaking {
    pub stat_time_window: String,
    pub min_request_amount: u32,
    pub degraded_time_window: String,
    #[serde(default)]
    pub slow_time_threshold: Option<String>,
    #[serde(default)]
    pub slow_amount_threshold: Option<u32>,
    #[serde(default)]
    pub slow_ratio_threshold: Option<f32>,
    #[serde(default)]
    pub error_amount_threshold: Option<u32>,
    #[serde(default)]
    pub error_ratio_threshold: Option<f32>,
    #[serde(default)]
    pub degraded_status_code: Option<i32>,
    #[serde(default)]
    pub degraded_response_content: Option<String>,
}

// ---------------------------------------------------------------- MeshConfig

/// `config.flomesh.io` MeshConfig spec: only the fields egressc reads are typed.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfigSpec {
    #[serde(default)]
    pub traffic: Option<TrafficSpec>,
    #[serde(default)]
    pub feature_flags: Option<FeatureFlags>,
    #[serde(default)]
    pub sidecar: Option<SidecarSpec>,
    #[serde(default)]
    pub egress_gateway: Option<EgressGatewaySettings>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSpec {
    /// Mesh-wide passthrough to any destination.
    #[serde(default)]
    pub enable_egress: Option<bool>,
    #[serde(default, rename = "outboundIPRangeExclusionList")]
    pub outbound_ip_range_exclusion_list: Option<Vec<String>>,
    #[serde(default, rename = "outboundIPRangeInclusionList")]
    pub outbound_ip_range_inclusion_list: Option<Vec<String>>,
    #[serde(default)]
    pub outbound_port_exclusion_list: Option<Vec<PortNumber>>,
}

/// A port number (1..65535).
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PortNumber(#[schemars(range(min = 1, max = 65535))] pub i64);

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlags {
    /// Egress policies are ignored unless this is true.
    #[serde(default)]
    pub enable_egress_policy: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub sidecar_timeout: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressGatewaySettings {
    /// `http2tunnel` or `sock5` (`socks5` is accepted as the same).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
}

// ---------------------------------------------------------------- Service

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub ports: Option<Vec<ServicePort>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: i64,
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(#[schemars(range(min = 1, max = 65535))] i64),
    Str(String),
}

/// ServiceAccount has nothing egressc reads beyond its metadata.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub struct NoSpec {}
