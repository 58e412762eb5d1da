//! Loading a policy module and its settings from disk.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::host::{PolicyModule, Runtime};

/// Reads a settings file (YAML or JSON; JSON is YAML) into the JSON a policy receives.
/// No file means `{}`: the module's embedded requirements apply unchanged.
pub fn read_settings(path: Option<&Path>) -> anyhow::Result<String> {
    let Some(path) = path else {
        return Ok("{}".to_owned());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the settings file {}", path.display()))?;
    let value: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_saphyr::from_str(&text).with_context(|| {
            format!("while parsing the settings file {} as YAML", path.display())
        })?
    };
    if !value.is_object() {
        anyhow::bail!(
            "the settings file {} must hold a mapping (e.g. `checks: ...`), not {}",
            path.display(),
            value
        );
    }
    Ok(value.to_string())
}

/// A module loaded, its settings validated by the module itself.
pub struct LoadedPolicy {
    /// The module, ready to call.
    pub module: PolicyModule,
    /// Its settings as JSON.
    pub settings: String,
    /// Where it came from.
    pub path: PathBuf,
}

/// Loads `path`, refusing to go on when the module refuses `settings`.
pub fn load_policy(
    runtime: &Runtime,
    name: &str,
    path: &Path,
    settings: Option<&Path>,
) -> anyhow::Result<LoadedPolicy> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "while reading the policy module {} (build it with `cargo build --release --target wasm32-wasip1 -p podguard-policy`)",
            path.display()
        )
    })?;
    let settings = read_settings(settings)?;
    let module = runtime.load(name, &bytes)?;
    module.validate_settings(settings.as_bytes())?;
    Ok(LoadedPolicy {
        module,
        settings,
        path: path.to_owned(),
    })
}
