//! `read-only-root-filesystem`: `readOnlyRootFilesystem: true` on every container.

use serde_json::json;

use super::{CheckId, Definition, Severity, Rule, Run};
use crate::object::{Container, Edit, Flag, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Read-only root filesystem",
    description: "Containers should mount their root filesystem read-only.",
    requires: "`readOnlyRootFilesystem: true`",
    mutation: Some("sets it"),
    default_mode: Mode::Warn,
    severity: Severity::Low,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let path = || c.security_path("readOnlyRootFilesystem");
    let (message, fix) = match Flag::of(&c.security().read_only_root_filesystem) {
        Flag::Set(true) => return,
        Flag::Set(false) => (
            "is false: set it to true and mount writable paths as volumes".to_owned(),
            Vec::new(),
        ),
        Flag::Invalid => ("is not a boolean: set it to true".to_owned(), Vec::new()),
        Flag::Unset => (
            "must be true".to_owned(),
            vec![Edit::Insert {
                path: path(),
                value: json!(true),
            }],
        ),
    };
    run.container_finding(CheckId::ReadOnlyRootFilesystem, c, path(), message, fix);
}
