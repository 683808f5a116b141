//! `egressc test --replay`: the connections of decision logs (`schemas/decision-log.schema.json`)
//! evaluated against the inputs with the one evaluator, and compared with what was observed.
//! Logs stream: memory grows with the distinct connections, not with the lines.

use crate::emit::decision_log::{DecisionLine, Event, Protocol};
use crate::model::Identity;
use crate::plan::Plan;
use crate::query::eval::verdict;
use crate::query::question::{Dest, HttpRequest, Query};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// The longest path a decision line carries: a path of this length may have been cut.
const PATH_BOUND: usize = 256;
/// The longest log line read (a decision line is far shorter).
const MAX_LINE: u64 = 64 * 1024;

/// One distinct connection of the logs: what the evaluator needs of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Connection {
    pub identity: String,
    pub destination: String,
    /// `tcp`, `tls` or `http`, as the sidecar read it.
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// How often a connection was let through (`allow`, `audit`) and denied, and when (the
/// lines' timestamps, as they are written: first and last in the order of the text).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub let_through: u64,
    pub denied: u64,
    pub lines: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

/// The connections of the logs read so far.
#[derive(Default)]
pub struct Observed {
    pub lines: u64,
    /// Lines that are no decision (other output, `reload`, the gateway's tunnel lines…).
    pub ignored: u64,
    connections: BTreeMap<Connection, Tally>,
}

impl Observed {
    /// Read one log (raw proxy output or `kubectl logs --prefix --timestamps`: a decision is
    /// the JSON from a line's first `{`).
    /// A line longer than MAX_LINE is counted and skipped, so memory stays bounded.
    pub fn read(&mut self, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if buf.len() as u64 > MAX_LINE && buf.last() != Some(&b'\n') {
                self.lines += 1;
                self.ignored += 1;
                // The rest of the line, a bounded piece at a time.
                loop {
                    buf.clear();
                    let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
                    if n == 0 || buf.last() == Some(&b'\n') {
                        break;
                    }
                }
                continue;
            }
            self.add(&String::from_utf8_lossy(&buf));
        }
    }

    fn add(&mut self, line: &str) {
        self.lines += 1;
        let decision = line
            .find('{')
            .and_then(|at| serde_json::from_str::<DecisionLine>(&line[at..]).ok());
        let Some(d) =
            decision.filter(|d| matches!(d.egressc, Event::Allow | Event::Deny | Event::Audit))
        else {
            self.ignored += 1;
            return;
        };
        let (Some(identity), Some(destination)) = (d.identity, d.destination) else {
            self.ignored += 1;
            return;
        };
        let http = d.protocol == Some(Protocol::Http);
        let key = Connection {
            identity,
            destination,
            protocol: match d.protocol {
                Some(Protocol::Http) => "http",
                Some(Protocol::Tls) => "tls",
                _ => "tcp",
            },
            sni: d.sni.filter(|_| d.protocol == Some(Protocol::Tls)),
            host: d.host.filter(|_| http),
            method: d.method.filter(|_| http),
            path: d.path.filter(|_| http),
        };
        let count = d.count.unwrap_or(1);
        let tally = self.connections.entry(key).or_default();
        tally.lines += 1;
        if let Some(t) = timestamp(line) {
            if tally.first.as_ref().is_none_or(|f| t < *f) {
                tally.first = Some(t.clone());
            }
            if tally.last.as_ref().is_none_or(|l| t > *l) {
                tally.last = Some(t);
            }
        }
        if d.egressc == Event::Deny {
            tally.denied += count;
        } else {
            tally.let_through += count;
        }
    }
}

impl Observed {
    /// The distinct connections and their tallies, in order.
    pub fn connections(&self) -> impl Iterator<Item = (&Connection, &Tally)> {
        self.connections.iter()
    }
}

/// The timestamp of a line's prefix: Pipy's `2026-12-03 23:51:15.540` (as `…T…`), or
/// kubectl's `2026-12-03T23:51:15.540123Z`.
fn timestamp(line: &str) -> Option<String> {
    let prefix = &line[..line.find('{')?];
    let mut words = prefix.split_whitespace().skip_while(|w| {
        !(w.len() >= 10 && w.as_bytes()[4] == b'-' && w[..4].bytes().all(|b| b.is_ascii_digit()))
    });
    let date = words.next()?;
    match words.next() {
        Some(time) if !date.contains('T') && time.contains(':') => Some(format!("{date}T{time}")),
        _ => Some(date.to_owned()),
    }
}

/// A connection whose verdict differs from what was observed, or that cannot be decided.
#[derive(Debug, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub connection: Connection,
    /// How many logged decisions it stands for.
    pub count: u64,
    /// `let-through` or `denied`, as logged.
    pub observed: &'static str,
    /// The verdict against the inputs (`undecidable`: the log does not carry enough).
    pub now: String,
    pub reason: String,
}

/// What a replay found.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub lines: u64,
    pub ignored: u64,
    pub connections: usize,
    pub unchanged: usize,
    /// Let through at the time, denied now: the change breaks traffic that was seen.
    pub breaking: Vec<Entry>,
    /// Denied at the time, let through now.
    pub widening: Vec<Entry>,
    pub undecidable: Vec<Entry>,
}

/// The query of a logged connection, or why the log alone cannot decide it.
fn query(plan: &Plan, c: &Connection) -> Result<Query, String> {
    let q = c.query()?;
    if c.path.as_ref().is_some_and(|p| p.len() >= PATH_BOUND) {
        return Err(format!("the path was cut at {PATH_BOUND} characters"));
    }
    let headers = plan.identity(&q.identity).rules.iter().any(|r| {
        r.port == q.port
            && r.routes
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|route| !route.headers.is_empty()))
    });
    if q.http.is_some() && headers {
        return Err("a route of this port needs headers, which the log does not carry".into());
    }
    Ok(q)
}

impl Connection {
    /// The connection as the evaluator's query (an IP destination, and for http the request
    /// the log carries, without headers), or why the log does not give one.
    pub fn query(&self) -> Result<Query, String> {
        let identity = Identity::parse(&self.identity).map_err(|e| format!("identity: {e}"))?;
        let (ip, port) = self
            .destination
            .rsplit_once(':')
            .and_then(|(ip, port)| Some((ip.parse().ok()?, port.parse().ok()?)))
            .ok_or_else(|| format!("`{}` is not address:port", self.destination))?;
        let http = self.method.as_ref().map(|method| {
            HttpRequest::new(
                self.host.clone(),
                Some(method.clone()),
                self.path.clone(),
                Vec::new(),
            )
        });
        Ok(Query {
            identity,
            dest: Dest::Ip(ip),
            port,
            sni: self.sni.clone(),
            http,
        })
    }
}

/// Every distinct connection against `plan`.
pub fn replay(plan: &Plan, observed: &Observed) -> ReplayReport {
    let mut report = ReplayReport {
        lines: observed.lines,
        ignored: observed.ignored,
        connections: observed.connections.len(),
        ..ReplayReport::default()
    };
    for (c, tally) in &observed.connections {
        // A connection logged both ways counts as let through (what the change must keep).
        let (observed_allowed, count) = if tally.let_through > 0 {
            (true, tally.let_through)
        } else {
            (false, tally.denied)
        };
        let entry = |now: String, reason: String| Entry {
            connection: c.clone(),
            count,
            observed: if observed_allowed {
                "let-through"
            } else {
                "denied"
            },
            now,
            reason,
        };
        match query(plan, c) {
            Err(why) => report.undecidable.push(entry("undecidable".into(), why)),
            Ok(q) => {
                let v = verdict(plan, &q);
                let now_allowed = v.verdict.is_allowed();
                let e = entry(v.verdict.as_str().to_owned(), v.reason);
                match (observed_allowed, now_allowed) {
                    (true, false) => report.breaking.push(e),
                    (false, true) => report.widening.push(e),
                    _ => report.unchanged += 1,
                }
            }
        }
    }
    report
}

/// The human report.
pub fn render_text(r: &ReplayReport) -> String {
    let mut s = String::new();
    let mut group = |title: &str, entries: &[Entry]| {
        if entries.is_empty() {
            return;
        }
        s.push_str(&format!("{title}:\n"));
        for e in entries {
            let c = &e.connection;
            let mut what = format!("{} → {}", c.identity, c.destination);
            if let Some(sni) = &c.sni {
                what.push_str(&format!(" (SNI {sni})"));
            }
            if let Some(m) = &c.method {
                let host = c.host.as_deref().unwrap_or("");
                let path = c.path.as_deref().unwrap_or("");
                what.push_str(&format!(" ({m} {host}{path})"));
            }
            s.push_str(&format!(
                "  {what} ×{}: {} now — {}\n",
                e.count, e.now, e.reason
            ));
        }
    };
    group(
        "breaking (let through when logged, denied now)",
        &r.breaking,
    );
    group(
        "widening (denied when logged, let through now)",
        &r.widening,
    );
    group("undecidable from the log", &r.undecidable);
    s.push_str(&format!(
        "{} lines ({} not decisions), {} distinct connections: {} unchanged, {} breaking, {} widening, {} undecidable\n",
        r.lines,
        r.ignored,
        r.connections,
        r.unchanged,
        r.breaking.len(),
        r.widening.len(),
        r.undecidable.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{egress, plan};

    #[test]
    fn a_logged_connection_the_inputs_now_deny_breaks() {
        let p = plan(&egress(
            "  ipAddresses: [10.0.0.0/8]\n  ports: [{number: 5432, protocol: tcp}]\n",
        ));
        let mut o = Observed::default();
        let log = "2026-12-03 [INF] {\"v\":1,\"egressc\":\"audit\",\"identity\":\"ns/a\",\"destination\":\"10.1.2.3:5432\",\"protocol\":\"tcp\",\"count\":3}\n\
2026-12-03 [INF] {\"v\":1,\"egressc\":\"audit\",\"identity\":\"ns/a\",\"destination\":\"203.0.113.9:443\",\"protocol\":\"tls\",\"sni\":\"api.example.com\",\"count\":1}\n\
[pod/x/egressc-sidecar] 2026-12-03T00:00:00Z {\"v\":1,\"egressc\":\"deny\",\"identity\":\"ns/a\",\"destination\":\"10.9.9.9:5432\",\"protocol\":\"tcp\"}\n\
{\"v\":1,\"egressc\":\"audit\",\"identity\":\"ns/a\",\"destination\":\"203.0.113.9:80\",\"protocol\":\"http\",\"host\":\"x.example\",\"method\":\"GET\",\"path\":\"/((300*a))\"}\n\
not a decision\n{\"v\":1,\"egressc\":\"reload\"}\n";
        o.read(log.replace("((300*a))", &"a".repeat(300)).as_bytes())
            .unwrap();
        let r = replay(&p, &o);
        assert_eq!((r.lines, r.ignored, r.connections), (6, 2, 4));
        assert_eq!(r.breaking.len(), 1, "{r:?}");
        assert_eq!(
            r.breaking[0].connection.sni.as_deref(),
            Some("api.example.com")
        );
        assert_eq!(r.widening.len(), 1, "{r:?}");
        assert_eq!(r.undecidable.len(), 1, "{r:?}");
        assert_eq!(r.unchanged, 1);
        assert!(render_text(&r).contains("1 breaking, 1 widening, 1 undecidable"));
    }
}
