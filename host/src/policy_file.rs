//! Loading a policy module and its settings from disk.

use std::path::{Path, PathBuf};

use crate::{HostError, PolicyModule, Runtime};

/// Why a policy could not be loaded from its files. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The module file could not be read.
    #[error("cannot read the policy module {}", path.display())]
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

/// Where a module's bytes are: a file, or already in memory (the module a binary carries,
/// one pulled from a registry).
#[derive(Debug, Clone)]
pub enum ModuleSource {
    /// A `.wasm` file, read when the policy is loaded.
    File(PathBuf),
    /// Bytes in memory.
    Bytes {
        /// How messages name the module, e.g. `the built-in module` or a registry reference.
        origin: String,
        /// The module.
        bytes: std::sync::Arc<[u8]>,
    },
}

impl ModuleSource {
    /// The module's bytes.
    pub fn read(&self) -> Result<std::borrow::Cow<'_, [u8]>, PolicyFileError> {
        match self {
            ModuleSource::File(path) => {
                std::fs::read(path)
                    .map(std::borrow::Cow::Owned)
                    .map_err(|source| PolicyFileError::ReadModule {
                        path: path.to_owned(),
                        source,
                    })
            }
            ModuleSource::Bytes { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }

    /// How messages and logs name the module: its path as given, or its origin.
    pub fn origin(&self) -> String {
        match self {
            ModuleSource::File(path) => path.display().to_string(),
            ModuleSource::Bytes { origin, .. } => origin.clone(),
        }
    }

    /// The name of a policy given by its module alone: the file name, or the origin.
    pub fn default_name(&self) -> String {
        match self {
            ModuleSource::File(path) => module_name(path),
            ModuleSource::Bytes { origin, .. } => origin.clone(),
        }
    }
}

/// Loads the module, refusing to go on when it refuses `settings` (JSON, as
/// [`read_settings`] returns it).
pub fn load_policy(
    runtime: &Runtime,
    name: &str,
    module: &ModuleSource,
    settings: String,
) -> Result<LoadedPolicy, PolicyFileError> {
    let bytes = module.read()?;
    let module = runtime.load(name, &bytes)?;
    module.validate_settings(settings.as_bytes())?;
    Ok(LoadedPolicy { module, settings })
}
