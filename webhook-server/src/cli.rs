//! Command-line flags, parsed once into typed configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use podguard_audit::{FailOn, OutputTarget};
use podguard_host::admission::FailureMode;

use podguard_server::policy_ref::PolicyRef;

/// `podguard --version`: the binary's version and the digest of the policy module it
/// carries, the one `inspect` shows and the release publishes.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (built-in policy module ",
    env!("PODGUARD_EMBEDDED_DIGEST"),
    ")"
);

/// podguard: a workload-hardening admission policy, run as a webhook, an audit or a
/// one-off evaluation.
#[derive(Debug, Parser)]
#[command(name = "podguard", version = VERSION, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the admission webhook over HTTPS (HTTP/1.1 and HTTP/2).
    Serve(ServeCommand),
    /// Embed Kubewarden policy metadata into a module, as `kwctl annotate` does.
    Annotate(AnnotateCommand),
    /// Show a module's embedded metadata, exports, size and digest.
    Inspect(InspectCommand),
    /// Write artifacthub-pkg.yml from the policy metadata and settings form, as
    /// `kwctl scaffold artifacthub` does.
    Artifacthub(ArtifacthubCommand),
    /// Push an annotated module to an OCI registry as a Kubewarden policy artifact.
    Push(PushCommand),
    /// Pull a policy module from an OCI registry.
    Pull(PullCommand),
    /// Write a throwaway CA and a server certificate signed by it (for local use and
    /// tests; use cert-manager in a cluster).
    GenCerts(GenCertsCommand),
    /// Evaluate one AdmissionReview and print the response (exit 0 allowed, 1 denied,
    /// 2 error).
    Eval(EvalCommand),
    /// Dry-run the policy over existing workloads: manifests (files, directories, stdin)
    /// or a live cluster (exit 0 clean, 1 findings, 2 usage or input errors).
    Audit(AuditCommand),
}

/// `podguard audit`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  podguard audit deploy/                          # every .yaml/.yml/.json below deploy/
  helm template my-chart | podguard audit -       # rendered Helm or Kustomize output
  podguard audit --cluster                        # every namespace of the current context
  podguard audit --cluster -n shop -o sarif > podguard.sarif
  podguard audit manifests/ --show-fix            # what mutate mode would change
  podguard audit manifests/ --fix                 # write those changes into the files

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 usage or input errors.")]
pub(crate) struct AuditCommand {
    /// Files or directories to audit (directories recursively: .yaml, .yml, .json);
    /// `-` reads stdin. Multi-document YAML, JSON, and `kind: List` are all read.
    #[arg(value_name = "PATH")]
    pub(crate) inputs: Vec<PathBuf>,
    /// Audit the workloads of a live cluster (kubeconfig as kubectl resolves it:
    /// --kubeconfig, KUBECONFIG, ~/.kube/config, or the pod's service account).
    #[arg(long)]
    pub(crate) cluster: bool,
    /// Kubeconfig file to use with --cluster.
    #[arg(long, requires = "cluster")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use with --cluster (default: the current context).
    #[arg(long, requires = "cluster")]
    pub(crate) context: Option<String>,
    /// Only this namespace. With files, objects that set no namespace are taken to be in
    /// it, as `kubectl apply -n` would place them.
    #[arg(long, short = 'n')]
    pub(crate) namespace: Option<String>,
    /// Objects per list call with --cluster (the API server pages with `continue`).
    #[arg(long, default_value_t = 500, requires = "cluster")]
    pub(crate) page_size: u32,
    /// The policy and its settings.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// A report: `FORMAT` on stdout, or `FORMAT=FILE`; repeat for several from one run
    /// (at most one on stdout), e.g. `-o table -o sarif=podguard.sarif -o junit=report.xml`.
    /// Formats: table, json, sarif, junit, policyreport (wgpolicyk8s.io/v1alpha2),
    /// openreports (openreports.io/v1alpha1).
    #[arg(
        long = "output",
        short = 'o',
        value_name = "FORMAT[=FILE]",
        default_value = "table"
    )]
    pub(crate) outputs: Vec<OutputTarget>,
    /// The lowest mode whose findings fail the audit (exit 1): `enforce` counts checks in
    /// enforce and mutate mode, `warn` counts warn-mode checks too, `never` none.
    #[arg(long, value_enum, default_value = "enforce")]
    pub(crate) fail_on: FailOn,
    /// Show, per workload, what mutate mode would change (YAML diff and JSON Patch).
    #[arg(long)]
    pub(crate) show_fix: bool,
    /// Write mutate mode's changes into the files the workloads came from (not stdin,
    /// not --cluster). Other documents, their order and comments between them are kept.
    #[arg(long)]
    pub(crate) fix: bool,
    /// With --cluster: create or update the PolicyReports in the cluster (server-side
    /// apply) and delete the ones this audit no longer produces.
    #[arg(long, requires = "cluster")]
    pub(crate) write_reports: bool,
    /// Field manager for --write-reports.
    #[arg(long, default_value = "podguard", requires = "write_reports")]
    pub(crate) field_manager: String,
    /// Colour the table: `auto` when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) color: ColorChoice,
    /// Never show the progress bar (it only shows on a terminal anyway).
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Evaluation threads (default: one per core).
    #[arg(long, short = 'j', env = "PODGUARD_AUDIT_JOBS")]
    pub(crate) jobs: Option<usize>,
    /// The most one input (a file, or stdin) may hold, in bytes; a larger one is an error
    /// (exit 2), read no further.
    #[arg(long, env = "PODGUARD_MAX_INPUT_BYTES", default_value_t = podguard_audit::DEFAULT_MAX_INPUT_BYTES)]
    pub(crate) max_input_bytes: u64,
    /// Wasm limits.
    #[command(flatten)]
    pub(crate) host: HostArgs,
}

/// `audit --color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The policy a command runs: named the same way by `eval`, `audit` and `serve`.
#[derive(Debug, Args, Clone)]
pub(crate) struct PolicyArgs {
    /// The policy module: `builtin` (the module this binary carries, whose digest
    /// `--version` shows), a .wasm file (or file://PATH), or registry://REFERENCE for a
    /// policy artifact in an OCI registry (pulled and cached).
    #[arg(
        long,
        env = "PODGUARD_POLICY",
        default_value = "builtin",
        value_name = "MODULE"
    )]
    pub(crate) policy: PolicyRef,
    /// Runtime settings, YAML or JSON, layered over the module's embedded requirements.
    #[arg(long, env = "PODGUARD_SETTINGS")]
    pub(crate) settings: Option<PathBuf>,
    /// Registry access for a registry:// module.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `podguard eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalCommand {
    /// The policy and its settings.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// The AdmissionReview JSON file; `-` or nothing reads stdin.
    pub(crate) review: Option<PathBuf>,
    /// Wasm limits.
    #[command(flatten)]
    pub(crate) host: HostArgs,
}

/// `podguard serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeCommand {
    /// Address to listen on.
    #[arg(long, env = "PODGUARD_LISTEN", default_value = "0.0.0.0:8443")]
    pub(crate) listen: std::net::SocketAddr,
    /// The policy served as `podguard` at /validate and /mutate (and /validate/podguard,
    /// /mutate/podguard), with its settings.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Serve several policies instead, from a policies file shaped like policy-server's
    /// `policies.yml`: `NAME: {module: builtin | FILE.wasm | registry://REFERENCE,
    /// settings: {...}}` per policy, each served at /validate/NAME and /mutate/NAME.
    #[arg(long, env = "PODGUARD_POLICIES_FILE", value_name = "FILE", conflicts_with_all = ["policy", "settings"])]
    pub(crate) policies: Option<PathBuf>,
    /// PEM certificate chain; reloaded when the file changes.
    #[arg(long, env = "PODGUARD_TLS_CERT", required_unless_present = "insecure")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key; reloaded when the file changes.
    #[arg(long, env = "PODGUARD_TLS_KEY", required_unless_present = "insecure")]
    pub(crate) tls_key: Option<PathBuf>,
    /// PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = "PODGUARD_CLIENT_CA")]
    pub(crate) client_ca: Option<PathBuf>,
    /// Serve plain HTTP instead of TLS. For local experiments only: kube-apiserver only
    /// calls webhooks over HTTPS.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "client_ca"])]
    pub(crate) insecure: bool,
    /// What to answer when a policy cannot produce a verdict (trap, timeout, memory cap).
    #[arg(
        long,
        env = "PODGUARD_FAILURE_MODE",
        value_enum,
        default_value = "deny"
    )]
    pub(crate) failure_mode: FailureMode,
    /// Largest request body accepted; larger ones get 413. kube-apiserver accepts request
    /// bodies up to 3 MiB, and an UPDATE's review carries the object and the stored one.
    #[arg(long, env = "PODGUARD_MAX_BODY_BYTES", default_value_t = 7 * 1024 * 1024)]
    pub(crate) max_body_bytes: usize,
    /// The memory all request bodies being read may take together; past it, requests get
    /// 503 at once. An eighth is kept for bodies up to 256 KiB, so large bodies never
    /// lock ordinary reviews out.
    #[arg(long, env = "PODGUARD_MAX_BUFFERED_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_buffered_bytes: usize,
    /// Client connections open at once (lowered to fit the open-file limit, whose soft
    /// value is raised to the hard one at start). Near it, idle connections are closed
    /// after a second.
    #[arg(long, env = "PODGUARD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub(crate) max_connections: usize,
    /// How long a connection may stay open with no request. Longer than the 90 s after
    /// which kube-apiserver's client drops idle connections itself, so the client, not
    /// the server, closes them in normal operation.
    #[arg(long, env = "PODGUARD_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// How long a client may leave a response unread before its connection is dropped.
    #[arg(long, env = "PODGUARD_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) write_timeout: Duration,
    /// Evaluations running at once; more wait (see --queue-timeout).
    #[arg(long, env = "PODGUARD_MAX_CONCURRENT_EVALUATIONS")]
    pub(crate) max_concurrent_evaluations: Option<usize>,
    /// How long a request waits for an evaluation slot before it gets 503.
    #[arg(long, env = "PODGUARD_QUEUE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub(crate) queue_timeout: Duration,
    /// How long a client may take to send the request headers (and the TLS handshake).
    #[arg(long, env = "PODGUARD_HEADER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub(crate) header_timeout: Duration,
    /// How long a client may take to send the whole request body.
    #[arg(long, env = "PODGUARD_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,
    /// On SIGTERM or SIGINT, how long in-flight requests get to finish before exit.
    #[arg(long, env = "PODGUARD_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub(crate) shutdown_grace: Duration,
    /// How often the certificate and key files are checked for changes.
    #[arg(long, env = "PODGUARD_CERT_RELOAD_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub(crate) cert_reload_interval: Duration,
    /// Log format; `auto` is JSON when stderr is not a terminal.
    #[arg(long, env = "PODGUARD_LOG_FORMAT", value_enum, default_value = "auto")]
    pub(crate) log_format: LogFormat,
    /// Wasm limits.
    #[command(flatten)]
    pub(crate) host: HostArgs,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// JSON when stderr is not a terminal, text otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `podguard annotate`.
#[derive(Debug, Args)]
pub(crate) struct AnnotateCommand {
    /// The module to annotate.
    pub(crate) module: PathBuf,
    /// Kubewarden `metadata.yml` (default: the policy/metadata.yml this binary was built
    /// with).
    #[arg(long, short = 'm')]
    pub(crate) metadata: Option<PathBuf>,
    /// Markdown written into the `io.kubewarden.policy.usage` annotation.
    #[arg(long, short = 'u')]
    pub(crate) usage: Option<PathBuf>,
    /// Where to write the annotated module.
    #[arg(long, short = 'o')]
    pub(crate) output: PathBuf,
}

/// `podguard inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectCommand {
    /// The module: `builtin` (the default), a .wasm file or registry://REFERENCE.
    #[arg(default_value = "builtin", value_name = "MODULE")]
    pub(crate) module: PolicyRef,
    /// Registry access for a registry:// module.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `podguard artifacthub`.
#[derive(Debug, Args)]
pub(crate) struct ArtifacthubCommand {
    /// Kubewarden `metadata.yml` (default: the policy/metadata.yml this binary was built
    /// with).
    #[arg(long, short = 'm')]
    pub(crate) metadata: Option<PathBuf>,
    /// The settings form shown by ArtifactHub and Rancher (default: the
    /// policy/questions-ui.yml this binary was built with).
    #[arg(long, short = 'q')]
    pub(crate) questions: Option<PathBuf>,
    /// Where to write the listing (`-`: stdout); an existing file keeps its createdAt.
    #[arg(long, short = 'o', default_value = "artifacthub-pkg.yml")]
    pub(crate) output: PathBuf,
}

/// Registry access shared by `push`, `pull` and registry:// modules.
#[derive(Debug, Args, Clone)]
pub(crate) struct RegistryArgs {
    /// Allow plain HTTP to a registry that is not on loopback (loopback registries may
    /// always use plain HTTP).
    #[arg(long)]
    pub(crate) insecure_registry: bool,
    /// Docker config file with registry credentials (default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json).
    #[arg(long, env = "PODGUARD_DOCKER_CONFIG")]
    pub(crate) docker_config: Option<PathBuf>,
}

/// `podguard push`.
#[derive(Debug, Args)]
pub(crate) struct PushCommand {
    /// The annotated module.
    pub(crate) module: PathBuf,
    /// Where to push, e.g. ghcr.io/acme/policies/podguard:v0.1.0.
    pub(crate) reference: String,
    /// Registry access.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `podguard pull`.
#[derive(Debug, Args)]
pub(crate) struct PullCommand {
    /// What to pull, e.g. ghcr.io/acme/policies/podguard:v0.1.0.
    pub(crate) reference: String,
    /// Where to write the module.
    #[arg(long, short = 'o')]
    pub(crate) output: PathBuf,
    /// Registry access.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `podguard gen-certs`.
#[derive(Debug, Args)]
pub(crate) struct GenCertsCommand {
    /// Directory to write ca.crt, tls.crt and tls.key into.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// DNS names for the server certificate.
    #[arg(long = "dns", default_values = ["localhost"])]
    pub(crate) dns_names: Vec<String>,
    /// IP addresses for the server certificate.
    #[arg(long = "ip", default_values = ["127.0.0.1", "::1"])]
    pub(crate) ips: Vec<std::net::IpAddr>,
    /// Also write a client certificate (client.crt, client.key) signed by the same CA,
    /// for trying mutual TLS.
    #[arg(long)]
    pub(crate) client: bool,
    /// Days the certificates are valid, from now.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub(crate) days: u32,
    /// Replace certificates and keys that already exist in --out.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Limits of the Wasm host, shared by every subcommand that runs a module.
#[derive(Debug, Args, Clone)]
pub(crate) struct HostArgs {
    /// How long one evaluation may run before it is stopped.
    #[arg(long, env = "PODGUARD_EVAL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub(crate) eval_timeout: Duration,
    /// Memory cap per policy instance, in MiB.
    #[arg(long, env = "PODGUARD_MEMORY_LIMIT_MIB", default_value_t = 64)]
    pub(crate) memory_limit_mib: usize,
    /// Directory for precompiled modules (keyed by module digest and engine version);
    /// `eval` and `audit` default to `$XDG_CACHE_HOME/podguard` (else `~/.cache/podguard`).
    #[arg(long, env = "PODGUARD_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
}

/// Parses a duration as Kubernetes and Go write them: `250ms`, `2s`, `1m30s`, `1h`,
/// `1.5m`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration; write e.g. 250ms, 2s, 1m30s or 1h");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = text.parse().map_err(|_| invalid())?;
        return Duration::try_from_secs_f64(seconds).map_err(|_| invalid());
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let value: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            unit => {
                return Err(format!(
                    "{text:?} has an unknown unit {unit:?}; use h, m, s, ms, us or ns"
                ));
            }
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// The command-line reference (docs/cli.md): every command's full help, as `--help`
/// prints it. A test keeps the file current.
#[cfg(test)]
fn reference() -> String {
    use clap::CommandFactory as _;
    let prepare = |command: clap::Command| {
        command
            .term_width(100)
            .mut_args(|arg| arg.hide_env_values(true))
    };
    let mut root = prepare(Cli::command()).mut_subcommands(prepare);
    root.build();
    let mut out = String::from(
        "# podguard command-line reference\n\nGenerated from the flags' definitions (`webhook-server/src/cli.rs`) by\n`PODGUARD_BLESS=1 cargo test -p podguard-server --bin podguard cli_reference`.\n",
    );
    let mut section = |title: String, command: &mut clap::Command| {
        let help = command.render_long_help().to_string();
        out.push_str(&format!(
            "\n## {title}\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    };
    section("podguard".to_owned(), &mut root.clone());
    let names: Vec<String> = root
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|name| name != "help")
        .collect();
    for name in names {
        let command = root.find_subcommand_mut(&name).expect("listed above");
        section(format!("podguard {name}"), command);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
        let expected = super::reference();
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == expected {
            return;
        }
        if std::env::var_os("PODGUARD_BLESS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, expected).unwrap();
            return;
        }
        let line = current
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "docs/cli.md is not the flags' help (first difference at line {}: {:?} vs {:?}); regenerate it with PODGUARD_BLESS=1 cargo test -p podguard-server --bin podguard cli_reference",
            line + 1,
            current.lines().nth(line),
            expected.lines().nth(line)
        );
    }

    #[test]
    fn durations_are_read_as_kubernetes_and_go_write_them() {
        use std::time::Duration;
        for (text, expected) in [
            ("2", Duration::from_secs(2)),
            ("0.5", Duration::from_millis(500)),
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("1.5m", Duration::from_secs(90)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
            ("10us", Duration::from_micros(10)),
        ] {
            assert_eq!(super::parse_duration(text), Ok(expected), "{text}");
        }
        for (text, error) in [
            ("", "is not a duration"),
            ("s", "is not a duration"),
            ("1d", "unknown unit \"d\""),
            ("1m30", "is not a duration"),
            ("-1s", "is not a duration"),
        ] {
            let message = super::parse_duration(text).unwrap_err();
            assert!(message.contains(error), "{text}: {message}");
        }
    }
}
