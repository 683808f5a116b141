//! `egressc publish OUT --repo URL`: upload a build's output to a Pipy repo (Pipy's admin REST
//! API, `/api/v1/repo/…` and `/api/v1/repo-files/…`), the way FSM distributes config to its
//! sidecars. One base codebase holds the sidecar scripts and the mesh data
//! (`/PREFIX/_base`), one derived codebase per identity holds its `config.json`
//! (`/PREFIX/NS/SA`, what `pipy http://REPO/repo/PREFIX/NS/SA/` runs), and the gateway has its
//! own (`/PREFIX/_gateway`). `_` cannot start a Kubernetes namespace, so no identity's path
//! can shadow them.
//!
//! The API gives no content hashes, so each codebase carries `egressc-manifest.json` (its
//! path and its files' sha256): only what changed is uploaded. Pipy commits each codebase on
//! its own: everything is uploaded first (staged edits are invisible to clients), then the
//! versions are bumped, base first — a failure before the bumps leaves every published
//! version as it was. Identities gone from OUT are deleted last.

mod safe;

use crate::emit::manifest::MANIFEST;
use crate::emit::output::sha256_hex;
use crate::model::Identity;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The file each codebase carries: its path and its files' hashes.
const CODEBASE_MANIFEST: &str = "egressc-manifest.json";

/// What went wrong: the message names the request or the file.
#[derive(Debug)]
pub struct PublishError(pub String);

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PublishError {}

fn fail(msg: impl Into<String>) -> PublishError {
    PublishError(msg.into())
}

/// One codebase as OUT has it.
#[derive(Debug, PartialEq)]
pub struct Codebase {
    pub path: String,
    pub base: Option<String>,
    /// file name (no leading `/`) → bytes, with the codebase manifest.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The codebases of a build's output, read through its `manifest.json` (every file's hash is
/// checked: a stale or edited OUT is refused).
pub fn codebases(out: &Path, prefix: &str) -> Result<Vec<Codebase>, PublishError> {
    let manifest_path = out.join(MANIFEST);
    let manifest: Value = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            fail(format!(
                "`{}` is not egressc's output (no readable {MANIFEST}); run `egressc build` first",
                out.display()
            ))
        })?;
    let listed: BTreeMap<String, String> = serde_json::from_value(manifest["files"].clone())
        .map_err(|_| fail(format!("{} has no file list", manifest_path.display())))?;
    let mut files = BTreeMap::new();
    for (rel, hash) in &listed {
        if !safe::is_out_path(rel) {
            return Err(fail(format!(
                "{} lists `{}`, which is not a plain path inside OUT; rebuild OUT",
                manifest_path.display(),
                safe::shown(rel)
            )));
        }
        let bytes = std::fs::read(out.join(rel))
            .map_err(|e| fail(format!("cannot read `{}`: {e}", out.join(rel).display())))?;
        if &sha256_hex(&bytes) != hash {
            return Err(fail(format!(
                "`{}` differs from its manifest; rebuild OUT",
                out.join(rel).display()
            )));
        }
        files.insert(rel.clone(), bytes);
    }
    let base = format!("/{prefix}/_base");
    let mut out_cbs = vec![Codebase {
        path: base.clone(),
        base: None,
        files: files
            .iter()
            .filter_map(|(p, b)| Some((p.strip_prefix("sidecar/")?.to_owned(), b.clone())))
            .collect(),
    }];
    for (p, b) in &files {
        let Some(rest) = p.strip_prefix("configs/") else {
            continue;
        };
        let Some((ns, file)) = rest.split_once('/') else {
            continue;
        };
        let sa = file.trim_end_matches(".json");
        if Identity::parse(&format!("{ns}/{sa}")).is_err() {
            return Err(fail(format!(
                "`configs/{}` does not name a namespace and a ServiceAccount; rebuild OUT",
                safe::shown(rest)
            )));
        }
        out_cbs.push(Codebase {
            path: format!("/{prefix}/{ns}/{sa}"),
            base: Some(base.clone()),
            files: BTreeMap::from([("config.json".to_owned(), b.clone())]),
        });
    }
    let gateway: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|(p, b)| Some((p.strip_prefix("gateway/")?.to_owned(), b.clone())))
        .collect();
    if !gateway.is_empty() {
        out_cbs.push(Codebase {
            path: format!("/{prefix}/_gateway"),
            base: None,
            files: gateway,
        });
    }
    for cb in &mut out_cbs {
        let hashes: BTreeMap<&String, String> =
            cb.files.iter().map(|(n, b)| (n, sha256_hex(b))).collect();
        let m = CodebaseManifest {
            codebase: &cb.path,
            files: hashes,
        };
        let mut text = serde_json::to_vec_pretty(&m).expect("json");
        text.push(b'\n');
        cb.files.insert(CODEBASE_MANIFEST.into(), text);
    }
    Ok(out_cbs)
}

/// `egressc-manifest.json` of a published codebase: its path and the digest of each file.
#[derive(Serialize)]
struct CodebaseManifest<'a> {
    codebase: &'a str,
    files: BTreeMap<&'a String, String>,
}

/// The body of a codebase's creation (with its base, for a derived one) and of its commit.
#[derive(Serialize)]
struct CodebaseVersion<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    version: u64,
}

impl CodebaseVersion<'_> {
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("json")
    }
}

/// One change to the repo.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Create {
        codebase: String,
        base: Option<String>,
    },
    Upload {
        codebase: String,
        file: String,
    },
    Delete {
        codebase: String,
        file: String,
    },
    /// Commit: bump the version so that running clients reload.
    Commit {
        codebase: String,
    },
    /// An identity gone from OUT.
    Remove {
        codebase: String,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create {
                codebase,
                base: Some(b),
            } => write!(f, "create  {codebase} (derived from {b})"),
            Step::Create {
                codebase,
                base: None,
            } => write!(f, "create  {codebase}"),
            Step::Upload { codebase, file } => write!(f, "upload  {codebase}/{file}"),
            Step::Delete { codebase, file } => write!(f, "delete  {codebase}/{file}"),
            Step::Commit { codebase } => write!(f, "commit  {codebase}"),
            Step::Remove { codebase } => write!(f, "remove  {codebase}"),
        }
    }
}

/// A Pipy repo's admin API.
pub struct Repo {
    agent: ureq::Agent,
    url: String,
    /// The URL as messages show it: without user and password.
    shown: String,
}

impl Repo {
    pub fn new(url: &str) -> Result<Repo, PublishError> {
        let url = url.trim_end_matches('/').to_owned();
        if !url.starts_with("http://") {
            return Err(fail(format!(
                "`{}` is not an http:// URL (egressc speaks plain HTTP to the repo's admin port)",
                safe::redacted(&url)
            )));
        }
        // Redirects are not followed: a repo that sends egressc elsewhere is refused.
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Repo {
            agent: config.new_agent(),
            shown: safe::redacted(&url),
            url,
        })
    }

    /// The URL as messages show it (without user and password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), PublishError> {
        let uri = format!("{}{path}", self.url);
        let what = || format!("{method} {}{path}", self.shown);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&uri).call(),
            ("DELETE", _) => self.agent.delete(&uri).call(),
            ("POST", b) => self.agent.post(&uri).send(b.unwrap_or_default()),
            ("PATCH", b) => self.agent.patch(&uri).send(b.unwrap_or_default()),
            _ => unreachable!("only the methods above"),
        };
        let mut resp = result.map_err(|e| {
            let e = e.to_string().replace(&self.url, &self.shown);
            fail(format!("{}: {e}", what()))
        })?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let to = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("");
            let elsewhere = safe::host_of(to).is_some_and(|h| Some(h) != safe::host_of(&self.url));
            return Err(fail(format!(
                "{}: HTTP {status}: the repo redirects to `{}`{}; egressc follows no redirect",
                what(),
                safe::shown(&safe::redacted(to)),
                if elsewhere { ", another host" } else { "" }
            )));
        }
        let bytes = resp
            .body_mut()
            .read_to_vec()
            .map_err(|e| fail(format!("{}: {e}", what())))?;
        Ok((status, bytes))
    }

    fn request_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, PublishError> {
        let (status, bytes) = self.request(method, path, body)?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            Err(fail(format!(
                "{method} {}{path}: HTTP {status} {}",
                self.shown,
                safe::shown(String::from_utf8_lossy(&bytes).trim())
            )))
        }
    }

    /// A codebase's info (`version`, `files`, `base`…), or None when it does not exist.
    fn info(&self, codebase: &str) -> Result<Option<Value>, PublishError> {
        let (status, bytes) = self.request("GET", &format!("/api/v1/repo{codebase}"), None)?;
        match status {
            404 => Ok(None),
            200 => Ok(serde_json::from_slice(&bytes).ok()),
            s => Err(fail(format!("GET /api/v1/repo{codebase}: HTTP {s}"))),
        }
    }

    /// The hashes a codebase's own manifest lists (empty when it has none of its own).
    fn published(&self, codebase: &str) -> Result<BTreeMap<String, String>, PublishError> {
        let path = format!("/api/v1/repo-files{codebase}/{CODEBASE_MANIFEST}");
        let (status, bytes) = self.request("GET", &path, None)?;
        if status != 200 {
            return Ok(BTreeMap::new());
        }
        let m: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // A derived codebase reads through to its base's manifest until it has its own.
        if m["codebase"] != codebase {
            return Ok(BTreeMap::new());
        }
        Ok(serde_json::from_value(m["files"].clone()).unwrap_or_default())
    }

    /// Every codebase path in the repo.
    fn list(&self) -> Result<Vec<String>, PublishError> {
        let bytes = self.request_ok("GET", "/api/v1/repo", None)?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect())
    }
}

/// The steps that bring the repo to OUT, in order: creates and uploads, then commits (the
/// base first), then removals.
pub fn steps(repo: &Repo, cbs: &[Codebase], prefix: &str) -> Result<Vec<Step>, PublishError> {
    let mut staged = Vec::new();
    let mut commits = Vec::new();
    for cb in cbs {
        let info = repo.info(&cb.path)?;
        let published = if info.is_some() {
            repo.published(&cb.path)?
        } else {
            staged.push(Step::Create {
                codebase: cb.path.clone(),
                base: cb.base.clone(),
            });
            BTreeMap::new()
        };
        let mut changed = false;
        for (name, bytes) in &cb.files {
            if name == CODEBASE_MANIFEST {
                continue;
            }
            if published.get(name) != Some(&sha256_hex(bytes)) {
                staged.push(Step::Upload {
                    codebase: cb.path.clone(),
                    file: name.clone(),
                });
                changed = true;
            }
        }
        // Files of its own that OUT no longer has (a new base codebase's template main.js).
        let own: BTreeSet<String> = info
            .as_ref()
            .and_then(|i| i["files"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.as_str().map(|s| s.trim_start_matches('/').to_owned()))
            .chain(published.keys().cloned())
            .collect();
        for name in own {
            if !safe::is_file_name(&name) {
                return Err(fail(format!(
                    "the repo lists a file `{}` in {}: not a plain file name, refused",
                    safe::shown(&name),
                    cb.path
                )));
            }
            if !cb.files.contains_key(&name) {
                staged.push(Step::Delete {
                    codebase: cb.path.clone(),
                    file: name,
                });
                changed = true;
            }
        }
        // Edits staged but never committed (a run that failed at its commit): what they
        // hold was compared above as if published; commit them now.
        let pending = info.as_ref().is_some_and(|i| {
            ["editFiles", "erasedFiles"]
                .iter()
                .any(|k| i[*k].as_array().is_some_and(|a| !a.is_empty()))
        });
        if changed || pending || info.is_none() {
            staged.push(Step::Upload {
                codebase: cb.path.clone(),
                file: CODEBASE_MANIFEST.into(),
            });
            commits.push(Step::Commit {
                codebase: cb.path.clone(),
            });
        }
    }
    let wanted: BTreeSet<&str> = cbs.iter().map(|c| c.path.as_str()).collect();
    let removals = repo
        .list()?
        .into_iter()
        .filter(|p| {
            // An identity codebase of this prefix (/PREFIX/NS/SA, an identity as Kubernetes
            // names it: a name the server made up is never deleted), or the gateway's when OUT
            // has none.
            let ours = p
                .strip_prefix(&format!("/{prefix}/"))
                .is_some_and(|rest| rest == "_gateway" || Identity::parse(rest).is_ok());
            ours && !wanted.contains(p.as_str())
        })
        .map(|codebase| Step::Remove { codebase });
    staged.extend(commits);
    staged.extend(removals);
    Ok(staged)
}

/// Carry out the steps (as `steps` orders them).
pub fn apply(repo: &Repo, cbs: &[Codebase], steps: &[Step]) -> Result<(), PublishError> {
    let file = |codebase: &str, name: &str| -> &[u8] {
        &cbs.iter()
            .find(|c| c.path == codebase)
            .and_then(|c| c.files.get(name))
            .expect("a planned file")[..]
    };
    for step in steps {
        match step {
            Step::Create { codebase, base } => {
                let body = CodebaseVersion {
                    base: base.as_deref(),
                    version: 0,
                };
                let (status, bytes) = repo.request(
                    "POST",
                    &format!("/api/v1/repo{codebase}"),
                    Some(&body.to_json()),
                )?;
                let exists = status == 400 && String::from_utf8_lossy(&bytes).contains("exists");
                if !(200..300).contains(&status) && !exists {
                    return Err(fail(format!(
                        "POST /api/v1/repo{codebase}: HTTP {status} {}",
                        String::from_utf8_lossy(&bytes).trim()
                    )));
                }
            }
            Step::Upload {
                codebase,
                file: name,
            } => {
                repo.request_ok(
                    "POST",
                    &format!("/api/v1/repo-files{codebase}/{name}"),
                    Some(file(codebase, name)),
                )?;
            }
            Step::Delete {
                codebase,
                file: name,
            } => {
                repo.request_ok(
                    "DELETE",
                    &format!("/api/v1/repo-files{codebase}/{name}"),
                    None,
                )?;
            }
            Step::Commit { codebase } => {
                // The version must change for polling clients; a base commit also bumps its
                // derived codebases, so read it now.
                let current = repo
                    .info(codebase)?
                    .and_then(|i| i["version"].as_str().and_then(|v| v.parse::<u64>().ok()))
                    .unwrap_or(0);
                let body = CodebaseVersion {
                    base: None,
                    version: current + 1,
                };
                repo.request_ok(
                    "PATCH",
                    &format!("/api/v1/repo{codebase}"),
                    Some(&body.to_json()),
                )?;
            }
            Step::Remove { codebase } => {
                repo.request_ok("DELETE", &format!("/api/v1/repo{codebase}"), None)?;
            }
        }
    }
    Ok(())
}
