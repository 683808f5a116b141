//! `--grafana-dashboard`: the Grafana dashboard of the proxies' metrics (README, "Metrics") as a
//! ConfigMap labelled `grafana_dashboard: "1"`, which the dashboard sidecar of
//! kube-prometheus-stack's Grafana loads. The dashboard itself is `templates/grafana/egressc.json`.

use crate::emit::kubernetes::objects::meta;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// The dashboard's JSON (Grafana's dashboard model).
pub const DASHBOARD: &str = include_str!("../../../templates/grafana/egressc.json");

/// The ConfigMap `egressc-dashboard` in `namespace`.
pub fn config_map(namespace: &str) -> ConfigMap {
    let mut metadata = meta(
        "egressc-dashboard",
        namespace,
        &[
            ("app.kubernetes.io/component", "dashboard"),
            ("grafana_dashboard", "1"),
        ],
    );
    metadata.annotations = Some(BTreeMap::from([(
        "grafana_folder".to_owned(),
        "egressc".to_owned(),
    )]));
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            "egressc.json".to_owned(),
            DASHBOARD.to_owned(),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dashboard_is_json_with_panels() {
        let d: serde_json::Value = serde_json::from_str(super::DASHBOARD).unwrap();
        assert!(d["panels"].as_array().is_some_and(|p| p.len() >= 5));
    }
}
