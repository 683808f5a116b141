//! A throwaway PKI made with the `openssl` command, laid out as cert-manager's
//! csi-driver-spiffe lays out a pod's volume: `tls.crt` (the leaf), `tls.key`, `ca.crt`.
//! Everything is readable by the proxy uid (the volume's fs-group does that in a cluster).
//! Self-contained: the runtime benchmark uses it too (`#[path]`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a command that must succeed.
pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Pki {
    pub dir: PathBuf,
}

/// The SPIFFE ID of a ServiceAccount in the default trust domain.
pub fn spiffe(ns: &str, sa: &str) -> String {
    format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")
}

impl Pki {
    /// A PKI under `dir` with the certificate authorities `mesh` (the cluster's) and
    /// `foreign` (another's).
    pub fn new(dir: &Path) -> Pki {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.authority("mesh");
        pki.authority("foreign");
        pki
    }

    /// A new certificate authority `name` (its folder holds ca.key and ca.crt).
    pub fn authority(&self, name: &str) -> PathBuf {
        let ca = self.dir.join(format!("ca-{name}"));
        std::fs::create_dir_all(&ca).unwrap();
        key(&ca.join("ca.key"));
        run_ok(
            Command::new("openssl")
                .args(["req", "-x509", "-new", "-days", "2"])
                .arg("-key")
                .arg(ca.join("ca.key"))
                .args(["-subj", &format!("/O=egressc e2e CA {name}")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-out")
                .arg(ca.join("ca.crt")),
        );
        std::fs::write(ca.join("index.txt"), "").unwrap();
        std::fs::write(ca.join("serial"), "01\n").unwrap();
        ca
    }

    /// The trust bundle of certificate authorities, as one ca.crt.
    pub fn bundle(&self, authorities: &[&str]) -> String {
        authorities
            .iter()
            .map(|a| std::fs::read_to_string(self.dir.join(format!("ca-{a}/ca.crt"))).unwrap())
            .collect()
    }

    /// A folder `name` with a leaf of `uri` (a SAN such as `URI:spiffe://…`) issued by `ca`,
    /// valid from `dates` (`YYYYMMDDHHMMSSZ` start and end) or for a day, and the bundle of
    /// `ca` as ca.crt.
    pub fn issue(&self, name: &str, ca: &str, san: &str, dates: Option<(&str, &str)>) -> PathBuf {
        let out = self.dir.join(name);
        std::fs::create_dir_all(&out).unwrap();
        let work = self.dir.join(format!("{name}.work"));
        std::fs::create_dir_all(&work).unwrap();
        let authority = self.dir.join(format!("ca-{ca}"));
        key(&work.join("tls.key"));
        run_ok(
            Command::new("openssl")
                .args(["req", "-new", "-subj", "/O=egressc e2e"])
                .arg("-key")
                .arg(work.join("tls.key"))
                .arg("-out")
                .arg(work.join("req.csr")),
        );
        let config = format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {a}/index.txt\nnew_certs_dir = {w}\nserial = {a}/serial\n\
default_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = none\n[p]\norganizationName = optional\n\
[ext]\nsubjectAltName = {san}\nkeyUsage = critical, digitalSignature, keyEncipherment\n\
extendedKeyUsage = serverAuth, clientAuth\nbasicConstraints = critical, CA:FALSE\n",
            a = authority.display(),
            w = work.display(),
        );
        std::fs::write(work.join("ca.cnf"), config).unwrap();
        let mut cmd = Command::new("openssl");
        cmd.args(["ca", "-batch", "-notext", "-extensions", "ext"])
            .arg("-config")
            .arg(work.join("ca.cnf"))
            .arg("-cert")
            .arg(authority.join("ca.crt"))
            .arg("-keyfile")
            .arg(authority.join("ca.key"))
            .arg("-in")
            .arg(work.join("req.csr"))
            .arg("-out")
            .arg(work.join("tls.crt"));
        match dates {
            Some((start, end)) => cmd.args(["-startdate", start, "-enddate", end]),
            None => cmd.args(["-days", "1"]),
        };
        run_ok(&mut cmd);
        std::fs::write(work.join("ca.crt"), self.bundle(&[ca])).unwrap();
        // As csi-driver-spiffe swaps its files in: each one whole, by rename.
        for f in ["tls.key", "tls.crt", "ca.crt"] {
            std::fs::rename(work.join(f), out.join(f)).unwrap();
        }
        let _ = std::fs::remove_dir_all(&work);
        readable(&self.dir);
        out
    }

    /// Replace `folder`'s ca.crt with a bundle of `authorities`.
    pub fn trust(&self, folder: &Path, authorities: &[&str]) {
        let tmp = folder.with_extension("ca.tmp");
        std::fs::write(&tmp, self.bundle(authorities)).unwrap();
        std::fs::rename(&tmp, folder.join("ca.crt")).unwrap();
        readable(&self.dir);
    }
}

fn key(path: &Path) {
    run_ok(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(path),
    );
}

fn readable(dir: &Path) {
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
}
