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
}

/// Writes `ca.crt`, `ca.key`, `tls.crt`, `tls.key` (and `client.crt`, `client.key`) into
/// `dir`; private keys are readable by the owner only.
pub fn generate(dir: &Path, request: &CertRequest) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
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
    Ok(())
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
