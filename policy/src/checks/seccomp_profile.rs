//! `seccomp-profile`: an effective seccomp profile of `RuntimeDefault` or `Localhost`.

use serde_json::json;

use super::{CheckId, Definition, Severity, restricted, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::view::{Scalar, SecurityView, set};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Seccomp profile",
    description: "Containers should run under the RuntimeDefault or a Localhost seccomp profile.",
    requires: "effective seccomp `RuntimeDefault` or `Localhost`",
    mutation: Some("pod `seccompProfile: RuntimeDefault`"),
    default_mode: Mode::Warn,
    severity: Severity::Medium,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[restricted("seccompProfile_restricted")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn profile_type<'s, 'a>(sc: &'s SecurityView<'a>) -> Option<&'s Scalar<'a>> {
    set(&sc.seccomp_profile.profile_type)
}

/// Whether `no-unconfined-seccomp` reports a forbidden profile found on the container
/// (`in_container`) or the pod, in a mode at least as strict as this check's.
fn reported_by_baseline(run: &Run, in_container: bool) -> bool {
    let policy = run.policy;
    let baseline = policy.mode(CheckId::NoUnconfinedSeccomp);
    baseline != Mode::Off
        && (baseline.rejects() || !policy.mode(CheckId::SeccompProfile).rejects())
        && policy.judges(CheckId::NoUnconfinedSeccomp, run.kind)
        && (in_container || run.pod_judged)
}

fn check(run: &mut Run, c: &Container) {
    let (found, in_container) = match profile_type(c.security()) {
        Some(t) => (Some(t), true),
        None => (profile_type(&run.pod.spec.security_context), false),
    };
    match found {
        Some(t) if matches!(t.as_str(), Some("RuntimeDefault" | "Localhost")) => {}
        // The same value once, under the check that judges it at least as strictly.
        Some(_) if reported_by_baseline(run, in_container) => {}
        Some(t) => {
            let shown = match t.as_str() {
                Some(text) => text.to_owned(),
                None => t.to_string(),
            };
            let path = match in_container {
                true => c.security_path("seccompProfile"),
                false => run.pod.security_path("seccompProfile"),
            };
            run.container_finding(
                CheckId::SeccompProfile,
                c,
                path.key("type"),
                format!("is {shown}: set RuntimeDefault or Localhost"),
                Vec::new(),
            );
        }
        None => {
            let fix = vec![run.security_insert(
                c,
                "seccompProfile",
                json!({"type": "RuntimeDefault"}),
            )];
            run.container_finding(
                CheckId::SeccompProfile,
                c,
                c.security_path("seccompProfile").key("type"),
                "must be RuntimeDefault or Localhost".to_owned(),
                fix,
            );
        }
    }
}
