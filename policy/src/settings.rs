//! The requirements document (the policy's settings) and its compiled form.
//!
//! Three layers make the settings a request is judged by: the built-in baseline (the
//! `Default` impls, which mirror `policy/requirements.yaml`), the requirements document
//! embedded at build time, and runtime settings. Each layer overrides the one below field by
//! field: maps merge key by key, lists and scalars replace.
//!
//! This module is also compiled into the build script (with the checks and what they
//! read), which refuses to embed a requirements document that does not validate; keep it
//! free of the evaluator and the request types.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::CompiledChecks;
pub use crate::checks::{CheckId, Checks};
use crate::glob::Glob;
use crate::object::{KindSet, WorkloadKind};

/// What a check does with a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reject the request.
    Enforce,
    /// Fix what can be fixed, reject what cannot.
    Mutate,
    /// Allow the request with an admission warning.
    Warn,
    /// Do not run the check.
    Off,
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
        // YAML 1.1 readers (and so many YAML-to-JSON converters) turn an unquoted `off`
        // into `false`; read it as the user meant it.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Flag(bool),
        }
        let expected = "one of enforce, mutate, warn, off";
        match Written::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom(format!("expected {expected}")))?
        {
            Written::Text(text) => match text.as_str() {
                "enforce" => Ok(Mode::Enforce),
                "mutate" => Ok(Mode::Mutate),
                "warn" => Ok(Mode::Warn),
                "off" => Ok(Mode::Off),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a mode: write {expected}"
                ))),
            },
            Written::Flag(false) => Ok(Mode::Off),
            Written::Flag(true) => Err(serde::de::Error::custom(format!(
                "true is not a mode: write {expected}"
            ))),
        }
    }
}

impl Mode {
    /// Whether a violation in this mode rejects the request (`mutate` rejects what it
    /// cannot fix).
    pub fn rejects(self) -> bool {
        matches!(self, Mode::Enforce | Mode::Mutate)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Mutate => "mutate",
            Mode::Warn => "warn",
            Mode::Off => "off",
        })
    }
}

/// The requirements document, as written in `requirements.yaml` or runtime settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Per-check modes and options, keyed by check id.
    pub checks: Checks,
    /// Namespaces and images that are not judged.
    pub exemptions: Exemptions,
    /// Observe-only mode and per-namespace modes, for rolling podguard out.
    pub rollout: Rollout,
}

/// Rolling podguard out without breaking a cluster: first observe everywhere, then
/// enforce namespace by namespace. Admission requests carry the namespace's name, not its
/// labels, so namespaces are chosen by name or glob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    /// Every `enforce` and `mutate` check only warns, in every namespace: nothing is
    /// rejected or changed, and every finding is still reported.
    pub observe_only: bool,
    /// Modes for some namespaces; the first entry whose names match a request's namespace
    /// applies.
    pub namespaces: Vec<NamespaceModes>,
}

/// The modes of the checks in some namespaces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceModes {
    /// Namespace names or globs (`team-*`).
    pub names: Vec<String>,
    /// The mode of every check there.
    pub mode: Option<Mode>,
    /// The mode of some checks there, by check id (over `mode`).
    pub checks: std::collections::BTreeMap<String, Mode>,
}

/// What is not judged at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    /// Namespaces whose requests are allowed unexamined.
    pub namespaces: Vec<String>,
    /// Image globs; matching containers skip every container check.
    pub images: Vec<String>,
    /// Where and for which checks a workload's own `podguard.io/exempt` annotation counts.
    pub annotation: AnnotationExemptions,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            namespaces: vec!["kube-system".to_owned()],
            images: Vec::new(),
            annotation: AnnotationExemptions::default(),
        }
    }
}

/// Self-service exemptions. Whoever may write a workload writes its annotations, so the
/// annotation exempts nothing unless the administrator lists both the checks it may skip
/// and the namespaces where it counts; the default lists neither.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AnnotationExemptions {
    /// Check ids a workload may exempt itself from.
    pub checks: Vec<String>,
    /// Namespace names or globs (`team-*`) where the annotation counts.
    pub namespaces: Vec<String>,
}

/// Why a settings document was refused. Every message names the field to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The runtime settings are not JSON at all.
    #[error("settings are not valid JSON: {0}")]
    NotJson(String),
    /// A field is unknown or has the wrong type.
    #[error("settings field `{field}`: {message}")]
    Schema {
        /// Dotted path of the field, e.g. `checks.resource-limits.required`.
        field: String,
        /// What serde found wrong, e.g. an unknown field and the expected ones.
        message: String,
    },
    /// The document parses but some values are invalid; all of them are listed.
    #[error("{}", join_problems(.0))]
    Invalid(Vec<FieldProblem>),
}

/// One invalid value in a settings document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

fn join_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("settings field `{}`: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Settings {
    /// Builds settings from a base document (the embedded requirements) and runtime
    /// overrides, merged field by field. A `null` override means "no overrides".
    pub fn from_layers(base: &Value, overrides: &Value) -> Result<Settings, SettingsError> {
        let mut merged = base.clone();
        if !overrides.is_null() {
            merge(&mut merged, overrides);
        }
        Settings::from_value(merged)
    }

    /// Reads one complete document; fields it leaves out take the built-in baseline.
    pub fn from_value(document: Value) -> Result<Settings, SettingsError> {
        let document = if document.is_null() {
            Value::Object(Default::default())
        } else {
            document
        };
        serde_path_to_error::deserialize(document).map_err(|err| {
            let field = err.path().to_string();
            SettingsError::Schema {
                field: if field == "." {
                    "(top level)".to_owned()
                } else {
                    field
                },
                message: err.into_inner().to_string(),
            }
        })
    }

    /// Checks every cross-field rule and prepares the settings for evaluation.
    pub fn compile(&self) -> Result<Policy, SettingsError> {
        let mut problems = Problems::default();
        let observed = |mut modes: [Mode; CheckId::ALL.len()]| {
            if self.rollout.observe_only {
                for mode in &mut modes {
                    if mode.rejects() {
                        *mode = Mode::Warn;
                    }
                }
            }
            modes
        };
        let mut configured = [Mode::Off; CheckId::ALL.len()];
        for id in CheckId::ALL {
            configured[id.index()] = self.checks.mode(id);
        }
        let modes = observed(configured);
        let mut kinds = [KindSet::default(); CheckId::ALL.len()];
        for id in CheckId::ALL {
            let listed = self.checks.kinds(id);
            if listed.is_empty() {
                problems.add(
                    format!("checks.{id}.kinds"),
                    "is empty: list the workload kinds the check judges, or set its mode to off",
                );
            }
            kinds[id.index()] = KindSet::of(listed);
        }
        let mut namespace_modes = Vec::new();
        for (i, entry) in self.rollout.namespaces.iter().enumerate() {
            let field = format!("rollout.namespaces[{i}]");
            let mut names = Vec::new();
            for (j, pattern) in entry.names.iter().enumerate() {
                match Glob::new(pattern) {
                    Ok(glob) => names.push(glob),
                    Err(err) => {
                        problems.add(format!("{field}.names[{j}]"), format!("{pattern:?}: {err}"))
                    }
                }
            }
            if entry.names.is_empty() {
                problems.add(
                    format!("{field}.names"),
                    "is empty: list the namespaces (names or globs such as team-*) these modes apply to",
                );
            }
            let mut modes = configured;
            if let Some(mode) = entry.mode {
                modes = [mode; CheckId::ALL.len()];
            }
            for (check, mode) in &entry.checks {
                match CheckId::parse(check) {
                    Some(id) => modes[id.index()] = *mode,
                    None => problems.add(
                        format!("{field}.checks.{check}"),
                        format!(
                            "{check:?} is not a check id; the checks are: {}",
                            CheckId::ALL.map(CheckId::as_str).join(", ")
                        ),
                    ),
                }
            }
            namespace_modes.push((names, observed(modes)));
        }
        let checks = self.checks.compile(&mut problems);

        let mut exempt_namespaces = Vec::new();
        for (i, namespace) in self.exemptions.namespaces.iter().enumerate() {
            if is_dns_label(namespace) {
                exempt_namespaces.push(namespace.clone());
            } else {
                problems.add(
                    format!("exemptions.namespaces[{i}]"),
                    format!("{namespace:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"),
                );
            }
        }
        let mut exempt_images = Vec::new();
        for (i, pattern) in self.exemptions.images.iter().enumerate() {
            match Glob::new(pattern) {
                Ok(glob) => exempt_images.push(glob),
                Err(err) => problems.add(
                    format!("exemptions.images[{i}]"),
                    format!("{pattern:?}: {err}"),
                ),
            }
        }
        let annotation_exemptions =
            compile_annotation_exemptions(&self.exemptions.annotation, &mut problems);

        problems.finish()?;
        let policy = Policy {
            modes,
            kinds,
            namespace_policies: Vec::new(),
            checks,
            exempt_namespaces,
            exempt_images,
            annotation_exemptions,
        };
        // Each entry's policy is built once here, not per request: it differs only in
        // its modes.
        let namespace_policies = namespace_modes
            .into_iter()
            .map(|(names, modes)| NamespacePolicy {
                names,
                policy: Policy {
                    modes,
                    ..policy.clone()
                },
            })
            .collect();
        Ok(Policy {
            namespace_policies,
            ..policy
        })
    }
}

/// Merges `overlay` into `base`: objects key by key, everything else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The capability a runtime would grant for an `add` entry, for comparing with the
/// allow-list: upper-cased one character at a time as Go's `strings.ToUpper` does (so
/// `ſys_admın` is `SYS_ADMIN`, as containerd and CRI-O read it), without the `CAP_` prefix
/// CRI-O accepts, and trimmed (an entry with spaces grants nothing, so reading it as the
/// name it resembles can only report more). For `drop: [ALL]` see
/// [`crate::checks::runtime_reads_as_all`], which is stricter.
pub fn canonical_capability(name: &str) -> String {
    let upper: String = name.trim().chars().map(go_simple_upper).collect();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// Go's `unicode.ToUpper`: one character to one character; where Unicode's full mapping
/// is several characters (`ß` to `SS`), Go leaves the character alone.
fn go_simple_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The invalid values of a settings document, gathered so all are reported at once.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), SettingsError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(self.0))
        }
    }
}

/// Compiled `exemptions.annotation`.
#[derive(Clone, Debug, Default)]
pub struct AnnotationExemptionRules {
    /// Checks the annotation may exempt.
    pub checks: Vec<CheckId>,
    /// Namespaces where it counts.
    pub namespaces: Vec<Glob>,
}

impl AnnotationExemptionRules {
    /// Whether the annotation counts at all in `namespace` (requests without a namespace
    /// are cluster-scoped and never match).
    pub fn enabled_in(&self, namespace: Option<&str>) -> bool {
        !self.checks.is_empty()
            && namespace.is_some_and(|ns| self.namespaces.iter().any(|glob| glob.matches(ns)))
    }
}

fn compile_annotation_exemptions(
    settings: &AnnotationExemptions,
    problems: &mut Problems,
) -> AnnotationExemptionRules {
    const FIELD: &str = "exemptions.annotation";
    let mut rules = AnnotationExemptionRules::default();
    for (i, id) in settings.checks.iter().enumerate() {
        match CheckId::parse(id) {
            Some(check) if !rules.checks.contains(&check) => rules.checks.push(check),
            Some(_) => problems.add(
                format!("{FIELD}.checks[{i}]"),
                format!("{id:?} is listed twice"),
            ),
            None => problems.add(
                format!("{FIELD}.checks[{i}]"),
                format!(
                    "{id:?} is not a check id; write one of {}",
                    CheckId::ALL.map(CheckId::as_str).join(", ")
                ),
            ),
        }
    }
    for (i, pattern) in settings.namespaces.iter().enumerate() {
        match Glob::new(pattern) {
            Ok(glob) => rules.namespaces.push(glob),
            Err(err) => problems.add(
                format!("{FIELD}.namespaces[{i}]"),
                format!("{pattern:?}: {err}"),
            ),
        }
    }
    if settings.checks.is_empty() != settings.namespaces.is_empty() {
        let missing = if settings.checks.is_empty() {
            "checks"
        } else {
            "namespaces"
        };
        problems.add(
            format!("{FIELD}.{missing}"),
            "is empty, so the annotation exempts nothing: list both the checks a workload may skip and the namespaces where it may, or neither",
        );
    }
    rules
}

/// Settings compiled for evaluation: quantities parsed, globs compiled, names normalised.
#[derive(Clone, Debug)]
pub struct Policy {
    modes: [Mode; CheckId::ALL.len()],
    /// The kinds each check judges.
    kinds: [KindSet; CheckId::ALL.len()],
    /// `rollout.namespaces`, compiled: the first that matches a namespace sets its modes.
    namespace_policies: Vec<NamespacePolicy>,
    /// Each check's compiled options.
    pub(crate) checks: CompiledChecks,
    /// Namespaces not judged.
    pub exempt_namespaces: Vec<String>,
    /// Image globs whose containers are not judged.
    pub exempt_images: Vec<Glob>,
    /// Where a workload's own exemption annotation counts.
    pub annotation_exemptions: AnnotationExemptionRules,
}

impl Policy {
    /// The mode a check runs in.
    pub fn mode(&self, id: CheckId) -> Mode {
        self.modes[id.index()]
    }

    /// Whether check `id` judges workloads of `kind` (a Job's Pod counting as a Job, a
    /// CronJob's Job as a CronJob).
    pub fn judges(&self, id: CheckId, kind: WorkloadKind) -> bool {
        self.kinds[id.index()].contains(kind)
    }

    /// The policy for a request in `namespace`: `None` when no `rollout.namespaces` entry
    /// matches it, so the policy itself applies.
    pub(crate) fn for_namespace(&self, namespace: Option<&str>) -> Option<&Policy> {
        let namespace = namespace?;
        self.namespace_policies
            .iter()
            .find(|entry| entry.names.iter().any(|glob| glob.matches(namespace)))
            .map(|entry| &entry.policy)
    }
}

/// One `rollout.namespaces` entry, compiled: the policy with that entry's modes.
#[derive(Clone, Debug)]
struct NamespacePolicy {
    names: Vec<Glob>,
    policy: Policy,
}
