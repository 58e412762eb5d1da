//! `podguard gen-certs`: a throwaway CA and certificates signed by it, for local runs and
//! tests. In a cluster, cert-manager issues and rotates the serving certificate.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// What to generate.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// DNS names of the server certificate.
    pub dns_names: Vec<String>,
    /// IP addresses of the server certificate.
    pub ips: Vec<IpAddr>,
    /// Also issue a client certificate.
    pub client: bool,
    /// How long the certificates are valid, from now.
    pub valid_for: std::time::Duration,
    /// Replace files that already exist (refused otherwise: a key in use would be lost).
    pub overwrite: bool,
}

impl CertRequest {
    /// A request for these names, valid for a year, refusing to replace existing files.
    pub fn new(dns_names: Vec<String>, ips: Vec<IpAddr>) -> CertRequest {
        CertRequest {
            dns_names,
            ips,
            client: false,
            valid_for: std::time::Duration::from_secs(365 * 24 * 3600),
            overwrite: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug)]
pub struct Written {
    /// Every file, in the order written.
    pub files: Vec<std::path::PathBuf>,
    /// The certificates' last valid day (UTC).
    pub valid_until: String,
}

/// Writes `ca.crt`, `ca.key`, `tls.crt`, `tls.key` (and `client.crt`, `client.key`) into
/// `dir`; private keys are readable by the owner only. Existing files are refused unless
/// the request says to overwrite them, before anything is written.
pub fn generate(dir: &Path, request: &CertRequest) -> anyhow::Result<Written> {
    let mut files = vec!["ca.crt", "ca.key", "tls.crt", "tls.key"];
    if request.client {
        files.extend(["client.crt", "client.key"]);
    }
    if !request.overwrite {
        let existing: Vec<String> = files
            .iter()
            .map(|name| dir.join(name))
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        anyhow::ensure!(
            existing.is_empty(),
            "{} already exist{}; pass --force to replace {}, or choose another --out",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" }
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    // A minute back for clocks a little behind this one.
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::minutes(1);
    let not_after = now
        + time::Duration::try_from(request.valid_for)
            .context("the validity is too long to represent")?;
    let validity = |params: &mut CertificateParams| {
        params.not_before = not_before;
        params.not_after = not_after;
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    validity(&mut ca_params);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "podguard local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write(dir, "ca.crt", ca_cert.pem().as_bytes(), false)?;
    write(dir, "ca.key", ca_key.serialize_pem().as_bytes(), true)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = request.dns_names.clone();
    names.extend(request.ips.iter().map(IpAddr::to_string));
    let mut server =
        CertificateParams::new(names).context("while building the server certificate's names")?;
    server.distinguished_name.push(
        DnType::CommonName,
        request.dns_names.first().map_or("podguard", String::as_str),
    );
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server);
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    write(dir, "tls.crt", server_cert.pem().as_bytes(), false)?;
    write(dir, "tls.key", server_key.serialize_pem().as_bytes(), true)?;

    if request.client {
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut client);
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &issuer)?;
        write(dir, "client.crt", client_cert.pem().as_bytes(), false)?;
        write(
            dir,
            "client.key",
            client_key.serialize_pem().as_bytes(),
            true,
        )?;
    }
    Ok(Written {
        files: files.iter().map(|name| dir.join(name)).collect(),
        valid_until: format!(
            "{:04}-{:02}-{:02}",
            not_after.year(),
            u8::from(not_after.month()),
            not_after.day()
        ),
    })
}

fn write(dir: &Path, name: &str, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .with_context(|| format!("while writing {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("while writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_valid_for_what_was_asked_and_files_are_not_replaced_silently() {
        let dir = tempfile::tempdir().unwrap();
        let request = CertRequest::new(vec!["localhost".to_owned()], vec![]);
        let written = generate(dir.path(), &request).unwrap();
        assert_eq!(written.files.len(), 4);
        let expected = time::OffsetDateTime::now_utc() + time::Duration::days(365);
        assert_eq!(
            written.valid_until,
            format!(
                "{:04}-{:02}-{:02}",
                expected.year(),
                u8::from(expected.month()),
                expected.day()
            )
        );
        let key = std::fs::read(dir.path().join("tls.key")).unwrap();

        let err = generate(dir.path(), &request).unwrap_err().to_string();
        assert!(err.contains("tls.key"), "{err}");
        assert!(err.contains("already exist; pass --force"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("tls.key")).unwrap(),
            key,
            "nothing written"
        );

        let forced = CertRequest {
            overwrite: true,
            ..request
        };
        generate(dir.path(), &forced).unwrap();
        assert_ne!(std::fs::read(dir.path().join("tls.key")).unwrap(), key);
    }
}
