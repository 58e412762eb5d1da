//! The `podguard` binary: parses flags, starts logging and runs one command.

mod cli;
mod commands;
mod config;
mod server;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(cmd) => cmd.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    commands::run(cli.command)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODGUARD_LOG")
        // The cluster client's own error lines repeat what audit reports in its words.
        .unwrap_or_else(|_| {
            "info,cranelift=warn,wasmtime=warn,hyper=warn,rustls=warn,kube_client=off,kube=off"
                .into()
        });
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
