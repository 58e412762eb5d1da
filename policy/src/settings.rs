//! The requirements document (the policy's settings) and its compiled form.
//!
//! Three layers make the settings a request is judged by: the built-in baseline (the
//! `Default` impls, which mirror `policy/requirements.yaml`), the requirements document
//! embedded at build time, and runtime settings. Each layer overrides the one below field by
//! field: maps merge key by key, lists and scalars replace.
//!
//! This module is also compiled into the build script, which refuses to embed a
//! requirements document that does not validate; keep it free of other crate modules but
//! `quantity` and `glob`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::glob::Glob;
use crate::quantity::Quantity;

/// Stable identifiers of the checks; they appear in every message, report and exemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// Every container runs with an effective `runAsNonRoot: true` and never as uid 0.
    RunAsNonRoot,
    /// Every container drops `ALL` and adds only allowed capabilities.
    DropCapabilities,
    /// Every container sets the required CPU and memory quantities within bounds.
    ResourceLimits,
    /// The pod carries Prometheus scrape annotations naming a declared port.
    PrometheusAnnotations,
    /// `allowPrivilegeEscalation: false` on every container.
    NoPrivilegeEscalation,
    /// No `privileged: true`.
    NoPrivileged,
    /// `readOnlyRootFilesystem: true` on every container.
    ReadOnlyRootFilesystem,
    /// An effective seccomp profile of `RuntimeDefault` or `Localhost`.
    SeccompProfile,
    /// No `hostNetwork`, `hostPID` or `hostIPC`.
    HostNamespaces,
    /// No image without a tag or tagged `latest`.
    ImageTagPinned,
    /// Liveness and readiness probes on every regular container.
    HealthProbes,
}

impl CheckId {
    /// Every check, in the order reports list them.
    pub const ALL: [CheckId; 11] = [
        CheckId::RunAsNonRoot,
        CheckId::DropCapabilities,
        CheckId::ResourceLimits,
        CheckId::PrometheusAnnotations,
        CheckId::NoPrivilegeEscalation,
        CheckId::NoPrivileged,
        CheckId::ReadOnlyRootFilesystem,
        CheckId::SeccompProfile,
        CheckId::HostNamespaces,
        CheckId::ImageTagPinned,
        CheckId::HealthProbes,
    ];

    /// The id as users write it, e.g. `run-as-non-root`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::RunAsNonRoot => "run-as-non-root",
            CheckId::DropCapabilities => "drop-capabilities",
            CheckId::ResourceLimits => "resource-limits",
            CheckId::PrometheusAnnotations => "prometheus-annotations",
            CheckId::NoPrivilegeEscalation => "no-privilege-escalation",
            CheckId::NoPrivileged => "no-privileged",
            CheckId::ReadOnlyRootFilesystem => "read-only-root-filesystem",
            CheckId::SeccompProfile => "seccomp-profile",
            CheckId::HostNamespaces => "host-namespaces",
            CheckId::ImageTagPinned => "image-tag-pinned",
            CheckId::HealthProbes => "health-probes",
        }
    }

    /// Parses an id as written in an exemption annotation.
    pub fn parse(text: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|id| id.as_str() == text)
    }

    /// One sentence on what the check requires and why, for report help texts.
    pub fn description(self) -> &'static str {
        match self {
            CheckId::RunAsNonRoot => {
                "Containers must run with runAsNonRoot: true so the kubelet refuses to start them as root."
            }
            CheckId::DropCapabilities => {
                "Containers must drop ALL Linux capabilities and add back only allowed ones."
            }
            CheckId::ResourceLimits => {
                "Containers must set CPU and memory limits and requests within the configured bounds."
            }
            CheckId::PrometheusAnnotations => {
                "Pods must carry prometheus.io scrape, port and path annotations naming a declared port."
            }
            CheckId::NoPrivilegeEscalation => {
                "Containers must set allowPrivilegeEscalation: false so setuid binaries cannot gain privileges."
            }
            CheckId::NoPrivileged => {
                "Containers must not run privileged: it grants every capability and host device access."
            }
            CheckId::ReadOnlyRootFilesystem => {
                "Containers should mount their root filesystem read-only."
            }
            CheckId::SeccompProfile => {
                "Containers should run under the RuntimeDefault or a Localhost seccomp profile."
            }
            CheckId::HostNamespaces => {
                "Pods should not share the node's network, PID or IPC namespace."
            }
            CheckId::ImageTagPinned => {
                "Images should be pinned by a tag other than latest, or by digest."
            }
            CheckId::HealthProbes => "Containers should declare liveness and readiness probes.",
        }
    }

    /// Whether mutate mode can fix any violation of this check.
    pub fn can_mutate(self) -> bool {
        !matches!(
            self,
            CheckId::NoPrivileged
                | CheckId::HostNamespaces
                | CheckId::ImageTagPinned
                | CheckId::HealthProbes
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

/// One entry per check id; an unknown id is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs, reason = "each field is the check of the same name")]
pub struct Checks {
    #[serde(rename = "run-as-non-root")]
    pub run_as_non_root: RunAsNonRoot,
    #[serde(rename = "drop-capabilities")]
    pub drop_capabilities: DropCapabilities,
    #[serde(rename = "resource-limits")]
    pub resource_limits: ResourceLimits,
    #[serde(rename = "prometheus-annotations")]
    pub prometheus_annotations: PrometheusAnnotations,
    #[serde(rename = "no-privilege-escalation")]
    pub no_privilege_escalation: ModeOnly,
    #[serde(rename = "no-privileged")]
    pub no_privileged: ModeOnly,
    #[serde(rename = "read-only-root-filesystem")]
    pub read_only_root_filesystem: ModeOnly,
    #[serde(rename = "seccomp-profile")]
    pub seccomp_profile: ModeOnly,
    #[serde(rename = "host-namespaces")]
    pub host_namespaces: ModeOnly,
    #[serde(rename = "image-tag-pinned")]
    pub image_tag_pinned: ModeOnly,
    #[serde(rename = "health-probes")]
    pub health_probes: ModeOnly,
}

impl Default for Checks {
    fn default() -> Self {
        let mode = |mode| ModeOnly { mode };
        Checks {
            run_as_non_root: RunAsNonRoot::default(),
            drop_capabilities: DropCapabilities::default(),
            resource_limits: ResourceLimits::default(),
            prometheus_annotations: PrometheusAnnotations::default(),
            no_privilege_escalation: mode(Mode::Enforce),
            no_privileged: mode(Mode::Enforce),
            read_only_root_filesystem: mode(Mode::Warn),
            seccomp_profile: mode(Mode::Warn),
            host_namespaces: mode(Mode::Warn),
            image_tag_pinned: mode(Mode::Warn),
            health_probes: mode(Mode::Off),
        }
    }
}

/// A check whose only option is its mode. The mode has no default here because the
/// default differs per check; the layers below always supply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeOnly {
    /// What the check does with a violation.
    pub mode: Mode,
}

/// Options of `run-as-non-root`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RunAsNonRoot {
    /// What the check does with a violation.
    pub mode: Mode,
    /// Mutation also sets the pod's `runAsUser` to this uid where the pod leaves it unset.
    pub default_run_as_user: Option<i64>,
}

impl Default for RunAsNonRoot {
    fn default() -> Self {
        RunAsNonRoot {
            mode: Mode::Enforce,
            default_run_as_user: None,
        }
    }
}

/// Options of `drop-capabilities`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DropCapabilities {
    /// What the check does with a violation.
    pub mode: Mode,
    /// Capabilities a container may add after dropping `ALL`.
    pub allowed_add: Vec<String>,
}

impl Default for DropCapabilities {
    fn default() -> Self {
        DropCapabilities {
            mode: Mode::Enforce,
            allowed_add: vec!["NET_BIND_SERVICE".to_owned()],
        }
    }
}

/// Options of `resource-limits`. Keys are `<limits|requests>.<resource>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceLimits {
    /// What the check does with a violation.
    pub mode: Mode,
    /// Quantities every container must set, e.g. `limits.cpu`.
    pub required: Vec<String>,
    /// Require requests written out instead of counting a missing request as its limit.
    pub require_explicit_requests: bool,
    /// Skip plain (run-to-completion) init containers.
    pub exempt_init_containers: bool,
    /// Values mutation fills in where a required quantity is missing.
    pub defaults: BTreeMap<String, Value>,
    /// Upper bounds per quantity.
    pub maximum: BTreeMap<String, Value>,
    /// Upper bounds on limit / request per resource name.
    pub max_limit_request_ratio: BTreeMap<String, Value>,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        let text = |s: &str| Value::String(s.to_owned());
        ResourceLimits {
            mode: Mode::Enforce,
            required: [
                "limits.cpu",
                "limits.memory",
                "requests.cpu",
                "requests.memory",
            ]
            .map(str::to_owned)
            .to_vec(),
            require_explicit_requests: false,
            exempt_init_containers: false,
            defaults: BTreeMap::from([
                ("limits.cpu".to_owned(), text("500m")),
                ("limits.memory".to_owned(), text("512Mi")),
                ("requests.cpu".to_owned(), text("100m")),
                ("requests.memory".to_owned(), text("128Mi")),
            ]),
            maximum: BTreeMap::new(),
            max_limit_request_ratio: BTreeMap::new(),
        }
    }
}

/// Options of `prometheus-annotations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusAnnotations {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The annotation keys; clusters differ (`prometheus.io.scrape`, own prefixes).
    pub annotations: AnnotationKeys,
    /// Container port names mutation looks for, in order.
    pub port_names: Vec<String>,
    /// Port mutation uses when no container port has one of `port_names`.
    pub default_port: Option<u16>,
    /// Path mutation writes into the path annotation.
    pub default_path: String,
}

impl Default for PrometheusAnnotations {
    fn default() -> Self {
        PrometheusAnnotations {
            mode: Mode::Enforce,
            annotations: AnnotationKeys::default(),
            port_names: vec!["metrics".to_owned(), "http-metrics".to_owned()],
            default_port: None,
            default_path: "/metrics".to_owned(),
        }
    }
}

/// The three Prometheus annotation keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AnnotationKeys {
    /// Must be `"true"`.
    pub scrape: String,
    /// Must name a declared TCP container port by number.
    pub port: String,
    /// Must be an HTTP path.
    pub path: String,
}

impl Default for AnnotationKeys {
    fn default() -> Self {
        AnnotationKeys {
            scrape: "prometheus.io/scrape".to_owned(),
            port: "prometheus.io/port".to_owned(),
            path: "prometheus.io/path".to_owned(),
        }
    }
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
        let checks = &self.checks;

        let mut modes = [Mode::Off; CheckId::ALL.len()];
        for id in CheckId::ALL {
            modes[id.index()] = self.mode_of(id);
        }

        if checks
            .run_as_non_root
            .default_run_as_user
            .is_some_and(|uid| uid <= 0)
        {
            problems.add(
                "checks.run-as-non-root.defaultRunAsUser",
                "must be a uid above 0 (uid 0 is root); remove it to leave runAsUser to the image",
            );
        }

        let mut allowed_add = Vec::new();
        for (i, name) in checks.drop_capabilities.allowed_add.iter().enumerate() {
            let field = format!("checks.drop-capabilities.allowedAdd[{i}]");
            let canonical = canonical_capability(name);
            if canonical.is_empty()
                || !canonical
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            {
                problems.add(
                    &field,
                    format!("{name:?} is not a capability name such as NET_BIND_SERVICE"),
                );
            } else if canonical == "ALL" {
                problems.add(
                    &field,
                    "ALL cannot be allowed: it would re-grant every capability the check drops",
                );
            } else {
                allowed_add.push(canonical);
            }
        }

        let limits = compile_limits(&checks.resource_limits, &mut problems);
        let prometheus = compile_prometheus(&checks.prometheus_annotations, &mut problems);

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
        Ok(Policy {
            modes,
            default_run_as_user: checks.run_as_non_root.default_run_as_user,
            allowed_add,
            limits,
            prometheus,
            exempt_namespaces,
            exempt_images,
            annotation_exemptions,
        })
    }

    fn mode_of(&self, id: CheckId) -> Mode {
        let c = &self.checks;
        match id {
            CheckId::RunAsNonRoot => c.run_as_non_root.mode,
            CheckId::DropCapabilities => c.drop_capabilities.mode,
            CheckId::ResourceLimits => c.resource_limits.mode,
            CheckId::PrometheusAnnotations => c.prometheus_annotations.mode,
            CheckId::NoPrivilegeEscalation => c.no_privilege_escalation.mode,
            CheckId::NoPrivileged => c.no_privileged.mode,
            CheckId::ReadOnlyRootFilesystem => c.read_only_root_filesystem.mode,
            CheckId::SeccompProfile => c.seccomp_profile.mode,
            CheckId::HostNamespaces => c.host_namespaces.mode,
            CheckId::ImageTagPinned => c.image_tag_pinned.mode,
            CheckId::HealthProbes => c.health_probes.mode,
        }
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

/// Which half of `resources` a quantity lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `resources.limits`
    Limits,
    /// `resources.requests`
    Requests,
}

impl Section {
    /// The field name in a container's `resources`.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Requests => "requests",
        }
    }
}

/// A quantity's place, e.g. `limits.cpu`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// Limits or requests.
    pub section: Section,
    /// The resource name, e.g. `cpu`, `memory`, `ephemeral-storage`.
    pub resource: String,
}

impl ResourceKey {
    fn parse(text: &str) -> Option<ResourceKey> {
        let (section, resource) = text.split_once('.')?;
        let section = match section {
            "limits" => Section::Limits,
            "requests" => Section::Requests,
            _ => return None,
        };
        (!resource.is_empty()).then(|| ResourceKey {
            section,
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.section.as_str(), self.resource)
    }
}

/// Compiled `resource-limits` options.
#[derive(Clone, Debug)]
pub struct LimitRules {
    /// Quantities every container must set.
    pub required: Vec<ResourceKey>,
    /// Requests must be written out.
    pub require_explicit_requests: bool,
    /// Plain init containers are skipped.
    pub exempt_init_containers: bool,
    /// Values for mutation.
    pub defaults: BTreeMap<ResourceKey, Quantity>,
    /// Upper bounds.
    pub maximum: BTreeMap<ResourceKey, Quantity>,
    /// Upper bounds on limit / request, by resource name.
    pub max_ratio: BTreeMap<String, Quantity>,
}

fn compile_limits(settings: &ResourceLimits, problems: &mut Problems) -> LimitRules {
    const FIELD: &str = "checks.resource-limits";
    let key_hint = "write <limits|requests>.<resource>, e.g. limits.cpu or requests.memory";
    let mut required = Vec::new();
    for (i, text) in settings.required.iter().enumerate() {
        match ResourceKey::parse(text) {
            Some(key) if required.contains(&key) => problems.add(
                format!("{FIELD}.required[{i}]"),
                format!("{text:?} is listed twice"),
            ),
            Some(key) => required.push(key),
            None => problems.add(
                format!("{FIELD}.required[{i}]"),
                format!("{text:?}: {key_hint}"),
            ),
        }
    }
    let mut quantities = |map: &BTreeMap<String, Value>, name: &str| {
        let mut out = BTreeMap::new();
        for (text, value) in map {
            let field = format!("{FIELD}.{name}.{text}");
            let Some(key) = ResourceKey::parse(text) else {
                problems.add(field, format!("{text:?} is not a quantity key: {key_hint}"));
                continue;
            };
            match Quantity::from_json(value) {
                Ok(q) if q.is_negative() => problems.add(field, format!("{q} is negative")),
                Ok(q) => {
                    out.insert(key, q);
                }
                Err(err) => problems.add(field, err.to_string()),
            }
        }
        out
    };
    let defaults = quantities(&settings.defaults, "defaults");
    let maximum = quantities(&settings.maximum, "maximum");

    for (key, default) in &defaults {
        if let Some(max) = maximum.get(key).filter(|max| default > *max) {
            problems.add(
                format!("{FIELD}.defaults.{key}"),
                format!("the default {default} is above maximum.{key} {max}; mutation would create a violation"),
            );
        }
        if key.section == Section::Requests {
            let limit_key = ResourceKey {
                section: Section::Limits,
                resource: key.resource.clone(),
            };
            if let Some(limit) = defaults.get(&limit_key).filter(|limit| default > *limit) {
                problems.add(
                    format!("{FIELD}.defaults.{key}"),
                    format!("the default request {default} is above the default limit {limit}; the API server rejects a request above its limit"),
                );
            }
        }
    }

    let mut max_ratio = BTreeMap::new();
    for (resource, value) in &settings.max_limit_request_ratio {
        let field = format!("{FIELD}.maxLimitRequestRatio.{resource}");
        if resource.is_empty() || resource.contains('.') {
            problems.add(field, "key a ratio by resource name, e.g. cpu or memory");
            continue;
        }
        match Quantity::from_json(value) {
            Ok(q) if q.nanos() < 1_000_000_000 => problems.add(
                field,
                format!("{q} is below 1; a limit is never below its request, so write a ratio of at least 1"),
            ),
            Ok(q) => {
                max_ratio.insert(resource.clone(), q);
            }
            Err(err) => problems.add(field, err.to_string()),
        }
    }

    LimitRules {
        required,
        require_explicit_requests: settings.require_explicit_requests,
        exempt_init_containers: settings.exempt_init_containers,
        defaults,
        maximum,
        max_ratio,
    }
}

/// Compiled `prometheus-annotations` options.
#[derive(Clone, Debug)]
pub struct PrometheusRules {
    /// The three annotation keys.
    pub keys: AnnotationKeys,
    /// Port names mutation looks for.
    pub port_names: Vec<String>,
    /// Fallback port for mutation.
    pub default_port: Option<u16>,
    /// Path for mutation.
    pub default_path: String,
}

fn compile_prometheus(
    settings: &PrometheusAnnotations,
    problems: &mut Problems,
) -> PrometheusRules {
    const FIELD: &str = "checks.prometheus-annotations";
    let keys = &settings.annotations;
    for (name, key) in [
        ("scrape", &keys.scrape),
        ("port", &keys.port),
        ("path", &keys.path),
    ] {
        if !is_annotation_key(key) {
            problems.add(
                format!("{FIELD}.annotations.{name}"),
                format!("{key:?} is not an annotation key such as prometheus.io/{name}"),
            );
        }
    }
    if keys.scrape == keys.port || keys.port == keys.path || keys.scrape == keys.path {
        problems.add(
            format!("{FIELD}.annotations"),
            "scrape, port and path need three different keys",
        );
    }
    if settings.default_port == Some(0) {
        problems.add(
            format!("{FIELD}.defaultPort"),
            "0 is not a port; write 1-65535 or remove it",
        );
    }
    if !settings.default_path.starts_with('/') {
        problems.add(
            format!("{FIELD}.defaultPath"),
            format!(
                "{:?} is not an HTTP path; write one starting with /, e.g. /metrics",
                settings.default_path
            ),
        );
    }
    PrometheusRules {
        keys: keys.clone(),
        port_names: settings.port_names.clone(),
        default_port: settings.default_port,
        default_path: settings.default_path.clone(),
    }
}

/// Annotation keys are qualified names: an optional DNS prefix and `/`, then a name of
/// alphanumerics, `-`, `_` and `.` (63 characters at most).
fn is_annotation_key(key: &str) -> bool {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return false;
            }
            name
        }
        None => key,
    };
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
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
    /// uid mutation sets where the pod leaves `runAsUser` unset.
    pub default_run_as_user: Option<i64>,
    /// Canonical capability names a container may add.
    pub allowed_add: Vec<String>,
    /// `resource-limits` options.
    pub limits: LimitRules,
    /// `prometheus-annotations` options.
    pub prometheus: PrometheusRules,
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
}
