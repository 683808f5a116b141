//! Rules across policies: one protocol per identity and port (E0315), and policies that
//! another already contains (W0405). Both index the policies by (identity, port), so that the
//! work grows with the number of policies that share one.

use crate::check::egress::ValidEgress;
use crate::diagnostics::{Code, Diagnostic};
use crate::load::loaded::Loaded;
use crate::model::{Identity, Protocol, ProtocolClass};
use crate::net::{Cidr, HostPattern};
use crate::path;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub fn check_port_protocols(inputs: &Loaded, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
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

/// Whether every item of sorted `a` is in sorted `b`.
fn is_subset<T: Ord>(a: &[T], b: &[T]) -> bool {
    let mut rest = b;
    a.iter().all(|x| match rest.binary_search(x) {
        Ok(i) => {
            rest = &rest[i + 1..];
            true
        }
        Err(_) => false,
    })
}

/// Whether every connection `a` allows is also allowed by `b` (same protocol per port,
/// same matches; routes not compared).
fn contained(a: &ValidEgress, b: &ValidEgress) -> bool {
    let (pa, pb) = (&a.policy, &b.policy);
    if !is_subset(&pa.sources, &pb.sources) || a.matches != b.matches {
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

/// What a containing policy must have at one place: any host (or address), or this
/// pattern. Borrowed from the policies: the index allocates no strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Cover<'a> {
    Any,
    Exact(&'a str),
    Wildcard(&'a str),
    Cidr(Cidr),
}

fn cover_of(h: &HostPattern) -> Cover<'_> {
    match h {
        HostPattern::Exact(n) => Cover::Exact(n),
        HostPattern::Wildcard(s) => Cover::Wildcard(s),
    }
}

/// The keys a policy is indexed under: each of its hosts (or `Any`), and each of its CIDRs
/// (or `Any`), for the two indexes.
fn index_keys<'a>(v: &'a ValidEgress) -> (Vec<Cover<'a>>, Vec<Cover<'a>>) {
    let hosts = if v.policy.hosts.is_empty() {
        vec![Cover::Any]
    } else {
        v.policy.hosts.iter().map(cover_of).collect()
    };
    let cidrs = if v.policy.cidrs.is_empty() {
        vec![Cover::Any]
    } else {
        v.policy.cidrs.iter().copied().map(Cover::Cidr).collect()
    };
    (hosts, cidrs)
}

/// The keys under which a policy that contains `h` may be found: `Any`, `h` itself, and every
/// wildcard that covers it (one per label of the name). The lookup only proposes candidates.
fn host_covers(h: &HostPattern) -> Vec<Cover<'_>> {
    let mut out = vec![Cover::Any, cover_of(h)];
    let (HostPattern::Exact(name) | HostPattern::Wildcard(name)) = h;
    let mut rest = name.as_str();
    if let HostPattern::Exact(_) = h {
        out.push(Cover::Wildcard(rest));
    }
    while let Some((_, tail)) = rest.split_once('.') {
        out.push(Cover::Wildcard(tail));
        rest = tail;
    }
    out
}

/// The keys under which a policy whose CIDRs contain `c` may be found: `Any` and every
/// prefix of `c` up to its own length.
fn cidr_covers(c: &Cidr) -> Vec<Cover<'static>> {
    let mut out = vec![Cover::Any];
    for len in 0..=c.0.network_length() {
        if let Ok(n) = cidr::Ipv4Inet::new(c.0.first_address(), len) {
            out.push(Cover::Cidr(Cidr(n.network())));
        }
    }
    out
}

/// W0405: a policy that another one contains.
fn redundant(inputs: &Loaded, a: &ValidEgress, b: &ValidEgress, same: bool) -> Diagnostic {
    let (an, bn) = (&a.policy.provenance.policy, &b.policy.provenance.policy);
    let msg = if same {
        format!("Egress `{an}` duplicates `{bn}`")
    } else {
        format!("Egress `{an}` allows nothing that `{bn}` does not already allow")
    };
    Diagnostic::new(Code::W0405, msg)
        .at(inputs.doc(a.res).span(path!["metadata", "name"]))
        .related(
            inputs.doc(b.res).span(path!["metadata", "name"]),
            "the wider policy",
        )
        .help("remove the redundant policy, or narrow the wider one")
}

/// W0405. Identical policies are grouped first (the later ones duplicate the first); the
/// others look up only the policies that could contain them (same source and port, and a
/// host or CIDR that covers their first one), so that the work stays near-linear even when
/// thousands of policies share one identity and port.
pub fn check_redundant(inputs: &Loaded, valid: &[ValidEgress], diags: &mut Vec<Diagnostic>) {
    let distinct = report_duplicates(inputs, valid, diags);
    // The policies of each source; each policy is looked up among those of its first source
    // (a containing policy has every source it has), one source at a time: only one source's
    // index is in memory.
    let mut by_source: BTreeMap<&Identity, Vec<usize>> = BTreeMap::new();
    for &i in &distinct {
        for s in &valid[i].policy.sources {
            by_source.entry(s).or_default().push(i);
        }
    }
    let mut index = SourceIndex::default();
    for (s, members) in &by_source {
        index.fill(valid, members);
        for &i in members {
            if valid[i].policy.sources.first() != Some(*s) {
                continue;
            }
            if let Some((j, same)) = index.container(valid, i) {
                diags.push(redundant(inputs, &valid[i], &valid[j], same));
            }
        }
    }
}

/// Reports every policy identical to an earlier one; the indices of the others, in order.
fn report_duplicates(
    inputs: &Loaded,
    valid: &[ValidEgress],
    diags: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    type Canon<'a> = (
        &'a [Identity],
        Vec<(u16, Protocol)>,
        &'a [HostPattern],
        &'a [Cidr],
        &'a [(&'a str, &'a str)],
    );
    let mut first: HashMap<Canon, usize> = HashMap::new();
    let mut distinct = Vec::new();
    for (i, v) in valid.iter().enumerate() {
        let p = &v.policy;
        let mut ports: Vec<(u16, Protocol)> =
            p.ports.iter().map(|p| (p.number, p.protocol)).collect();
        ports.sort_unstable();
        ports.dedup();
        let canon: Canon = (
            &p.sources[..],
            ports,
            &p.hosts[..],
            &p.cidrs[..],
            &v.matches[..],
        );
        match first.get(&canon) {
            Some(&j) => diags.push(redundant(inputs, v, &valid[j], true)),
            None => {
                first.insert(canon, i);
                distinct.push(i);
            }
        }
    }
    distinct
}

type Index<'a> = Vec<((u16, Cover<'a>), usize)>;

/// The policies of one source in two sorted lists of (port, cover, policy): by host and by
/// CIDR.
#[derive(Default)]
struct SourceIndex<'a> {
    by_host: Index<'a>,
    by_cidr: Index<'a>,
}

impl<'a> SourceIndex<'a> {
    /// Index `members` (replacing what was indexed before).
    fn fill(&mut self, valid: &'a [ValidEgress], members: &[usize]) {
        self.by_host.clear();
        self.by_cidr.clear();
        for &i in members {
            let v = &valid[i];
            let (hosts, cidrs) = index_keys(v);
            for p in &v.policy.ports {
                self.by_host
                    .extend(hosts.iter().map(|h| ((p.number, *h), i)));
                self.by_cidr
                    .extend(cidrs.iter().map(|c| ((p.number, *c), i)));
            }
        }
        self.by_host.sort_unstable();
        self.by_cidr.sort_unstable();
    }

    /// The first indexed policy that contains policy `i`, and whether the two are equal in
    /// effect (distinct policies that contain each other: only the later is reported).
    fn container(&self, valid: &'a [ValidEgress], i: usize) -> Option<(usize, bool)> {
        let a = &valid[i];
        let p = a.policy.ports.first()?;
        let only_tcp = a
            .policy
            .ports
            .iter()
            .all(|p| p.protocol.class() == ProtocolClass::Tcp);
        let (index, covers) = match (only_tcp, a.policy.hosts.first(), a.policy.cidrs.first()) {
            (false, Some(h), _) => (&self.by_host, host_covers(h)),
            (false, None, _) => (&self.by_host, vec![Cover::Any]),
            (true, _, Some(c)) => (&self.by_cidr, cidr_covers(c)),
            (true, _, None) => (&self.by_cidr, vec![Cover::Any]),
        };
        let mut candidates: Vec<usize> = covers
            .into_iter()
            .flat_map(|c| lookup(index, &(p.number, c)).iter().map(|(_, j)| *j))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().find_map(|j| {
            if j == i || !contained(a, &valid[j]) {
                return None;
            }
            let same = contained(&valid[j], a);
            (!(same && j > i)).then_some((j, same))
        })
    }
}

/// The entries of `index` under `key`.
fn lookup<'i, 'a>(index: &'i Index<'a>, key: &(u16, Cover<'a>)) -> &'i [((u16, Cover<'a>), usize)] {
    let start = index.partition_point(|(k, _)| k < key);
    let end = start + index[start..].partition_point(|(k, _)| k == key);
    &index[start..end]
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
