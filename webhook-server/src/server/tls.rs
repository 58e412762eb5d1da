//! TLS: rustls with TLS 1.2 and 1.3 only, a certificate reloaded when its files change,
//! and optional client-certificate verification for mutual TLS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

/// Why TLS material could not be used. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Anyone on the machine could read the private key.
    #[error("{} is readable by every user (mode {mode:o}); run `chmod o-r` on it, or in Kubernetes set the Secret volume's defaultMode to 0440 with the pod's fsGroup", path.display())]
    KeyReadableByOthers {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key does not fit the certificate, or rustls refused the configuration.
    #[error("{0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Refuses a private key that other users can read: whoever can read it can impersonate
/// the webhook. Group access stays allowed because Kubernetes hands Secret files to a
/// non-root container through the pod's fsGroup.
fn check_key_permissions(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(TlsError::KeyReadableByOthers {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

fn parse_certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.to_owned(),
            what: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path.to_owned(),
            what: "holds no CERTIFICATE block".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        path: key_path.to_owned(),
        what: format!("not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        TlsError::Config(format!(
            "{} and {} do not make a usable certificate: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })
}

/// Serves the current certificate to every handshake and swaps in a new one when the
/// files change. Connections already established keep the certificate they were made with.
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, [u8; 32])>,
}

impl ReloadingCert {
    /// Loads the pair once; a failure here stops start-up.
    pub(crate) fn load(cert_path: &Path, key_path: &Path) -> Result<ReloadingCert, TlsError> {
        check_key_permissions(key_path)?;
        let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
        let key = parse_certified_key(cert_path, &cert_pem, key_path, &key_pem)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new((Arc::new(key), fingerprint(&cert_pem, &key_pem))),
        })
    }

    /// Rereads both files; swaps the certificate when their contents changed and the new
    /// pair is valid. Returns whether it swapped. A half-written pair (cert-manager writes
    /// the two files separately) fails validation and is retried on the next check, while
    /// the old certificate keeps serving.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = (read(&self.cert_path)?, read(&self.key_path)?);
        let print = fingerprint(&cert_pem, &key_pem);
        if self.current.read().unwrap_or_else(|p| p.into_inner()).1 == print {
            return Ok(false);
        }
        check_key_permissions(&self.key_path)?;
        let key = parse_certified_key(&self.cert_path, &cert_pem, &self.key_path, &key_pem)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(key), print);
        Ok(true)
    }
}

fn fingerprint(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(cert);
    hasher.update(key);
    hasher.finalize().into()
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()).0,
        ))
    }
}

/// The server's rustls configuration: TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, and client
/// certificates required when `client_ca` is given.
pub(crate) fn server_config(
    cert: Arc<ReloadingCert>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = read(path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsError::Pem {
                    path: path.to_owned(),
                    what: format!("not a PEM CA bundle: {e}"),
                })?;
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: path.to_owned(),
                    what: format!("holds a certificate that cannot be a trust anchor: {e}"),
                })?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: path.to_owned(),
                    what: "holds no CERTIFICATE block".to_owned(),
                });
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Config(format!("client CA {}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use podguard_server::gen_certs::{CertRequest, generate};

    fn certs(dir: &Path) {
        generate(
            dir,
            &CertRequest {
                overwrite: true,
                ..CertRequest::new(vec!["localhost".to_owned()], vec![])
            },
        )
        .unwrap();
    }

    fn serial(cert: &ReloadingCert) -> Vec<u8> {
        cert.current.read().unwrap().0.cert[0].to_vec()
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        certs(dir.path());
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ReloadingCert::load(&cert, &key).unwrap_err();
        assert!(
            err.to_string().contains("readable by every user")
                && err.to_string().contains("defaultMode"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o440)).unwrap();
        ReloadingCert::load(&cert, &key).expect("group-readable keys are fine (fsGroup)");
    }

    #[test]
    fn reload_swaps_only_a_complete_new_pair() {
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        certs(first.path());
        certs(second.path());
        let (cert_path, key_path) = (first.path().join("tls.crt"), first.path().join("tls.key"));
        let cert = ReloadingCert::load(&cert_path, &key_path).unwrap();
        let original = serial(&cert);
        assert!(
            !cert.reload_if_changed().unwrap(),
            "unchanged files are not reloaded"
        );

        // Half a rotation: new certificate, old key. The old pair keeps serving.
        std::fs::copy(second.path().join("tls.crt"), &cert_path).unwrap();
        assert!(cert.reload_if_changed().is_err());
        assert_eq!(serial(&cert), original);

        // The rotation completes.
        std::fs::copy(second.path().join("tls.key"), &key_path).unwrap();
        assert!(cert.reload_if_changed().unwrap());
        assert_ne!(serial(&cert), original);
    }
}
