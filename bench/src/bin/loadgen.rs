//! `loadgen`: drives an HTTPS admission webhook at a fixed concurrency and prints what it
//! measured as one JSON object (requests/s, p50, p99, p99.9, errors).
//!
//! Closed loop: each of `--concurrency` workers sends a request, waits for the whole
//! response, and sends the next, as kube-apiserver's admission calls do. HTTP/1.1 opens one
//! connection per worker; HTTP/2 multiplexes the workers as streams over `--connections`
//! connections (default 1, as kube-apiserver's Go client does). Connections and TLS
//! handshakes happen before the clock starts; a warm-up period follows that is not
//! recorded; then every latency in the measured window is kept and summarised. Only
//! loopback addresses are accepted, and every run is bounded in time.
//!
//! ```sh
//! loadgen --url https://127.0.0.1:8443/validate --ca certs/ca.crt --http 2 \
//!   --concurrency 64 --duration 10s --request deployment
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::BodyExt as _;
use podguard_bench::client::{self, Sender, Target};
use podguard_bench::requests::Workload;
use podguard_bench::results::LoadResult;
use podguard_bench::tls::{self, HttpVersion};
use podguard_bench::{ensure_loopback, parse_duration, proc_status_kib, reset_peak_rss, stats};
use rustls::pki_types::ServerName;

/// Load generator for podguard's webhook server (and the floor server).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// Where to POST, e.g. https://127.0.0.1:8443/validate (loopback only).
    #[arg(long, required_unless_present = "dump_request")]
    url: Option<String>,
    /// PEM CA the server's certificate must chain to.
    #[arg(long, required_unless_present_any = ["dump_request", "plain"])]
    ca: Option<PathBuf>,
    /// Name to verify the certificate against (and send as SNI).
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Speak plain HTTP (an `http://` URL), e.g. against `podguard serve --insecure`.
    #[arg(long)]
    plain: bool,
    /// HTTP version, negotiated through ALPN: 1.1 or 2.
    #[arg(long, value_enum, default_value = "1.1")]
    http: HttpVersion,
    /// Requests in flight at once (workers).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Connections to spread them over (HTTP/2 only; HTTP/1.1 uses one per worker).
    #[arg(long)]
    connections: Option<usize>,
    /// Length of the measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many measured requests instead of after --duration (still bounded
    /// by --deadline).
    #[arg(long)]
    requests: Option<u64>,
    /// Unrecorded load before the measured window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// One of the generated benchmark requests.
    #[arg(long, value_enum, conflicts_with = "body")]
    request: Option<Workload>,
    /// Or a file holding the AdmissionReview body to send.
    #[arg(long)]
    body: Option<PathBuf>,
    /// A request that takes longer than this counts as an error.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Client runtime threads (1: a single-threaded runtime, leaving the other cores to
    /// the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Label for the server in the output.
    #[arg(long, default_value = "server")]
    label: String,
    /// The server's pid: its peak RSS is reset before the run and read after it.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The whole run ends by then, whatever happens.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    deadline: Duration,
    /// Print the AdmissionReview body of this request and exit.
    #[arg(long, value_enum)]
    dump_request: Option<Workload>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(workload) = args.dump_request {
        println!("{}", String::from_utf8(workload.body())?);
        return Ok(());
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let deadline = args.deadline;
    let result = runtime.block_on(async {
        tokio::time::timeout(deadline, run(&args))
            .await
            .map_err(|_| anyhow::anyhow!("the run did not finish within --deadline {deadline:?}"))?
    })?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

struct Plan {
    target: Target,
    authority: String,
    path: String,
    body: Bytes,
    request_name: String,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let url: hyper::Uri = args
        .url
        .as_deref()
        .unwrap_or_default()
        .parse()
        .context("--url is not a URL")?;
    let scheme = url.scheme_str().unwrap_or("https");
    anyhow::ensure!(
        scheme == if args.plain { "http" } else { "https" },
        "--url must be {} (got {scheme})",
        if args.plain { "http://" } else { "https://" }
    );
    let authority = url
        .authority()
        .context("--url has no host")?
        .as_str()
        .to_owned();
    let host = url.host().unwrap_or_default();
    let ip: IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        literal => literal
            .parse()
            .with_context(|| format!("{host} is neither localhost nor an IP address"))?,
    };
    let address = SocketAddr::new(
        ip,
        url.port_u16().unwrap_or(if args.plain { 80 } else { 443 }),
    );
    ensure_loopback(address)?;
    let path = url
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());

    let (body, request_name) = match (&args.body, args.request) {
        (Some(file), _) => (
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?,
            file.file_stem()
                .map_or("body".into(), |s| s.to_string_lossy().into_owned()),
        ),
        (None, Some(workload)) => (workload.body(), workload.name().to_owned()),
        (None, None) => (Workload::Deployment.body(), "deployment".to_owned()),
    };

    let tls = match (&args.ca, args.plain) {
        (_, true) => None,
        (Some(ca), false) => Some(tokio_rustls::TlsConnector::from(Arc::new(
            tls::client_config(ca, args.http)?,
        ))),
        (None, false) => anyhow::bail!("--ca is required for https"),
    };
    let server_name = ServerName::try_from(args.server_name.clone())
        .with_context(|| format!("{:?} is not a valid server name", args.server_name))?;
    Ok(Plan {
        target: Target {
            address,
            server_name,
            tls,
            version: args.http,
        },
        authority,
        path,
        body: Bytes::from(body),
        request_name,
    })
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    error_samples: Vec<String>,
    response_bytes: usize,
    last_finish: Option<Instant>,
}

impl Tally {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(message);
        }
    }
}

struct Clock {
    measure_from: Instant,
    measure_until: Instant,
    remaining: Option<AtomicU64>,
    stop: AtomicBool,
}

impl Clock {
    /// Whether a worker may start another request; takes one from the budget when the
    /// request would be measured.
    fn next(&self, now: Instant) -> bool {
        if self.stop.load(Ordering::Relaxed) || now >= self.measure_until {
            return false;
        }
        match &self.remaining {
            Some(remaining) if now >= self.measure_from => {
                let taken = remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                if taken.is_err() {
                    self.stop.store(true, Ordering::Relaxed);
                }
                taken.is_ok()
            }
            _ => true,
        }
    }
}

fn is_admission_response(body: &[u8]) -> bool {
    let needle = b"\"response\"";
    body.starts_with(b"{") && body.windows(needle.len()).any(|w| w == needle)
}

async fn worker(
    mut sender: Sender,
    plan: Arc<Plan>,
    clock: Arc<Clock>,
    timeout: Duration,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let started = Instant::now();
        if !clock.next(started) {
            break;
        }
        let measured = started >= clock.measure_from;
        let request = client::request(
            plan.target.version,
            hyper::Method::POST,
            &plan.authority,
            &plan.path,
            plan.body.clone(),
        );
        let outcome = tokio::time::timeout(timeout, async {
            let response = sender.send(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        })
        .await;
        let finished = Instant::now();
        let failure = match outcome {
            Ok(Ok((200, body))) if is_admission_response(&body) => {
                tally.response_bytes = body.len();
                if measured {
                    tally
                        .latencies_ns
                        .push((finished - started).as_nanos() as u64);
                    tally.last_finish = Some(finished);
                }
                None
            }
            Ok(Ok((200, body))) => Some(format!(
                "200 without an AdmissionReview response: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Ok(Ok((status, body))) => {
                if measured {
                    *tally.statuses.entry(status).or_default() += 1;
                }
                Some(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            }
            Ok(Err(err)) => Some(format!("{err:#}")),
            Err(_) => Some(format!("no answer within {timeout:?}")),
        };
        if let Some(message) = failure {
            if measured {
                tally.error(message);
                tally.last_finish = Some(finished);
            }
            if sender.is_closed() {
                match client::connect(&plan.target).await {
                    Ok(fresh) => sender = fresh,
                    Err(err) => {
                        tally.error(format!("reconnecting failed: {err:#}"));
                        break;
                    }
                }
            }
        }
    }
    tally
}

async fn run(args: &Args) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let plan = Arc::new(plan(args)?);
    let connections = match args.http {
        HttpVersion::Http1 => {
            anyhow::ensure!(
                args.connections.is_none_or(|c| c == args.concurrency),
                "HTTP/1.1 carries one request at a time: --connections must equal --concurrency"
            );
            args.concurrency
        }
        HttpVersion::Http2 => args.connections.unwrap_or(1).clamp(1, args.concurrency),
    };
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(client::connect(&plan.target).await?);
    }

    if let Some(pid) = args.server_pid {
        reset_peak_rss(pid).with_context(|| format!("cannot reset the peak RSS of pid {pid}"))?;
    }
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let measure_until = match args.requests {
        Some(_) => start + args.deadline,
        None => measure_from + args.duration,
    };
    let clock = Arc::new(Clock {
        measure_from,
        measure_until,
        remaining: args.requests.map(AtomicU64::new),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| {
            tokio::spawn(worker(
                senders[i % connections].clone(),
                Arc::clone(&plan),
                Arc::clone(&clock),
                args.timeout,
            ))
        })
        .collect();
    let mut total = Tally::default();
    for handle in workers {
        let tally = handle.await.context("a worker panicked")?;
        total.latencies_ns.extend(tally.latencies_ns);
        total.errors += tally.errors;
        for (status, count) in tally.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
        for sample in tally.error_samples {
            if total.error_samples.len() < 5 {
                total.error_samples.push(sample);
            }
        }
        total.response_bytes = total.response_bytes.max(tally.response_bytes);
        total.last_finish = total.last_finish.max(tally.last_finish);
    }
    let server_peak_rss_kib = args
        .server_pid
        .and_then(|pid| proc_status_kib(pid, "VmHWM"));
    let seconds = total.last_finish.map_or(0.0, |end| {
        end.saturating_duration_since(measure_from).as_secs_f64()
    });
    let requests = total.latencies_ns.len() as u64;
    Ok(LoadResult {
        server: args.label.clone(),
        request: plan.request_name.clone(),
        request_bytes: plan.body.len(),
        http: args.http.label().to_owned(),
        concurrency: args.concurrency,
        connections,
        client_threads: args.threads.max(1),
        seconds,
        requests,
        errors: total.errors,
        statuses: total.statuses,
        error_samples: total.error_samples,
        requests_per_second: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        latency: stats::summarize(&mut total.latencies_ns),
        response_bytes: total.response_bytes,
        server_peak_rss_kib,
    })
}
