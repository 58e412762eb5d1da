//! `seccomp-profile`: an effective seccomp profile of `RuntimeDefault` or `Localhost`.

use serde_json::{Map, Value, json};

use super::{CheckId, Definition, Rule, Run};
use crate::object::Container;
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Seccomp profile",
    description: "Containers should run under the RuntimeDefault or a Localhost seccomp profile.",
    requires: "effective seccomp `RuntimeDefault` or `Localhost`",
    mutation: Some("pod `seccompProfile: RuntimeDefault`"),
    default_mode: Mode::Warn,
    linux_only: true,
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn profile_type(sc: Option<&Map<String, Value>>) -> Option<&Value> {
    sc.and_then(|sc| sc.get("seccompProfile"))
        .and_then(|p| p.get("type"))
        .filter(|t| !t.is_null())
}

fn check(run: &mut Run, c: &Container) {
    let (found, path) = match profile_type(c.security_context()) {
        Some(t) => (Some(t), c.security_path("seccompProfile").key("type")),
        None => (
            profile_type(run.pod.security_context()),
            run.pod.security_path("seccompProfile").key("type"),
        ),
    };
    match found.map(|t| t.as_str()) {
        Some(Some("RuntimeDefault" | "Localhost")) => {}
        Some(other) => {
            let shown = other.map_or_else(
                || found.map(Value::to_string).unwrap_or_default(),
                str::to_owned,
            );
            run.container_finding(
                CheckId::SeccompProfile,
                c,
                path,
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
