//! Rules across policies: one protocol per identity and port (E0315), and policies that
//! another already contains (W0405). Both index the policies by (identity, port), so that the
//! work grows with the number of policies that share one.

use crate::check::egress::ValidEgress;
use crate::diagnostics::{Code, Diagnostic};
use crate::load::inputs::Inputs;
use crate::model::{Identity, Protocol, ProtocolClass};
use crate::path;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub fn check_port_protocols(inputs: &Inputs, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
    // (identity, port) -> (protocol, policy index, port index)
    type Seen<'a> = BTreeMap<(&'a Identity, u16), (Protocol, usize, usize)>;
    let mut seen: Seen = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (pi, v) in valid.iter().enumerate() {
        for (k, port) in v.policy.ports.iter().enumerate() {
            let (number, proto, idx) = (port.number, port.protocol, v.port_index[k]);
            for src in &v.policy.sources {
                match seen.get(&(src, number)) {
                    None => {
                        seen.insert((src, number), (proto, pi, idx));
                    }
                    Some(&(other, opi, oidx)) if other.class() != proto.class() => {
                        if !reported.insert((pi, idx)) {
                            continue;
                        }
                        let first = &valid[opi];
                        diags.push(
                            Diagnostic::new(
                                Code::E0315,
                                format!(
                                    "identity `{src}` gets two protocols on port {number}: {} here and {} in `{}`",
                                    proto.class().as_str(), other.class().as_str(), first.policy.provenance.policy
                                ),
                            )
                            .at(inputs.doc(v.res).span(path!["spec", "ports", idx, "protocol"]))
                            .related(
                                inputs.doc(first.res).span(path!["spec", "ports", oidx, "protocol"]),
                                "the other protocol",
                            )
                            .help("a sidecar decides one protocol per port; use one protocol for this port, or another port"),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// Whether every connection `a` allows is also allowed by `b` (same protocol per port,
/// same matches; routes not compared).
fn contained(a: &ValidEgress, b: &ValidEgress) -> bool {
    let (pa, pb) = (&a.policy, &b.policy);
    if !pa.sources.is_subset(&pb.sources) || a.matches != b.matches {
        return false;
    }
    let b_ports: BTreeSet<(u16, Protocol)> =
        pb.ports.iter().map(|p| (p.number, p.protocol)).collect();
    if !pa
        .ports
        .iter()
        .all(|p| b_ports.contains(&(p.number, p.protocol)))
    {
        return false;
    }
    let only_tcp = pa
        .ports
        .iter()
        .all(|p| p.protocol.class() == ProtocolClass::Tcp);
    let hosts_ok = only_tcp
        || pb.hosts.is_empty()
        || (!pa.hosts.is_empty()
            && pa
                .hosts
                .iter()
                .all(|h| pb.hosts.iter().any(|bh| h.is_covered_by(bh))));
    let cidrs_ok = pb.cidrs.is_empty()
        || (!pa.cidrs.is_empty()
            && pa
                .cidrs
                .iter()
                .all(|c| pb.cidrs.iter().any(|bc| c.is_within(bc))));
    hosts_ok && cidrs_ok
}

pub fn check_redundant(inputs: &Inputs, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
    // Candidates share a source and a port: index by (source, port).
    let mut by_key: HashMap<(&Identity, u16), Vec<usize>> = HashMap::new();
    for (i, v) in valid.iter().enumerate() {
        for s in &v.policy.sources {
            for p in &v.policy.ports {
                by_key.entry((s, p.number)).or_default().push(i);
            }
        }
    }
    for (i, a) in valid.iter().enumerate() {
        let (Some(s), Some(p)) = (a.policy.sources.iter().next(), a.policy.ports.first()) else {
            continue;
        };
        let mut candidates: Vec<usize> = by_key.get(&(s, p.number)).cloned().unwrap_or_default();
        candidates.dedup();
        for j in candidates {
            if i == j || !contained(a, &valid[j]) {
                continue;
            }
            let b = &valid[j];
            let same = contained(b, a);
            // Of two equal policies, report the later one only.
            if same && j > i {
                continue;
            }
            let (an, bn) = (&a.policy.provenance.policy, &b.policy.provenance.policy);
            let msg = if same {
                format!("Egress `{an}` duplicates `{bn}`")
            } else {
                format!("Egress `{an}` allows nothing that `{bn}` does not already allow")
            };
            diags.push(
                Diagnostic::new(Code::W0405, msg)
                    .at(inputs.doc(a.res).span(path!["metadata", "name"]))
                    .related(
                        inputs.doc(b.res).span(path!["metadata", "name"]),
                        "the wider policy",
                    )
                    .help("remove the redundant policy, or narrow the wider one"),
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{enforced, places};

    fn egress(name: &str, hosts: &str, port: &str) -> String {
        format!(
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  sources: [{{kind: ServiceAccount, name: a, namespace: ns}}]\n  hosts: [{hosts}]\n  ports: [{port}]\n"
        )
    }

    #[test]
    fn two_protocols_on_one_port() {
        let yaml = enforced(&format!(
            "{}---\n{}",
            egress("e1", "a.example", "{number: 443, protocol: https}"),
            egress("e2", "a.example", "{number: 443, protocol: http}")
        ));
        assert_eq!(places(&yaml), ["E0315 20:35"]);
    }

    #[test]
    fn a_policy_contained_in_another() {
        let yaml = enforced(&format!(
            "{}---\n{}",
            egress("wide", "'*.example.com'", "{number: 443, protocol: https}"),
            egress(
                "narrow",
                "api.example.com",
                "{number: 443, protocol: https}"
            )
        ));
        assert_eq!(places(&yaml), ["W0405 16:18"]);
    }
}
