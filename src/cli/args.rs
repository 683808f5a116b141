//! The command line's arguments (clap derive).

use crate::cli::exit::UsageError;
use crate::diagnostics::{Code, Severity};
use crate::emit::kubernetes;
use crate::model::Identity;
use crate::net::{self, Cidr};
use clap::{Parser, Subcommand, ValueEnum};

/// Compile Flomesh Service Mesh egress configuration into Pipy sidecar configs and scripts.
#[derive(Parser)]
#[command(name = "egressc", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate the inputs and report every problem.
    Check {
        /// Files or directories (walked recursively, sorted; hidden entries skipped); `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Compile the inputs into the output tree (diagnostics as for `check`).
    Build {
        /// Files or directories (walked recursively, sorted; hidden entries skipped); `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        /// The output directory (replaced atomically; refused if it holds files egressc did not write).
        #[arg(short, long, value_name = "OUT")]
        output: std::path::PathBuf,
        /// Write nothing; exit 3 and list the files when OUT differs from what would be written.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Upload a build's output to a Pipy repo, so that sidecars started from the repo reload.
    ///
    /// One base codebase (PREFIX/_base) holds the scripts and mesh data, one derived codebase
    /// per identity (PREFIX/NS/SA) its config, PREFIX/_gateway the gateway. Only changed files
    /// are uploaded; versions are bumped last, base first; identities gone from OUT are
    /// removed. Exit 0 when done (or, with --check, when nothing would change), 3 with --check
    /// when the repo differs, 2 when the repo or OUT cannot be used.
    Publish {
        /// The output directory of `egressc build`.
        #[arg(value_name = "OUT")]
        output: std::path::PathBuf,
        /// The repo's admin address, e.g. http://127.0.0.1:6060 (Pipy's admin API has no
        /// authentication: keep it on a trusted network).
        #[arg(long, value_name = "URL")]
        repo: String,
        /// The first segment of every codebase path.
        #[arg(long, value_name = "PREFIX", default_value = "egressc", value_parser = parse_prefix)]
        prefix: String,
        /// Change nothing; list what would change and exit 3 when anything would.
        #[arg(long)]
        check: bool,
    },
    /// Explain what an identity may reach, or the verdict for one connection.
    ///
    /// Exit 0 when the connection is allowed (also in-mesh and passthrough), 4 when it is denied
    /// or cannot be decided offline (a rule needs the destination address), 1 for input errors.
    Explain {
        /// Files or directories; `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        /// The workload identity: NAMESPACE/SERVICEACCOUNT.
        #[arg(long, value_name = "NS/SA", value_parser = parse_identity)]
        from: Identity,
        /// The destination as dialled: HOST_OR_IP:PORT. Without it, list what the identity may reach.
        #[arg(long, value_name = "HOST_OR_IP:PORT")]
        to: Option<String>,
        /// The TLS server name (https); defaults to the name in --to.
        #[arg(long, value_name = "NAME", requires = "to")]
        sni: Option<String>,
        /// The HTTP Host header; giving any HTTP option makes the connection an HTTP request.
        #[arg(long, value_name = "HOST", requires = "to")]
        http_host: Option<String>,
        /// HTTP/2's `:authority`: the request is cleartext HTTP/2 (refused on http ports).
        #[arg(long, value_name = "AUTHORITY", requires = "to")]
        authority: Option<String>,
        /// The HTTP method (default GET).
        #[arg(long, value_name = "METHOD", requires = "to")]
        method: Option<String>,
        /// The HTTP path, with an optional query (default /).
        #[arg(long, value_name = "PATH", requires = "to")]
        path: Option<String>,
        /// An HTTP header, NAME=VALUE (repeatable).
        #[arg(long, value_name = "NAME=VALUE", requires = "to", value_parser = parse_header)]
        header: Vec<(String, String)>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Check a file of connections against their expected verdicts, offline.
    ///
    /// Exit 0 when every case passes, 5 when one fails, 1 for input errors.
    Test {
        /// The cases file (YAML; see the README for its format); `-` reads it from stdin. With
        /// `--replay` there is none: every argument is an INPUT.
        #[arg(value_name = "CASES", required_unless_present = "replay")]
        cases: Option<std::path::PathBuf>,
        /// Files or directories; `-` is stdin.
        #[arg(value_name = "INPUT")]
        inputs: Vec<String>,
        /// A decision log to evaluate against the INPUTs instead of cases (repeatable, one
        /// file each; `-` is stdin): exit 5 when a connection let through at the time would
        /// now be denied.
        #[arg(long, value_name = "FILE")]
        replay: Vec<std::path::PathBuf>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// The Egress policies that allow what decision logs show denied or audited, as YAML.
    ///
    /// Reads the logs' `deny` and `audit` lines (other lines are counted and skipped), keeps
    /// the connections the INPUTs do not let through, and prints one policy per identity and
    /// port: exact hosts (SNI, Host) or /32 addresses. Exit 0 (an empty suggestion is said on
    /// standard error), 1 when the INPUTs have errors, 2 for an unreadable log.
    Suggest {
        /// A decision log (repeatable, one file each; `-` is stdin).
        #[arg(long, value_name = "FILE", required = true)]
        logs: Vec<std::path::PathBuf>,
        /// `exact`: http policies get an HTTPRouteGroup of the paths seen (each an exact
        /// regex, with its methods); without it they are host-level.
        #[arg(long, value_enum, value_name = "MODE")]
        routes: Option<RoutesArg>,
        /// Files or directories; `-` is stdin.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Who gains and who loses access: the access two versions of the inputs grant, compared.
    ///
    /// Both sides are checked first (exit 1 for input errors on either side). Exit 0 when done,
    /// whatever changed; 6 when `--fail-on` matches.
    Diff {
        /// The inputs before the change: files or directories; `-` is stdin.
        #[arg(
            long,
            value_name = "INPUT",
            num_args = 1..,
            required_unless_present = "base_git",
            conflicts_with = "base_git"
        )]
        base: Vec<String>,
        /// Read the base from this revision of the Git repository here: the same INPUTs as
        /// --head (paths relative to the working directory), as they were at REV.
        #[arg(long, value_name = "REV")]
        base_git: Option<String>,
        /// The inputs after the change: files or directories; `-` is stdin.
        #[arg(long, value_name = "INPUT", num_args = 1.., required = true)]
        head: Vec<String>,
        /// Output format of the difference (diagnostics are shown as by `check`, on stderr).
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
        /// Exit 6 when some access is gained (`widen`), or when anything changed (`any`).
        #[arg(long, value_name = "WHEN", value_enum)]
        fail_on: Option<FailOn>,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Write the JSON Schemas of the input kinds (per kind, plus one combined schema for editors).
    Schema {
        /// Directory to write into; without it the combined schema is printed.
        #[arg(short, long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    ///
    /// bash: `egressc completions bash > ~/.local/share/bash-completion/completions/egressc`;
    /// zsh: into a folder of `$fpath` as `_egressc`; fish: `~/.config/fish/completions/egressc.fish`.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (egressc.1, and egressc-COMMAND.1 per command) into DIR.
    Man {
        #[arg(short, long, value_name = "DIR")]
        output: std::path::PathBuf,
    },
}

/// What `build` puts into `OUT/kubernetes/`.
#[derive(clap::Args)]
pub struct KubeArgs {
    /// The Pipy image of the sidecar and the gateway.
    #[arg(long, value_name = "IMAGE", default_value = kubernetes::DEFAULT_PIPY_IMAGE, value_parser = parse_image)]
    pub pipy_image: String,
    /// The image of the init container that applies the iptables rules (needs `sh`,
    /// `iptables-restore` and `ip6tables-restore`).
    #[arg(long, value_name = "IMAGE", default_value = kubernetes::DEFAULT_INIT_IMAGE, value_parser = parse_image)]
    pub init_image: String,
    /// The label that selects the workloads the injection Component patches.
    #[arg(long, value_name = "KEY=VALUE", default_value = kubernetes::DEFAULT_INJECT_LABEL, value_parser = parse_label)]
    pub inject_label: (String, String),
    /// The init container's iptables uses the legacy backend (it also needs NET_RAW).
    #[arg(long)]
    pub iptables_legacy: bool,
    /// Also write NetworkPolicies that let meshed pods send only to the gateway and cluster DNS.
    #[arg(long)]
    pub pin_egress: bool,
    /// The sidecar container's memory limit, in MiB (at least 64, its request). Default:
    /// derived from the largest identity config (64 MiB and 12 bytes per config byte).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub sidecar_memory_limit: Option<u32>,
    /// `native`: the sidecar is an init container with `restartPolicy: Always` (Kubernetes
    /// 1.29 and later): the app starts once it is ready, and Jobs complete. `classic`: a plain
    /// container, for older clusters (which drop the field, so native pods would hang in Init).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SidecarModeArg::Native)]
    pub sidecar_mode: SidecarModeArg,
    /// The gateway Deployment's replicas (spread across nodes; a PodDisruptionBudget lets a
    /// drain take one at a time).
    #[arg(long, value_name = "N", default_value_t = kubernetes::DEFAULT_GATEWAY_REPLICAS, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub gateway_replicas: u16,
    /// Also write a Grafana dashboard of the proxies' metrics, as a ConfigMap labelled
    /// `grafana_dashboard: "1"` in NAMESPACE (default `monitoring`).
    #[arg(long, value_name = "NAMESPACE", num_args = 0..=1, require_equals = true, default_missing_value = kubernetes::DEFAULT_GRAFANA_NAMESPACE, value_parser = parse_namespace)]
    pub grafana_dashboard: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SidecarModeArg {
    Native,
    Classic,
}

/// A namespace name: a DNS label.
fn parse_namespace(s: &str) -> Result<String, UsageError> {
    if net::is_dns1123_label(s) {
        Ok(s.to_owned())
    } else {
        Err(UsageError(format!(
            "`{}` is not a namespace (a DNS label: lower-case letters, digits and `-`)",
            s.escape_debug()
        )))
    }
}

fn parse_prefix(s: &str) -> Result<String, UsageError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(UsageError(format!(
            "`{s}` is not a codebase prefix (lower-case letters, digits and `-`)"
        )))
    }
}

/// `KEY=VALUE` (the value may hold `=`).
fn key_value<'s>(s: &'s str, what: &str) -> Result<(&'s str, &'s str), UsageError> {
    s.split_once('=')
        .ok_or_else(|| UsageError(format!("`{s}`: write {what}")))
}

/// `--from NS/SA`.
fn parse_identity(s: &str) -> Result<Identity, UsageError> {
    Identity::parse(s).map_err(UsageError)
}

/// `--header NAME=VALUE`: the name without surrounding blanks, the value as given.
fn parse_header(s: &str) -> Result<(String, String), UsageError> {
    let (k, v) = key_value(s, "NAME=VALUE")?;
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// An image reference: not empty, no whitespace or control characters.
fn parse_image(s: &str) -> Result<String, UsageError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsageError(format!(
            "`{}` is not an image reference (no blanks; e.g. `flomesh/pipy:1.5.14`)",
            s.escape_debug()
        )));
    }
    Ok(s.to_owned())
}

fn parse_label(s: &str) -> Result<(String, String), UsageError> {
    let (k, v) = key_value(s, "KEY=VALUE")?;
    // `[prefix/]name`: at most one `/`, and the prefix a DNS subdomain (lower-case).
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(net::is_dns1123_subdomain);
    let ok = |t: &str, max: usize| {
        t.len() <= max
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && t.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
            && t.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
    };
    if name.is_empty() || name.contains('/') || !prefix_ok || !ok(name, 63) || !ok(v, 63) {
        return Err(UsageError(format!(
            "`{s}` is not a Kubernetes label (KEY=VALUE: KEY is [PREFIX/]NAME with PREFIX a lower-case DNS subdomain; NAME and VALUE alphanumeric with `-_.`, at most 63 characters)"
        )));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(flatten)]
    pub input: InputArgs,
}

/// How the inputs are read and checked, and which diagnostics fail the run: the flags of
/// every command that reads inputs.
#[derive(clap::Args)]
pub struct InputArgs {
    /// Fail (exit 1) when there are warnings.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Silence a warning or note code (repeatable), e.g. `--allow W0403`.
    #[arg(long, value_name = "CODE", value_parser = parse_allow)]
    pub allow: Vec<Code>,
    /// Colour in human output (`NO_COLOR` is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Treat files found in walked directories like named files: unparsable or
    /// non-Kubernetes files are errors rather than skipped with a warning.
    #[arg(long)]
    pub strict: bool,
    /// Egress policies without a MeshConfig are an error (FSM's defaults would let
    /// everything through). `--strict` implies it.
    #[arg(long)]
    pub require_meshconfig: bool,
    /// A Service CIDR of the cluster (repeatable): clusterIPs inside it are expected, even
    /// outside the private ranges.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub service_cidr: Vec<Cidr>,
    /// A DNS resolver workload DNS may reach, UDP and TCP port 53 (repeatable). Default: the
    /// clusterIP of the Service kube-system/kube-dns when the inputs have it, else the IPv4
    /// nameservers of the pod's /etc/resolv.conf, read by iptables/init.sh at start.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<std::net::Ipv4Addr>,
    /// How the egress gateway learns who is calling: `mtls` (the SPIFFE ID of the sidecar's
    /// certificate, from cert-manager's csi-driver-spiffe) or `header` (the
    /// `egressc-identity` header: a label, not authentication; SOCKS5 gets every identity's
    /// list).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = GatewayAuthArg::Mtls)]
    pub gateway_auth: GatewayAuthArg,
    /// The SPIFFE trust domain of the workload certificates (`--gateway-auth mtls`).
    #[arg(long, value_name = "DOMAIN", default_value = crate::model::DEFAULT_TRUST_DOMAIN, value_parser = parse_trust_domain)]
    pub trust_domain: String,
    /// The largest ConfigMap of `kubernetes/`, in KiB (256: what client-side `kubectl apply`
    /// accepts; up to 1024 for server-side apply).
    #[arg(long, value_name = "KIB", default_value_t = kubernetes::DEFAULT_CONFIGMAP_MAX_KIB, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub configmap_max_kib: u64,
    /// The largest input file (and stdin) read, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_input_mib: u64,
}

/// `suggest --routes`.
#[derive(Clone, Copy, ValueEnum)]
pub enum RoutesArg {
    /// The paths seen, exactly.
    Exact,
}

/// `--gateway-auth`.
#[derive(Clone, Copy, ValueEnum)]
pub enum GatewayAuthArg {
    /// Mutual TLS with SPIFFE identities.
    Mtls,
    /// The `egressc-identity` header (today's behaviour, for clusters without csi-driver-spiffe).
    Header,
}

/// The output of `diff`.
#[derive(Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    /// Grouped by identity, widening first.
    Human,
    /// A table for a pull-request comment, with a one-line summary.
    Markdown,
    /// One object with an `entries` array.
    Json,
}

/// When `diff` exits 6.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Some identity gains access (or a mesh-wide change widens it).
    Widen,
    /// Anything changed.
    Any,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…,title=CODE::…`), one per
    /// diagnostic: annotations on the pull request.
    Github,
}

impl Format {
    /// SARIF and GitHub annotations report diagnostics only (`check`, `build`).
    pub fn diagnostics_only(self) -> bool {
        matches!(self, Format::Sarif | Format::Github)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// `--allow CODE`: a known warning or note code.
fn parse_allow(s: &str) -> Result<Code, UsageError> {
    match Code::parse(s) {
        None => Err(UsageError(format!("unknown diagnostic code `{s}`"))),
        Some(c) if c.severity() == Severity::Error => Err(UsageError(format!(
            "`{s}` is an error and cannot be allowed"
        ))),
        Some(c) => Ok(c),
    }
}

/// `--trust-domain DOMAIN`.
fn parse_trust_domain(s: &str) -> Result<String, UsageError> {
    if crate::spiffe::is_trust_domain(s) {
        Ok(s.to_owned())
    } else {
        Err(UsageError(format!(
            "`{}` is not a SPIFFE trust domain (lower-case letters, digits, `.`, `-`, `_`)",
            s.escape_debug()
        )))
    }
}

/// `--service-cidr CIDR`.
fn parse_cidr(s: &str) -> Result<Cidr, UsageError> {
    net::parse_cidr(s).map_err(|e| {
        UsageError(match e {
            net::CidrError::Ipv6 => format!("`{s}`: IPv6 is not supported yet"),
            net::CidrError::Invalid { reason, help } => format!("`{s}`: {reason} ({help})"),
        })
    })
}
