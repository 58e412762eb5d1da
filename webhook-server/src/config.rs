//! Every flag turned into the configuration a library or the server takes: the one place
//! where defaults that depend on the machine (terminal, cores, `NO_COLOR`) are decided.

use std::io::IsTerminal as _;

use podguard_audit::{AuditOptions, ClusterOptions};
use podguard_host::HostConfig;

use anyhow::Context as _;
use podguard_host::policy_file::{ModuleSource, read_settings};

use crate::cli::{
    AuditCommand, ColorChoice, GenCertsCommand, HostArgs, PolicyArgs, RegistryArgs, ServeCommand,
};
use crate::server::{PolicySource, ServeConfig, TlsFiles};
use podguard_server::gen_certs::CertRequest;
use podguard_server::policy_ref::{Fetch, read_policies_file};
use podguard_server::publish::oci::RegistryOptions;

/// The Wasm host's limits.
pub(crate) fn host_config(args: &HostArgs) -> HostConfig {
    HostConfig {
        deadline: args.eval_timeout,
        memory_limit: args.memory_limit_mib * 1024 * 1024,
        cache_dir: args.cache_dir.clone(),
        ..HostConfig::default()
    }
}

/// The host of a one-shot command (`eval`, `audit`): as [`host_config`], but compiled
/// modules are cached by default in the user's cache directory (`$XDG_CACHE_HOME/podguard`,
/// else `~/.cache/podguard`), as kwctl caches, so a second run does not compile the module
/// again. A default directory that cannot be created is not used; `--cache-dir` is always
/// used, and says so when it cannot be.
pub(crate) fn command_host_config(args: &HostArgs) -> HostConfig {
    let mut config = host_config(args);
    if config.cache_dir.is_none() {
        config.cache_dir = default_cache_dir().filter(|dir| std::fs::create_dir_all(dir).is_ok());
    }
    config
}

fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("podguard"))
}

/// How a registry:// module is fetched, and where pulled modules are cached: in
/// `--cache-dir`, or in the one-shot commands' default cache.
pub(crate) fn fetch(registry: &RegistryArgs, host: &HostConfig) -> Fetch {
    Fetch {
        registry: registry_options(registry),
        cache_dir: host.cache_dir.clone(),
    }
}

/// The module a one-shot command (`eval`, `audit`, `inspect`) runs: a registry:// module
/// is pulled now.
pub(crate) fn command_module(args: &PolicyArgs, host: &HostConfig) -> anyhow::Result<ModuleSource> {
    args.policy.resolve_blocking(&fetch(&args.registry, host))
}

/// What `podguard audit` runs.
pub(crate) fn audit_options(cmd: AuditCommand) -> anyhow::Result<AuditOptions> {
    let stdout_terminal = std::io::stdout().is_terminal();
    let host = command_host_config(&cmd.host);
    let policy = command_module(&cmd.policy, &host)?;
    Ok(AuditOptions {
        inputs: cmd.inputs,
        cluster: cmd.cluster.then_some(ClusterOptions {
            kubeconfig: cmd.kubeconfig,
            context: cmd.context,
            namespace: None,
            page_size: cmd.page_size,
        }),
        namespace: cmd.namespace,
        policy,
        settings: cmd.policy.settings,
        outputs: cmd.outputs,
        fail_on: cmd.fail_on,
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
        jobs: cmd
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        max_input_bytes: cmd.max_input_bytes,
        host,
    })
}

/// The policies `serve` loads: the one `--policy` names, served as `podguard`, or those
/// of `--policies`. Settings are read here, so a missing file stops the start at once.
fn served_policies(cmd: &ServeCommand) -> anyhow::Result<Vec<PolicySource>> {
    let Some(file) = &cmd.policies else {
        return Ok(vec![PolicySource {
            name: "podguard".to_owned(),
            module: cmd.policy.policy.clone(),
            settings: read_settings(cmd.policy.settings.as_deref())?,
        }]);
    };
    read_policies_file(file)?
        .into_iter()
        .map(|(name, entry)| {
            let settings = serde_json::Value::Object(entry.settings.unwrap_or_default());
            Ok(PolicySource {
                name,
                module: entry.module,
                settings: settings.to_string(),
            })
        })
        .collect()
}

/// What `podguard serve` runs.
pub(crate) fn serve_config(cmd: ServeCommand) -> anyhow::Result<ServeConfig> {
    let policies = served_policies(&cmd).context("while reading the policies to serve")?;
    let host = host_config(&cmd.host);
    let tls = match (cmd.tls_cert, cmd.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: cmd.client_ca,
            reload_interval: cmd.cert_reload_interval,
        }),
        _ => None,
    };
    // The CPUs this process may use, not the host's: on Linux, available_parallelism
    // honours the affinity mask (taskset, cpusets) and the cgroup CPU quota (a Pod's CPU
    // limit), so a webhook limited to 2 CPUs on a 64-core node runs 2 workers.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(ServeConfig {
        listen: cmd.listen,
        fetch: fetch(&cmd.policy.registry, &host),
        policies,
        tls,
        failure_mode: cmd.failure_mode,
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
        workers,
        host,
    })
}

/// How `push` and `pull` reach the registry.
pub(crate) fn registry_options(args: &RegistryArgs) -> RegistryOptions {
    RegistryOptions {
        insecure: args.insecure_registry,
        docker_config: args.docker_config.clone(),
    }
}

/// What `gen-certs` writes.
pub(crate) fn cert_request(cmd: &GenCertsCommand) -> CertRequest {
    CertRequest {
        client: cmd.client,
        valid_for: std::time::Duration::from_secs(u64::from(cmd.days) * 24 * 3600),
        overwrite: cmd.force,
        ..CertRequest::new(cmd.dns_names.clone(), cmd.ips.clone())
    }
}
