//! The PipyJS codebases, rendered from minijinja templates in `templates/`.
//!
//! The templates receive only constants (egressc's version, the sidecar port): the scripts are
//! the same bytes for every input, and every value from the YAML reaches them as JSON config.

use minijinja::{Environment, UndefinedBehavior, context, syntax::SyntaxConfig};

pub use crate::model::{PROXY_UID, SIDECAR_PORT};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "sidecar/main.js",
        include_str!("../../templates/sidecar/main.js"),
    ),
    (
        "sidecar/decide.js",
        include_str!("../../templates/sidecar/decide.js"),
    ),
    (
        "sidecar/rules.js",
        include_str!("../../templates/sidecar/rules.js"),
    ),
    (
        "sidecar/clock.js",
        include_str!("../../templates/sidecar/clock.js"),
    ),
    (
        "sidecar/files.js",
        include_str!("../../templates/sidecar/files.js"),
    ),
    (
        "sidecar/spiffe.js",
        include_str!("../../templates/sidecar/spiffe.js"),
    ),
    (
        "sidecar/tls.js",
        include_str!("../../templates/sidecar/tls.js"),
    ),
    (
        "sidecar/decisions.js",
        include_str!("../../templates/sidecar/decisions.js"),
    ),
    (
        "sidecar/metrics.js",
        include_str!("../../templates/sidecar/metrics.js"),
    ),
    (
        "sidecar/tunnel.js",
        include_str!("../../templates/sidecar/tunnel.js"),
    ),
    (
        "sidecar/bodies.js",
        include_str!("../../templates/sidecar/bodies.js"),
    ),
    (
        "gateway/main.js",
        include_str!("../../templates/gateway/main.js"),
    ),
    (
        "gateway/admit.js",
        include_str!("../../templates/gateway/admit.js"),
    ),
    (
        "iptables/init.sh",
        include_str!("../../templates/iptables/init.sh"),
    ),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("syntax config"),
    );
    for (name, text) in TEMPLATES {
        env.add_template(name, text).expect("templates parse");
    }
    env
}

/// Render one template by its path under `templates/`.
pub fn render(name: &str) -> Vec<u8> {
    let env = environment();
    let tmpl = env.get_template(name).expect("known template");
    tmpl.render(context! {
        version => env!("CARGO_PKG_VERSION"),
        sidecar_port => SIDECAR_PORT,
    })
    .expect("templates render")
    .into_bytes()
}

/// Every script file, by output path.
pub fn sidecar_files() -> Vec<(String, Vec<u8>)> {
    [
        "sidecar/main.js",
        "sidecar/decide.js",
        "sidecar/rules.js",
        "sidecar/clock.js",
        "sidecar/files.js",
        "sidecar/spiffe.js",
        "sidecar/tls.js",
        "sidecar/tunnel.js",
        "sidecar/bodies.js",
        "sidecar/decisions.js",
        "sidecar/metrics.js",
    ]
    .into_iter()
    .map(|p| (p.to_owned(), render(p)))
    .collect()
}

/// The gateway's codebase: its own script, and the decision and file helpers it shares with
/// the sidecar (DNS names, host patterns; reading its config).
pub fn gateway_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("gateway/main.js".into(), render("gateway/main.js")),
        ("gateway/admit.js".into(), render("gateway/admit.js")),
        ("gateway/decide.js".into(), render("sidecar/decide.js")),
        ("gateway/files.js".into(), render("sidecar/files.js")),
        ("gateway/spiffe.js".into(), render("sidecar/spiffe.js")),
        ("gateway/tls.js".into(), render("sidecar/tls.js")),
        ("gateway/metrics.js".into(), render("sidecar/metrics.js")),
    ]
}
