//! One way to name a policy module in every command: the module built into this binary
//! (the default), a file, or a Kubewarden policy artifact in an OCI registry; and a
//! policies file, shaped like policy-server's `policies.yml`, for serving several.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use podguard_host::policy_file::ModuleSource;
use serde::Deserialize;

use crate::publish::oci::{self, RegistryOptions};

/// The policy module this binary was built with: the same bytes as the release module
/// (`cargo build --release --target wasm32-wasip1 -p podguard-policy`).
pub const EMBEDDED_MODULE: &[u8] = include_bytes!(env!("PODGUARD_EMBEDDED_MODULE"));

/// The sha256 digest of [`EMBEDDED_MODULE`], as `sha256:<hex>`.
pub const EMBEDDED_DIGEST: &str = env!("PODGUARD_EMBEDDED_DIGEST");

/// What `--policy` and a policies file's `module` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    /// `builtin`: the module this binary carries.
    BuiltIn,
    /// A path, or `file://PATH`.
    File(PathBuf),
    /// `registry://REFERENCE`: an OCI artifact, as `podguard push` and `kwctl push` write.
    Registry(String),
}

impl FromStr for PolicyRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "builtin" {
            return Ok(PolicyRef::BuiltIn);
        }
        if let Some(reference) = text.strip_prefix("registry://") {
            oci::parse_reference(reference).map_err(|err| format!("{err:#}"))?;
            return Ok(PolicyRef::Registry(reference.to_owned()));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return Err(format!(
                "{text:?}: podguard reads modules from files and OCI registries, not URLs; download it, or push it and name it registry://REFERENCE"
            ));
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.is_empty() {
            return Err(
                "the policy is empty: name a .wasm file, registry://REFERENCE or builtin"
                    .to_owned(),
            );
        }
        Ok(PolicyRef::File(PathBuf::from(path)))
    }
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyRef::BuiltIn => f.write_str("builtin"),
            PolicyRef::File(path) => write!(f, "{}", path.display()),
            PolicyRef::Registry(reference) => write!(f, "registry://{reference}"),
        }
    }
}

impl<'de> Deserialize<'de> for PolicyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How registry modules are fetched: the registry's options, and where pulled modules
/// are kept (by manifest digest) so a digest reference is read without the network and a
/// tag whose digest did not change is not downloaded again.
#[derive(Debug, Clone, Default)]
pub struct Fetch {
    /// Registry access.
    pub registry: RegistryOptions,
    /// The cache directory (`modules/` below it holds pulled modules).
    pub cache_dir: Option<PathBuf>,
}

impl PolicyRef {
    /// The module's bytes, or where to read them.
    pub async fn resolve(&self, fetch: &Fetch) -> anyhow::Result<ModuleSource> {
        match self {
            PolicyRef::Registry(reference) => Ok(ModuleSource::Bytes {
                origin: format!("registry://{reference}"),
                bytes: Arc::from(pull_cached(reference, fetch).await?),
            }),
            PolicyRef::BuiltIn | PolicyRef::File(_) => Ok(self.local()),
        }
    }

    /// [`PolicyRef::resolve`] for a command that has no async runtime: a registry
    /// reference gets a small one of its own.
    pub fn resolve_blocking(&self, fetch: &Fetch) -> anyhow::Result<ModuleSource> {
        match self {
            PolicyRef::Registry(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(self.resolve(fetch)),
            PolicyRef::BuiltIn | PolicyRef::File(_) => Ok(self.local()),
        }
    }

    fn local(&self) -> ModuleSource {
        match self {
            PolicyRef::File(path) => ModuleSource::File(path.clone()),
            // Named as `--policy` names it: messages then read "policy builtin refused
            // its settings", and say which flag value to change.
            _ => ModuleSource::Bytes {
                origin: "builtin".to_owned(),
                bytes: Arc::from(EMBEDDED_MODULE),
            },
        }
    }
}

async fn pull_cached(reference: &str, fetch: &Fetch) -> anyhow::Result<Vec<u8>> {
    let cached = |digest: &str| {
        fetch.cache_dir.as_ref().map(|dir| {
            dir.join("modules")
                .join(format!("{}.wasm", digest.replace(':', "-")))
        })
    };
    // A digest names one module forever: the cache answers without the network.
    let pinned = reference
        .rsplit_once('@')
        .map(|(_, digest)| digest.to_owned());
    let digest = match pinned {
        Some(digest) => digest,
        None => oci::manifest_digest(reference, &fetch.registry).await?,
    };
    if let Some(path) = cached(&digest)
        && let Ok(bytes) = std::fs::read(&path)
    {
        return Ok(bytes);
    }
    let pulled = oci::pull(reference, &fetch.registry).await?;
    if let Some(path) = cached(&pulled.digest) {
        // A cache that cannot be written costs a download next time, nothing more.
        let _ = write_atomically(&path, &pulled.module);
    }
    Ok(pulled.module)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files sit in a directory");
    std::fs::create_dir_all(dir)?;
    // Written beside it and renamed, so a reader never sees half a module.
    let partial = dir.join(format!(".pulling-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// One policy of a policies file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// The module (`url` is accepted too, as older policy-server files name it).
    #[serde(alias = "url")]
    pub module: PolicyRef,
    /// Settings, layered over the module's embedded requirements.
    #[serde(default)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A policies file: policy names (the `NAME` of `/validate/NAME`) to their module and
/// settings, as policy-server's `policies.yml` maps them.
///
/// ```yaml
/// podguard:
///   module: builtin
/// strict:
///   module: registry://ghcr.io/acme/policies/podguard:v0.2.0
///   settings:
///     checks:
///       read-only-root-filesystem: {mode: enforce}
/// ```
///
/// A relative module path is read from the file's own directory.
pub fn read_policies_file(path: &Path) -> anyhow::Result<BTreeMap<String, PolicyEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the policies file {}", path.display()))?;
    let mut policies: BTreeMap<String, PolicyEntry> = serde_saphyr::from_str(&text)
        .with_context(|| {
            format!(
                "{} is not a policies file: write NAME: {{module: builtin | FILE.wasm | registry://REFERENCE, settings: {{...}}}} per policy",
                path.display()
            )
        })?;
    if policies.is_empty() {
        anyhow::bail!(
            "{} names no policy: write NAME: {{module: builtin}} at least",
            path.display()
        );
    }
    let base = path.parent().unwrap_or(Path::new(""));
    for (name, entry) in &mut policies {
        check_policy_name(name).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        if let PolicyRef::File(module) = &mut entry.module
            && module.is_relative()
        {
            *module = base.join(&*module);
        }
    }
    Ok(policies)
}

/// A policy's name becomes a URL path segment and a metrics label.
pub fn check_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{name:?} is not a policy name: use letters, digits, - and _ (it becomes a URL path segment)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_named_the_same_way_everywhere() {
        assert_eq!("builtin".parse(), Ok(PolicyRef::BuiltIn));
        assert_eq!(
            "policies/a,b.wasm".parse(),
            Ok(PolicyRef::File("policies/a,b.wasm".into()))
        );
        assert_eq!(
            "file:///opt/podguard.wasm".parse(),
            Ok(PolicyRef::File("/opt/podguard.wasm".into()))
        );
        assert_eq!(
            "registry://ghcr.io/acme/podguard:v1".parse(),
            Ok(PolicyRef::Registry("ghcr.io/acme/podguard:v1".into()))
        );
        let url = "https://example.com/p.wasm"
            .parse::<PolicyRef>()
            .unwrap_err();
        assert!(url.contains("not URLs"), "{url}");
        let bad = "registry://Not A Reference"
            .parse::<PolicyRef>()
            .unwrap_err();
        assert!(bad.contains("is not an OCI reference"), "{bad}");
    }

    #[test]
    fn a_policies_file_is_typed_and_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policies.yml");
        std::fs::write(
            &path,
            "podguard:\n  module: builtin\nstrict:\n  module: modules/strict.wasm\n  settings:\n    checks: {}\n",
        )
        .unwrap();
        let policies = read_policies_file(&path).unwrap();
        assert_eq!(policies["podguard"].module, PolicyRef::BuiltIn);
        assert_eq!(
            policies["strict"].module,
            PolicyRef::File(dir.path().join("modules/strict.wasm"))
        );
        assert!(policies["strict"].settings.is_some());

        std::fs::write(&path, "podguard:\n  module: builtin\n  setings: {}\n").unwrap();
        let err = format!("{:#}", read_policies_file(&path).unwrap_err());
        assert!(err.contains("setings"), "{err}");
        std::fs::write(&path, "has space:\n  module: builtin\n").unwrap();
        let err = format!("{:#}", read_policies_file(&path).unwrap_err());
        assert!(err.contains("is not a policy name"), "{err}");
    }
}
