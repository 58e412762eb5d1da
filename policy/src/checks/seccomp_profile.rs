//! `seccomp-profile`: an effective seccomp profile of `RuntimeDefault` or `Localhost`.

use serde_json::json;

use super::{CheckId, Definition, Rule, Run};
use crate::object::Container;
use crate::view::{Scalar, SecurityView, set};
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

fn profile_type<'s, 'a>(sc: &'s SecurityView<'a>) -> Option<&'s Scalar<'a>> {
    set(&sc.seccomp_profile.profile_type)
}

fn check(run: &mut Run, c: &Container) {
    let (found, in_container) = match profile_type(c.security()) {
        Some(t) => (Some(t), true),
        None => (profile_type(&run.pod.spec.security_context), false),
    };
    match found {
        Some(t) if matches!(t.as_str(), Some("RuntimeDefault" | "Localhost")) => {}
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
