//! `no-privilege-escalation`: `allowPrivilegeEscalation: false` on every container.

use serde_json::json;

use super::{CheckId, Definition, Severity, restricted, Rule, Run};
use crate::object::{Container, Edit, Flag, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No privilege escalation",
    description: "Containers must set allowPrivilegeEscalation: false so setuid binaries cannot gain privileges.",
    requires: "`allowPrivilegeEscalation: false`",
    mutation: Some("sets it"),
    default_mode: Mode::Enforce,
    severity: Severity::Medium,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[restricted("allowPrivilegeEscalation")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let sc = c.security();
    let path = || c.security_path("allowPrivilegeEscalation");
    let (message, fix) = match Flag::of(&sc.allow_privilege_escalation) {
        Flag::Set(false) => return,
        Flag::Set(true) => ("is true: set it to false", Vec::new()),
        Flag::Invalid => ("is not a boolean: set it to false", Vec::new()),
        Flag::Unset => {
            // The API server refuses allowPrivilegeEscalation: false together with
            // privileged: true or an added "CAP_SYS_ADMIN" (compared exactly), so
            // setting it there would turn a fixable request into a failed one.
            let adds_sys_admin = sc
                .capabilities
                .add
                .0
                .iter()
                .any(|a| a.as_str() == Some("CAP_SYS_ADMIN"));
            if Flag::of(&sc.privileged).is_true() {
                (
                    "must be false, which the API allows only without privileged: true",
                    Vec::new(),
                )
            } else if adds_sys_admin {
                (
                    "must be false, which the API allows only without adding CAP_SYS_ADMIN",
                    Vec::new(),
                )
            } else {
                let fix = Edit::Insert {
                    path: path(),
                    value: json!(false),
                };
                ("must be false", vec![fix])
            }
        }
    };
    run.container_finding(
        CheckId::NoPrivilegeEscalation,
        c,
        path(),
        message.to_owned(),
        fix,
    );
}
