//! Loading a policy module and its settings from disk.

use std::path::{Path, PathBuf};

use crate::{HostError, PolicyModule, Runtime};

/// Why a policy could not be loaded from its files. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The module file could not be read.
    #[error("cannot read the policy module {}; build it with `cargo build --release --target wasm32-wasip1 -p podguard-policy`", path.display())]
    ReadModule {
        /// The module file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings file could not be read.
    #[error("cannot read the settings file {}", path.display())]
    ReadSettings {
        /// The settings file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not YAML (or JSON).
    #[error("the settings file {} is not valid YAML", path.display())]
    SettingsSyntax {
        /// The settings file.
        path: PathBuf,
        /// What the parser said (boxed: it is large, and errors travel by value).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The settings file holds something else than a mapping.
    #[error("the settings file {} must hold a mapping (e.g. `checks: ...`), not {found}", path.display())]
    SettingsNotMapping {
        /// The settings file.
        path: PathBuf,
        /// What it holds, as JSON.
        found: String,
    },
    /// The module does not load, or refuses the settings.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Reads a settings file (YAML or JSON; JSON is YAML) into the JSON a policy receives.
/// No file means `{}`: the module's embedded requirements apply unchanged.
pub fn read_settings(path: Option<&Path>) -> Result<String, PolicyFileError> {
    let Some(path) = path else {
        return Ok("{}".to_owned());
    };
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::ReadSettings {
        path: path.to_owned(),
        source,
    })?;
    let value: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_saphyr::from_str(&text).map_err(|source| PolicyFileError::SettingsSyntax {
            path: path.to_owned(),
            source: Box::new(source),
        })?
    };
    if !value.is_object() {
        return Err(PolicyFileError::SettingsNotMapping {
            path: path.to_owned(),
            found: value.to_string(),
        });
    }
    Ok(value.to_string())
}

/// How a module loaded from `path` alone (no policy name given) is named in messages:
/// its file name, as the person who passed it wrote it.
pub fn module_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// A module loaded, its settings validated by the module itself.
pub struct LoadedPolicy {
    /// The module, ready to call.
    pub module: PolicyModule,
    /// Its settings as JSON.
    pub settings: String,
}

/// Loads `path`, refusing to go on when the module refuses `settings`.
pub fn load_policy(
    runtime: &Runtime,
    name: &str,
    path: &Path,
    settings: Option<&Path>,
) -> Result<LoadedPolicy, PolicyFileError> {
    let bytes = std::fs::read(path).map_err(|source| PolicyFileError::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    let settings = read_settings(settings)?;
    let module = runtime.load(name, &bytes)?;
    module.validate_settings(settings.as_bytes())?;
    Ok(LoadedPolicy { module, settings })
}
