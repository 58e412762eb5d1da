//! `podguard serve`: the admission webhook.
//!
//! The listener comes up first (so `/livez` answers and a port conflict fails fast), the
//! policies load and warm up off the reactor, and `/readyz` turns ready once every one of
//! them answered a warm-up evaluation. On SIGTERM or SIGINT the server stops accepting,
//! turns not-ready, lets every in-flight request finish and exits within the grace period.

mod http;
pub mod metrics;
pub mod tls;

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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Endpoint, FailureMode};
use crate::host::{HostConfig, Runtime};
use crate::policy_file::{LoadedPolicy, load_policy};
use metrics::Metrics;
use tls::ReloadingCert;

/// A policy to serve.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// Its name in `/validate/NAME` and `/mutate/NAME`.
    pub name: String,
    /// The module file.
    pub module: PathBuf,
    /// The settings file, if any.
    pub settings: Option<PathBuf>,
}

/// TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle for client certificates (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for changes.
    pub reload_interval: Duration,
}

/// Everything `serve` needs, typed.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The policies.
    pub policies: Vec<PolicySource>,
    /// TLS; `None` serves plain HTTP (`--insecure`).
    pub tls: Option<TlsFiles>,
    /// Answer when a policy cannot produce a verdict.
    pub failure_mode: FailureMode,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Evaluations running at once.
    pub max_concurrent_evaluations: usize,
    /// Wait for an evaluation slot before 503.
    pub queue_timeout: Duration,
    /// Time allowed for the TLS handshake and the request headers.
    pub header_timeout: Duration,
    /// Time allowed for the request body.
    pub request_timeout: Duration,
    /// Time in-flight requests get after SIGTERM.
    pub shutdown_grace: Duration,
    /// Wasm limits and cache.
    pub host: HostConfig,
}

/// State shared by every connection.
pub struct App {
    config: ServeConfig,
    policies: OnceLock<BTreeMap<String, Arc<LoadedPolicy>>>,
    ready: AtomicBool,
    evaluations: Semaphore,
    metrics: Metrics,
}

impl App {
    fn new(config: ServeConfig) -> App {
        App {
            evaluations: Semaphore::new(config.max_concurrent_evaluations),
            config,
            policies: OnceLock::new(),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// A body that exercises the module end to end before the server reports ready.
const WARM_UP_REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"podguard-warm-up","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"podguard-warm-up","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"warm-up"},"spec":{"containers":[{"name":"app","image":"registry.example/app:1.0"}]}}}}"#;

fn load_all(config: &ServeConfig) -> anyhow::Result<BTreeMap<String, Arc<LoadedPolicy>>> {
    let runtime = Runtime::new(config.host.clone())?;
    let mut loaded = BTreeMap::new();
    for source in &config.policies {
        let started = std::time::Instant::now();
        let policy = load_policy(
            &runtime,
            &source.name,
            &source.module,
            source.settings.as_deref(),
        )
        .with_context(|| format!("while loading policy {}", source.name))?;
        let answer = admission::review(
            &policy.module,
            &policy.settings,
            WARM_UP_REVIEW.as_bytes(),
            Endpoint::Mutate,
            FailureMode::Deny,
        )?;
        if let Some(failure) = answer.failure {
            anyhow::bail!(
                "policy {}: the warm-up evaluation failed: {failure}",
                source.name
            );
        }
        tracing::info!(
            policy = %source.name,
            module = %source.module.display(),
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
pub async fn run(config: ServeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
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
            tracing::info!(%address, mutual_tls = files.client_ca.is_some(), "listening (HTTPS, HTTP/1.1 and HTTP/2)")
        }
        None => {
            tracing::warn!(%address, "listening on PLAIN HTTP (--insecure): for local use only, kube-apiserver requires HTTPS")
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

    if let (Some(cert), Some(files)) = (&cert, &config.tls) {
        tokio::spawn(watch_certificate(
            Arc::clone(cert),
            files.reload_interval,
            Arc::clone(&app),
        ));
    }

    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // Webhook answers are small; Nagle's algorithm would hold them back.
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let header_timeout = app.config.header_timeout;
                    let first_request_by = tokio::time::Instant::now() + header_timeout;
                    match acceptor {
                        None => serve_connection(TokioIo::new(stream), app, watcher, first_request_by).await,
                        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), app, watcher, first_request_by).await,
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
        "shutting down: no new connections, draining in-flight requests"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("every connection drained"),
        Err(_) => tracing::warn!("the grace period ended with connections still open"),
    }
    Ok(())
}

/// Serves one connection. Its first request must arrive (headers complete) by
/// `first_request_by`: hyper's `header_read_timeout` only covers HTTP/1.1 once the protocol
/// is known, and nothing bounds the HTTP/2 preface or the wait for the first bytes, so a
/// client that connects and then sends nothing, or one byte at a time, would otherwise hold
/// its connection (and a file descriptor) for as long as it likes.
async fn serve_connection<I>(
    io: TokioIo<I>,
    app: Arc<App>,
    watcher: hyper_util::server::graceful::Watcher,
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
        .keep_alive_interval(Duration::from_secs(30));
    let first_request = Arc::new(tokio::sync::Notify::new());
    let service = {
        let first_request = Arc::clone(&first_request);
        hyper::service::service_fn(move |request| {
            first_request.notify_one();
            http::handle(Arc::clone(&app), request)
        })
    };
    let connection = builder.serve_connection(io, service).into_owned();
    let mut connection = std::pin::pin!(watcher.watch(connection));
    let result = tokio::select! {
        result = &mut connection => result,
        () = first_request.notified() => connection.await,
        () = tokio::time::sleep_until(first_request_by) => {
            tracing::debug!("no complete request within the header timeout; closing the connection");
            return;
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

async fn watch_certificate(cert: Arc<ReloadingCert>, interval: Duration, app: Arc<App>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        match cert.reload_if_changed() {
            Ok(true) => {
                failing = false;
                app.metrics.tls_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("TLS certificate reloaded; new connections use it");
            }
            Ok(false) => failing = false,
            Err(err) => {
                // Log once per failure streak: a rotation in progress fails once or twice.
                if !failing {
                    app.metrics
                        .tls_reload_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "TLS certificate not reloaded; still serving the previous one");
                }
                failing = true;
            }
        }
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
