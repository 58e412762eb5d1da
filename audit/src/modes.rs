//! Which checks are on, and in which mode, under the module and settings of this audit.
//!
//! The module's embedded requirements may differ from the ones this binary was built
//! with (an organisation builds its own module), so the modes come from the module
//! itself: its `podguard_modes` operation answers the mode of every check under the
//! settings.

use podguard_host::PolicyModule;
use podguard_policy::contract::{CheckModes, operation};
use podguard_policy::{CheckId, Mode};
use serde_json::Value;

use super::judge::set_mode;
use crate::error::{AuditError, ModuleAnswerError};

/// Asks the module for the mode of every check under `settings` (JSON).
pub(crate) fn of_module(module: &PolicyModule, settings: &str) -> Result<CheckModes, AuditError> {
    let not_podguard = |source: ModuleAnswerError| AuditError::NotPodguard {
        operation: operation::MODES,
        source,
    };
    let answer = module
        .call(operation::MODES, settings.as_bytes())
        .map_err(|err| not_podguard(err.into()))?;
    serde_json::from_slice(&answer).map_err(|err| not_podguard(err.into()))
}

/// Runtime settings for fix proposals: `settings` with every mutable check that is on
/// switched to mutate, and every unmutable check that rejects switched to warn (a
/// rejected object carries no mutation). `off` checks stay off. A switch the module
/// refuses (mutate mode may need options the settings lack) is left out, with a note.
pub(crate) fn fix_overrides(
    module: &PolicyModule,
    settings: &str,
    modes: &CheckModes,
) -> (Value, Vec<String>) {
    // The host wrote these settings as JSON from a mapping (policy_file::read_settings).
    let base: Value =
        serde_json::from_str(settings).unwrap_or_else(|_| Value::Object(Default::default()));
    let changes: Vec<(CheckId, Mode)> = modes
        .active()
        .filter_map(|(check, mode)| match mode {
            mode if check.can_mutate() && mode != Mode::Mutate => Some((check, Mode::Mutate)),
            Mode::Enforce | Mode::Mutate if !check.can_mutate() => Some((check, Mode::Warn)),
            _ => None,
        })
        .collect();
    let accepted = |value: &Value| module.validate_settings(value.to_string().as_bytes());
    let mut all = base.clone();
    for (check, mode) in &changes {
        set_mode(&mut all, *check, *mode);
    }
    if accepted(&all).is_ok() {
        return (all, Vec::new());
    }
    let mut kept = base;
    let mut notes = Vec::new();
    for (check, mode) in changes {
        let mut candidate = kept.clone();
        set_mode(&mut candidate, check, mode);
        match accepted(&candidate) {
            Ok(()) => kept = candidate,
            Err(err) => notes.push(format!(
                "{check} cannot run in {mode} mode with these settings, so fixes leave it out: {}",
                podguard_host::chain(&err)
            )),
        }
    }
    (kept, notes)
}
