//! Command-line flags, parsed once into typed configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::host::HostConfig;

/// podguard: a workload-hardening admission policy, run as a webhook, an audit or a
/// one-off evaluation.
#[derive(Debug, Parser)]
#[command(name = "podguard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate one AdmissionReview and print the response (exit 0 allowed, 1 denied,
    /// 2 error).
    Eval(EvalCommand),
}

/// `podguard eval`.
#[derive(Debug, Args)]
pub struct EvalCommand {
    /// The policy module (.wasm).
    #[arg(long, env = "PODGUARD_POLICY")]
    pub policy: PathBuf,
    /// Runtime settings, YAML or JSON, layered over the module's embedded requirements.
    #[arg(long, env = "PODGUARD_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// The AdmissionReview JSON file; `-` or nothing reads stdin.
    pub review: Option<PathBuf>,
    /// Wasm limits.
    #[command(flatten)]
    pub host: HostArgs,
}

/// Limits of the Wasm host, shared by every subcommand that runs a module.
#[derive(Debug, Args, Clone)]
pub struct HostArgs {
    /// How long one evaluation may run before it is stopped.
    #[arg(long, env = "PODGUARD_EVAL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub eval_timeout: Duration,
    /// Memory cap per policy instance, in MiB.
    #[arg(long, env = "PODGUARD_MEMORY_LIMIT_MIB", default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// Directory for precompiled modules (keyed by module digest and engine version).
    #[arg(long, env = "PODGUARD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl HostArgs {
    /// The host configuration these flags describe.
    pub fn to_config(&self) -> HostConfig {
        HostConfig {
            deadline: self.eval_timeout,
            memory_limit: self.memory_limit_mib * 1024 * 1024,
            cache_dir: self.cache_dir.clone(),
            ..HostConfig::default()
        }
    }
}

/// Parses `250ms`, `2s`, `1m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 250ms, 2s or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?} has an unknown unit; use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a usable duration"))
}
