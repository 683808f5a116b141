//! Typed input kinds (serde + schemars). Field names and shapes follow FSM's Go types
//! (`pkg/apis/policy/v1alpha1`, `pkg/apis/config/v1alpha3`) and SMI specs v1alpha4.
//!
//! Strictness follows what a typo costs (README, "What is read, and how strictly"): the `spec`
//! of Egress, EgressGateway, HTTPRouteGroup and UpstreamTrafficSetting rejects unknown fields;
//! MeshConfig, Service and ServiceAccount accept every field and type only what egressc reads.

mod egress;
mod gateway;
mod mesh_config;
mod route_group;
mod service;
mod upstream;

pub use egress::*;
pub use gateway::*;
pub use mesh_config::*;
pub use route_group::*;
pub use service::*;
pub use upstream::*;

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
#[allow(
    dead_code,
    reason = "typed so that the schema describes it; egressc does not read it"
)]
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
