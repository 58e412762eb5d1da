//! `no-unconfined-seccomp`: a seccomp profile, where one is set, is `RuntimeDefault` or
//! `Localhost` (Pod Security Standards, baseline).

use super::{CheckId, Definition, Severity, Rule, Run, baseline};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;
use crate::view::{Scalar, SecurityView, set};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No unconfined seccomp",
    description: "The pod and its containers must not set a seccomp profile other than RuntimeDefault or Localhost, such as Unconfined, which lifts the syscall filter (Pod Security Standards, baseline).",
    requires: "`seccompProfile.type`, where set on the pod or a container, `RuntimeDefault` or `Localhost`",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("seccompProfile_baseline")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::PodAndContainers {
    pod: check_pod,
    container: check_container,
};

/// The profile type a security context sets when it is one the baseline forbids.
pub(crate) fn forbidden<'s, 'a>(sc: &'s SecurityView<'a>) -> Option<&'s Scalar<'a>> {
    set(&sc.seccomp_profile.profile_type)
        .filter(|t| !matches!(t.as_str(), Some("RuntimeDefault" | "Localhost")))
}

fn message(profile: &Scalar) -> String {
    format!(
        "is {}: set RuntimeDefault or Localhost, or remove it (any other profile lifts the syscall filter)",
        profile.shown_or("not a seccomp profile type")
    )
}

// PSA judges the pod's own profile even when every container sets its own: the pod's
// reaches any container added later.
fn check_pod(run: &mut Run, _: &[Container]) {
    if let Some(profile) = forbidden(&run.pod.spec.security_context) {
        let message = message(profile);
        let path = run.pod.security_path("seccompProfile").key("type");
        run.pod_finding(CheckId::NoUnconfinedSeccomp, path, message, Vec::new());
    }
}

fn check_container(run: &mut Run, c: &Container) {
    if let Some(profile) = forbidden(c.security()) {
        let message = message(profile);
        let path = c.security_path("seccompProfile").key("type");
        run.container_finding(CheckId::NoUnconfinedSeccomp, c, path, message, Vec::new());
    }
}
