//! Stage 3: semantic rules over the typed inputs, one file per rule family. Each rule has a
//! stable code (see `diagnostics::codes`); every problem is reported, none stops the others.
//! `check` returns what it resolved (`model::Checked`) for lowering.

pub mod common;
pub mod egress;
pub mod gateways;
pub mod matcher;
pub mod matches;
pub mod mesh_config;
pub mod names;
pub mod observe;
pub mod overlap;
pub mod regex;
pub mod routes;
pub mod services;

use crate::diagnostics::Diagnostic;
use crate::load::loaded::Loaded;
use crate::model::{CheckOptions, Checked, Identity};

/// Check the inputs; the resolved mesh holds every policy that passed its checks.
pub fn check(inputs: &Loaded, options: &CheckOptions) -> (Checked, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    names::check_names(inputs, &mut diags);
    names::check_singletons(inputs, &mut diags);
    let mesh = services::check_services(inputs, options, &mut diags);
    let settings = mesh_config::check_mesh_config(inputs, options, &mut diags);
    let (route_groups, matchers) = routes::check_route_groups(inputs, &mut diags);
    let targets = matches::Targets {
        route_groups,
        upstream_settings: routes::check_upstream_settings(inputs, &mut diags),
    };
    let gateways = gateways::check_gateways(inputs, &settings, &mut diags);
    gateways::check_gateway_auth(inputs, &gateways, &options.auth, &mut diags);
    let valid = egress::check_egresses(inputs, &targets, &mut diags);
    overlap::check_port_protocols(inputs, &valid, &mut diags);
    overlap::check_redundant(inputs, &valid, &mut diags);
    let checked = Checked {
        settings,
        service_accounts: inputs
            .service_accounts
            .iter()
            .map(|sa| Identity {
                namespace: sa.ns().to_owned(),
                name: sa.name().to_owned(),
            })
            .collect(),
        policies: valid.into_iter().map(|v| v.policy).collect(),
        mesh,
        gateways,
        dns: services::dns_resolvers(inputs, options),
        matchers,
        auth: options.auth.clone(),
        observe: observe::check_observe(inputs, options, &mut diags),
    };
    (checked, diags)
}
