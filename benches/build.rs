//! Benchmark: compile generated meshes and compare with only parsing the same YAML: the
//! 2,000-identity mesh (5,000 Egress policies, 1,000 Services, one gateway), 10,000 policies of
//! one identity on one port, one host with 2,000 routes, and a mesh ten times the first
//! (50,000 policies).
//!
//! Run with `cargo bench --bench build` (`EGRESSC_BENCH_SHAPES=mesh` for the first shape
//! only; names are comma-separated). For each shape it prints the in-process time to only parse the YAML, the wall time
//! and CPU of full `egressc build` processes (fresh, over the previous output, and fresh right
//! after removing a tree; medians),
//! and their peak resident memory; then `egressc check` of the mesh against `egressc diff` of
//! the mesh and a copy with one policy changed (medians; the target is under 2.5 checks).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 10;

/// The size of a generated mesh.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    service_accounts: usize,
    policies: usize,
    services: usize,
    /// Every policy is for one identity and one port (https, a host of its own): the shape
    /// that was quadratic in the cross-policy checks.
    one_identity: bool,
    /// One http policy of one host whose HTTPRouteGroup has `policies` literal routes: the
    /// shape that was quadratic in `diff` (a regex compiled per pair of routes); its diff
    /// adds one route.
    routes: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "mesh",
        service_accounts: 2_000,
        policies: 5_000,
        services: 1_000,
        one_identity: false,
        routes: false,
    },
    Shape {
        name: "one identity, one port",
        service_accounts: 1,
        policies: 10_000,
        services: 0,
        one_identity: true,
        routes: false,
    },
    Shape {
        name: "many routes",
        service_accounts: 1,
        policies: 2_000,
        services: 0,
        one_identity: true,
        routes: true,
    },
    Shape {
        name: "mesh x10",
        service_accounts: 20_000,
        policies: 50_000,
        services: 10_000,
        one_identity: false,
        routes: false,
    },
];

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

fn generate(dir: &Path, shape: &Shape) {
    let (service_accounts, policies, services) =
        (shape.service_accounts, shape.policies, shape.services);
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut files: Vec<String> = vec![String::new(); FILES];
    let ns = |i: usize| format!("team-{}", i % 50);
    files[0].push_str(
        "apiVersion: config.flomesh.io/v1alpha3\nkind: MeshConfig\nmetadata: {name: fsm-mesh-config, namespace: fsm-system}\nspec:\n  traffic: {enableEgress: false}\n  featureFlags: {enableEgressPolicy: true}\n---\n\
apiVersion: policy.flomesh.io/v1alpha1\nkind: EgressGateway\nmetadata: {name: global, namespace: fsm}\nspec:\n  global:\n  - {service: fsm-egress-gateway, namespace: fsm}\n---\n\
apiVersion: v1\nkind: Service\nmetadata:\n  name: fsm-egress-gateway\n  namespace: fsm\n  annotations: {flomesh.io/egress-gateway-mode: http2tunnel}\nspec:\n  clusterIP: 10.96.255.1\n  ports: [{port: 1080, targetPort: 1080}]\n---\n",
    );
    for i in 0..service_accounts {
        let f = &mut files[i % FILES];
        let _ = write!(
            f,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n  namespace: {}\n---\n",
            ns(i)
        );
    }
    for i in 0..services {
        let f = &mut files[i % FILES];
        let _ = write!(
            f,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {}\nspec:\n  clusterIP: 10.96.{}.{}\n  ports:\n  - port: 80\n    targetPort: 8080\n  - port: 9090\n---\n",
            ns(i),
            i / 250 % 256,
            i % 250 + 1
        );
    }
    if shape.routes {
        let _ = write!(
            files[1],
            "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata:\n  name: api\n  namespace: team-0\nspec:\n  sources:\n  - kind: ServiceAccount\n    name: sa-0\n    namespace: team-0\n  hosts:\n  - api-0.example.com\n  ports:\n  - number: 80\n    protocol: http\n  matches:\n  - apiGroup: specs.smi-spec.io/v1alpha4\n    kind: HTTPRouteGroup\n    name: routes\n---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata:\n  name: routes\n  namespace: team-0\nspec:\n  matches:\n"
        );
        for i in 0..policies {
            let _ = writeln!(
                files[1],
                "  - {{name: r{i}, pathRegex: /api/v1/item{i}, methods: [GET]}}"
            );
        }
    }
    for i in 0..policies {
        let f = &mut files[i % FILES];
        if shape.routes {
            break;
        }
        if shape.one_identity {
            let _ = write!(
                f,
                "apiVersion: policy.flomesh.io/v1alpha1\nkind: Egress\nmetadata:\n  name: p-{i}\n  namespace: team-0\nspec:\n  sources:\n  - kind: ServiceAccount\n    name: sa-0\n    namespace: team-0\n  hosts:\n  - api-{i}.example.com\n  ports:\n  - number: 443\n    protocol: https\n---\n"
            );
            continue;
        }
        let n = ns(i);
        let mut sources = String::new();
        for _ in 0..(1 + rng.below(3)) {
            let sa = rng.below(service_accounts);
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

/// One `egressc build` process: wall time, and its own peak RSS (KiB) and CPU (s).
fn run_build(input: &Path, out: &Path) -> (Duration, i64, f64, f64) {
    let mut args: Vec<&std::ffi::OsStr> = ["build", "--allow", "W0405", "--color", "never", "-o"]
        .iter()
        .map(|a| a.as_ref())
        .collect();
    args.push(out.as_os_str());
    args.push(input.as_os_str());
    run(&args)
}

/// One egressc process (output discarded): wall time, its peak RSS (KiB) and CPU (s).
fn run(args: &[&std::ffi::OsStr]) -> (Duration, i64, f64, f64) {
    let start = Instant::now();
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives its rusage"
    )]
    let child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child fills `usage` and reaps it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        usage
    };
    let elapsed = start.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "egressc {args:?} failed: {status}"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        elapsed,
        usage.ru_maxrss,
        secs(usage.ru_utime),
        secs(usage.ru_stime),
    )
}

fn bench(shape: &Shape, base: &Path) {
    let input = base.join("mesh");
    let out = base.join("out");
    let _ = std::fs::remove_dir_all(base);
    generate(&input, shape);
    let bytes: u64 = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let mut paths: Vec<_> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let runs = if shape.policies > 10_000 { 3 } else { 5 };
    // Parse only: read the files and parse every document into the spanned tree.
    let mut parse = Vec::new();
    let mut docs = 0;
    for _ in 0..runs {
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
    // Fresh: into a missing OUT, a new one each run, none removed until the shape is done:
    // on the development machine's ext4, creating files right after deleting thousands of
    // others was at times several times slower in system time (its inode allocator checks
    // for recently deleted inodes), which a fresh checkout does not pay; that case is timed
    // last, on its own. Rebuild: over the previous output, as in a GitOps pipeline.
    let mut fresh = Vec::new();
    let mut peak = 0;
    for i in 0..runs {
        let r = run_build(&input, &base.join(format!("out-{i}")));
        peak = peak.max(r.1);
        fresh.push(r);
    }
    std::fs::rename(base.join(format!("out-{}", runs - 1)), &out).unwrap();
    let files_out = walk_count(&out);
    let mut rebuild = Vec::new();
    for _ in 0..runs {
        let r = run_build(&input, &out);
        peak = peak.max(r.1);
        rebuild.push(r);
    }
    let mut after_removal = Vec::new();
    for i in 0..runs - 1 {
        let again = base.join(format!("out-{i}"));
        std::fs::remove_dir_all(&again).unwrap();
        let r = run_build(&input, &again);
        peak = peak.max(r.1);
        after_removal.push(r);
    }
    let parse = median(parse);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "== {}: {docs} documents, {:.1} MiB in {FILES} files ({} ServiceAccounts, {} {}, {} Services); {files_out} files out",
        shape.name,
        bytes as f64 / 1048576.0,
        shape.service_accounts,
        shape.policies,
        if shape.routes { "routes" } else { "Egress" },
        shape.services
    );
    println!(
        "parse only (in-process, median of {runs}): {:.0} ms",
        ms(parse)
    );
    for (what, mut runs_of) in [
        ("fresh build", fresh),
        ("rebuild", rebuild),
        ("fresh build right after removing a tree", after_removal),
    ] {
        runs_of.sort_by_key(|r| r.0);
        let (wall, _, user, sys) = runs_of[runs_of.len() / 2];
        println!(
            "{what} (egressc build process, median): {:.0} ms = {:.2}x parse; CPU {:.0} ms user, {:.0} ms system",
            ms(wall),
            wall.as_secs_f64() / parse.as_secs_f64(),
            user * 1000.0,
            sys * 1000.0
        );
    }
    println!(
        "peak memory of the build process: {:.0} MiB",
        peak as f64 / 1024.0
    );
    bench_diff(&input, base, runs, shape.routes);
    if shape.name == "mesh" {
        bench_replay(&input, base, runs);
    }
}

/// `egressc check` of the mesh, and `egressc diff` of the mesh against a copy with one
/// policy changed (its first host renamed; with many routes, one route added): the diff
/// must take under 2.5 checks (2 with many routes).
fn bench_diff(input: &Path, base: &Path, runs: usize, routes: bool) {
    let head = base.join("mesh-head");
    std::fs::create_dir_all(&head).unwrap();
    for e in std::fs::read_dir(input).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, head.join(p.file_name().unwrap())).unwrap();
    }
    let first = head.join(if routes {
        "mesh-01.yaml"
    } else {
        "mesh-00.yaml"
    });
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(text.contains("api-0.example"), "the first policy's host");
    let changed = if routes {
        text.replacen(
            "  - {name: r0,",
            "  - {name: added, pathRegex: /api/v2/added, methods: [GET]}\n  - {name: r0,",
            1,
        )
    } else {
        text.replacen("api-0.example", "api-0.changed.example", 1)
    };
    std::fs::write(&first, changed).unwrap();
    let os = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(Into::into).collect() };
    let mut check_args = os(&["check", "--allow", "W0405", "--color", "never"]);
    check_args.push(input.into());
    let mut diff_args = os(&["diff", "--allow", "W0405", "--color", "never", "--base"]);
    diff_args.push(input.into());
    diff_args.push("--head".into());
    diff_args.push(head.clone().into());
    let median_of = |args: &[std::ffi::OsString]| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let mut v: Vec<_> = (0..runs).map(|_| run(&args)).collect();
        v.sort_by_key(|r| r.0);
        let peak = v.iter().map(|r| r.1).max().unwrap_or(0);
        (v[v.len() / 2], peak)
    };
    let ((check, _, cu, cs), check_peak) = median_of(&check_args);
    let ((diff, _, du, ds), diff_peak) = median_of(&diff_args);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "check (process, median of {runs}): {:.0} ms (CPU {:.0} ms user, {:.0} ms system; peak {:.0} MiB)",
        ms(check),
        cu * 1000.0,
        cs * 1000.0,
        check_peak as f64 / 1024.0
    );
    println!(
        "diff against {} (process, median): {:.0} ms = {:.2}x check (target < {}); CPU {:.0} ms user, {:.0} ms system; peak {:.0} MiB",
        if routes {
            "one route added"
        } else {
            "one policy changed"
        },
        ms(diff),
        diff.as_secs_f64() / check.as_secs_f64(),
        if routes { "2x" } else { "2.5x" },
        du * 1000.0,
        ds * 1000.0,
        diff_peak as f64 / 1024.0
    );
}

/// `egressc test --replay` of a generated million-line log (10,000 distinct connections of the
/// mesh's identities, each logged 100 times, with Pipy's prefix) against `egressc check` of
/// the same inputs: the difference is the replay's own time (target: at least 200,000 lines a
/// second), and its peak memory stays that of the distinct connections.
fn bench_replay(input: &Path, base: &Path, runs: usize) {
    const LINES: usize = 1_000_000;
    const DISTINCT: usize = 10_000;
    let log = base.join("decisions.log");
    // Written as it is generated: a child's peak memory counts what its parent held at fork.
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for n in 0..LINES {
        let i = n % DISTINCT;
        let sa = i % 2000;
        std::io::Write::write_fmt(
            &mut out,
            format_args!(
                "2026-12-03 00:00:00.000 [INF] {{\"v\":1,\"egressc\":\"deny\",\"identity\":\"team-{}/sa-{sa}\",\"destination\":\"203.0.113.{}:443\",\"protocol\":\"tls\",\"sni\":\"host-{i}.example.org\",\"reason\":\"server name not allowed\",\"count\":1}}\n",
                sa % 50,
                i % 250 + 1
            ),
        )
        .unwrap();
    }
    drop(out);
    let mib = std::fs::metadata(&log).unwrap().len() as f64 / 1048576.0;
    let os = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(Into::into).collect() };
    let mut check = os(&["check", "--allow", "W0405", "--color", "never"]);
    check.push(input.into());
    let mut replay = os(&["test", "--allow", "W0405", "--color", "never", "--replay"]);
    replay.push(log.clone().into());
    replay.push(input.into());
    let median = |args: &[std::ffi::OsString]| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let mut v: Vec<_> = (0..runs).map(|_| run(&args)).collect();
        v.sort_by_key(|r| r.0);
        v[v.len() / 2]
    };
    let mut suggest = os(&["suggest", "--allow", "W0405", "--color", "never", "--logs"]);
    suggest.push(log.clone().into());
    suggest.push(input.into());
    let (check_time, check_peak, ..) = median(&check);
    let (replay_time, replay_peak, ..) = median(&replay);
    let (suggest_time, suggest_peak, ..) = median(&suggest);
    println!(
        "suggest of the same log: {:.0} ms ({:.0} lines/s beyond the check); peak {:.0} MiB",
        suggest_time.as_secs_f64() * 1000.0,
        LINES as f64
            / suggest_time
                .saturating_sub(check_time)
                .as_secs_f64()
                .max(1e-9),
        suggest_peak as f64 / 1024.0
    );
    let own = replay_time.saturating_sub(check_time).as_secs_f64();
    println!(
        "test --replay of {LINES} lines ({DISTINCT} distinct connections, {:.0} MiB; median): {:.0} ms, check of the same inputs {:.0} ms: {:.0} lines/s for the replay itself (target >= 200,000); peak {:.0} MiB (check {:.0} MiB)",
        mib,
        replay_time.as_secs_f64() * 1000.0,
        check_time.as_secs_f64() * 1000.0,
        LINES as f64 / own.max(1e-9),
        replay_peak as f64 / 1024.0,
        check_peak as f64 / 1024.0
    );
}

fn main() {
    let base = std::env::temp_dir().join(format!("egressc-bench-{}", std::process::id()));
    // `EGRESSC_BENCH_SHAPES=mesh` runs only the shape of that name (comma-separated list).
    let only = std::env::var("EGRESSC_BENCH_SHAPES").ok();
    for shape in SHAPES {
        if only
            .as_deref()
            .is_some_and(|o| o != shape.name && !o.split(',').any(|n| n.trim() == shape.name))
        {
            continue;
        }
        // A folder of its own: the previous shape's files are removed only at the end.
        bench(shape, &base.join(shape.name.replace(' ', "-")));
    }
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
