//! Soak: the real `podguard serve` over TLS under steady load at concurrency 64 while its
//! certificate is rotated every 10 s, then SIGTERM with a request in flight on every
//! connection.
//!
//! Passes (exit 0) when no request failed or went unanswered, every request in flight at
//! SIGTERM was answered before the process exited 0, every rotation was picked up, and the
//! server's resident memory grew by less than 10% between the first and the last quarter
//! of the run (medians of samples every 500 ms).
//!
//! ```sh
//! cargo run -p podguard-e2e --bin soak -- --duration 60s [--report soak.json]
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use podguard_e2e::{
    Client, HttpVersion, Issued, Method, ServeConfig, Server, TestCa, TlsOptions, Transport,
    admission_response, channel_body, fixtures, parse_prometheus, poll_until, review_with_uid,
    write_atomically,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

struct Options {
    duration: Duration,
    concurrency: usize,
    rotate_every: Duration,
    report: Option<std::path::PathBuf>,
}

fn parse_seconds(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = match text.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration like 60s or 10m"))?;
    Ok(Duration::from_secs(number * unit))
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        duration: Duration::from_secs(60),
        concurrency: 64,
        rotate_every: Duration::from_secs(10),
        report: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => options.duration = parse_seconds(&value()?)?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--rotate-every" => options.rotate_every = parse_seconds(&value()?)?,
            "--report" => options.report = Some(value()?.into()),
            other => bail!(
                "unknown flag {other}; usage: soak [--duration 60s] [--concurrency 64] [--rotate-every 10s] [--report FILE]"
            ),
        }
    }
    ensure!(
        options.duration >= Duration::from_secs(8),
        "--duration must be at least 8s (four quarters of RSS samples)"
    );
    Ok(options)
}

/// One request of the mix: a fixture without runtime settings, its path and the verdict
/// its expected.json gives.
struct Request {
    review: Value,
    path: &'static str,
    allowed: bool,
}

fn request_mix() -> Vec<Request> {
    let mut mix = Vec::new();
    for fixture in fixtures() {
        if fixture.dir.join("settings.json").is_file() {
            continue;
        }
        let Some(expected) = fixture.expected() else {
            continue;
        };
        for path in ["/validate", "/mutate"] {
            mix.push(Request {
                review: fixture.review.clone(),
                path,
                allowed: expected.allowed,
            });
        }
    }
    mix
}

#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
    latencies_us: std::sync::Mutex<Vec<u64>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().expect("not poisoned").push(what);
    }
}

/// Shared by the workers and the controller.
struct Load {
    tally: Tally,
    /// Set at the end of the load phase: each worker then holds one last request open.
    finishing: AtomicBool,
    /// Workers whose last request is in flight (headers and half the body sent).
    holding: AtomicUsize,
    /// Flipped to true after SIGTERM: the held requests send the rest of their bodies.
    release: watch::Receiver<bool>,
}

async fn one_request(
    connection: &mut Option<podguard_e2e::Connection>,
    client: &Client,
    request: &Request,
    uid: &str,
) -> anyhow::Result<()> {
    if connection.is_none() {
        *connection = Some(client.connect().await?);
    }
    let reply = connection
        .as_mut()
        .expect("connected")
        .post(request.path, review_with_uid(&request.review, uid))
        .await?;
    let response = admission_response(&reply, uid)?;
    ensure!(
        response["allowed"] == request.allowed,
        "expected allowed={}, got {response}",
        request.allowed
    );
    Ok(())
}

async fn held_request(
    load: &Load,
    connection: Option<podguard_e2e::Connection>,
    client: &Client,
    request: &Request,
    uid: &str,
) -> anyhow::Result<()> {
    let mut connection = match connection {
        Some(connection) => connection,
        None => client.connect().await?,
    };
    let body = review_with_uid(&request.review, uid);
    let (sender, request_body) = channel_body(Some(body.len() as u64));
    let http = connection.build(Method::POST, request.path, request_body);
    let reply = tokio::spawn(async move { connection.send(http).await });
    let half = body.len() / 2;
    sender.send(body[..half].to_vec()).await?;
    load.holding.fetch_add(1, Ordering::SeqCst);
    let mut release = load.release.clone();
    release.wait_for(|go| *go).await?;
    sender.send(Bytes::from(body).slice(half..)).await?;
    drop(sender);
    let reply = reply.await??;
    let response = admission_response(&reply, uid)?;
    ensure!(response["allowed"] == request.allowed, "{response}");
    Ok(())
}

async fn worker(id: usize, load: Arc<Load>, client: Client, mix: Arc<Vec<Request>>) {
    // New connections now and then, so that handshakes meet every rotated certificate.
    const REQUESTS_PER_CONNECTION: usize = 100;
    let mut connection = None;
    let mut n = 0usize;
    while !load.finishing.load(Ordering::SeqCst) {
        let request = &mix[(id + n) % mix.len()];
        let uid = format!("soak-{id}-{n}");
        n += 1;
        if n.is_multiple_of(REQUESTS_PER_CONNECTION) {
            connection = None;
        }
        let started = Instant::now();
        match one_request(&mut connection, &client, request, &uid).await {
            Ok(()) => {
                load.tally.answered.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                load.tally
                    .latencies_us
                    .lock()
                    .expect("not poisoned")
                    .push(micros);
            }
            Err(err) => {
                connection = None;
                load.tally.fail(format!("{uid}: {err:#}"));
            }
        }
    }
    let request = &mix[(id + n) % mix.len()];
    let uid = format!("soak-{id}-held");
    match held_request(&load, connection, &client, request, &uid).await {
        Ok(()) => {
            load.tally.answered.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => load
            .tally
            .fail(format!("{uid} (in flight at SIGTERM): {err:#}")),
    }
}

fn install(dir: &Path, issued: &Issued) -> anyhow::Result<()> {
    write_atomically(&dir.join("tls.key"), issued.key_pem.as_bytes(), 0o600)?;
    write_atomically(&dir.join("tls.crt"), issued.cert_pem.as_bytes(), 0o644)
}

/// Rotates the certificate every `every` and waits for new connections to present it;
/// returns how long each rotation took to be picked up.
async fn rotate(
    server_client: Client,
    ca: Arc<TestCa>,
    dir: std::path::PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    failures: Arc<Mutex<Vec<String>>>,
) -> Vec<Duration> {
    let mut picked_up = Vec::new();
    let mut serial = 2000u64;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return picked_up,
        }
        serial += 1;
        let issued = match ca.server_cert(&["localhost", "127.0.0.1"], serial) {
            Ok(issued) => issued,
            Err(err) => {
                failures.lock().await.push(format!("issuing: {err:#}"));
                continue;
            }
        };
        let rotated = Instant::now();
        if let Err(err) = install(&dir, &issued) {
            failures.lock().await.push(format!("installing: {err:#}"));
            continue;
        }
        let seen = poll_until(
            Duration::from_secs(15),
            "a new connection to present the rotated certificate",
            || {
                let client = server_client.clone();
                let wanted = issued.der.clone();
                async move {
                    let connection = client.connect().await.ok()?;
                    let tls = connection.tls.clone()?;
                    (tls.peer_certificates.first() == Some(&wanted)).then_some(())
                }
            },
        )
        .await;
        match seen {
            Ok(()) => picked_up.push(rotated.elapsed()),
            Err(err) => failures
                .lock()
                .await
                .push(format!("rotation {serial}: {err:#}")),
        }
    }
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn in_flight(client: &Client) -> Option<f64> {
    let text = client.get("/metrics").await.ok()?.text();
    parse_prometheus(&text)
        .ok()?
        .into_iter()
        .find(|s| s.name == "podguard_in_flight_requests")
        .map(|s| s.value)
}

async fn run(options: Options) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let ca = Arc::new(TestCa::new("podguard soak CA")?);
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca.cert_pem())?;
    let volume = dir.path().join("tls");
    std::fs::create_dir(&volume)?;
    install(&volume, &ca.server_cert(&["localhost", "127.0.0.1"], 2000)?)?;
    let access = TlsOptions::new(&ca_path);
    let transport = Transport::Tls {
        cert: volume.join("tls.crt"),
        key: volume.join("tls.key"),
        client_ca: None,
        access: access.clone(),
    };
    let grace = Duration::from_secs(30);
    let mut server = Server::start(ServeConfig::new(transport).args([
        "--cert-reload-interval",
        "1s",
        "--shutdown-grace",
        "30s",
        "--request-timeout",
        "60s",
        // 64 clients share a few evaluation slots; on a machine that other jobs also
        // load, a short queue wait would turn a slow moment into 503s.
        "--queue-timeout",
        "10s",
    ]))
    .await?;
    let metrics = server.client(HttpVersion::Http1)?;
    eprintln!(
        "soak: podguard serve (pid {}) on {}: {:?} at concurrency {}, rotating every {:?}",
        server.pid(),
        server.addr,
        options.duration,
        options.concurrency,
        options.rotate_every
    );

    let (release_tx, release) = watch::channel(false);
    let load = Arc::new(Load {
        tally: Tally::default(),
        finishing: AtomicBool::new(false),
        holding: AtomicUsize::new(0),
        release,
    });
    let mix = Arc::new(request_mix());
    ensure!(!mix.is_empty(), "no fixture without settings");
    let started = Instant::now();
    let mut workers = Vec::new();
    for id in 0..options.concurrency {
        let version = HttpVersion::ALL[id % 2];
        workers.push(tokio::spawn(worker(
            id,
            Arc::clone(&load),
            server.client(version)?,
            Arc::clone(&mix),
        )));
    }
    let (stop_rotation, rotation_stopped) = watch::channel(false);
    let rotation_failures = Arc::new(Mutex::new(Vec::new()));
    let rotation = tokio::spawn(rotate(
        server.client(HttpVersion::Http1)?,
        Arc::clone(&ca),
        volume.clone(),
        options.rotate_every,
        rotation_stopped,
        Arc::clone(&rotation_failures),
    ));

    let mut rss = Vec::new();
    while started.elapsed() < options.duration {
        rss.push((started.elapsed(), server.rss_kib()?));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let load_phase = started.elapsed();
    // A rotation under way finishes (its check needs the server) before the end.
    stop_rotation.send(true)?;
    let picked_up = rotation.await?;
    load.finishing.store(true, Ordering::SeqCst);

    // Every worker ends with one request in flight; SIGTERM then.
    poll_until(
        Duration::from_secs(60),
        "every worker to hold a request in flight",
        || {
            let holding = load.holding.load(Ordering::SeqCst);
            let want = options.concurrency;
            async move { (holding >= want).then_some(()) }
        },
    )
    .await?;
    poll_until(
        Duration::from_secs(30),
        "the server to count every held request in flight",
        || {
            let metrics = metrics.clone();
            let want = options.concurrency as f64;
            async move { (in_flight(&metrics).await? >= want).then_some(()) }
        },
    )
    .await?;
    let terminated = Instant::now();
    server.terminate()?;
    release_tx.send(true)?;
    for worker in workers {
        tokio::time::timeout(grace + Duration::from_secs(30), worker)
            .await
            .context("a worker did not finish")??;
    }
    let status = server.wait_exit(grace + Duration::from_secs(10)).await?;
    let exit_after = terminated.elapsed();

    let failures = load.tally.failures.lock().expect("not poisoned").clone();
    let mut rotation_failures = rotation_failures.lock().await.clone();
    // Rotations at every multiple of the interval strictly inside the load phase.
    let expected_rotations = usize::try_from(
        (options.duration.as_millis().saturating_sub(1)) / options.rotate_every.as_millis().max(1),
    )?;
    if picked_up.len() < expected_rotations {
        rotation_failures.push(format!(
            "only {} rotations were picked up; expected at least {expected_rotations}",
            picked_up.len()
        ));
    }
    let answered = load.tally.answered.load(Ordering::SeqCst);
    let mut latencies = load
        .tally
        .latencies_us
        .lock()
        .expect("not poisoned")
        .clone();
    latencies.sort_unstable();
    let quarter = load_phase / 4;
    let mut first: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t < quarter)
        .map(|(_, kib)| *kib)
        .collect();
    let mut last: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= load_phase - quarter)
        .map(|(_, kib)| *kib)
        .collect();
    let (first_median, last_median) = (median(&mut first), median(&mut last));
    let growth = (last_median as f64 - first_median as f64) / first_median.max(1) as f64 * 100.0;
    let max_rss = rss.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    let ms = |us: u64| us as f64 / 1000.0;

    let report = json!({
        "duration_s": load_phase.as_secs_f64(),
        "concurrency": options.concurrency,
        "requests_answered": answered,
        "requests_per_second": latencies.len() as f64 / load_phase.as_secs_f64(),
        "failed_or_unanswered": failures.len(),
        "latency_ms": {
            "p50": ms(percentile(&latencies, 50.0)),
            "p99": ms(percentile(&latencies, 99.0)),
            "p99_9": ms(percentile(&latencies, 99.9)),
            "max": ms(latencies.last().copied().unwrap_or(0)),
        },
        "rotations_picked_up": picked_up.len(),
        "rotation_pickup_max_s": picked_up.iter().max().map_or(0.0, Duration::as_secs_f64),
        "rotation_failures": rotation_failures,
        "held_at_sigterm": options.concurrency,
        "exit_status": status.code(),
        "exit_after_sigterm_s": exit_after.as_secs_f64(),
        "rss_kib": {
            "first_quarter_median": first_median,
            "last_quarter_median": last_median,
            "growth_percent": growth,
            "max": max_rss,
            "samples": rss.len(),
        },
        "first_failures": failures.iter().take(20).collect::<Vec<_>>(),
    });

    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!("{} failed or unanswered requests", failures.len()));
    }
    if !rotation_failures.is_empty() {
        problems.push(format!("rotation: {}", rotation_failures.join("; ")));
    }
    if !status.success() {
        problems.push(format!("podguard serve exited with {status} after SIGTERM"));
    }
    if growth >= 10.0 {
        problems.push(format!(
            "RSS grew {growth:.1}% between the first and last quarter ({first_median} -> {last_median} KiB)"
        ));
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        bail!(
            "soak failed: {}\n{}",
            problems.join("; "),
            serde_json::to_string_pretty(&report)?
        )
    }
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("soak: {err:#}");
            return ExitCode::from(2);
        }
    };
    let report_path = options.report.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).expect("JSON");
            println!("{text}");
            if let Some(path) = report_path
                && let Err(err) = std::fs::write(&path, &text)
            {
                eprintln!("soak: writing {}: {err}", path.display());
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
