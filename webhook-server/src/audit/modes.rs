//! Which checks are on, and in which mode, under the module and settings of this audit.
//!
//! The module's embedded requirements may differ from the ones this binary was built
//! with (an organisation builds its own module), so the modes are learnt from the module
//! itself: it judges one Pod that breaks every rule, and each violation it reports
//! carries its check's mode. A check that reports nothing is off.

use podguard_policy::{CheckId, Mode};
use serde_json::{Value, json};

use super::judge::{EVALUATE_OPERATION, set_mode};
use crate::host::PolicyModule;

/// What audit knows of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    /// The check is off.
    Off,
    /// The check runs in this mode.
    On(Mode),
    /// The probe could not tell (an image exemption matched the probe's container).
    Unknown,
}

/// The mode of every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckModes {
    modes: [Active; CheckId::ALL.len()],
}

impl CheckModes {
    /// Every check as `active` (for tests and reports built without a module).
    pub fn uniform(active: Active) -> CheckModes {
        CheckModes {
            modes: [active; CheckId::ALL.len()],
        }
    }

    /// What is known of `check`.
    pub fn get(&self, check: CheckId) -> Active {
        let index = CheckId::ALL
            .iter()
            .position(|c| *c == check)
            .expect("every check is in ALL");
        self.modes[index]
    }

    fn set(&mut self, check: CheckId, active: Active) {
        let index = CheckId::ALL
            .iter()
            .position(|c| *c == check)
            .expect("every check is in ALL");
        self.modes[index] = active;
    }

    /// Checks that are not off, in report order.
    pub fn active(&self) -> impl Iterator<Item = (CheckId, Active)> + '_ {
        CheckId::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|(_, a)| *a != Active::Off)
    }
}

/// A Pod that breaks every rule podguard has, in a namespace no one exempts.
fn probe_request(settings: &str) -> String {
    let request = json!({
        "uid": "podguard-audit-probe",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "podguard-mode-probe",
        "namespace": "podguard-audit-mode-probe",
        "operation": "CREATE",
        "dryRun": true,
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "podguard-mode-probe", "namespace": "podguard-audit-mode-probe"},
            "spec": {
                "hostNetwork": true,
                "hostPID": true,
                "hostIPC": true,
                "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
                "containers": [{
                    "name": "probe",
                    "image": "podguard-audit-probe.invalid/probe",
                    "ports": [{"containerPort": 8080, "name": "metrics"}],
                    "securityContext": {
                        "privileged": true,
                        "allowPrivilegeEscalation": true,
                        "readOnlyRootFilesystem": false,
                        "runAsUser": 0,
                        "capabilities": {"add": ["SYS_ADMIN"]}
                    }
                }]
            }
        }
    });
    format!("{{\"request\":{request},\"settings\":{settings}}}")
}

/// Learns the modes from the module, under `settings` (JSON).
pub fn probe(module: &PolicyModule, settings: &str) -> anyhow::Result<CheckModes> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        violations: Vec<ProbeViolation>,
        #[serde(default)]
        exemptions: Vec<ProbeExemption>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeViolation {
        check: CheckId,
        mode: Mode,
    }
    #[derive(serde::Deserialize)]
    struct ProbeExemption {
        #[serde(default)]
        check: Option<CheckId>,
    }
    let answer = module
        .call(EVALUATE_OPERATION, probe_request(settings).as_bytes())
        .map_err(|err| {
            anyhow::anyhow!(
                "the policy module cannot run audit's evaluation ({EVALUATE_OPERATION}): {err}; pass a podguard policy module (--policy) built from this version"
            )
        })?;
    let probe: Probe = serde_json::from_slice(&answer).map_err(|err| {
        anyhow::anyhow!(
            "the policy module's {EVALUATE_OPERATION} answer is not podguard's Outcome ({err}); pass a podguard policy module built from this version"
        )
    })?;
    let mut modes = CheckModes::uniform(Active::Off);
    for violation in &probe.violations {
        modes.set(violation.check, Active::On(violation.mode));
    }
    for exemption in &probe.exemptions {
        match exemption.check {
            Some(check) if modes.get(check) == Active::Off => modes.set(check, Active::Unknown),
            Some(_) => {}
            None => return Ok(CheckModes::uniform(Active::Unknown)),
        }
    }
    Ok(modes)
}

/// Runtime settings for fix proposals: `settings` with every mutable check that is on
/// switched to mutate, and every unmutable check that rejects switched to warn (a
/// rejected object carries no mutation). `off` checks stay off. A switch the module
/// refuses (mutate mode may need options the settings lack) is left out, with a note.
pub fn fix_overrides(
    module: &PolicyModule,
    settings: &str,
    modes: &CheckModes,
) -> anyhow::Result<(Value, Vec<String>)> {
    let base: Value = serde_json::from_str(settings)?;
    let changes: Vec<(CheckId, Mode)> = modes
        .active()
        .filter_map(|(check, active)| match active {
            Active::On(mode) if check.can_mutate() && mode != Mode::Mutate => {
                Some((check, Mode::Mutate))
            }
            Active::On(Mode::Enforce | Mode::Mutate) if !check.can_mutate() => {
                Some((check, Mode::Warn))
            }
            _ => None,
        })
        .collect();
    let accepted = |value: &Value| module.validate_settings(value.to_string().as_bytes());
    let mut all = base.clone();
    for (check, mode) in &changes {
        set_mode(&mut all, *check, *mode);
    }
    if accepted(&all).is_ok() {
        return Ok((all, Vec::new()));
    }
    let mut kept = base;
    let mut notes = Vec::new();
    for (check, mode) in changes {
        let mut candidate = kept.clone();
        set_mode(&mut candidate, check, mode);
        match accepted(&candidate) {
            Ok(()) => kept = candidate,
            Err(err) => notes.push(format!(
                "{check} cannot run in {mode} mode with these settings, so fixes leave it out: {err}"
            )),
        }
    }
    Ok((kept, notes))
}
