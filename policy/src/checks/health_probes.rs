//! `health-probes`: liveness and readiness probes on every regular container.

use serde_json::Value;

use super::{CheckId, Definition, Rule, Run};
use crate::object::{Container, ContainerKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Health probes",
    description: "Containers should declare liveness and readiness probes.",
    requires: "liveness and readiness probes on every regular container",
    mutation: None,
    default_mode: Mode::Off,
    linux_only: false,
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    if c.kind != ContainerKind::Regular {
        return;
    }
    for (probe, why) in [
        (
            "livenessProbe",
            "so the kubelet restarts the container when it hangs",
        ),
        (
            "readinessProbe",
            "so traffic reaches the container only when it is ready",
        ),
    ] {
        if !c.fields.get(probe).is_some_and(Value::is_object) {
            let message = format!("is not set: declare one {why}");
            run.container_finding(
                CheckId::HealthProbes,
                c,
                c.path.key(probe),
                message,
                Vec::new(),
            );
        }
    }
}
