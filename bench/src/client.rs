//! A minimal HTTPS client on hyper's connection API: one TCP + TLS connection, HTTP/1.1 or
//! HTTP/2 as ALPN negotiated, no pool and no retries, so what is measured is what is sent.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::HttpVersion;

/// The request body type every benchmark request uses.
pub type Body = Full<Bytes>;

/// One open connection.
#[derive(Clone)]
pub enum Sender {
    /// HTTP/1.1: one request at a time.
    Http1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Body>>>),
    /// HTTP/2: clones share the connection, each request is a stream.
    Http2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    /// Sends one request and waits for the response head.
    pub async fn send(&mut self, request: Request<Body>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::Http1(sender) => {
                let mut sender = sender.lock().await;
                sender.ready().await?;
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }

    /// Whether the connection is gone (a new one is needed).
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.try_lock().is_ok_and(|s| s.is_closed()),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    /// The server's address (loopback).
    pub address: SocketAddr,
    /// The name the certificate must carry.
    pub server_name: ServerName<'static>,
    /// TLS (with the single ALPN protocol to offer); `None` connects in plain text.
    pub tls: Option<TlsConnector>,
    /// The HTTP version to speak.
    pub version: HttpVersion,
}

/// Opens a connection: TCP with `TCP_NODELAY`, the TLS handshake (checking that ALPN chose
/// the requested protocol), then the HTTP handshake. The connection's driver runs as a task.
pub async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let tcp = TcpStream::connect(target.address)
        .await
        .with_context(|| format!("cannot connect to {}", target.address))?;
    tcp.set_nodelay(true)?;
    match &target.tls {
        Some(connector) => {
            let tls = connector
                .connect(target.server_name.clone(), tcp)
                .await
                .context("TLS handshake failed")?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            anyhow::ensure!(
                alpn.as_deref() == Some(target.version.alpn()),
                "the server did not agree to {} through ALPN (it chose {:?})",
                target.version.label(),
                alpn.map(|a| String::from_utf8_lossy(&a).into_owned())
            );
            handshake(TokioIo::new(tls), target.version).await
        }
        None => handshake(TokioIo::new(tcp), target.version).await,
    }
}

async fn handshake<I>(io: TokioIo<I>, version: HttpVersion) -> anyhow::Result<Sender>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match version {
        HttpVersion::Http1 => {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Ok(Sender::Http1(Arc::new(tokio::sync::Mutex::new(sender))))
        }
        HttpVersion::Http2 => {
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .handshake(io)
                    .await?;
            tokio::spawn(connection);
            Ok(Sender::Http2(sender))
        }
    }
}

/// A request for `path` with `body` in the form the HTTP version needs (HTTP/2 carries the
/// authority in the URI, HTTP/1.1 in `Host`).
pub fn request(
    version: HttpVersion,
    method: hyper::Method,
    authority: &str,
    path: &str,
    body: Bytes,
) -> Request<Body> {
    let builder = Request::builder().method(method);
    let builder = match version {
        HttpVersion::Http1 => builder.uri(path).header(hyper::header::HOST, authority),
        HttpVersion::Http2 => builder.uri(format!("https://{authority}{path}")),
    };
    builder
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(body))
        .expect("a well-formed request")
}
