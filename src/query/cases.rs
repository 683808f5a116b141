//! `egressc test`: a YAML file of connections and their expected verdicts, checked offline.
//!
//! ```yaml
//! cases:
//! - name: curl may GET /get on httpbin.org   # shown in the report
//!   from: curl/curl                          # namespace/serviceaccount
//!   to: httpbin.org:80                       # HOST_OR_IP:PORT as dialled
//!   sni: httpbin.org                         # optional (https)
//!   http:                                    # optional: the request (http)
//!     host: httpbin.org                      #   default: the name in `to`
//!     authority: httpbin.org                 #   HTTP/2's :authority (cleartext: refused)
//!     method: GET                            #   default: GET
//!     path: /get                             #   default: /
//!     headers: {user-agent: curl}            #   default: none
//!   expect: allowed                          # allowed | denied | in-mesh | passthrough | audit | not-intercepted | needs-address
//!   via: direct                              # optional: direct | http2tunnel | sock5 (socks5)
//! ```

use crate::model::Identity;
use crate::plan::Plan;
use crate::query::eval;
use crate::query::question::{HttpRequest, Outcome, Query, QueryError, Verdict, Via};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub http: Option<HttpCase>,
    pub expect: Outcome,
    #[serde(default)]
    pub via: Option<ViaName>,
}

/// The way out a case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ViaName {
    #[serde(rename = "direct")]
    Direct,
    #[serde(rename = "http2tunnel")]
    Http2Tunnel,
    #[serde(rename = "sock5", alias = "socks5")]
    Socks5,
}

impl ViaName {
    fn as_str(self) -> &'static str {
        match self {
            ViaName::Direct => "direct",
            ViaName::Http2Tunnel => "http2tunnel",
            ViaName::Socks5 => "sock5",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCase {
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP/2's `:authority`: the request is cleartext HTTP/2.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "not-intercepted" => Outcome::NotIntercepted,
            "allowed" => Outcome::Allowed,
            "denied" => Outcome::Denied,
            "in-mesh" => Outcome::InMesh,
            "passthrough" => Outcome::Passthrough,
            "audit" => Outcome::Audit,
            "needs-address" => Outcome::NeedsAddress,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown verdict `{other}`: use allowed, denied, in-mesh, passthrough, audit, not-intercepted or needs-address"
                )));
            }
        })
    }
}

pub fn parse(text: &str) -> Result<CaseFile, QueryError> {
    let file: CaseFile = serde_saphyr::from_str_with_options(text, crate::input::yaml::options())
        .map_err(|e| {
        let text = e.to_string();
        let mut msg = first_line(&text);
        if let Some(pos) = msg.rfind(" at line ") {
            msg = &msg[..pos];
        }
        // The YAML library's own advice names its options, not the user's file.
        if let Some(pos) = msg.find(", set DuplicateKeyPolicy") {
            msg = &msg[..pos];
        }
        QueryError(match e.location() {
            Some(l) => format!("line {}, column {}: {msg}", l.line(), l.column()),
            None => msg.to_owned(),
        })
    })?;
    if file.cases.is_empty() {
        return Err(QueryError(
            "`cases` is empty: a cases file that checks nothing would always pass".into(),
        ));
    }
    Ok(file)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The query of a case; an error for a malformed `to`.
pub fn query(case: &Case) -> Result<Query, QueryError> {
    let identity = Identity::parse(&case.from).map_err(|e| QueryError(format!("from: {e}")))?;
    let (dest, port) = crate::query::question::parse_destination(&case.to)?;
    let http = case.http.as_ref().map(|h| HttpRequest {
        authority: h.authority.clone(),
        ..HttpRequest::new(
            h.host.clone(),
            h.method.clone(),
            h.path.clone(),
            h.headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    });
    Ok(Query {
        identity,
        dest,
        port,
        sni: case.sni.clone(),
        http,
    })
}

fn via_name(v: &Verdict) -> &'static str {
    match v.via.as_deref() {
        Some([Via::Gateway { mode, .. }, ..]) => mode.as_str(),
        _ => "direct",
    }
}

/// One case's result: None when it passes, else the lines of the difference.
pub fn run_case(plan: &Plan, case: &Case) -> Result<Option<Vec<String>>, QueryError> {
    let v = eval::evaluate(plan, &query(case)?);
    let mut diff = Vec::new();
    if v.verdict != case.expect {
        diff.push(format!("- expected: {}", case.expect.as_str()));
        let detail = match &v.allowed_by {
            Some(r) => format!(" (Egress {} at {}:{})", r.policy, r.file, r.line),
            None => format!(" ({})", v.reason),
        };
        diff.push(format!("+ actual:   {}{detail}", v.verdict.as_str()));
    }
    if let Some(want) = case.via {
        let want = want.as_str();
        let got = via_name(&v);
        if v.verdict.is_allowed() && got != want {
            diff.push(format!("- expected via: {want}"));
            diff.push(format!("+ actual via:   {got}"));
        }
    }
    Ok(if diff.is_empty() { None } else { Some(diff) })
}

/// The result of a whole case file (`test --format json`; schemas/test.schema.json).
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
    pub passed: usize,
    pub failed: usize,
}

#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// How the verdict differs from the expected one: `- expected …` and `+ actual …` lines.
    pub difference: Vec<String>,
}

/// Every case of a file, in order.
pub fn run(plan: &Plan, file: &CaseFile) -> Result<TestReport, QueryError> {
    let mut report = TestReport {
        cases: Vec::with_capacity(file.cases.len()),
        passed: 0,
        failed: 0,
    };
    for case in &file.cases {
        let difference = run_case(plan, case)
            .map_err(|e| QueryError(format!("case `{}`: {e}", case.name)))?
            .unwrap_or_default();
        let passed = difference.is_empty();
        if passed {
            report.passed += 1;
        } else {
            report.failed += 1;
        }
        report.cases.push(CaseResult {
            name: case.name.clone(),
            passed,
            difference,
        });
    }
    Ok(report)
}

/// The text report: one `PASS`/`FAIL` line per case (with the difference for a failure) and a
/// closing count.
pub fn render_text(report: &TestReport) -> String {
    let mut out = String::new();
    for case in &report.cases {
        let word = if case.passed { "PASS" } else { "FAIL" };
        out.push_str(&format!("{word} {}\n", case.name));
        for line in &case.difference {
            out.push_str(&format!("     {line}\n"));
        }
    }
    out.push_str(&format!(
        "{} cases passed, {} failed\n",
        report.passed, report.failed
    ));
    out
}

/// The JSON Schema of `test --format json`.
pub fn test_schema() -> serde_json::Value {
    crate::emit::output::output_schema::<TestReport>(
        "egressc:test.schema.json",
        "What `egressc test --format json` writes: each case, passed or not, and the counts.",
    )
}
