//! End-to-end harness for `podguard serve`: builds the real binary and the policy module,
//! writes certificates, starts the server on a free loopback port and talks to it the way
//! kube-apiserver talks to a webhook: HTTPS that trusts only the configured CA bundle, with
//! HTTP/1.1 or HTTP/2 chosen by ALPN.
//!
//! Every wait here is bounded, and nothing is skipped: when the binary or the module cannot
//! be built, the helpers panic saying so.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

pub use hyper::{Method, StatusCode};
pub use podguard_conformance::{Expected, Fixture, fixtures, policy_module};

/// An error a request body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The request body type every connection sends.
pub type Body = BoxBody<Bytes, BoxError>;

/// How long a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, from sending it to reading the whole response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to report ready (it compiles and warms up the module).
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ lives inside the workspace")
}

/// The `podguard` binary, built once per test process with
/// `cargo build -p podguard-server --bin podguard`; its path comes from cargo's own
/// artifact messages, so `CARGO_TARGET_DIR` and build configuration are honoured.
pub fn podguard_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args([
                "build",
                "-p",
                "podguard-server",
                "--bin",
                "podguard",
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the podguard binary (cargo build -p podguard-server --bin podguard) failed: {}; see the compiler output above",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let executable = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "podguard")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no podguard executable");
        assert!(
            executable.is_file(),
            "cargo reported {} but it does not exist",
            executable.display()
        );
        executable
    })
}

/// A free TCP port on 127.0.0.1 (the listener is closed again before returning).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral loopback port")
        .port()
}

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// What `podguard gen-certs` wrote.
#[derive(Debug, Clone)]
pub struct Certs {
    /// The directory.
    pub dir: PathBuf,
    /// `ca.crt`: the CA bundle a webhook configuration's `caBundle` would carry.
    pub ca: PathBuf,
    /// `tls.crt`.
    pub cert: PathBuf,
    /// `tls.key`.
    pub key: PathBuf,
    /// `client.crt` (only with `--client`).
    pub client_cert: PathBuf,
    /// `client.key` (only with `--client`).
    pub client_key: PathBuf,
}

/// Runs `podguard gen-certs --out DIR --dns ...` (and `--client` when asked), and checks
/// that it wrote what it promises.
pub fn gen_certs(dir: &Path, dns_names: &[&str], client: bool) -> anyhow::Result<Certs> {
    let mut command = Command::new(podguard_binary());
    command.arg("gen-certs").arg("--out").arg(dir);
    for name in dns_names {
        command.args(["--dns", name]);
    }
    if client {
        command.arg("--client");
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .context("running podguard gen-certs")?;
    ensure!(
        output.status.success(),
        "podguard gen-certs failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let certs = Certs {
        dir: dir.to_owned(),
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    };
    let mut expected = vec![&certs.ca, &certs.cert, &certs.key];
    if client {
        expected.extend([&certs.client_cert, &certs.client_key]);
    }
    for path in expected {
        ensure!(
            path.is_file(),
            "podguard gen-certs did not write {}",
            path.display()
        );
    }
    Ok(certs)
}

/// A CA made in the test with rcgen, for the cases `gen-certs` cannot cover (it keeps no
/// CA key): a rotated server certificate from the same CA, and a foreign CA.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key issued by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// DER certificate, to compare with what a peer presented.
    pub der: CertificateDer<'static>,
}

impl TestCa {
    /// A fresh self-signed CA.
    pub fn new(common_name: &str) -> anyhow::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server_cert(&self, names: &[&str], serial: u64) -> anyhow::Result<Issued> {
        self.issue(names, serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `common_name`.
    pub fn client_cert(&self, common_name: &str, serial: u64) -> anyhow::Result<Issued> {
        self.issue(&[common_name], serial, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        names: &[&str],
        serial: u64,
        usage: ExtendedKeyUsagePurpose,
    ) -> anyhow::Result<Issued> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("podguard"),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }
}

/// Writes `contents` to `path` atomically with permission bits `mode`: a temporary file in
/// the same directory, then a rename over the old one. (Private keys want `0o600`: the
/// server refuses a key every user can read.)
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().context("a path with a parent")?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().context("a file name")?.to_string_lossy()
    ));
    write_with_mode(&tmp, contents, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

/// Creates (or truncates) `path` with permission bits `mode` and writes `contents`.
pub fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // The umask may have narrowed the mode; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Every certificate in a PEM file.
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading the key {}", path.display()))
}

/// The crypto provider the workspace builds rustls with.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------------------
// The HTTPS client
// ---------------------------------------------------------------------------------------

/// The HTTP version under test; also the only protocol offered by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 (ALPN `http/1.1`).
    Http1,
    /// HTTP/2 (ALPN `h2`; prior knowledge over plain TCP).
    Http2,
}

impl HttpVersion {
    /// Both versions.
    pub const ALL: [HttpVersion; 2] = [HttpVersion::Http1, HttpVersion::Http2];

    /// The ALPN protocol id.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            HttpVersion::Http1 => b"http/1.1",
            HttpVersion::Http2 => b"h2",
        }
    }

    /// The version hyper reports on a response.
    pub fn hyper(self) -> Version {
        match self {
            HttpVersion::Http1 => Version::HTTP_11,
            HttpVersion::Http2 => Version::HTTP_2,
        }
    }
}

/// How a client authenticates the server (and itself).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The PEM bundle whose certificates are the only trust roots.
    pub ca: PathBuf,
    /// The name verified against the server certificate (and sent as SNI).
    pub server_name: String,
    /// A client certificate and key for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// Trust `ca` only and expect the server to be `localhost`.
    pub fn new(ca: &Path) -> TlsOptions {
        TlsOptions {
            ca: ca.to_owned(),
            server_name: "localhost".to_owned(),
            identity: None,
        }
    }

    /// Verify the server as `name` instead.
    pub fn server_name(mut self, name: &str) -> TlsOptions {
        name.clone_into(&mut self.server_name);
        self
    }

    /// Present this client certificate.
    pub fn identity(mut self, cert: &Path, key: &Path) -> TlsOptions {
        self.identity = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// The rustls configuration: the CA bundle as the only roots, ALPN exactly `version`.
    pub fn client_config(&self, version: HttpVersion) -> anyhow::Result<Arc<ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(&self.ca)? {
            roots
                .add(cert)
                .with_context(|| format!("adding a root from {}", self.ca.display()))?;
        }
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?
            }
        };
        config.alpn_protocols = vec![version.alpn().to_vec()];
        Ok(Arc::new(config))
    }
}

/// Makes connections to one server with one HTTP version.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    version: HttpVersion,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>, String)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("version", &self.version)
            .field("tls", &self.tls.as_ref().map(|t| &t.2))
            .finish()
    }
}

/// What the TLS handshake established.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The certificate chain the server presented, leaf first.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The negotiated TLS version.
    pub protocol_version: Option<rustls::ProtocolVersion>,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

/// One connection; HTTP/2 connections can be cloned to run streams side by side.
pub struct Connection {
    sender: Sender,
    version: HttpVersion,
    scheme: &'static str,
    authority: String,
    /// What TLS established (None over plain TCP).
    pub tls: Option<TlsInfo>,
    driver: Arc<Driver>,
}

/// The task driving a connection, and how it ended.
struct Driver {
    task: JoinHandle<()>,
    finished: watch::Receiver<bool>,
    error: Arc<Mutex<Option<hyper::Error>>>,
}

impl Driver {
    fn spawn<F>(conn: F) -> Driver
    where
        F: std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static,
    {
        let (done, finished) = watch::channel(false);
        let error = Arc::new(Mutex::new(None));
        let slot = error.clone();
        let task = tokio::spawn(async move {
            if let Err(err) = conn.await {
                *slot.lock().expect("not poisoned") = Some(err);
            }
            let _ = done.send(true);
        });
        Driver {
            task,
            finished,
            error,
        }
    }

    /// Why the connection failed, once its task has ended (waits up to 2 s for that).
    async fn failure(&self) -> Option<hyper::Error> {
        let mut finished = self.finished.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), finished.wait_for(|f| *f)).await;
        self.error.lock().expect("not poisoned").take()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The HTTP version the response came over.
    pub version: Version,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the body is not JSON: {}", truncate(&self.text(), 500)))
    }

    /// The `Content-Type`, or "".
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Client {
    /// A client for HTTPS, trusting only `tls.ca`.
    pub fn https(
        addr: SocketAddr,
        version: HttpVersion,
        tls: &TlsOptions,
    ) -> anyhow::Result<Client> {
        let config = tls.client_config(version)?;
        let name = ServerName::try_from(tls.server_name.clone())
            .with_context(|| format!("{:?} is not a server name", tls.server_name))?;
        Ok(Client {
            addr,
            version,
            tls: Some((config, name, tls.server_name.clone())),
        })
    }

    /// A client with a ready-made rustls configuration (its ALPN is used as it is).
    pub fn with_config(
        addr: SocketAddr,
        version: HttpVersion,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> anyhow::Result<Client> {
        let name = ServerName::try_from(server_name.to_owned())?;
        Ok(Client {
            addr,
            version,
            tls: Some((config, name, server_name.to_owned())),
        })
    }

    /// A client for plain HTTP (HTTP/2 with prior knowledge).
    pub fn plain(addr: SocketAddr, version: HttpVersion) -> Client {
        Client {
            addr,
            version,
            tls: None,
        }
    }

    /// The HTTP version this client speaks.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// Opens a connection: TCP, the TLS handshake (verifying the server), then the HTTP
    /// handshake for the version under test. With TLS, the negotiated ALPN protocol must
    /// be exactly the one offered.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .map_err(|_| {
                anyhow!(
                    "connecting to {} timed out after {CONNECT_TIMEOUT:?}",
                    self.addr
                )
            })?
    }

    async fn connect_inner(&self) -> anyhow::Result<Connection> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("TCP connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => {
                let authority = self.addr.to_string();
                self.handshake(TokioIo::new(tcp), "http", authority, None)
                    .await
            }
            Some((config, name, name_text)) => {
                let stream = TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                let (_, session) = stream.get_ref();
                let info = TlsInfo {
                    peer_certificates: session
                        .peer_certificates()
                        .map(<[_]>::to_vec)
                        .unwrap_or_default(),
                    alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                    protocol_version: session.protocol_version(),
                };
                if !config.alpn_protocols.is_empty() {
                    ensure!(
                        info.alpn.as_deref() == Some(self.version.alpn()),
                        "ALPN: offered {:?}, the server chose {:?}",
                        String::from_utf8_lossy(self.version.alpn()),
                        info.alpn.as_deref().map(String::from_utf8_lossy)
                    );
                }
                let authority = format!("{name_text}:{}", self.addr.port());
                self.handshake(TokioIo::new(stream), "https", authority, Some(info))
                    .await
            }
        }
    }

    async fn handshake<T>(
        &self,
        io: TokioIo<T>,
        scheme: &'static str,
        authority: String,
        tls: Option<TlsInfo>,
    ) -> anyhow::Result<Connection>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, driver) = match self.version {
            HttpVersion::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .context("HTTP/1.1 handshake")?;
                (Sender::H1(sender), Driver::spawn(conn))
            }
            HttpVersion::Http2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .context("HTTP/2 handshake")?;
                (Sender::H2(sender), Driver::spawn(conn))
            }
        };
        Ok(Connection {
            sender,
            version: self.version,
            scheme,
            authority,
            tls,
            driver: Arc::new(driver),
        })
    }

    /// How the server treats a TLS handshake from this client, without sending anything
    /// over it: the error that ends the handshake or the first read (within 5 s), or `Ok`
    /// with what the server sent first when it keeps the connection. Under TLS 1.3 the
    /// server verifies a client certificate after the client's handshake is done, so its
    /// refusal arrives as an alert on the first read; writing first could instead meet a
    /// closed socket and hide the alert.
    pub async fn tls_outcome(&self) -> anyhow::Result<String> {
        use tokio::io::AsyncReadExt as _;
        let (config, name, _) = self.tls.as_ref().context("a TLS client")?;
        let tcp = TcpStream::connect(self.addr).await?;
        let mut stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TlsConnector::from(config.clone()).connect(name.clone(), tcp),
        )
        .await
        .map_err(|_| anyhow!("the TLS handshake timed out"))?
        .context("TLS handshake")?;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Err(_) => Ok("nothing within 5 s; the connection stays open".to_owned()),
            Ok(Ok(0)) => bail!("the server closed the connection without a TLS alert"),
            Ok(Ok(n)) => Ok(format!("the server sent {n} bytes")),
            Ok(Err(err)) => Err(anyhow::Error::new(err).context("first read after the handshake")),
        }
    }

    /// One request on a fresh connection.
    pub async fn request(&self, method: Method, path: &str, body: Body) -> anyhow::Result<Reply> {
        let mut connection = self.connect().await?;
        connection.request(method, path, body).await
    }

    /// `GET path` on a fresh connection.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.request(Method::GET, path, empty()).await
    }

    /// `POST path` with a JSON body on a fresh connection.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> anyhow::Result<Reply> {
        self.request(Method::POST, path, full(body)).await
    }
}

impl Connection {
    /// Another handle on the same HTTP/2 connection (None for HTTP/1.1).
    pub fn try_clone(&self) -> Option<Connection> {
        match &self.sender {
            Sender::H1(_) => None,
            Sender::H2(sender) => Some(Connection {
                sender: Sender::H2(sender.clone()),
                version: self.version,
                scheme: self.scheme,
                authority: self.authority.clone(),
                tls: self.tls.clone(),
                driver: self.driver.clone(),
            }),
        }
    }

    /// A request as kube-apiserver shapes it: origin-form with Host over HTTP/1.1,
    /// `:scheme`/`:authority` over HTTP/2, JSON content type and accept.
    pub fn build(&self, method: Method, path: &str, body: Body) -> Request<Body> {
        let uri = match self.version {
            HttpVersion::Http1 => path.to_owned(),
            HttpVersion::Http2 => format!("{}://{}{path}", self.scheme, self.authority),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .version(self.version.hyper())
            .header(ACCEPT, "application/json, */*")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .expect("a well-formed request");
        if self.version == HttpVersion::Http1 {
            request.headers_mut().insert(
                HOST,
                HeaderValue::from_str(&self.authority).expect("a valid authority"),
            );
        }
        request
    }

    /// Sends `request` and reads the whole response, within [`REQUEST_TIMEOUT`].
    pub async fn send(&mut self, request: Request<Body>) -> anyhow::Result<Reply> {
        let what = format!("{} {}", request.method(), request.uri());
        let response = async {
            let response = match &mut self.sender {
                Sender::H1(sender) => {
                    sender.ready().await.context("connection not ready")?;
                    sender.send_request(request).await?
                }
                Sender::H2(sender) => {
                    sender.ready().await.context("connection not ready")?;
                    sender.send_request(request).await?
                }
            };
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .context("reading the response body")?
                .to_bytes();
            anyhow::Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                version: parts.version,
                body,
            })
        };
        let result = tokio::time::timeout(REQUEST_TIMEOUT, response)
            .await
            .map_err(|_| anyhow!("{what} timed out after {REQUEST_TIMEOUT:?}"))?;
        match result {
            Ok(reply) => Ok(reply),
            // The request only sees "connection closed"; the connection knows why.
            Err(err) => match self.driver.failure().await {
                Some(cause) => Err(anyhow::Error::new(cause).context(format!(
                    "{what} over {:?} failed ({err:#}) because the connection failed",
                    self.version
                ))),
                None => Err(err.context(format!("{what} over {:?}", self.version))),
            },
        }
    }

    /// Builds and sends a request.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Body,
    ) -> anyhow::Result<Reply> {
        let request = self.build(method, path, body);
        self.send(request).await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.request(Method::GET, path, empty()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> anyhow::Result<Reply> {
        self.request(Method::POST, path, full(body)).await
    }
}

/// A body holding `bytes` (with a Content-Length).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// The sending half of [`channel_body`].
#[derive(Debug)]
pub struct BodySender {
    tx: mpsc::Sender<Bytes>,
    sent: AtomicU64,
    taken: watch::Receiver<u64>,
}

impl BodySender {
    /// Hands `chunk` to the connection and waits until the connection has taken it (so it
    /// is being written out), within [`REQUEST_TIMEOUT`].
    pub async fn send(&self, chunk: impl Into<Bytes>) -> anyhow::Result<()> {
        let chunk = chunk.into();
        let sent = self.sent.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.tx
                .send(chunk)
                .await
                .map_err(|_| anyhow!("the connection dropped the request body"))?;
            // The body may also have been dropped right after its last chunk was taken.
            let mut taken = self.taken.clone();
            let all_taken =
                taken.wait_for(|taken| *taken >= sent).await.is_ok() || *taken.borrow() >= sent;
            ensure!(
                all_taken,
                "the connection dropped the request body before taking this chunk"
            );
            anyhow::Ok(())
        })
        .await
        .map_err(|_| {
            anyhow!("the connection did not take a body chunk within {REQUEST_TIMEOUT:?}")
        })?
    }
}

struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    remaining: Option<u64>,
    taken: watch::Sender<u64>,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        this.rx.poll_recv(cx).map(|chunk| {
            chunk.map(|chunk| {
                if let Some(remaining) = &mut this.remaining {
                    *remaining = remaining.saturating_sub(chunk.len() as u64);
                }
                this.taken.send_modify(|taken| *taken += chunk.len() as u64);
                Ok(Frame::data(chunk))
            })
        })
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A body the test writes chunk by chunk, to keep a request in flight. With `length`, the
/// request carries that Content-Length (as kube-apiserver's requests do); without, it is
/// chunked (HTTP/1.1) or open-ended (HTTP/2). Dropping the sender ends the body.
pub fn channel_body(length: Option<u64>) -> (BodySender, Body) {
    let (tx, rx) = mpsc::channel(1);
    let (taken_tx, taken) = watch::channel(0);
    let body = ChannelBody {
        rx,
        remaining: length,
        taken: taken_tx,
    };
    let sender = BodySender {
        tx,
        sent: AtomicU64::new(0),
        taken,
    };
    (sender, body.boxed())
}

/// POSTs `head`, then `filler_len` bytes of `filler`, then `tail`, written in 64 KiB
/// chunks by another task without ever holding the whole body, with a Content-Length when
/// `declare_length` (chunked or open-ended otherwise). Returns the response as soon as it
/// comes: a server may answer before it has read the body, and need not read all of it.
pub async fn post_generated(
    client: &Client,
    path: &str,
    head: Bytes,
    filler: u8,
    filler_len: usize,
    tail: Bytes,
    declare_length: bool,
) -> anyhow::Result<Reply> {
    const CHUNK: usize = 64 * 1024;
    let total = (head.len() + filler_len + tail.len()) as u64;
    let mut connection = client.connect().await?;
    let (sender, body) = channel_body(declare_length.then_some(total));
    let request = connection.build(Method::POST, path, body);
    let reply = tokio::spawn(async move { connection.send(request).await });
    let feeder = tokio::spawn(async move {
        let block = Bytes::from(vec![filler; CHUNK]);
        let mut chunks = vec![head];
        chunks.extend((0..filler_len.div_ceil(CHUNK)).map(|i| {
            let size = (filler_len - i * CHUNK).min(CHUNK);
            block.slice(..size)
        }));
        chunks.push(tail);
        for chunk in chunks {
            // The server stopping to read is expected; the reply says what it did.
            if sender.send(chunk).await.is_err() {
                break;
            }
        }
        // Keep the body open until the reply is in, so an early answer is not raced by
        // the end of the body.
        std::future::pending::<()>().await;
    });
    let reply = reply.await.context("the request task")?;
    feeder.abort();
    reply
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// A policy to serve: `--policy MODULE [--settings FILE]` when it is the only one and
/// named `podguard`, else an entry of the `--policies` file the server is given.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The URL name.
    pub name: String,
    /// The module.
    pub module: PathBuf,
    /// The settings file (JSON).
    pub settings: Option<PathBuf>,
}

impl Policy {
    /// `name` served from the freshly built policy module, default settings.
    pub fn default_module(name: &str) -> Policy {
        Policy {
            name: name.to_owned(),
            module: policy_module().to_owned(),
            settings: None,
        }
    }

    /// The same, with `settings`.
    pub fn with_settings(mut self, settings: &Path) -> Policy {
        self.settings = Some(settings.to_owned());
        self
    }

    /// This policy's entry of a policies file.
    fn entry(&self) -> anyhow::Result<serde_json::Value> {
        let settings = match &self.settings {
            None => serde_json::json!({}),
            Some(path) => serde_json::from_slice(&std::fs::read(path)?)
                .with_context(|| format!("the settings {} are not JSON", path.display()))?,
        };
        Ok(serde_json::json!({"module": self.module, "settings": settings}))
    }
}

/// The flags that serve `policies`, writing a policies file into `dir` when one is needed.
fn policy_args(policies: &[Policy], dir: &Path) -> anyhow::Result<Vec<std::ffi::OsString>> {
    if let [only] = policies
        && only.name == "podguard"
    {
        let mut args = vec!["--policy".into(), only.module.clone().into_os_string()];
        if let Some(settings) = &only.settings {
            args.extend(["--settings".into(), settings.clone().into_os_string()]);
        }
        return Ok(args);
    }
    let mut file = serde_json::Map::new();
    for policy in policies {
        file.insert(policy.name.clone(), policy.entry()?);
    }
    let path = dir.join("policies.yml");
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    Ok(vec!["--policies".into(), path.into_os_string()])
}

/// How the server listens.
#[derive(Debug, Clone)]
pub enum Transport {
    /// HTTPS with this certificate and key, optionally requiring client certificates.
    Tls {
        /// `--tls-cert`.
        cert: PathBuf,
        /// `--tls-key`.
        key: PathBuf,
        /// `--client-ca`.
        client_ca: Option<PathBuf>,
        /// How the test reaches it (the readiness probe uses this).
        access: TlsOptions,
    },
    /// `--insecure`: plain HTTP.
    Insecure,
}

impl Transport {
    /// HTTPS with the certificates `gen-certs` wrote, verified as `localhost`.
    pub fn tls(certs: &Certs) -> Transport {
        Transport::Tls {
            cert: certs.cert.clone(),
            key: certs.key.clone(),
            client_ca: None,
            access: TlsOptions::new(&certs.ca),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The policies.
    pub policies: Vec<Policy>,
    /// TLS or plain.
    pub transport: Transport,
    /// More flags, e.g. `--shutdown-grace 10s`.
    pub args: Vec<String>,
    /// A command the server is started through, e.g. `prlimit --nofile=256:1024`.
    pub launcher: Vec<String>,
}

impl ServeConfig {
    /// One policy named `podguard` with default settings.
    pub fn new(transport: Transport) -> ServeConfig {
        ServeConfig {
            policies: vec![Policy::default_module("podguard")],
            transport,
            args: Vec::new(),
            launcher: Vec::new(),
        }
    }

    /// Starts the server through `launcher` (its arguments, then the server's command).
    pub fn launched_by<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        launcher: I,
    ) -> ServeConfig {
        self.launcher = launcher.into_iter().map(Into::into).collect();
        self
    }

    /// Adds flags.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> ServeConfig {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A running `podguard serve`, killed when dropped (its log tail is printed then, which
/// the test harness shows when the test fails).
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    transport: Transport,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts `podguard serve` on a free loopback port and waits (bounded) until `/readyz`
    /// answers 200 over HTTP/1.1. Fails with the server's log when it exits or never gets
    /// ready.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Server> {
        Server::start_with_env(config, &[]).await
    }

    /// [`Server::start`] with these environment variables set for the server (after the
    /// test's own `PODGUARD_*` ones are removed), e.g. `PODGUARD_LOG=info`.
    pub async fn start_with_env(
        config: ServeConfig,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut server = Server::spawn(config, env)?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// Starts `podguard serve` without waiting for it to be ready: for a server that is
    /// expected to refuse to start (see [`Server::wait_exit`] and [`Server::log`]).
    pub fn spawn(config: ServeConfig, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let binary = podguard_binary();
        let log_dir = tempfile::tempdir()?;
        let log = log_dir.path().join("podguard.log");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = match config.launcher.split_first() {
            None => Command::new(binary),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
        };
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--log-format", "json"]);
        command.args(policy_args(&config.policies, log_dir.path())?);
        match &config.transport {
            Transport::Tls {
                cert,
                key,
                client_ca,
                ..
            } => {
                command
                    .arg("--tls-cert")
                    .arg(cert)
                    .arg("--tls-key")
                    .arg(key);
                if let Some(ca) = client_ca {
                    command.arg("--client-ca").arg(ca);
                }
            }
            Transport::Insecure => {
                command.arg("--insecure");
            }
        }
        command.args(&config.args);
        // The environment must not configure the server behind the test's back.
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("PODGUARD_") && key_text != "PODGUARD_LOG" {
                command.env_remove(&key);
            }
        }
        command.envs(env.iter().copied());
        let log_file = File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Server {
            child,
            addr,
            transport: config.transport,
            log,
            _log_dir: log_dir,
            exited: None,
        })
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = self.client(HttpVersion::Http1)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                bail!(
                    "podguard serve exited with {status} before it was ready; log:\n{}",
                    self.log_tail(80)
                );
            }
            match tokio::time::timeout(Duration::from_secs(5), client.get("/readyz")).await {
                Ok(Ok(reply)) if reply.status == StatusCode::OK => return Ok(()),
                Ok(Ok(reply)) => {
                    last = format!("/readyz answered {}: {}", reply.status, reply.text())
                }
                Ok(Err(err)) => last = format!("{err:#}"),
                Err(_) => last = "/readyz did not answer within 5s".to_owned(),
            }
            if Instant::now() > deadline {
                bail!(
                    "podguard serve was not ready within {READY_TIMEOUT:?} (last: {last}); log:\n{}",
                    self.log_tail(80)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client of `version` set up as the transport says (CA, name, identity).
    pub fn client(&self, version: HttpVersion) -> anyhow::Result<Client> {
        match &self.transport {
            Transport::Tls { access, .. } => Client::https(self.addr, version, access),
            Transport::Insecure => Ok(Client::plain(self.addr, version)),
        }
    }

    /// A TLS connection to the server with ALPN `version` and nothing sent over it yet, for
    /// tests that write the HTTP bytes themselves (slowly, or malformed).
    pub async fn raw_tls(
        &self,
        version: HttpVersion,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let Transport::Tls { access, .. } = &self.transport else {
            bail!("the server does not serve TLS");
        };
        let config = access.client_config(version)?;
        let name = ServerName::try_from(access.server_name.clone())?;
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| anyhow!("the TLS handshake timed out"))?
        .context("TLS handshake")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident set size of the server process, from `/proc/PID/status`, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading /proc/PID/status of podguard serve")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("no VmRSS line in /proc/PID/status")
    }

    /// Checks that the server still answers as it should after whatever a test did to
    /// it: `/readyz` is 200, and a compliant Pod sent to `path` on a fresh connection is
    /// allowed, over HTTP/1.1 and HTTP/2.
    pub async fn assert_still_serving(&self, path: &str, after: &str) {
        let review = fixture("pod-compliant").review;
        for version in HttpVersion::ALL {
            let client = self
                .client(version)
                .unwrap_or_else(|e| panic!("after {after}: {e:#}"));
            let ready = client
                .get("/readyz")
                .await
                .unwrap_or_else(|e| panic!("after {after}: GET /readyz over {version:?}: {e:#}"));
            assert_eq!(
                ready.status,
                StatusCode::OK,
                "after {after}: /readyz over {version:?}: {}",
                ready.text()
            );
            let uid = format!("still-serving-{version:?}");
            let reply = client
                .post(path, review_with_uid(&review, &uid))
                .await
                .unwrap_or_else(|e| panic!("after {after}: POST {path} over {version:?}: {e:#}"));
            let response = admission_response(&reply, &uid)
                .unwrap_or_else(|e| panic!("after {after}: POST {path} over {version:?}: {e:#}"));
            assert_eq!(
                response["allowed"], true,
                "after {after}: a compliant Pod over {version:?}: {response}"
            );
        }
    }

    /// Sends SIGTERM (with the `kill` command).
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill -TERM")?;
        ensure!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        Ok(())
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("podguard serve did not exit within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(file) = File::open(&self.log) else {
            return String::new();
        };
        let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let tail = self.log_tail(60);
        if !tail.is_empty() {
            eprintln!("--- podguard serve log (last lines) ---\n{tail}\n--- end of log ---");
        }
    }
}

// ---------------------------------------------------------------------------------------
// AdmissionReview helpers
// ---------------------------------------------------------------------------------------

/// The review with `request.uid` replaced, as bytes.
pub fn review_with_uid(review: &Value, uid: &str) -> Vec<u8> {
    let mut review = review.clone();
    review["request"]["uid"] = Value::String(uid.to_owned());
    serde_json::to_vec(&review).expect("JSON serialises")
}

/// The review with `request.object` replaced, as bytes.
pub fn review_with_object(review: &Value, object: Value) -> Vec<u8> {
    let mut review = review.clone();
    review["request"]["object"] = object;
    serde_json::to_vec(&review).expect("JSON serialises")
}

/// Checks that `reply` is an HTTP 200 `admission.k8s.io/v1` AdmissionReview answering
/// `uid`, with a boolean `allowed`, and returns its `response`.
pub fn admission_response(reply: &Reply, uid: &str) -> anyhow::Result<Value> {
    ensure!(
        reply.status == StatusCode::OK,
        "expected HTTP 200, got {}: {}",
        reply.status,
        truncate(&reply.text(), 500)
    );
    ensure!(
        reply.content_type().starts_with("application/json"),
        "Content-Type is {:?}, not application/json",
        reply.content_type()
    );
    let review = reply.json()?;
    ensure!(
        review["apiVersion"] == "admission.k8s.io/v1" && review["kind"] == "AdmissionReview",
        "not an admission.k8s.io/v1 AdmissionReview: {}",
        truncate(&review.to_string(), 500)
    );
    let response = review["response"].clone();
    ensure!(
        response["uid"] == uid,
        "response.uid is {}, expected {uid:?}",
        response["uid"]
    );
    ensure!(
        response["allowed"].is_boolean(),
        "response.allowed is not a boolean: {response}"
    );
    Ok(response)
}

/// The JSON Patch in an admission response, decoded; checks `patchType` goes with it.
pub fn decode_patch(response: &Value) -> anyhow::Result<Option<Value>> {
    match (&response["patch"], &response["patchType"]) {
        (Value::Null, Value::Null) => Ok(None),
        (Value::String(patch), patch_type) => {
            ensure!(
                patch_type == "JSONPatch",
                "patchType is {patch_type}, expected \"JSONPatch\""
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .context("the patch is not standard base64")?;
            let patch: Value =
                serde_json::from_slice(&bytes).context("the decoded patch is not JSON")?;
            ensure!(patch.is_array(), "the patch is not a JSON array: {patch}");
            Ok(Some(patch))
        }
        (patch, patch_type) => bail!("inconsistent patch {patch} / patchType {patch_type}"),
    }
}

/// `object` with the RFC 6902 `patch` applied.
pub fn apply_patch(object: &Value, patch: &Value) -> anyhow::Result<Value> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).context("not an RFC 6902 patch")?;
    let mut object = object.clone();
    json_patch::patch(&mut object, &patch).context("the patch does not apply to the object")?;
    Ok(object)
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, as written (without braces).
    pub labels: String,
    /// The value.
    pub value: f64,
}

/// Parses the Prometheus text exposition format strictly enough to catch a broken one:
/// every line is a comment or `name[{labels}] value [timestamp]` with a numeric value.
pub fn parse_prometheus(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(_) => {
                let close = line
                    .rfind('}')
                    .with_context(|| format!("line {}: unclosed labels: {line}", number + 1))?;
                (&line[..close + 1], &line[close + 1..])
            }
            None => line
                .split_once(' ')
                .with_context(|| format!("line {}: no value: {line}", number + 1))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "line {}: bad metric name {name:?}",
            number + 1
        );
        let value_text = rest
            .split_whitespace()
            .next()
            .with_context(|| format!("line {}: no value: {line}", number + 1))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .with_context(|| format!("line {}: value {v:?} is not a number", number + 1))?,
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels: labels.to_owned(),
            value,
        });
    }
    Ok(samples)
}

/// The fixture called `name`.
pub fn fixture(name: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// Waits (polling every 20 ms, at most `limit`) until `check` returns `Some`.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The TLS alert the peer sent, if an error chain contains one (the server refused the
/// handshake), e.g. `CertificateRequired`.
pub fn received_tls_alert(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(rustls::Error::AlertReceived(alert)) = rustls_error(cause) {
            return Some(format!("{alert:?}"));
        }
    }
    // Some layers (h2) keep the TLS error only as text.
    let text = format!("{err:#}");
    let marker = "received fatal alert: ";
    let at = text.find(marker)?;
    let rest = &text[at + marker.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

fn rustls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    cause.downcast_ref::<rustls::Error>().or_else(|| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// Whether an error chain contains a certificate verification failure on our side (the
/// server presented a certificate the client does not trust).
pub fn rejected_server_certificate(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            rustls_error(cause),
            Some(rustls::Error::InvalidCertificate(_))
        )
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

// ---------------------------------------------------------------------------------------
// Load while under attack
// ---------------------------------------------------------------------------------------

/// What legitimate traffic saw while it ran.
#[derive(Debug, Clone)]
pub struct TrafficReport {
    /// Reviews answered as expected.
    pub answered: usize,
    /// What went wrong with the others.
    pub failures: Vec<String>,
    /// Latencies of the answered ones, sorted.
    pub latencies: Vec<Duration>,
}

impl TrafficReport {
    /// The 99th-percentile latency.
    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }

    /// Panics unless every review was answered and the p99 stayed below `limit`.
    #[track_caller]
    pub fn assert_served(&self, limit: Duration, during: &str) {
        assert!(
            self.answered >= 10,
            "during {during}: only {} legitimate reviews were answered; failures: {:?}",
            self.answered,
            self.failures
        );
        assert!(
            self.failures.is_empty(),
            "during {during}: {} of {} legitimate reviews failed: {:?}",
            self.failures.len(),
            self.failures.len() + self.answered,
            &self.failures[..self.failures.len().min(5)]
        );
        assert!(
            self.p99() < limit,
            "during {during}: the legitimate reviews' p99 was {:?} (limit {limit:?}, max {:?}, {} answered)",
            self.p99(),
            self.latencies.last(),
            self.answered
        );
    }
}

/// The value below which `q` of the sorted `values` lie.
pub fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}

/// Compliant Pod reviews sent one after another, as kube-apiserver sends them: over one
/// connection that is opened again whenever the server closes it. Every review must be
/// allowed; each latency counts from sending to the whole answer (reconnecting included).
pub struct LegitimateTraffic {
    stop: watch::Sender<bool>,
    task: JoinHandle<TrafficReport>,
}

impl LegitimateTraffic {
    /// Starts sending to `path` on `server` over `version`.
    pub fn start(server: &Server, version: HttpVersion, path: &str) -> LegitimateTraffic {
        let client = server.client(version).expect("a client for the server");
        let path = path.to_owned();
        let (stop, stopped) = watch::channel(false);
        let review = fixture("pod-compliant").review;
        let task = tokio::spawn(async move {
            let mut report = TrafficReport {
                answered: 0,
                failures: Vec::new(),
                latencies: Vec::new(),
            };
            let mut connection: Option<Connection> = None;
            let mut sequence = 0u64;
            while !*stopped.borrow() {
                sequence += 1;
                let uid = format!("legitimate-{sequence}");
                let started = Instant::now();
                let outcome = async {
                    let open = match connection.take() {
                        Some(open) => open,
                        None => client.connect().await?,
                    };
                    let mut open = open;
                    let reply = open.post(&path, review_with_uid(&review, &uid)).await;
                    let reply = match reply {
                        // The server may close an idle connection as the request is sent:
                        // kube-apiserver's client then opens a new one.
                        Err(_) => {
                            let mut fresh = client.connect().await?;
                            let reply = fresh.post(&path, review_with_uid(&review, &uid)).await?;
                            open = fresh;
                            reply
                        }
                        Ok(reply) => reply,
                    };
                    let response = admission_response(&reply, &uid)?;
                    ensure!(response["allowed"] == true, "not allowed: {response}");
                    connection = Some(open);
                    anyhow::Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => {
                        report.answered += 1;
                        report.latencies.push(started.elapsed());
                    }
                    Err(err) => {
                        report.failures.push(format!("{uid}: {err:#}"));
                        connection = None;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            report.latencies.sort();
            report
        });
        LegitimateTraffic { stop, task }
    }

    /// Stops and reports.
    pub async fn finish(self) -> TrafficReport {
        let _ = self.stop.send(true);
        self.task.await.expect("the legitimate traffic task")
    }
}

/// Samples the server's resident memory (and thread count) every 50 ms.
pub struct ResourceSampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<(u64, u64)>,
}

impl ResourceSampler {
    /// Starts sampling the process `pid`.
    pub fn start(pid: u32) -> ResourceSampler {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut rss, mut threads) = (0, 0);
            while !*stopped.borrow() {
                if let Ok((now_rss, now_threads)) = process_status(pid) {
                    rss = rss.max(now_rss);
                    threads = threads.max(now_threads);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (rss, threads)
        });
        ResourceSampler { stop, task }
    }

    /// Stops; the peak resident set in KiB and the peak thread count.
    pub async fn finish(self) -> (u64, u64) {
        let _ = self.stop.send(true);
        self.task.await.expect("the sampler task")
    }
}

/// Resident set (KiB) and thread count of process `pid`, from `/proc/PID/status`.
pub fn process_status(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .with_context(|| format!("no {name} line in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("Threads:")?))
}

/// The value of the unlabelled metric `name` in a `/metrics` answer.
pub fn metric(text: &str, name: &str) -> anyhow::Result<f64> {
    parse_prometheus(text)?
        .into_iter()
        .find(|s| s.name == name && s.labels.is_empty())
        .map(|s| s.value)
        .with_context(|| format!("no {name} in /metrics"))
}
