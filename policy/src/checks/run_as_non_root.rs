//! `run-as-non-root`: every container runs with an effective `runAsNonRoot: true`, never
//! as uid 0.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{CheckId, Definition, Severity, restricted, Input, OptionDoc, Rule, Run};
use crate::object::{Container, Edit, WorkloadKind};
use crate::settings::{Mode, Problems};
use crate::view::{Scalar, set};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Run as non-root",
    description: "Containers must run with runAsNonRoot: true so the kubelet refuses to start them as root.",
    requires: "every container (init and ephemeral too) runs with an effective `runAsNonRoot: true`, never with `runAsUser: 0`",
    mutation: Some("pod `securityContext.runAsNonRoot: true` (and `runAsUser` if `defaultRunAsUser` is set)"),
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[restricted("runAsNonRoot"), restricted("runAsUser")],
    options: &[OptionDoc {
        key: "defaultRunAsUser",
        label: "Default runAsUser",
        description: "With mutate, also set the pod securityContext.runAsUser to this uid where the pod leaves it unset. Leave empty to set only runAsNonRoot.",
        input: Input::Int,
        mutate_only: true,
    }],
};

/// Options of `run-as-non-root`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// Mutation also sets the pod's `runAsUser` to this uid where the pod leaves it unset.
    pub default_run_as_user: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        default_options()
    }
}

pub(crate) fn default_options() -> Options {
    Options {
        mode: DEFINITION.default_mode,
kinds: Some(DEFINITION.kinds.to_vec()),
        default_run_as_user: None,
    }
}

/// The compiled options.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// uid mutation sets where the pod leaves `runAsUser` unset.
    pub default_run_as_user: Option<i64>,
}

pub(crate) fn compile(options: &Options, problems: &mut Problems) -> Compiled {
    if options.default_run_as_user.is_some_and(|uid| uid <= 0) {
        problems.add(
            "checks.run-as-non-root.defaultRunAsUser",
            "must be a uid above 0 (uid 0 is root); remove it to leave runAsUser to the image",
        );
    }
    Compiled {
        default_run_as_user: options.default_run_as_user,
    }
}

pub(crate) const RULE: Rule = Rule::Container(check);

/// Which securityContext an effective value came from.
#[derive(Clone, Copy)]
enum Level {
    Container(&'static str),
    Pod(&'static str),
}

fn effective<'s>(
    field: &'static str,
    in_container: &'s Option<Scalar<'s>>,
    in_pod: &'s Option<Scalar<'s>>,
) -> (Option<&'s Scalar<'s>>, Level) {
    match set(in_container) {
        Some(v) => (Some(v), Level::Container(field)),
        None => (set(in_pod), Level::Pod(field)),
    }
}

fn check(run: &mut Run, c: &Container) {
    let container_sc = c.security();
    let pod_sc = &run.pod.spec.security_context;
    // The container's value wins; the pod's applies only where the container is silent.
    let (user, user_level) = effective("runAsUser", &container_sc.run_as_user, &pod_sc.run_as_user);
    let (non_root, non_root_level) = effective(
        "runAsNonRoot",
        &container_sc.run_as_non_root,
        &pod_sc.run_as_non_root,
    );
    let path_of = |level: Level| match level {
        Level::Container(field) => c.security_path(field),
        Level::Pod(field) => run.pod.security_path(field),
    };
    let uid = user.and_then(Scalar::as_i64);

    // The kubelet refuses this pair whatever the pod's user namespace says, so it is
    // never relaxed.
    if uid == Some(0) && non_root == Some(&Scalar::Bool(true)) {
        let message = "is 0 while runAsNonRoot is true, so the kubelet will refuse to start it: set a non-zero uid";
        run.container_finding(
            CheckId::RunAsNonRoot,
            c,
            path_of(user_level),
            message.to_owned(),
            Vec::new(),
        );
        return;
    }
    let mut found = Vec::new();
    if uid == Some(0) {
        found.push((
            path_of(user_level),
            "is 0 (root): set a non-zero uid".to_owned(),
            Vec::new(),
        ));
    }
    match non_root {
        Some(Scalar::Bool(true)) => {}
        Some(Scalar::Bool(false)) => found.push((
            path_of(non_root_level),
            "is false: set it to true".to_owned(),
            Vec::new(),
        )),
        Some(other) => found.push((
            path_of(non_root_level),
            format!("must be true, found {other}"),
            Vec::new(),
        )),
        None => {
            let mut fix = vec![run.security_insert(c, "runAsNonRoot", json!(true))];
            // Windows pods cannot set runAsUser at all.
            if let (Some(default_uid), None, true, false) = (
                run.policy.checks.run_as_non_root.default_run_as_user,
                user,
                run.pod_level_edits,
                run.pod.is_windows(),
            ) {
                fix.push(Edit::Insert {
                    path: run.pod.security_path("runAsUser"),
                    value: json!(default_uid),
                });
            }
            // runAsNonRoot alone makes the kubelet check the image's user at start: an
            // image that runs as root, or names its user instead of a uid, then fails
            // with CreateContainerConfigError. Say so when mutate mode adds it alone.
            if fix.len() == 1
                && user.is_none()
                && !run.pod.is_windows()
                && !run.pod.in_user_namespace()
                && run.policy.mode(CheckId::RunAsNonRoot) == Mode::Mutate
            {
                run.notes.push(format!(
                    "run-as-non-root: mutate mode sets runAsNonRoot: true for container {:?} with no runAsUser: if its image runs as root or names its user instead of a uid, the kubelet will not start it; set runAsUser, or checks.run-as-non-root.defaultRunAsUser",
                    c.name
                ));
            }
            let message = match uid {
                Some(uid) if uid > 0 => {
                    format!(
                        "is unset while runAsUser is {uid}: set it to true so the kubelet enforces it"
                    )
                }
                _ => "must be true".to_owned(),
            };
            found.push((c.security_path("runAsNonRoot"), message, fix));
        }
    }
    if found.is_empty() {
        return;
    }
    if run.pod.in_user_namespace() {
        // Pod Security Admission relaxes the non-root checks under user namespaces:
        // uid 0 in the pod maps to an unprivileged uid on the node.
        run.notes.push(format!(
            "run-as-non-root: container {:?} may run as root: spec.hostUsers is false, so it is not root on the node",
            c.name
        ));
        return;
    }
    for (path, message, fix) in found {
        run.container_finding(CheckId::RunAsNonRoot, c, path, message, fix);
    }
}
