//! rustls configurations for the floor server and the load generator.
//!
//! The floor server's settings are podguard's (`webhook-server/src/server/tls.rs`): the ring
//! provider, TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`. The load generator verifies the
//! server's certificate against a CA file, as kube-apiserver verifies a webhook against
//! its `caBundle`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The TLS versions both sides offer, newest first.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which HTTP version a client speaks, negotiated by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    /// HTTP/1.1 (`http/1.1`): one request in flight per connection.
    #[value(name = "1.1", alias = "1", alias = "http1")]
    Http1,
    /// HTTP/2 (`h2`): many streams on one connection.
    #[value(name = "2", alias = "h2", alias = "http2")]
    Http2,
}

impl HttpVersion {
    /// The ALPN protocol id.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            HttpVersion::Http1 => b"http/1.1",
            HttpVersion::Http2 => b"h2",
        }
    }

    /// A short name for tables and file names.
    pub fn label(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
        }
    }
}

/// The server configuration podguard uses: TLS 1.3 and 1.2, ALPN `h2` and `http/1.1`, no
/// client certificates.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A client that trusts only the CA in `ca` and offers exactly one ALPN protocol.
pub fn client_config(ca: &Path, version: HttpVersion) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("cannot read the CA file {}", ca.display()))?
    {
        let cert = cert.with_context(|| format!("{} is not a PEM CA bundle", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds an unusable CA certificate", ca.display()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "{} holds no CERTIFICATE block",
        ca.display()
    );
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![version.alpn().to_vec()];
    Ok(config)
}
