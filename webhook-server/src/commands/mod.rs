//! One module per command, each running the configuration `config` made from its flags.

mod audit;
mod eval;
mod gen_certs;
mod publish;
mod serve;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs `command`; the exit code says how it went.
pub(crate) fn run(command: Command) -> ExitCode {
    let serving = matches!(command, Command::Serve(_));
    let result = match command {
        Command::Audit(cmd) => {
            return match crate::config::audit_options(cmd) {
                Ok(options) => audit::run(options),
                Err(err) => {
                    eprintln!("podguard audit: {err:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Eval(cmd) => return eval::run(&cmd),
        Command::Serve(cmd) => crate::config::serve_config(cmd).and_then(serve::run),
        Command::Annotate(cmd) => publish::annotate(&cmd),
        Command::Inspect(cmd) => publish::inspect(&cmd),
        Command::Artifacthub(cmd) => publish::artifacthub(&cmd),
        Command::Push(cmd) => publish::push(&cmd),
        Command::Pull(cmd) => publish::pull(&cmd),
        Command::GenCerts(cmd) => gen_certs::run(&cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Said once: the server's log is where its operators look (JSON in a cluster);
        // every other command speaks to the person who ran it.
        Err(err) if serving => {
            tracing::error!(error = %format!("{err:#}"), "podguard stopped");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("podguard: {err:#}");
            ExitCode::from(2)
        }
    }
}
