//! `no-privileged`: no container runs privileged.

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, Flag, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No privileged containers",
    description: "Containers must not run privileged: it grants every capability and host device access.",
    requires: "no `privileged: true`",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::Critical,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("privileged")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let message = match Flag::of(&c.security().privileged) {
        Flag::Set(true) => {
            "is true: remove it (privileged grants every capability and the host's devices)"
        }
        Flag::Invalid => "is not a boolean: remove it or set false",
        _ => return,
    };
    run.container_finding(
        CheckId::NoPrivileged,
        c,
        c.security_path("privileged"),
        message.to_owned(),
        Vec::new(),
    );
}
