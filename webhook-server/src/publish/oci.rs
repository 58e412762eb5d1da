//! `podguard push` and `pull`: a policy module as an OCI artifact, in the shape Kubewarden
//! pushes and pulls (`kwctl push`, policy-server's `registry://` modules).
//!
//! One layer of media type `application/vnd.wasm.content.layer.v1+wasm` holding the
//! annotated module, a `{}` config of media type `application/vnd.wasm.config.v1+json`,
//! and the module's single-line metadata annotations on the manifest.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciImageManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::annotate::read_metadata;

/// How to reach the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Allow plain HTTP to a registry that is not on loopback.
    pub insecure: bool,
    /// Docker config file to read credentials from; default `$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

/// Pushes the annotated module at `module` to `reference`; returns the manifest digest.
pub async fn push(
    module: &Path,
    reference: &str,
    options: &RegistryOptions,
) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(module).with_context(|| format!("while reading {}", module.display()))?;
    let metadata = read_metadata(&bytes)?.with_context(|| {
        format!(
            "{} carries no Kubewarden metadata; annotate it first: podguard annotate {} -m policy/metadata.yml -u README.md -o annotated.wasm",
            module.display(),
            module.display()
        )
    })?;
    let reference = parse_reference(reference)?;
    // Registries refuse multi-line annotation values (the usage README is one), and
    // Kubewarden drops them too.
    let annotations: BTreeMap<String, String> = metadata
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, value)| !value.contains('\n'))
        .map(|(key, value)| (key, value.trim().to_owned()))
        .collect();
    let layers = vec![ImageLayer::new(
        bytes,
        WASM_LAYER_MEDIA_TYPE.to_owned(),
        None,
    )];
    let config = Config {
        data: b"{}".to_vec().into(),
        media_type: WASM_CONFIG_MEDIA_TYPE.to_owned(),
        annotations: None,
    };
    let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
    let (client, auth) = client_for(&reference, options)?;
    client
        .push(&reference, &layers, config, &auth, Some(manifest))
        .await
        .with_context(|| format!("while pushing to {reference}"))?;
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .with_context(|| format!("while reading back the digest of {reference}"))
}

/// What `pull` fetched.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The module bytes.
    pub module: Vec<u8>,
    /// The manifest digest.
    pub digest: String,
}

/// Pulls the policy module at `reference`.
pub async fn pull(reference: &str, options: &RegistryOptions) -> anyhow::Result<Pulled> {
    let reference = parse_reference(reference)?;
    let (client, auth) = client_for(&reference, options)?;
    let image = client
        .pull(&reference, &auth, vec![WASM_LAYER_MEDIA_TYPE])
        .await
        .with_context(|| format!("while pulling {reference}"))?;
    let [layer] = <[ImageLayer; 1]>::try_from(image.layers).map_err(|layers| {
        anyhow::anyhow!(
            "{reference} has {} layers; a policy artifact has exactly one",
            layers.len()
        )
    })?;
    let digest = image.digest.unwrap_or_default();
    Ok(Pulled {
        module: layer.data.to_vec(),
        digest,
    })
}

/// The digest of the manifest `reference` names now, read without downloading the module.
pub async fn manifest_digest(reference: &str, options: &RegistryOptions) -> anyhow::Result<String> {
    let reference = parse_reference(reference)?;
    let (client, auth) = client_for(&reference, options)?;
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .with_context(|| format!("while reading the digest of {reference}"))
}

/// Reads an OCI reference, with or without the `registry://` scheme.
pub fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    let text = text.strip_prefix("registry://").unwrap_or(text);
    text.parse().with_context(|| {
        format!(
            "{text:?} is not an OCI reference; write e.g. ghcr.io/acme/policies/podguard:v0.1.0"
        )
    })
}

fn client_for(
    reference: &Reference,
    options: &RegistryOptions,
) -> anyhow::Result<(Client, RegistryAuth)> {
    // reqwest is built without a default rustls provider so the binary carries one
    // crypto library (ring) for both the server and the registry client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.resolve_registry().to_owned();
    let plain_http = options.insecure || is_loopback(&registry);
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    if plain_http && !is_loopback(&registry) {
        tracing::warn!(%registry, "using plain HTTP (--insecure)");
    }
    let client = Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    });
    let auth = docker_auth(&registry, options.docker_config.as_deref())?;
    Ok((client, auth))
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(host, _)| host),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Credentials for `registry` from a Docker config file, as `docker login` leaves them:
/// `auths.<registry>` (`auth`, or `username`/`password`), or a credential helper
/// (`credHelpers.<registry>`, else `credsStore`: `docker-credential-<name>` on PATH, as
/// Docker Desktop, gcloud and ECR set up). Anonymous when the file is absent or has
/// nothing for the registry.
pub fn docker_auth(registry: &str, config: Option<&Path>) -> anyhow::Result<RegistryAuth> {
    use docker_credential::{CredentialRetrievalError as Error, DockerCredential};
    let path = match config {
        Some(path) => path.to_owned(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".docker/config.json"),
                None => return Ok(RegistryAuth::Anonymous),
            },
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && config.is_none() => {
            return Ok(RegistryAuth::Anonymous);
        }
        Err(err) => {
            return Err(err)
                .with_context(|| format!("while reading the Docker config {}", path.display()));
        }
    };
    let document: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    // `docker login` stores a registry under its name, or its URL; Docker Hub under v1's.
    let mut keys = vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == "docker.io" || registry == "index.docker.io" {
        keys.push("https://index.docker.io/v1/".to_owned());
    }
    for key in &keys {
        let helper = || {
            document["credHelpers"][key.as_str()]
                .as_str()
                .or(document["credsStore"].as_str())
                .map(|name| format!("docker-credential-{name}"))
                .unwrap_or_default()
        };
        match docker_credential::get_credential_from_reader(text.as_bytes(), key) {
            Ok(DockerCredential::UsernamePassword(user, password)) => {
                return Ok(RegistryAuth::Basic(user, password));
            }
            Ok(DockerCredential::IdentityToken(_)) => anyhow::bail!(
                "{}: the credentials for {registry} are an identity token (an OAuth refresh token), which podguard cannot exchange; log in with a username and password or an access token",
                path.display()
            ),
            Err(Error::NoCredentialConfigured) => {}
            // What helpers answer for a registry they hold nothing for.
            Err(Error::HelperFailure { stdout, stderr, .. })
                if (stdout.clone() + &stderr).contains("credentials not found") => {}
            Err(Error::HelperFailure {
                helper,
                stdout,
                stderr,
            }) => anyhow::bail!(
                "{}: the credential helper {helper} failed for {registry}: {}",
                path.display(),
                if stderr.trim().is_empty() {
                    stdout.trim()
                } else {
                    stderr.trim()
                }
            ),
            Err(Error::HelperCommunicationError) => anyhow::bail!(
                "{}: the credential helper {} for {registry} could not be run; install it on PATH, or log in again without it",
                path.display(),
                helper()
            ),
            Err(Error::MalformedHelperResponse) => anyhow::bail!(
                "{}: the credential helper {} answered for {registry} with something other than {{\"Username\", \"Secret\"}} JSON",
                path.display(),
                helper()
            ),
            Err(Error::CredentialDecodingError) => anyhow::bail!(
                "{}: auths.{key}.auth is not base64 of user:password",
                path.display()
            ),
            Err(Error::CredentialMismatchError) => anyhow::bail!(
                "{}: auths.{key}.auth and its username and password disagree; keep one",
                path.display()
            ),
            Err(other) => anyhow::bail!("{}: {other}", path.display()),
        }
    }
    Ok(RegistryAuth::Anonymous)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        for registry in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
            "127.0.0.2",
        ] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in ["ghcr.io", "10.0.0.1:5000", "registry.local:5000"] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }

    #[test]
    fn docker_config_credentials_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://ghcr.io":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let basic = |r| match docker_auth(r, Some(&path)).unwrap() {
            RegistryAuth::Basic(user, password) => Some((user, password)),
            _ => None,
        };
        assert_eq!(
            basic("127.0.0.1:5000"),
            Some(("alice".to_owned(), "s3cret".to_owned()))
        );
        assert_eq!(basic("ghcr.io"), Some(("bob".to_owned(), "pw".to_owned())));
        assert_eq!(basic("quay.io"), None);
    }
}
