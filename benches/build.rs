//! Benchmark: compile a generated large mesh (2,000 ServiceAccounts, 5,000 Egress policies,
//! 1,000 Services, one gateway) and compare with only parsing the same YAML.
//!
//! Run with `cargo bench --bench build`. It prints wall time (median of 5 runs) of a full
//! `egressc build` process, its peak resident memory, and the in-process time to only parse
//! the YAML.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICE_ACCOUNTS: usize = 2_000;
const POLICIES: usize = 5_000;
const SERVICES: usize = 1_000;
const FILES: usize = 10;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn generate(dir: &Path) {
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut files: Vec<String> = vec![String::new(); FILES];
    let ns = |i: usize| format!("team-{}", i % 50);
    files[0].push_str(
        "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: fsm-mesh-config, namespace: fsm-system}\nspec:\n  traffic: {enableEgress: false}\n  featureFlags: {enableEgressPolicy: true}\n---\n\
apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {name: global, namespace: fsm}\nspec:\n  global:\n  - {service: fsm-egress-gateway, namespace: fsm}\n---\n\
apiVersion: v1\nkind: Service\nmetadata:\n  name: fsm-egress-gateway\n  namespace: fsm\n  annotations: {flomesh.io/egress-gateway-mode: http2tunnel}\nspec:\n  clusterIP: 10.96.255.1\n  ports: [{port: 1080, targetPort: 1080}]\n---\n",
    );
    for i in 0..SERVICE_ACCOUNTS {
        let f = &mut files[i % FILES];
        let _ = write!(
            f,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n  namespace: {}\n---\n",
            ns(i)
        );
    }
    for i in 0..SERVICES {
        let f = &mut files[i % FILES];
        let _ = write!(
            f,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {}\nspec:\n  clusterIP: 10.96.{}.{}\n  ports:\n  - port: 80\n    targetPort: 8080\n  - port: 9090\n---\n",
            ns(i),
            i / 250,
            i % 250 + 1
        );
    }
    for i in 0..POLICIES {
        let f = &mut files[i % FILES];
        let n = ns(i);
        let mut sources = String::new();
        for _ in 0..(1 + rng.below(3)) {
            let sa = rng.below(SERVICE_ACCOUNTS);
            let _ = write!(
                sources,
                "  - kind: ServiceAccount\n    name: sa-{sa}\n    namespace: {}\n",
                ns(sa)
            );
        }
        match i % 3 {
            0 => {
                let _ = write!(
                    f,
                    "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata:\n  name: http-{i}\n  namespace: {n}\nspec:\n  sources:\n{sources}  hosts:\n  - api-{i}.example{}.com\n  ports:\n  - number: 80\n    protocol: http\n  matches:\n  - apiGroup: specs.smi-spec.io/v1alpha4\n    kind: HTTPRouteGroup\n    name: routes-{i}\n---\n\
apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata:\n  name: routes-{i}\n  namespace: {n}\nspec:\n  matches:\n  - name: read\n    pathRegex: /v1/items/[0-9]+\n    methods: [GET, HEAD]\n  - name: write\n    pathRegex: /v1/items\n    methods: [POST]\n    headers:\n      x-tenant: \"^t-[a-z]+$\"\n---\n",
                    i % 40
                );
            }
            1 => {
                let _ = write!(
                    f,
                    "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata:\n  name: https-{i}\n  namespace: {n}\nspec:\n  sources:\n{sources}  hosts:\n  - \"*.svc-{i}.example{}.net\"\n  - www.svc-{i}.example.org\n  ports:\n  - number: 443\n    protocol: https\n---\n",
                    i % 40
                );
            }
            _ => {
                let _ = write!(
                    f,
                    "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata:\n  name: tcp-{i}\n  namespace: {n}\nspec:\n  sources:\n{sources}  ipAddresses:\n  - 172.{}.{}.0/24\n  - 192.0.2.{}/32\n  ports:\n  - number: {}\n    protocol: tcp\n---\n",
                    16 + i % 16,
                    i % 256,
                    i % 256,
                    5432 + i % 5
                );
            }
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("mesh-{i:02}.yaml")), text).unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Resource use of the finished child processes: (peak RSS in KiB, user s, system s).
fn children_usage() -> (i64, f64, f64) {
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (usage.ru_maxrss, secs(usage.ru_utime), secs(usage.ru_stime))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful.
    let base = std::env::temp_dir().join(format!("egressc-bench-{}", std::process::id()));
    let input = base.join("mesh");
    let out = base.join("out");
    generate(&input);
    let bytes: u64 = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let mut paths: Vec<_> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();

    // Parse only: read the files and parse every document into the spanned tree.
    let mut parse = Vec::new();
    let mut docs = 0;
    for _ in 0..5 {
        let start = Instant::now();
        docs = 0;
        for p in &paths {
            let text = std::fs::read_to_string(p).unwrap();
            docs += egressc::parse_documents(&text)
                .map(|d| d.len())
                .unwrap_or(0);
        }
        parse.push(start.elapsed());
    }

    // Full build: the release binary, as a user runs it. Fresh: into a missing OUT. Rebuild:
    // over the previous output, as in a GitOps pipeline (unchanged files are linked).
    let exe = env!("CARGO_BIN_EXE_egressc");
    let run_build = || {
        let start = Instant::now();
        let status = Command::new(exe)
            .args(["build", "--allow", "W0405", "--color", "never", "-o"])
            .arg(&out)
            .arg(&input)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "build failed: {status}");
        start.elapsed()
    };
    let mut fresh = Vec::new();
    for _ in 0..5 {
        let _ = std::fs::remove_dir_all(&out);
        fresh.push(run_build());
    }
    let files_out = walk_count(&out);
    let (_, fresh_user, fresh_sys) = children_usage();
    let mut rebuild = Vec::new();
    for _ in 0..5 {
        rebuild.push(run_build());
    }
    let (rss_kib, all_user, all_sys) = children_usage();
    let rss_mib = rss_kib as f64 / 1024.0;
    let parse = median(parse);
    let fresh = median(fresh);
    let rebuild = median(rebuild);
    println!(
        "input: {docs} documents, {:.1} MiB in {FILES} files ({SERVICE_ACCOUNTS} ServiceAccounts, {POLICIES} Egress, {SERVICES} Services)",
        bytes as f64 / 1048576.0
    );
    println!("output: {files_out} files");
    println!(
        "parse only (in-process, median of 5): {:.0} ms",
        parse.as_secs_f64() * 1000.0
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "fresh build (egressc build process, empty OUT, median of 5): {:.0} ms = {:.2}x parse; CPU {:.0} ms user, {:.0} ms system",
        ms(fresh),
        fresh.as_secs_f64() / parse.as_secs_f64(),
        fresh_user * 200.0,
        fresh_sys * 200.0
    );
    println!(
        "rebuild over the previous output (median of 5): {:.0} ms = {:.2}x parse; CPU {:.0} ms user, {:.0} ms system",
        ms(rebuild),
        rebuild.as_secs_f64() / parse.as_secs_f64(),
        (all_user - fresh_user) * 200.0,
        (all_sys - fresh_sys) * 200.0
    );
    println!("peak memory of the build process: {rss_mib:.0} MiB");
    if std::env::var_os("EGRESSC_BENCH_KEEP").is_none() {
        std::fs::remove_dir_all(&base).ok();
    } else {
        println!("kept {}", base.display());
    }
}

fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { walk_count(&p) } else { 1 };
    }
    n
}
