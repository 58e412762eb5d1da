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
        _ => {
            // A command whose output is cut short (`podguard inspect | head`) ends quietly,
            // as other command-line tools do, instead of panicking on the closed pipe. The
            // server keeps ignoring SIGPIPE: a client going away must not stop it.
            restore_default_sigpipe();
            LogFormat::Text
        }
    };
    init_logging(format);
    commands::run(cli.command)
}

#[allow(
    unsafe_code,
    reason = "libc::signal has no safe wrapper; this is the one call, before any thread starts"
)]
fn restore_default_sigpipe() {
    // SAFETY: called once at start, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    // Colour codes only for a terminal: a log file or pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
