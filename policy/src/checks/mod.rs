//! The checks. Each is one module under `checks/` holding everything about it: its
//! [`Definition`] (what it requires, its default mode, what mutate mode sets, its options
//! as people read them), its options as settings, and its rule. The registry at the end of
//! this file lists them; the settings schema, the requirements document, the settings
//! form, the README table and the audit reports all derive from these definitions.
//!
//! Rules only read; what mutate mode would change is carried as an [`Edit`] on the
//! finding and applied by the evaluator, which then runs the rules again on the result.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::{Container, ContainerKind, Edit, FieldPath, Workload, WorkloadKind};
use crate::settings::{Mode, Policy, Problems};

/// Everything people read about a check, and how it runs.
#[derive(Debug)]
pub struct Definition {
    /// Short name for forms and tables, e.g. `Run as non-root`.
    pub title: &'static str,
    /// What it requires and why, one sentence: report help texts, SARIF rules.
    pub description: &'static str,
    /// What it requires, in the terms of the README's table.
    pub requires: &'static str,
    /// What mutate mode sets; `None` when only a person can fix a violation.
    pub mutation: Option<&'static str>,
    /// The mode of the built-in baseline.
    pub default_mode: Mode,
    /// How much a violation weighs, for reports that rank findings (SARIF, PolicyReports).
    pub severity: Severity,
    /// Whether it is skipped for Windows pods, whose Linux-only fields the API forbids.
    pub linux_only: bool,
    /// The workload kinds it judges by default (the `kinds` option sets them).
    pub kinds: &'static [WorkloadKind],
    /// The Pod Security Standards controls it follows, as Pod Security Admission names
    /// its checks; empty for podguard's own requirements.
    pub pss: &'static [PssControl],
    /// Its options besides `mode`, as the settings form and the requirements document
    /// describe them (defaults come from the options type itself).
    pub options: &'static [OptionDoc],
}

/// How much a violation weighs: what an attacker gains from it, or for checks that are
/// not about security, how much operating the workload suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Observability only.
    Info,
    /// Defence in depth, or reliability.
    Low,
    /// Widens what a compromised container can do.
    Medium,
    /// A known path to privilege on the node.
    High,
    /// The node itself, as good as handed over.
    Critical,
}

impl Severity {
    /// The name PolicyReports use (`critical`, `high`, `medium`, `low`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A Pod Security Standards control, as Pod Security Admission's check names it.
#[derive(Debug)]
pub struct PssControl {
    /// The level that requires it.
    pub level: PssLevel,
    /// PSA's check id, e.g. `hostPathVolumes`.
    pub check: &'static str,
}

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssLevel {
    /// The minimum: known privilege escalations.
    Baseline,
    /// Current pod hardening practice.
    Restricted,
}

impl PssLevel {
    /// The level as the standards name it.
    pub fn as_str(self) -> &'static str {
        match self {
            PssLevel::Baseline => "baseline",
            PssLevel::Restricted => "restricted",
        }
    }
}

/// Shorthand for a check's [`Definition::pss`] entry.
pub(crate) const fn baseline(check: &'static str) -> PssControl {
    PssControl {
        level: PssLevel::Baseline,
        check,
    }
}

/// Shorthand for a check's [`Definition::pss`] entry.
pub(crate) const fn restricted(check: &'static str) -> PssControl {
    PssControl {
        level: PssLevel::Restricted,
        check,
    }
}

/// The option every check takes besides `mode`, as people read it.
pub const KINDS_DOC: OptionDoc = OptionDoc {
    key: "kinds",
    label: "Workload kinds",
    description: "The kinds this check judges, of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob. A Pod whose controller is a Job counts as a Job, a Job whose controller is a CronJob as a CronJob.",
    input: Input::List,
    mutate_only: false,
};

/// One option of a check, as people read it.
#[derive(Debug)]
pub struct OptionDoc {
    /// The settings key, e.g. `defaultRunAsUser`.
    pub key: &'static str,
    /// The form's label.
    pub label: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The form's input type.
    pub input: Input,
    /// Whether it matters only in mutate mode (the form shows it only then).
    pub mutate_only: bool,
}

/// How the settings form asks for a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A whole number.
    Int,
    /// A yes/no switch.
    Bool,
    /// One line of text.
    String,
    /// A list of strings.
    List,
    /// A map of keys to strings.
    Map,
}

/// How a check reads a pod: one container at a time, or the pod as a whole.
#[derive(Clone, Copy)]
pub(crate) enum Rule {
    /// Runs once per container the request lets podguard judge.
    Container(fn(&mut Run, &Container)),
    /// Runs once per pod, with the containers judged.
    Pod(fn(&mut Run, &[Container])),
    /// A field both the pod and each container set, judged apart as Pod Security
    /// Admission does: the container part runs for every container judged (an ephemeral
    /// container added to a running pod too), the pod part when the pod is judged.
    PodAndContainers {
        /// The pod's own field.
        pod: fn(&mut Run, &[Container]),
        /// Each container's.
        container: fn(&mut Run, &Container),
    },
}

/// One thing a check found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The check that found it.
    pub check: CheckId,
    /// The container, for container checks.
    pub container: Option<String>,
    /// The image of that container, for image exemptions.
    pub image: Option<String>,
    /// The field to change.
    pub path: FieldPath,
    /// What is wrong and what to set, e.g. `must be true`.
    pub message: String,
    /// What mutate mode would change; empty when only a person can fix it.
    pub fix: Vec<Edit>,
    /// Not a violation, only a spelling mutate mode normalises (e.g. drop `all`).
    pub advisory: bool,
}

impl Finding {
    /// Whether mutate mode can fix it.
    pub fn is_fixable(&self) -> bool {
        !self.fix.is_empty()
    }

    /// The line people read: `check: container "app" (path) message`.
    pub fn render(&self, subject: &str) -> String {
        match &self.container {
            Some(name) => format!(
                "{}: container {name:?} ({}) {}",
                self.check, self.path, self.message
            ),
            None => format!("{}: {subject} ({}) {}", self.check, self.path, self.message),
        }
    }
}

/// Which containers and which levels of the pod a request lets podguard judge and change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'s> {
    /// The whole pod; `pod_edits` says whether pod-level fields may be mutated.
    Whole {
        /// Pod-level mutation is possible (not a Pod UPDATE).
        pod_edits: bool,
    },
    /// Only these ephemeral containers (a `pods/ephemeralcontainers` request): pod-level
    /// checks are skipped and fixes go on the containers themselves.
    AddedEphemeral(&'s HashSet<String>),
}

impl Scope<'_> {
    fn includes(&self, container: &Container) -> bool {
        match self {
            Scope::Whole { .. } => true,
            Scope::AddedEphemeral(names) => {
                container.kind == ContainerKind::Ephemeral
                    && names.contains(container.name.as_ref())
            }
        }
    }

    fn pod_checks(&self) -> bool {
        matches!(self, Scope::Whole { .. })
    }

    fn pod_edits(&self) -> bool {
        matches!(self, Scope::Whole { pod_edits: true })
    }
}

/// Runs every check that is not off over the pod and returns what they found, plus notes
/// on checks relaxed for this pod.
pub fn run(policy: &Policy, pod: &Workload, scope: Scope) -> (Vec<Finding>, Vec<String>) {
    // A pod-level default reaches every container, including image-exempt ones that
    // may need to run as root; fixes then go on the judged containers themselves.
    let mut containers = pod.containers();
    let reaches_exempt = !policy.exempt_images.is_empty()
        && containers.iter().any(|c| {
            c.image()
                .is_some_and(|image| policy.exempt_images.iter().any(|glob| glob.matches(image)))
        });
    let kind = pod.counted_kind();
    let mut run = Run {
        policy,
        pod,
        kind,
        pod_level_edits: scope.pod_edits() && !reaches_exempt,
        pod_judged: scope.pod_checks(),
        findings: Vec::new(),
        notes: Vec::new(),
    };
    containers.retain(|c| scope.includes(c));
    // Pod Security Admission skips Linux-only fields for Windows pods, and the API server
    // forbids setting them there, so requiring them would reject every Windows pod.
    let windows = pod.is_windows();
    let applies = |id: CheckId| {
        policy.mode(id) != Mode::Off
            && policy.judges(id, kind)
            && !(windows && id.definition().linux_only)
    };
    for c in &containers {
        for &id in MESSAGE_ORDER {
            if !applies(id) {
                continue;
            }
            if let Rule::Container(rule)
            | Rule::PodAndContainers {
                container: rule, ..
            } = id.rule()
            {
                rule(&mut run, c);
            }
        }
    }
    if scope.pod_checks() {
        for &id in MESSAGE_ORDER {
            if !applies(id) {
                continue;
            }
            if let Rule::Pod(rule) | Rule::PodAndContainers { pod: rule, .. } = id.rule() {
                rule(&mut run, &containers);
            }
        }
    }
    (run.findings, run.notes)
}

/// One evaluation of the rules over a pod: what they read, and what they found.
pub(crate) struct Run<'p, 'v> {
    pub(crate) policy: &'p Policy,
    pub(crate) pod: &'p Workload<'v>,
    /// The kind the `kinds` settings see (a Job's Pod counts as a Job), read once.
    pub(crate) kind: WorkloadKind,
    /// Whether fixes may go on the pod's own fields.
    pub(crate) pod_level_edits: bool,
    /// Whether the pod-level rules run (not for ephemeral containers added alone).
    pub(crate) pod_judged: bool,
    findings: Vec<Finding>,
    pub(crate) notes: Vec<String>,
}

impl Run<'_, '_> {
    pub(crate) fn container_finding(
        &mut self,
        check: CheckId,
        c: &Container,
        path: FieldPath,
        message: String,
        fix: Vec<Edit>,
    ) {
        self.findings.push(Finding {
            check,
            container: Some(c.name.as_ref().to_owned()),
            image: c.image().map(str::to_owned),
            path,
            message,
            fix,
            advisory: false,
        });
    }

    /// A spelling mutate mode normalises, which is not a violation.
    pub(crate) fn advisory(
        &mut self,
        check: CheckId,
        c: &Container,
        path: FieldPath,
        message: String,
        fix: Edit,
    ) {
        self.findings.push(Finding {
            check,
            container: Some(c.name.as_ref().to_owned()),
            image: c.image().map(str::to_owned),
            path,
            message,
            fix: vec![fix],
            advisory: true,
        });
    }

    pub(crate) fn pod_finding(
        &mut self,
        check: CheckId,
        path: FieldPath,
        message: String,
        fix: Vec<Edit>,
    ) {
        self.findings.push(Finding {
            check,
            container: None,
            image: None,
            path,
            message,
            fix,
            advisory: false,
        });
    }

    /// Sets a security field at the pod level where the request allows it, else on the
    /// container (ephemeral-container requests may not touch the rest of the pod, and a
    /// pod-level value would also reach image-exempt containers).
    pub(crate) fn security_insert(&self, c: &Container, field: &'static str, value: Value) -> Edit {
        let path = if self.pod_level_edits {
            self.pod.security_path(field)
        } else {
            c.security_path(field)
        };
        Edit::Insert { path, value }
    }
}

/// Options of a check that has none besides its mode. The mode has no serde default:
/// the layers below (the embedded requirements, the built-in baseline) always supply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeOnly {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
}

/// Defines `Options` (mode only, defaulting to the definition's mode), `Compiled` and
/// `compile` for a check whose only option is its mode.
/// (Submodules declared after this see it without an import.)
macro_rules! mode_only {
    () => {
        /// This check's options: its mode only.
        pub type Options = crate::checks::ModeOnly;

        /// Nothing to compile.
        pub type Compiled = ();

        pub(crate) fn default_options() -> Options {
            crate::checks::ModeOnly {
                mode: DEFINITION.default_mode,
                kinds: Some(DEFINITION.kinds.to_vec()),
            }
        }

        pub(crate) fn compile(_: &Options, _: &mut crate::settings::Problems) -> Compiled {}
    };
}

/// Lists the checks, in report order (the order of `CheckId::ALL`, of report tables and
/// of the settings document): each entry is the id users write, the variant, the module.
macro_rules! registry {
    ($( $id:literal => $variant:ident in $module:ident, )*) => {
        $( pub mod $module; )*

        /// Stable identifiers of the checks; they appear in every message, report and
        /// exemption.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CheckId {
            $(
                #[doc = $id]
                #[serde(rename = $id)]
                $variant,
            )*
        }

        impl CheckId {
            /// Every check, in the order reports list them.
            pub const ALL: [CheckId; [$( $id ),*].len()] = [$( CheckId::$variant ),*];

            /// The id as users write it, e.g. `run-as-non-root`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( CheckId::$variant => $id, )*
                }
            }

            /// Everything people read about it.
            pub fn definition(self) -> &'static Definition {
                match self {
                    $( CheckId::$variant => &$module::DEFINITION, )*
                }
            }

            pub(crate) fn rule(self) -> Rule {
                match self {
                    $( CheckId::$variant => $module::RULE, )*
                }
            }
        }

        /// One entry per check id; an unknown id is refused.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Checks {
            $(
                #[doc = $id]
                #[serde(rename = $id)]
                pub $module: $module::Options,
            )*
        }

        impl Default for Checks {
            fn default() -> Self {
                Checks {
                    $( $module: $module::default_options(), )*
                }
            }
        }

        impl Checks {
            /// The mode `id` runs in.
            pub fn mode(&self, id: CheckId) -> Mode {
                match id {
                    $( CheckId::$variant => self.$module.mode, )*
                }
            }

            /// The workload kinds `id` judges.
            pub fn kinds(&self, id: CheckId) -> &[WorkloadKind] {
                match id {
                    $(
                        CheckId::$variant => self
                            .$module
                            .kinds
                            .as_deref()
                            .unwrap_or($module::DEFINITION.kinds),
                    )*
                }
            }

            pub(crate) fn compile(&self, problems: &mut Problems) -> CompiledChecks {
                CompiledChecks {
                    $( $module: $module::compile(&self.$module, problems), )*
                }
            }
        }

        /// Every check's options, compiled for evaluation.
        #[derive(Clone, Debug)]
        pub struct CompiledChecks {
            $(
                #[allow(dead_code, reason = "a check with no options compiles to ()")]
                pub(crate) $module: $module::Compiled,
            )*
        }
    };
}

registry! {
    "run-as-non-root" => RunAsNonRoot in run_as_non_root,
    "drop-capabilities" => DropCapabilities in drop_capabilities,
    "resource-limits" => ResourceLimits in resource_limits,
    "prometheus-annotations" => PrometheusAnnotations in prometheus_annotations,
    "no-privilege-escalation" => NoPrivilegeEscalation in no_privilege_escalation,
    "no-privileged" => NoPrivileged in no_privileged,
    "read-only-root-filesystem" => ReadOnlyRootFilesystem in read_only_root_filesystem,
    "seccomp-profile" => SeccompProfile in seccomp_profile,
    "no-unconfined-seccomp" => NoUnconfinedSeccomp in no_unconfined_seccomp,
    "host-namespaces" => HostNamespaces in host_namespaces,
    "image-tag-pinned" => ImageTagPinned in image_tag_pinned,
    "health-probes" => HealthProbes in health_probes,
    "host-path-volumes" => HostPathVolumes in host_path_volumes,
    "host-ports" => HostPorts in host_ports,
    "proc-mount" => ProcMount in proc_mount,
    "windows-host-process" => WindowsHostProcess in windows_host_process,
    "selinux-options" => SelinuxOptions in selinux_options,
    "apparmor-profile" => ApparmorProfile in apparmor_profile,
    "sysctls" => Sysctls in sysctls,
    "volume-types" => VolumeTypes in volume_types,
}

/// The order the rules look at a container (then at the pod) in, which is the order of
/// their lines in a message: the most basic requirements first.
const MESSAGE_ORDER: &[CheckId] = &[
    CheckId::RunAsNonRoot,
    CheckId::NoPrivileged,
    CheckId::WindowsHostProcess,
    CheckId::ProcMount,
    CheckId::SelinuxOptions,
    CheckId::ApparmorProfile,
    CheckId::DropCapabilities,
    CheckId::NoPrivilegeEscalation,
    CheckId::ReadOnlyRootFilesystem,
    CheckId::NoUnconfinedSeccomp,
    CheckId::SeccompProfile,
    CheckId::ImageTagPinned,
    CheckId::ResourceLimits,
    CheckId::HealthProbes,
    CheckId::PrometheusAnnotations,
    CheckId::HostNamespaces,
    CheckId::HostPathVolumes,
    CheckId::HostPorts,
    CheckId::Sysctls,
    CheckId::VolumeTypes,
];

impl CheckId {
    /// Parses an id as written in settings or an exemption annotation.
    pub fn parse(text: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|id| id.as_str() == text)
    }

    /// One sentence on what the check requires and why, for report help texts.
    pub fn description(self) -> &'static str {
        self.definition().description
    }

    /// Whether mutate mode can fix any violation of this check.
    pub fn can_mutate(self) -> bool {
        self.definition().mutation.is_some()
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_evaluated_and_described() {
        for id in CheckId::ALL {
            assert!(
                MESSAGE_ORDER.contains(&id),
                "{id} is not in MESSAGE_ORDER, so it would never run"
            );
            let definition = id.definition();
            assert!(
                definition.description.ends_with('.'),
                "{id}: {}",
                definition.description
            );
            assert!(
                !definition.requires.is_empty() && !definition.title.is_empty(),
                "{id}"
            );
            assert_eq!(CheckId::parse(id.as_str()), Some(id));
        }
        assert_eq!(MESSAGE_ORDER.len(), CheckId::ALL.len(), "each check once");
    }
}
