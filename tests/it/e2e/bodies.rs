//! Bodies stream: a 1 GiB upload through an allowed http rule, with Content-Length and chunked
//! framing, reaches the origin with the framing the client sent, and a 1 GiB download reaches
//! the client with the framing the origin sent, while the sidecar's peak memory stays under
//! 64 MiB (`EGRESSC_E2E_BODY_MIB` sets the size).

use super::*;

const BULK_POLICY: &str = "kind: Egress\napiVersion: policy.flomesh.io/v1alpha1\nmetadata:\n  name: bulk\n  namespace: app\nspec:\n  sources:\n  - {kind: ServiceAccount, name: client, namespace: app}\n  hosts:\n  - bulk.test\n  ports:\n  - number: 8080\n    protocol: http\n";

/// The bound on the sidecar's peak resident memory, in MiB.
const PEAK_MIB: u64 = 64;

fn body_mib() -> u64 {
    std::env::var("EGRESSC_E2E_BODY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `curl` in the namespace, with its output (`-w` adds the status and the bytes moved).
fn transfer(ns: &Netns, args: &[&str], stdin: Option<&Path>) -> Result<String, String> {
    let mut c = ns.cmd("curl");
    c.args([
        "-sS",
        "-m",
        "300",
        "-H",
        "Expect:",
        "-w",
        "\nHTTP %{http_code} down=%{size_download} up=%{size_upload}\n",
    ]);
    c.args(args);
    if let Some(f) = stdin {
        c.stdin(std::fs::File::open(f).map_err(|e| e.to_string())?);
    }
    let out = c.output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The origin's record of the bodies it read ("BULK bulk METHOD framing=… received=N").
fn bulk_lines(ns: &Netns) -> Vec<String> {
    ns.log("accepts")
        .lines()
        .filter(|l| l.starts_with("BULK "))
        .map(str::to_owned)
        .collect()
}

/// Say the sidecar's peak after `what`, or record that it passed the bound.
fn within_bound(pid: u32, what: &str, failures: &mut Vec<String>) {
    match peak_kib(pid) {
        Some(kib) if kib <= PEAK_MIB << 10 => say(&format!(
            "bodies: {what}; sidecar peak RSS {:.1} MiB",
            kib as f64 / 1024.0
        )),
        Some(kib) => failures.push(format!(
            "{what}: the sidecar's peak RSS was {:.1} MiB (bound: {PEAK_MIB} MiB)",
            kib as f64 / 1024.0
        )),
        None => failures.push("cannot read the sidecar's VmHWM".into()),
    }
}

fn streams(ns: &Netns, pid: u32, file: &Path, size: u64) -> Vec<String> {
    let mut failures = Vec::new();
    let url = "http://bulk.test:8080";
    let mut check = |what: &str, result: Result<String, String>, want: &[String]| match result {
        Ok(text) if want.iter().all(|w| text.contains(w.as_str())) => {}
        Ok(text) | Err(text) => failures.push(format!("{what}: wanted {want:?} in:\n{text}")),
    };
    let path = file.to_str().unwrap();
    // Content-Length upload (curl -T FILE), then chunked (-T - from standard input).
    check(
        "upload with Content-Length",
        transfer(ns, &["-T", path, &format!("{url}/upload")], None),
        &[
            format!("framing=cl {size} received={size}"),
            "HTTP 200".into(),
        ],
    );
    check(
        "chunked upload",
        transfer(ns, &["-T", "-", &format!("{url}/upload")], Some(file)),
        &[
            format!("framing=chunked received={size}"),
            "HTTP 200".into(),
        ],
    );
    // A small body keeps the pooled path, and its Content-Length.
    check(
        "small upload",
        transfer(
            ns,
            &["--data-binary", "0123456789", &format!("{url}/small")],
            None,
        ),
        &["framing=cl 10 received=10".into(), "HTTP 200".into()],
    );
    // Pipelined on one connection: a chunked body (its own connection to the origin), a GET
    // (pooled), a 20 KiB body (its own again), a 20 KiB body with `Content-Length: 20000.0`
    // (pooled): answered in order, and the origin reads each body's true length.
    let big = "x".repeat(20_000);
    let pipelined = format!(
        "POST /one HTTP/1.1\\r\\nHost: bulk.test:8080\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n\
         GET /two HTTP/1.1\\r\\nHost: bulk.test:8080\\r\\n\\r\\n\
         POST /three HTTP/1.1\\r\\nHost: bulk.test:8080\\r\\nContent-Length: 20000\\r\\n\\r\\n{big}\
         POST /four HTTP/1.1\\r\\nHost: bulk.test:8080\\r\\nContent-Length: 20000.0\\r\\n\\r\\n{big}"
    );
    let mut client = ns.cmd("python3");
    client.args(super::py(&["http-pipelined", "10.77.0.54", "8080", &pipelined, "4"])[1..].iter());
    let out = client
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let want = [
        "framing=chunked received=5",
        "framing=none received=0",
        "framing=cl 20000 received=20000",
        // A Content-Length that is not digits only: pooled, re-encoded by Pipy with the length
        // it read (1.5.18 as a Content-Length, 1.5.14 chunked).
        "received=20000",
    ];
    let lines: Vec<&str> = out.lines().collect();
    let in_order = lines.len() == 4
        && lines
            .iter()
            .zip(want)
            .all(|(l, w)| l.starts_with("HTTP/1.1 200") && l.contains(w));
    if !in_order {
        failures.push(format!(
            "pipelined requests: wanted {want:?} in order, got:\n{out}"
        ));
    }
    let lines = bulk_lines(ns);
    for want in [
        format!("PUT framing=cl {size} received={size}"),
        format!("PUT framing=chunked received={size}"),
    ] {
        if !lines.iter().any(|l| l.contains(&want)) {
            failures.push(format!("the origin never read `{want}`: {lines:?}"));
        }
    }
    within_bound(
        pid,
        &format!(
            "{} MiB uploads, Content-Length and chunked, framing kept",
            size >> 20
        ),
        &mut failures,
    );
    // Downloads: complete, bounded, each with the framing the origin sent.
    for framing in ["cl", "chunked"] {
        let target = format!("{url}/download/{framing}/{size}");
        match transfer(ns, &["-D", "-", "-o", "/dev/null", &target], None) {
            Ok(text) if text.contains(&format!("HTTP 200 down={size}")) => {
                let kept = if framing == "cl" {
                    text.contains(&format!("content-length: {size}"))
                        && !text.contains("transfer-encoding")
                } else {
                    text.contains("transfer-encoding: chunked") && !text.contains("content-length")
                };
                if !kept {
                    failures.push(format!("the {framing} download was re-framed:\n{text}"));
                }
            }
            Ok(text) | Err(text) => {
                failures.push(format!("download ({framing}) did not complete:\n{text}"))
            }
        }
    }
    within_bound(
        pid,
        &format!(
            "{} MiB downloads, Content-Length and chunked, framing kept",
            size >> 20
        ),
        &mut failures,
    );
    failures
}

#[test]
fn e2e_bodies_stream_with_bounded_memory() {
    if !enabled("streaming bodies through the sidecar") {
        return;
    }
    let mut ns = Netns::new(HOSTS);
    start_origins(&mut ns);
    let base = copy_fixture(&ns.dir.join("in-bodies"));
    add_policy(&base, BULK_POLICY);
    let out = ns.dir.join("out-bodies");
    build_tree(&base, &out);
    ns.apply_rules(&out);
    let started = ns.start_pipy_env(
        "sidecar",
        &out.join("sidecar/main.js"),
        Some(&out.join("configs/app/client.json")),
        &[],
    );
    assert!(started.is_ok(), "{started:?}");
    let pid = ns.children["sidecar"].id();
    let size = body_mib() << 20;
    let file = ns.dir.join("body.bin");
    std::fs::File::create(&file).unwrap().set_len(size).unwrap();
    let failures = streams(&ns, pid, &file, size);
    assert!(
        failures.is_empty(),
        "{}\n\nsidecar log:\n{}",
        failures.join("\n\n"),
        ns.log("sidecar")
    );
}
