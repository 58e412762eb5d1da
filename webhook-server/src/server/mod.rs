//! `podguard serve`: the admission webhook.
//!
//! The listener comes up first (so `/livez` answers and a port conflict fails fast), the
//! policies load and warm up off the reactor, and `/readyz` turns ready once every one of
//! them answered a warm-up evaluation. On SIGTERM or SIGINT the server stops accepting,
//! turns not-ready, lets every in-flight request finish and exits within the grace period.

mod http;
mod limits;
mod metrics;
mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use limits::{BodyBudget, ConnActivity, Connections, LogGate, TrackedBody, Verdict, WriteDeadline};
use metrics::Metrics;
use podguard_host::admission::{self, Endpoint, FailureMode};
use podguard_host::policy_file::{LoadedPolicy, load_policy};
use podguard_host::{HostConfig, Runtime};
use podguard_policy::WorkloadKind;
use podguard_policy::contract::RequestBuilder;
use podguard_server::policy_ref::{Fetch, PolicyRef};
use tls::ReloadingCert;

/// A policy to serve.
#[derive(Debug, Clone)]
pub(crate) struct PolicySource {
    /// Its name in `/validate/NAME` and `/mutate/NAME`.
    pub(crate) name: String,
    /// The module, fetched when the server starts.
    pub(crate) module: PolicyRef,
    /// Its settings, as JSON.
    pub(crate) settings: String,
}

/// TLS files.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// PEM certificate chain.
    pub(crate) cert: PathBuf,
    /// PEM private key.
    pub(crate) key: PathBuf,
    /// PEM CA bundle for client certificates (mutual TLS).
    pub(crate) client_ca: Option<PathBuf>,
    /// How often the files are checked for changes.
    pub(crate) reload_interval: Duration,
}

/// Everything `serve` needs, typed.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    /// Address to listen on.
    pub(crate) listen: SocketAddr,
    /// The policies.
    pub(crate) policies: Vec<PolicySource>,
    /// How registry:// modules are fetched.
    pub(crate) fetch: Fetch,
    /// TLS; `None` serves plain HTTP (`--insecure`).
    pub(crate) tls: Option<TlsFiles>,
    /// Answer when a policy cannot produce a verdict.
    pub(crate) failure_mode: FailureMode,
    /// Largest accepted body.
    pub(crate) max_body_bytes: usize,
    /// The memory all request bodies being read may take together.
    pub(crate) max_buffered_bytes: usize,
    /// Connections open at once; past it, accepting waits for one to close.
    pub(crate) max_connections: usize,
    /// How long a connection may sit with no request before it is closed.
    pub(crate) idle_timeout: Duration,
    /// How long a response may go unread before its connection is dropped.
    pub(crate) write_timeout: Duration,
    /// Evaluations running at once.
    pub(crate) max_concurrent_evaluations: usize,
    /// Wait for an evaluation slot before 503.
    pub(crate) queue_timeout: Duration,
    /// Time allowed for the TLS handshake and the request headers.
    pub(crate) header_timeout: Duration,
    /// Time allowed for the request body.
    pub(crate) request_timeout: Duration,
    /// Time in-flight requests get after SIGTERM.
    pub(crate) shutdown_grace: Duration,
    /// Threads of the async runtime.
    pub(crate) workers: usize,
    /// Wasm limits and cache.
    pub(crate) host: HostConfig,
}

/// State shared by every connection.
pub(crate) struct App {
    config: ServeConfig,
    policies: OnceLock<BTreeMap<String, Arc<LoadedPolicy>>>,
    ready: AtomicBool,
    evaluations: Arc<Semaphore>,
    body_budget: Arc<BodyBudget>,
    connections: Arc<Connections>,
    /// Wakes every connection's watchdog when the connection limit is reached.
    crowded: tokio::sync::Notify,
    log_gate: LogGate,
    metrics: Metrics,
}

impl App {
    fn new(config: ServeConfig) -> App {
        App {
            evaluations: Arc::new(Semaphore::new(config.max_concurrent_evaluations)),
            body_budget: Arc::new(BodyBudget::new(config.max_buffered_bytes)),
            connections: Arc::default(),
            crowded: tokio::sync::Notify::new(),
            log_gate: LogGate::default(),
            config,
            policies: OnceLock::new(),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    /// How long an idle connection is kept. Near the connection limit, idle connections
    /// make room for new ones within a second: otherwise a client that opens connections
    /// and sends nothing could lock every other client out until the idle timeout.
    fn idle_limit(&self) -> Duration {
        let crowded = self.connections.open() * 10 >= self.config.max_connections * 9;
        if crowded {
            CROWDED_IDLE_LIMIT.min(self.config.idle_timeout)
        } else {
            self.config.idle_timeout
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// How long an idle connection is kept once 90% of the connection limit is in use.
const CROWDED_IDLE_LIMIT: Duration = Duration::from_millis(250);

/// How often each connection's watchdog looks at it.
const WATCHDOG_INTERVAL: Duration = Duration::from_secs(1);

/// How often, at the connection limit, idle connections are asked to make room.
const EVICTION_INTERVAL: Duration = Duration::from_millis(100);

/// File descriptors kept for what is not a connection: the listener, policy and TLS
/// files, the runtime's own, and room for a few refusals.
const RESERVED_FILES: u64 = 64;

/// A body that exercises the module end to end before the server reports ready.
fn warm_up_review() -> Vec<u8> {
    const POD: &[u8] = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"warm-up"},"spec":{"containers":[{"name":"app","image":"registry.example/app:1.0"}]}}"#;
    RequestBuilder::create(WorkloadKind::Pod, "v1", POD)
        .uid("podguard-warm-up")
        .name("warm-up")
        .namespace("podguard-warm-up")
        .dry_run(false)
        .review()
}

fn load_all(config: &ServeConfig) -> anyhow::Result<BTreeMap<String, Arc<LoadedPolicy>>> {
    let runtime = Runtime::new(config.host.clone())?;
    let mut loaded = BTreeMap::new();
    for source in &config.policies {
        let started = std::time::Instant::now();
        // Called off the reactor (spawn_blocking), so waiting on a registry pull here
        // holds no worker.
        let module = tokio::runtime::Handle::current()
            .block_on(source.module.resolve(&config.fetch))
            .with_context(|| {
                format!("while fetching policy {} ({})", source.name, source.module)
            })?;
        let policy = load_policy(&runtime, &source.name, &module, source.settings.clone())
            .with_context(|| format!("while loading policy {}", source.name))?;
        let answer = admission::review(
            &policy.module,
            &policy.settings,
            &warm_up_review(),
            Endpoint::Mutate,
            FailureMode::Deny,
        )?;
        if let Some(failure) = answer.failure {
            anyhow::bail!(
                "policy {}: the warm-up evaluation failed: {}",
                source.name,
                podguard_host::chain(&failure)
            );
        }
        tracing::info!(
            policy = %source.name,
            module = %source.module,
            digest = %policy.module.digest(),
            size = policy.module.size(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "policy loaded and warmed up"
        );
        loaded.insert(source.name.clone(), Arc::new(policy));
    }
    Ok(loaded)
}

/// Runs the server until `shutdown` resolves, then drains. Returns an error when start-up
/// fails (TLS files, listen address, a policy that does not load or refuses its settings).
pub(crate) async fn run(
    mut config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.max_connections = connection_limit(config.max_connections);
    let cert = match &config.tls {
        Some(files) => Some(Arc::new(
            ReloadingCert::load(&files.cert, &files.key)
                .context("while loading the TLS certificate")?,
        )),
        None => None,
    };
    let acceptor = match (&config.tls, &cert) {
        (Some(files), Some(cert)) => {
            let tls = tls::server_config(Arc::clone(cert), files.client_ca.as_deref())
                .context("while configuring TLS")?;
            Some(TlsAcceptor::from(Arc::new(tls)))
        }
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    let address = listener.local_addr()?;
    match &config.tls {
        Some(files) => {
            tracing::info!(%address, mutual_tls = files.client_ca.is_some(), max_connections = config.max_connections, workers = config.workers, evaluation_slots = config.max_concurrent_evaluations, "listening (HTTPS, HTTP/1.1 and HTTP/2)")
        }
        None => {
            tracing::warn!(%address, max_connections = config.max_connections, workers = config.workers, evaluation_slots = config.max_concurrent_evaluations, "listening on PLAIN HTTP (--insecure): for local use only, kube-apiserver requires HTTPS")
        }
    }

    let app = Arc::new(App::new(config.clone()));
    let loader = {
        let app = Arc::clone(&app);
        tokio::task::spawn_blocking(move || {
            let loaded = load_all(&app.config)?;
            let _ = app.policies.set(loaded);
            app.ready.store(true, Ordering::Release);
            tracing::info!("ready");
            anyhow::Ok(())
        })
    };
    let mut loader = std::pin::pin!(loader);
    let mut loading = true;

    tokio::spawn(give_back_after_bursts(Arc::clone(&app.body_budget)));
    let reload_now = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(on_hangup(Arc::clone(&reload_now)));
    if let (Some(cert), Some(files)) = (&cert, &config.tls) {
        tokio::spawn(watch_certificate(
            Arc::clone(cert),
            files.reload_interval,
            reload_now,
            Arc::clone(&app),
        ));
    }

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let at_limit = app.connections.open() >= app.config.max_connections;
        tokio::select! {
            () = &mut shutdown => break,
            result = &mut loader, if loading => {
                loading = false;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => return Err(err),
                    Err(join) => return Err(anyhow::anyhow!("policy loading panicked: {join}")),
                }
            }
            // At the limit, new connections wait in the listen backlog until one closes.
            () = app.connections.one_closed(), if at_limit => {}
            () = tokio::time::sleep(EVICTION_INTERVAL), if at_limit => {
                app.crowded.notify_waiters();
                if let Some(suppressed) = app.log_gate.admit("connection-limit") {
                    tracing::warn!(
                        open = app.connections.open(),
                        limit = app.config.max_connections,
                        similar_lines_not_logged = suppressed,
                        "connection limit reached; new connections wait until idle ones close (--max-connections)"
                    );
                }
            }
            accepted = listener.accept(), if !at_limit => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of
                        // spinning, and say so once a second at most.
                        if let Some(suppressed) = app.log_gate.admit("accept") {
                            tracing::warn!(error = %err, similar_lines_not_logged = suppressed, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // Webhook answers are small; Nagle's algorithm would hold them back.
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let acceptor = acceptor.clone();
                let counted = app.connections.track();
                let stopping = stopping.clone();
                tokio::spawn(async move {
                    let _counted = counted;
                    let header_timeout = app.config.header_timeout;
                    let first_request_by = tokio::time::Instant::now() + header_timeout;
                    let write_timeout = app.config.write_timeout;
                    match acceptor {
                        None => serve_connection(TokioIo::new(WriteDeadline::new(stream, write_timeout)), app, stopping, first_request_by).await,
                        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => serve_connection(TokioIo::new(WriteDeadline::new(tls, write_timeout)), app, stopping, first_request_by).await,
                            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        },
                    }
                });
            }
        }
    }

    drop(listener);
    app.ready.store(false, Ordering::Release);
    let grace = app.config.shutdown_grace;
    tracing::info!(
        grace_seconds = grace.as_secs_f64(),
        open_connections = app.connections.open(),
        "shutting down: no new connections, draining in-flight requests"
    );
    let _ = stop.send(true);
    let drained = async {
        while app.connections.open() > 0 {
            // Polled as well as notified: a connection may close between the check and
            // the wait.
            let _ = tokio::time::timeout(WATCHDOG_INTERVAL, app.connections.one_closed()).await;
        }
    };
    match tokio::time::timeout(grace, drained).await {
        Ok(()) => tracing::info!("every connection drained"),
        Err(_) => tracing::warn!(
            open_connections = app.connections.open(),
            "the grace period ended with connections still open"
        ),
    }
    Ok(())
}

/// The connection limit the open-file limit allows: the soft limit is raised to the hard
/// one first (container runtimes often start processes at a soft limit of 1,024), and
/// `wanted` is lowered to fit what remains, so the server never runs out of descriptors
/// and stops accepting instead.
fn connection_limit(wanted: usize) -> usize {
    let (soft, hard) = match rlimit::increase_nofile_limit(u64::MAX)
        .and_then(|_| rlimit::getrlimit(rlimit::Resource::NOFILE))
    {
        Ok(limits) => limits,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the open-file limit; keeping --max-connections as given");
            return wanted;
        }
    };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            soft_limit = soft,
            hard_limit = hard,
            wanted,
            allowed = fits.max(1),
            "the open-file limit is below --max-connections; serving fewer connections (raise the hard limit, e.g. ulimit -Hn, to serve more)"
        );
        return fits.max(1);
    }
    tracing::debug!(soft_limit = soft, hard_limit = hard, "open-file limit");
    wanted
}

/// Serves one connection. Its first request must arrive (headers complete) by
/// `first_request_by`: hyper's `header_read_timeout` only covers HTTP/1.1 once the protocol
/// is known, and nothing bounds the HTTP/2 preface or the wait for the first bytes, so a
/// client that connects and then sends nothing, or one byte at a time, would otherwise hold
/// its connection (and a file descriptor) for as long as it likes.
///
/// Afterwards a watchdog closes the connection gracefully once it has been idle for the
/// idle limit, and drops it when a response has gone unread for the write timeout (a
/// client that never reads would otherwise pin the answer's memory, and hold up shutdown,
/// for as long as it likes).
async fn serve_connection<I>(
    io: TokioIo<I>,
    app: Arc<App>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    first_request_by: tokio::time::Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(Duration::from_secs(30));
    let opened = std::time::Instant::now();
    let activity = Arc::new(ConnActivity::default());
    let first_request = Arc::new(tokio::sync::Notify::new());
    let service = {
        let first_request = Arc::clone(&first_request);
        let activity = Arc::clone(&activity);
        let app = Arc::clone(&app);
        hyper::service::service_fn(move |request| {
            first_request.notify_one();
            let exchange = activity.begin();
            let app = Arc::clone(&app);
            async move {
                let reply = http::handle(app, request).await?;
                Ok::<_, std::convert::Infallible>(
                    reply.map(|body| TrackedBody::new(body, exchange)),
                )
            }
        })
    };
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut started = false;
    let mut closing = false;
    let mut watchdog = tokio::time::interval(WATCHDOG_INTERVAL);
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = first_request.notified(), if !started => started = true,
            () = tokio::time::sleep_until(first_request_by), if !started => {
                tracing::debug!("no complete request within the header timeout; closing the connection");
                return;
            }
            changed = stopping.changed(), if !closing => {
                if changed.is_err() || *stopping.borrow() {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            check = async {
                tokio::select! {
                    _ = watchdog.tick() => {}
                    () = app.crowded.notified() => {}
                }
            } => {
                let () = check;
                if !started {
                    // Near the limit, a connection that has not sent its first request
                    // yet is as idle as one between requests.
                    let idle_limit = app.idle_limit();
                    if idle_limit < app.config.idle_timeout && opened.elapsed() >= idle_limit {
                        app.connections.closed_idle.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    continue;
                }
                match activity.check(app.idle_limit(), app.config.write_timeout) {
                    Verdict::Fine => {}
                    Verdict::Idle if !closing => {
                        closing = true;
                        app.connections.closed_idle.fetch_add(1, Ordering::Relaxed);
                        connection.as_mut().graceful_shutdown();
                    }
                    Verdict::Idle => {}
                    Verdict::Stalled => {
                        note_stalled(&app);
                        return;
                    }
                }
            }
        }
    };
    if let Err(err) = result {
        if timed_out_writing(&*err) {
            note_stalled(&app);
        } else {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    }
}

/// Whether a connection failed because [`WriteDeadline`] gave up on a peer that reads
/// nothing.
fn timed_out_writing(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Counts and logs (at most once a second) a connection dropped for an unread response.
fn note_stalled(app: &App) {
    app.connections
        .closed_stalled
        .fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = app.log_gate.admit("stalled") {
        tracing::info!(
            write_timeout_seconds = app.config.write_timeout.as_secs_f64(),
            similar_lines_not_logged = suppressed,
            "dropping a connection whose client did not read its response (--write-timeout)"
        );
    }
}

/// HTTP/2 streams one connection may have open at once: kube-apiserver sends one request
/// per stream and waits for it, and each open stream may hold a body and an answer.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// Once a burst of large request bodies has passed, gives its memory back to the system.
async fn give_back_after_bursts(budget: Arc<BodyBudget>) {
    const BURST: usize = 16 * 1024 * 1024;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        if budget.burst_passed(BURST) {
            tokio::task::spawn_blocking(limits::give_back_memory);
        }
    }
}

/// Operators and tools send SIGHUP to mean "reload"; left to its default it would end the
/// process at once, undrained. It asks for a certificate check instead.
async fn on_hangup(reload_now: Arc<tokio::sync::Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(err) => {
            tracing::warn!(error = %err, "cannot handle SIGHUP; it would stop the server undrained");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received: checking the TLS certificate and key now");
        reload_now.notify_one();
    }
}

async fn watch_certificate(
    cert: Arc<ReloadingCert>,
    interval: Duration,
    reload_now: Arc<tokio::sync::Notify>,
    app: Arc<App>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_failure: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = reload_now.notified() => {}
        }
        match cert.reload_if_changed() {
            Ok(true) => {
                last_failure = None;
                app.metrics.count_tls_reload(true);
                tracing::info!("TLS certificate reloaded; new connections use it");
            }
            Ok(false) => last_failure = None,
            Err(err) => {
                // Logged once per cause: a rotation in progress fails once or twice, and
                // a file that stays broken should not fill the log, but a new cause
                // (the key fixed, the certificate now wrong) is news.
                let cause = err.to_string();
                if last_failure.as_ref() != Some(&cause) {
                    app.metrics.count_tls_reload(false);
                    tracing::warn!(error = %cause, "TLS certificate not reloaded; still serving the previous one");
                    last_failure = Some(cause);
                }
            }
        }
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
