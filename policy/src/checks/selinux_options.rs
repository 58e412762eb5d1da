//! `selinux-options`: SELinux options only of the container types, with no user or role
//! (Pod Security Standards, baseline).

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, FieldPath, WorkloadKind};
use crate::settings::Mode;
use crate::view::{SeLinuxView, set};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "SELinux options",
    description: "SELinux options may set only a container type (container_t, container_init_t, container_kvm_t, container_engine_t), never a user or role (Pod Security Standards, baseline).",
    requires: "`seLinuxOptions.type` unset or `container_t`, `container_init_t`, `container_kvm_t`, `container_engine_t`; no `user` or `role` (as PSA since 1.31)",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("seLinuxOptions")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::PodAndContainers {
    pod: check_pod,
    container: check_container,
};

/// The types PSA allows since 1.31 (`container_engine_t` joined then); empty means unset.
const ALLOWED_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn check_pod(run: &mut Run, _: &[Container]) {
    let Some(options) = &run.pod.spec.security_context.se_linux_options else {
        return;
    };
    for (field, message) in problems(options) {
        let path = run.pod.security_path("seLinuxOptions").key(field);
        run.pod_finding(CheckId::SelinuxOptions, path, message, Vec::new());
    }
}

fn check_container(run: &mut Run, c: &Container) {
    let Some(options) = &c.security().se_linux_options else {
        return;
    };
    for (field, message) in problems(options) {
        let path: FieldPath = c.security_path("seLinuxOptions").key(field);
        run.container_finding(CheckId::SelinuxOptions, c, path, message, Vec::new());
    }
}

fn problems(options: &SeLinuxView) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if let Some(value) = set(&options.selinux_type)
        && !value.as_str().is_some_and(|t| ALLOWED_TYPES.contains(&t))
    {
        found.push((
            "type",
            format!(
                "is {}: remove it or use container_t, container_init_t, container_kvm_t or container_engine_t (another type can lift the container's confinement)",
                value.shown_or("not a container type")
            ),
        ));
    }
    for (field, value) in [("user", &options.user), ("role", &options.role)] {
        if set(value).is_some_and(|v| v.as_str() != Some("")) {
            found.push((
                field,
                "is set: remove it (a container's SELinux user and role come from the runtime)"
                    .to_owned(),
            ));
        }
    }
    found
}
