//! `podguard-playground`: serves the built playground page on loopback.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serves the playground that `scripts/playground-build` wrote; the policy runs in the
/// browser, so this only hands out files.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; keep it on loopback, the page is for the person at this machine.
    #[arg(
        long,
        env = "PODGUARD_PLAYGROUND_ADDR",
        default_value = "127.0.0.1:8000"
    )]
    addr: SocketAddr,
    /// The built page.
    #[arg(
        long,
        env = "PODGUARD_PLAYGROUND_DIR",
        default_value = "target/playground"
    )]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.dir.join("pkg").is_dir() {
        eprintln!(
            "{} holds no built playground; run: bash scripts/playground-build",
            args.dir.display()
        );
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(args.addr) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "cannot listen on {}: {err} (pick another with --addr)",
                args.addr
            );
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.addr);
    println!("podguard playground: http://{addr}/  (Ctrl-C stops it)");
    match podguard_playground::serve(listener, args.dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serving stopped: {err}");
            ExitCode::FAILURE
        }
    }
}
