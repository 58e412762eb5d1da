//! The `podguard` binary: parses flags, starts logging and runs one subcommand.

use std::process::ExitCode;

use clap::Parser as _;
use podguard_server::cli::{Cli, Command};
use podguard_server::eval::{self, EvalArgs, Verdict};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PODGUARD_LOG")
                .unwrap_or_else(|_| "warn,cranelift=off,wasmtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Eval(cmd) => {
            let args = EvalArgs {
                policy: cmd.policy,
                settings: cmd.settings,
                review: cmd.review,
                host: cmd.host.to_config(),
            };
            match eval::run(&args, &mut std::io::stdout().lock()) {
                Ok(Verdict::Allowed) => ExitCode::SUCCESS,
                Ok(Verdict::Denied) => ExitCode::from(1),
                Err(err) => {
                    eprintln!("podguard eval: {err:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
