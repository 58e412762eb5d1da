//! `startup`: time from starting a server process to its `/readyz` answering 200.
//!
//! Spawns the command after `--`, polls `GET /readyz` over TLS every millisecond (one
//! keep-alive connection once the listener is up), records the elapsed time and the
//! process's peak RSS, stops it with SIGTERM, and repeats `--runs` times. With
//! `--clear DIR` the directory is emptied before every run (a cold start: no precompiled
//! module); without it, runs after the first find what the first one cached (warm).
//!
//! ```sh
//! startup --url https://127.0.0.1:8443/readyz --ca certs/ca.crt --runs 5 --label warm -- \
//!   target/release/podguard serve --listen 127.0.0.1:8443 ... --cache-dir /tmp/cache
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::BodyExt as _;
use podguard_bench::client::{self, Target};
use podguard_bench::results::StartupResult;
use podguard_bench::tls::{self, HttpVersion};
use podguard_bench::{ensure_loopback, parse_duration, proc_status_kib, stats};
use rustls::pki_types::ServerName;

/// Measures start-to-ready time of a server command.
#[derive(Debug, Parser)]
#[command(name = "startup")]
struct Args {
    /// The readiness URL, e.g. https://127.0.0.1:8443/readyz (loopback only).
    #[arg(long)]
    url: String,
    /// PEM CA the server's certificate must chain to.
    #[arg(long)]
    ca: PathBuf,
    /// Name to verify the certificate against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// How many times to start the server.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Empty this directory before every run (cold starts).
    #[arg(long)]
    clear: Option<PathBuf>,
    /// Label for the output (`cold`, `warm`).
    #[arg(long, default_value = "start")]
    label: String,
    /// Give up on a run after this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Where the server's stderr goes (appended); default: discarded.
    #[arg(long)]
    log: Option<PathBuf>,
    /// The server command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url: hyper::Uri = args.url.parse().context("--url is not a URL")?;
    let host = url.host().unwrap_or_default();
    let ip: IpAddr = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        literal => literal
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("{host} is neither localhost nor an IP address"))?,
    };
    let address = SocketAddr::new(ip, url.port_u16().unwrap_or(443));
    ensure_loopback(address)?;
    let target = Target {
        address,
        server_name: ServerName::try_from(args.server_name.clone())?,
        tls: Some(tokio_rustls::TlsConnector::from(Arc::new(
            tls::client_config(&args.ca, HttpVersion::Http1)?,
        ))),
        version: HttpVersion::Http1,
    };
    let authority = url
        .authority()
        .context("--url has no host")?
        .as_str()
        .to_owned();
    let path = url.path().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut ready_ms = Vec::new();
    let mut peak_rss_kib = Vec::new();
    for run in 0..args.runs {
        if let Some(dir) = &args.clear
            && dir.exists()
        {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        // Nothing may be listening yet: a leftover server would answer for this one.
        anyhow::ensure!(
            std::net::TcpStream::connect_timeout(&address, Duration::from_millis(50)).is_err(),
            "something already listens on {address}; stop it first"
        );
        let stderr = match &args.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Stdio::null(),
        };
        let started = Instant::now();
        let mut child = Command::new(&args.command[0])
            .args(&args.command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", args.command[0]))?;
        let waited = runtime.block_on(wait_ready(
            &target,
            &authority,
            &path,
            &mut child,
            started + args.timeout,
        ));
        let elapsed = started.elapsed();
        let rss = proc_status_kib(child.id(), "VmHWM");
        stop(&mut child)?;
        waited.with_context(|| format!("run {}", run + 1))?;
        ready_ms.push(elapsed.as_secs_f64() * 1000.0);
        peak_rss_kib.extend(rss);
    }
    let result = StartupResult {
        label: args.label,
        median_ms: stats::median(&mut ready_ms.clone()),
        ready_ms,
        peak_rss_kib,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn wait_ready(
    target: &Target,
    authority: &str,
    path: &str,
    child: &mut Child,
    give_up: Instant,
) -> anyhow::Result<()> {
    let mut sender = None;
    loop {
        if Instant::now() >= give_up {
            anyhow::bail!("not ready in time");
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server exited before it was ready ({status})");
        }
        if sender.is_none() {
            sender = client::connect(target).await.ok();
        }
        if let Some(connection) = &mut sender {
            let request = client::request(
                HttpVersion::Http1,
                hyper::Method::GET,
                authority,
                path,
                Bytes::new(),
            );
            match connection.send(request).await {
                Ok(response) => {
                    let ok = response.status() == hyper::StatusCode::OK;
                    let _ = response.into_body().collect().await;
                    if ok {
                        // Close the connection so the server's graceful shutdown has
                        // nothing to wait for.
                        drop(sender);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        return Ok(());
                    }
                }
                Err(_) => sender = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// SIGTERM, then SIGKILL if it has not exited within 10 s.
fn stop(child: &mut Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}
