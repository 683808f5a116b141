//! What an identity may reach: its rules, passthrough, the way out (`explain` without `--to`).

use crate::model::Identity;
use crate::plan::Plan;
use crate::query::eval::rule_ref;
use crate::query::question::{RuleRef, Via};
use serde::Serialize;

/// Everything an identity may reach: its rules, passthrough, gateway.
#[derive(Clone, Debug, Serialize)]
pub struct Reach {
    pub identity: String,
    pub passthrough: bool,
    /// Audit mode: what no rule allows goes out too, logged as `audit`.
    pub audit: bool,
    pub policies_enforced: bool,
    pub rules: Vec<ReachRule>,
    pub via: Vec<Via>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReachRule {
    pub port: u16,
    pub hosts: Vec<String>,
    pub cidrs: Vec<String>,
    pub routes: Option<Vec<String>>,
    #[serde(flatten)]
    pub rule: RuleRef,
}

pub fn reach(plan: &Plan, identity: &Identity) -> Reach {
    let id = plan.identity(identity);
    Reach {
        identity: id.name.clone(),
        passthrough: plan.settings.enable_egress,
        audit: id.observe.audit,
        policies_enforced: plan.settings.enable_egress_policy,
        rules: id
            .rules
            .iter()
            .map(|r| ReachRule {
                port: r.port,
                hosts: r.hosts.iter().map(|h| h.to_string()).collect(),
                cidrs: r.cidrs.iter().map(|c| c.to_string()).collect(),
                routes: r.routes.as_ref().map(|rs| {
                    rs.iter()
                        .map(|rt| {
                            let methods = if rt.methods.is_empty() {
                                "*".to_owned()
                            } else {
                                rt.methods.join(",")
                            };
                            format!("{methods} {}", rt.path)
                        })
                        .collect()
                }),
                rule: rule_ref(r, None),
            })
            .collect(),
        via: crate::query::gateway::via(plan),
    }
}
