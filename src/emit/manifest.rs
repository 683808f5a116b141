//! `manifest.json`: every output file with its digest, the inputs, and egressc's version. The
//! writer recognises an OUT it may replace by it.

use crate::emit::output::sha256_hex;
use serde::Serialize;
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.json";

#[derive(Serialize)]
pub struct Manifest<'a> {
    pub egressc: &'static str,
    /// Sorted by path.
    pub inputs: Vec<InputDigest>,
    pub files: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct InputDigest {
    pub path: String,
    pub sha256: String,
}

/// `files`: every output file but the manifest, with its SHA-256.
pub fn manifest<'a>(
    files: &'a BTreeMap<String, String>,
    inputs: &[(String, &[u8])],
) -> Manifest<'a> {
    let mut ins: Vec<InputDigest> = inputs
        .iter()
        .map(|(p, b)| InputDigest {
            path: p.clone(),
            sha256: sha256_hex(b),
        })
        .collect();
    ins.sort_by(|a, b| a.path.cmp(&b.path));
    Manifest {
        egressc: env!("CARGO_PKG_VERSION"),
        inputs: ins,
        files,
    }
}
