//! `floor`: the transport floor. An HTTPS server with podguard's transport settings
//! (rustls with ring, TLS 1.3 and 1.2, ALPN `h2` and `http/1.1`, `TCP_NODELAY` on every
//! accepted socket, hyper's automatic HTTP/1.1 + HTTP/2 connection builder with the same
//! options, one runtime worker per core) that reads each request body in full and answers
//! with a canned AdmissionReview response. Whatever podguard adds on top of this is the
//! cost of evaluating the policy.
//!
//! ```sh
//! floor --listen 127.0.0.1:9443 --tls-cert certs/tls.crt --tls-key certs/tls.key \
//!   --response deployment=deployment-response.json
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use podguard_bench::{ensure_loopback, tls};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The transport-floor server: TLS + HTTP, a canned AdmissionReview answer, no policy.
#[derive(Debug, Parser)]
#[command(name = "floor")]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    tls_key: PathBuf,
    /// A canned response, as NAME=FILE: a POST whose path ends in `/NAME` gets FILE's
    /// bytes. Repeatable; other POSTs get the first one (or, with none, a bare allowed
    /// AdmissionReview response).
    #[arg(long = "response", value_parser = parse_response)]
    responses: Vec<(String, PathBuf)>,
    /// Runtime worker threads (default: one per core, as podguard serve).
    #[arg(long)]
    workers: Option<usize>,
    /// Stop by itself after this long (a benchmark never leaves it running).
    #[arg(long, default_value = "30m", value_parser = podguard_bench::parse_duration)]
    lifetime: Duration,
}

const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure_loopback(args.listen)?;
    let mut canned = Canned {
        by_name: HashMap::new(),
        fallback: Bytes::from_static(
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"0b1e6c0a-5f55-4c1c-9d5e-000000000002","allowed":true}}"#,
        ),
    };
    for (i, (name, path)) in args.responses.iter().enumerate() {
        let bytes = Bytes::from(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        if i == 0 {
            canned.fallback = bytes.clone();
        }
        canned.by_name.insert(name.clone(), bytes);
    }
    let response = Arc::new(canned);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(&args.tls_cert, &args.tls_key)?));
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("floor: listening on https://{}", listener.local_addr()?);
        let lifetime = tokio::time::sleep(args.lifetime);
        tokio::pin!(lifetime);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                () = &mut lifetime => { eprintln!("floor: --lifetime reached, stopping"); break; }
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let response = response.clone();
                    tokio::spawn(async move {
                        if let Ok(Ok(tls)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            serve_connection(TokioIo::new(tls), response).await;
                        }
                    });
                }
            }
        }
        anyhow::Ok(())
    })
}

/// The same connection builder and options as `podguard serve`.
async fn serve_connection<I>(io: TokioIo<I>, canned: Arc<Canned>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let service = hyper::service::service_fn(move |request| handle(request, Arc::clone(&canned)));
    let _ = builder.serve_connection(io, service).await;
}

/// The canned answers.
struct Canned {
    by_name: HashMap<String, Bytes>,
    fallback: Bytes,
}

fn parse_response(text: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: write NAME=FILE"))?;
    Ok((name.to_owned(), PathBuf::from(file)))
}

async fn handle(
    request: Request<Incoming>,
    canned: Arc<Canned>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/livez" | "/readyz") => (StatusCode::OK, Bytes::from_static(b"ok\n")),
        (&Method::POST, path) => {
            let answer = path
                .rsplit('/')
                .next()
                .and_then(|name| canned.by_name.get(name))
                .unwrap_or(&canned.fallback)
                .clone();
            match Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(_) => (StatusCode::OK, answer),
                Err(_) => (
                    StatusCode::BAD_REQUEST,
                    Bytes::from_static(br#"{"code":400,"message":"unreadable body"}"#),
                ),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"code":404,"message":"no such route"}"#),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
