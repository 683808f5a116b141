//! The MeshConfig: resolved into `Settings` with FSM's defaults for whatever it leaves out;
//! whether the Egress policies are enforced at all (W0401, W0402, E0108).

use crate::check::common::{cidr, sorted, unknown_mode};
use crate::diagnostics::{Code, Diagnostic};
use crate::load::loaded::Loaded;
use crate::model::{CheckOptions, GatewayMode, Provenance, Settings};
use crate::path;
use crate::span::Span;

/// The MeshConfig's settings, with FSM's defaults for whatever it leaves out.
pub fn check_mesh_config(
    inputs: &Loaded,
    options: &CheckOptions,
    diags: &mut Vec<Diagnostic>,
) -> Settings {
    let mut settings = Settings::default();
    for (i, m) in inputs.mesh_configs.iter().enumerate() {
        let doc = inputs.doc(m);
        let traffic = m.spec.traffic.as_ref();
        let mut lists = [Vec::new(), Vec::new()];
        if let Some(t) = traffic {
            for (k, (field, list)) in [
                (
                    "outboundIPRangeExclusionList",
                    &t.outbound_ip_range_exclusion_list,
                ),
                (
                    "outboundIPRangeInclusionList",
                    &t.outbound_ip_range_inclusion_list,
                ),
            ]
            .into_iter()
            .enumerate()
            {
                for (j, c) in list.iter().flatten().enumerate() {
                    lists[k].extend(cidr(doc, path!["spec", "traffic", field, j], c, diags));
                }
            }
        }
        let gw = m.spec.egress_gateway.as_ref();
        let mut mode = None;
        if let Some(text) = gw.and_then(|g| g.mode.as_deref()) {
            mode = GatewayMode::parse(text);
            if mode.is_none() {
                let span = doc.span(path!["spec", "egressGateway", "mode"]);
                diags.push(unknown_mode(text, span, false));
            }
        }
        unknown_keys(doc, &m.spec.unknown_keys, options.strict, diags);
        passthrough_unset(doc, traffic, diags);
        if i > 0 {
            // A second MeshConfig is an error (E0312); only the first one counts.
            continue;
        }
        let [exclusions, inclusions] = lists;
        let defaults = Settings::default();
        let sidecar = m.spec.sidecar.as_ref();
        settings = Settings {
            enable_egress: traffic
                .and_then(|t| t.enable_egress)
                .unwrap_or(defaults.enable_egress),
            enable_egress_policy: m
                .spec
                .feature_flags
                .as_ref()
                .and_then(|f| f.enable_egress_policy)
                .unwrap_or(defaults.enable_egress_policy),
            log_level: sidecar
                .and_then(|s| s.log_level.clone())
                .unwrap_or(defaults.log_level),
            sidecar_timeout: sidecar
                .and_then(|s| s.sidecar_timeout)
                .unwrap_or(defaults.sidecar_timeout),
            gateway_mode: mode.unwrap_or(defaults.gateway_mode),
            gateway_port: gw
                .and_then(|g| g.port)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(defaults.gateway_port),
            outbound_ip_range_exclusions: sorted(exclusions),
            outbound_ip_range_inclusions: sorted(inclusions),
            outbound_port_exclusions: sorted(
                traffic
                    .and_then(|t| t.outbound_port_exclusion_list.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|p| u16::try_from(p.0).ok())
                    .collect(),
            ),
            mesh_config: Some(Provenance {
                policy: format!("{}/{}", m.ns(), m.name()),
                file: inputs.file_name(doc.file).to_owned(),
                line: doc.start.line,
            }),
        };
    }
    policies_enforced(inputs, options, diags);
    settings
}

/// W0413: a MeshConfig that leaves `traffic.enableEgress` to FSM's default (passthrough on).
fn passthrough_unset(
    doc: &crate::load::loaded::Document,
    traffic: Option<&crate::load::kinds::TrafficSpec>,
    diags: &mut Vec<Diagnostic>,
) {
    if traffic.and_then(|t| t.enable_egress).is_some() {
        return;
    }
    let at = if traffic.is_some() {
        doc.key_span(path!["spec", "traffic"])
    } else {
        doc.key_span(path!["spec"])
    };
    diags.push(
        Diagnostic::new(
            Code::W0413,
            "`traffic.enableEgress` is not set: FSM's default, passthrough on, lets every destination through",
        )
        .at(at)
        .help("set `traffic: {enableEgress: false}` to enforce the Egress policies (FSM's CRD requires the field)"),
    );
}

/// W0412 (E0109 with `--strict`): keys FSM's CRD does not define, with "did you mean".
fn unknown_keys(
    doc: &crate::load::loaded::Document,
    keys: &[crate::load::kinds::UnknownKey],
    strict: bool,
    diags: &mut Vec<Diagnostic>,
) {
    for k in keys {
        let (place, at) = if k.section.is_empty() {
            (
                format!("`spec.{}`", k.key),
                doc.key_span(path!["spec", k.key.as_str()]),
            )
        } else {
            (
                format!("`{}.{}`", k.section, k.key),
                doc.key_span(path!["spec", k.section, k.key.as_str()]),
            )
        };
        let help = match crate::load::schema::closest(&k.key, &k.known) {
            Some(s) => format!("did you mean `{s}`?"),
            None if k.section.is_empty() => {
                "use apiVersion `config.flomesh.io/v1alpha3`, which has it".to_owned()
            }
            None => format!("FSM's {} defines {}", k.version, k.known.join(", ")),
        };
        let what = if k.section.is_empty() {
            "FSM ignores it (egressc reads it as v1alpha3 has it)"
        } else {
            "it is ignored, and FSM's default stays in force"
        };
        let code = if strict { Code::E0109 } else { Code::W0412 };
        diags.push(
            Diagnostic::new(
                code,
                format!(
                    "{place} is not a field of FSM's MeshConfig {}: {what}",
                    k.version
                ),
            )
            .at(at)
            .help(help),
        );
    }
}

/// W0401 and W0402: policies that the MeshConfig switches off, or that restrict nothing.
fn policies_enforced(inputs: &Loaded, options: &CheckOptions, diags: &mut Vec<Diagnostic>) {
    if inputs.egresses.is_empty() {
        return;
    }
    let restrict_nothing = |span: Option<Span>, message: &str| {
        let d = Diagnostic::new(Code::W0402, message)
            .help("set `traffic.enableEgress: false` to enforce the policies");
        match span {
            Some(s) => d.at(s),
            None => d.help(
                "add the MeshConfig with `traffic.enableEgress: false` to enforce the policies",
            ),
        }
    };
    let Some(m) = inputs.mesh_configs.first() else {
        if options.require_meshconfig {
            diags.push(
                Diagnostic::new(
                    Code::E0108,
                    format!(
                        "{} Egress polic{} but no MeshConfig: FSM's defaults would apply, with passthrough on",
                        inputs.egresses.len(),
                        if inputs.egresses.len() == 1 { "y" } else { "ies" }
                    ),
                )
                .help("add the MeshConfig (`fsm-mesh-config`) to the inputs; with `traffic.enableEgress: false` the policies are enforced"),
            );
            return;
        }
        diags.push(restrict_nothing(
            None,
            "Egress policies restrict nothing: there is no MeshConfig, so FSM's defaults apply and `traffic.enableEgress: true` lets every destination through",
        ));
        return;
    };
    let doc = inputs.doc(m);
    if m.spec
        .feature_flags
        .as_ref()
        .and_then(|f| f.enable_egress_policy)
        == Some(false)
    {
        let n = inputs.egresses.len();
        diags.push(
            Diagnostic::new(
                Code::W0401,
                format!(
                    "{n} Egress polic{} will be ignored: `featureFlags.enableEgressPolicy` is false",
                    if n == 1 { "y" } else { "ies" }
                ),
            )
            .at(doc.span(path!["spec", "featureFlags", "enableEgressPolicy"]))
            .help("set it to true to apply the policies, or remove the policies"),
        );
    }
    let enable_egress = m.spec.traffic.as_ref().and_then(|t| t.enable_egress);
    if enable_egress != Some(false) {
        let span = match enable_egress {
            Some(_) => doc.span(path!["spec", "traffic", "enableEgress"]),
            None => doc.span(path!["spec"]),
        };
        diags.push(restrict_nothing(
            Some(span),
            "Egress policies restrict nothing while `traffic.enableEgress` is true: every destination is let through",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::plan;

    #[test]
    fn settings_default_to_fsm_and_sort_lists() {
        let p = plan("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ns}\n");
        assert!(p.settings.enable_egress && p.settings.enable_egress_policy);
        assert_eq!(
            (p.settings.gateway_port, p.settings.sidecar_timeout),
            (1080, 60)
        );
        let p = plan(
            "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: m, namespace: fsm}\nspec:\n  traffic:\n    outboundIPRangeExclusionList: [10.0.0.0/8, 1.0.0.0/8, 10.0.0.0/8]\n    outboundPortExclusionList: [22, 7, 22]\n",
        );
        let ex: Vec<String> = p
            .settings
            .outbound_ip_range_exclusions
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(ex, ["1.0.0.0/8", "10.0.0.0/8"]);
        assert_eq!(p.settings.outbound_port_exclusions, [7, 22]);
    }
}
