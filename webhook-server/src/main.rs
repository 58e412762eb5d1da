//! The `podguard` binary: parses flags, starts logging and runs one subcommand.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use podguard_server::admission::FailureMode;
use podguard_server::cli::{Cli, Command, FailureModeArg, LogFormat, ServeCommand};
use podguard_server::eval::{self, EvalArgs, Verdict};
use podguard_server::gen_certs::{self, CertRequest};
use podguard_server::oci;
use podguard_server::server::{self, PolicySource, ServeConfig, TlsFiles};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(cmd) => cmd.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    let result = match cli.command {
        Command::Audit(cmd) => return audit(cmd),
        Command::Eval(cmd) => {
            let args = EvalArgs {
                policy: cmd.policy,
                settings: cmd.settings,
                review: cmd.review,
                host: cmd.host.to_config(),
            };
            return match eval::run(&args, &mut std::io::stdout().lock()) {
                Ok(Verdict::Allowed) => ExitCode::SUCCESS,
                Ok(Verdict::Denied) => ExitCode::from(1),
                Err(err) => {
                    eprintln!("podguard eval: {err:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Serve(cmd) => serve(cmd),
        Command::Annotate(cmd) => {
            podguard_server::annotate::annotate(&cmd.module, &cmd.metadata, cmd.usage.as_deref())
                .and_then(|bytes| {
                    std::fs::write(&cmd.output, &bytes)
                        .with_context(|| format!("while writing {}", cmd.output.display()))?;
                    println!("{}: {} bytes", cmd.output.display(), bytes.len());
                    Ok(())
                })
        }
        Command::Inspect(cmd) => inspect(&cmd.module, cmd.json),
        Command::Artifacthub(cmd) => artifacthub(&cmd),
        Command::Push(cmd) => registry(|| async {
            let digest = oci::push(
                &cmd.module,
                &cmd.reference,
                &registry_options(&cmd.registry),
            )
            .await?;
            println!(
                "{}@{digest}",
                cmd.reference.trim_start_matches("registry://")
            );
            Ok(())
        }),
        Command::Pull(cmd) => registry(|| async {
            let pulled = oci::pull(&cmd.reference, &registry_options(&cmd.registry)).await?;
            std::fs::write(&cmd.output, &pulled.module)
                .with_context(|| format!("while writing {}", cmd.output.display()))?;
            println!(
                "{} {} ({} bytes)",
                cmd.output.display(),
                pulled.digest,
                pulled.module.len()
            );
            Ok(())
        }),
        Command::GenCerts(cmd) => gen_certs::generate(
            &cmd.out,
            &CertRequest {
                dns_names: cmd.dns_names,
                ips: cmd.ips,
                client: cmd.client,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "podguard stopped");
            eprintln!("podguard: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// `podguard audit`: flags into options, the audit's status into the exit code.
fn audit(cmd: podguard_server::cli::AuditCommand) -> ExitCode {
    use podguard_server::audit::report::OutputFormat;
    use podguard_server::audit::{self, AuditOptions, cluster::ClusterOptions, model::FailOn};
    use podguard_server::cli::{AuditOutput, ColorChoice, FailOnArg};
    let stdout_terminal = std::io::stdout().is_terminal();
    let options = AuditOptions {
        inputs: cmd.inputs,
        cluster: cmd.cluster.then_some(ClusterOptions {
            kubeconfig: cmd.kubeconfig,
            context: cmd.context,
            namespace: None,
            page_size: cmd.page_size,
        }),
        namespace: cmd.namespace,
        policy: cmd.policy,
        settings: cmd.settings,
        output: match cmd.output {
            AuditOutput::Table => OutputFormat::Table,
            AuditOutput::Json => OutputFormat::Json,
            AuditOutput::Sarif => OutputFormat::Sarif,
            AuditOutput::Junit => OutputFormat::Junit,
            AuditOutput::PolicyReport => OutputFormat::PolicyReport,
        },
        fail_on: match cmd.fail_on {
            FailOnArg::Enforce => FailOn::Enforce,
            FailOnArg::Warn => FailOn::Warn,
            FailOnArg::Never => FailOn::Never,
        },
        show_fix: cmd.show_fix,
        fix: cmd.fix,
        write_reports: cmd.write_reports,
        field_manager: cmd.field_manager,
        color: match cmd.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_terminal && std::env::var_os("NO_COLOR").is_none(),
        },
        progress: !cmd.no_progress && std::io::stderr().is_terminal(),
        jobs: cmd.jobs.unwrap_or(0),
        max_input_bytes: cmd.max_input_bytes,
        host: cmd.host.to_config(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match audit::run(&options, &mut out, &mut std::io::stderr()) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            use std::io::Write as _;
            let _ = out.flush();
            eprintln!("podguard audit: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn artifacthub(cmd: &podguard_server::cli::ArtifacthubCommand) -> anyhow::Result<()> {
    use podguard_server::artifacthub;
    let metadata = podguard_server::annotate::Metadata::from_yaml_file(&cmd.metadata)?;
    let questions_ui = std::fs::read_to_string(&cmd.questions)
        .with_context(|| format!("while reading {}", cmd.questions.display()))?;
    let created_at = std::fs::read_to_string(&cmd.output)
        .ok()
        .and_then(|existing| artifacthub::existing_created_at(&existing))
        .unwrap_or_else(artifacthub::now_rfc3339);
    let listing = artifacthub::render(&artifacthub::ListingSources {
        metadata: &metadata,
        questions_ui: &questions_ui,
        created_at: &created_at,
    })?;
    std::fs::write(&cmd.output, listing)
        .with_context(|| format!("while writing {}", cmd.output.display()))?;
    println!("{}", cmd.output.display());
    Ok(())
}

fn registry_options(args: &podguard_server::cli::RegistryArgs) -> oci::RegistryOptions {
    oci::RegistryOptions {
        insecure: args.insecure_registry,
        docker_config: args.docker_config.clone(),
    }
}

/// Runs one registry operation on a small runtime of its own.
fn registry<F, Fut>(operation: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(operation())
}

fn inspect(module: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(module).with_context(|| format!("while reading {}", module.display()))?;
    let report = podguard_server::annotate::inspect(&bytes)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("module:  {}", module.display());
    println!("size:    {} bytes", report.size);
    println!("digest:  {}", report.digest);
    println!("exports: {}", report.exports.join(", "));
    match &report.metadata {
        None => println!("metadata: none (annotate it with `podguard annotate`)"),
        Some(metadata) => {
            let mut shown = metadata.clone();
            // The usage annotation is the whole README; show its size instead.
            if let Some(usage) = shown
                .annotations
                .as_mut()
                .and_then(|a| a.get_mut(podguard_server::annotate::USAGE_ANNOTATION))
            {
                *usage = format!("({} bytes of markdown)", usage.len());
            }
            println!("metadata:\n{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

fn serve(cmd: ServeCommand) -> anyhow::Result<()> {
    let tls = match (cmd.tls_cert, cmd.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: cmd.client_ca,
            reload_interval: cmd.cert_reload_interval,
        }),
        _ => None,
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let config = ServeConfig {
        listen: cmd.listen,
        policies: cmd
            .policies
            .into_iter()
            .map(|spec| PolicySource {
                name: spec.name,
                module: spec.module,
                settings: spec.settings,
            })
            .collect(),
        tls,
        failure_mode: match cmd.failure_mode {
            FailureModeArg::Deny => FailureMode::Deny,
            FailureModeArg::Allow => FailureMode::Allow,
        },
        max_body_bytes: cmd.max_body_bytes,
        max_buffered_bytes: cmd.max_buffered_bytes.max(cmd.max_body_bytes),
        max_connections: cmd.max_connections.max(1),
        idle_timeout: cmd.idle_timeout,
        write_timeout: cmd.write_timeout,
        // Evaluation is CPU-bound: a couple per core keeps the cores busy while one waits
        // on memory, without letting a storm queue unbounded work.
        max_concurrent_evaluations: cmd.max_concurrent_evaluations.unwrap_or(workers * 2),
        queue_timeout: cmd.queue_timeout,
        header_timeout: cmd.header_timeout,
        request_timeout: cmd.request_timeout,
        shutdown_grace: cmd.shutdown_grace,
        host: cmd.host.to_config(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(server::run(config, server::shutdown_signal()))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODGUARD_LOG")
        .unwrap_or_else(|_| "info,cranelift=warn,wasmtime=warn,hyper=warn,rustls=warn".into());
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
