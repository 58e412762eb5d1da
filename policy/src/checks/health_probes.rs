//! `health-probes`: liveness and readiness probes on every regular container.

use super::{CheckId, Definition, Severity, Rule, Run};
use crate::object::{Container, ContainerKind, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Health probes",
    description: "Containers should declare liveness and readiness probes.",
    requires: "liveness and readiness probes on every regular container",
    mutation: None,
    default_mode: Mode::Off,
    severity: Severity::Info,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    if c.kind != ContainerKind::Regular {
        return;
    }
    for (probe, declared, why) in [
        (
            "livenessProbe",
            c.view.liveness_probe,
            "so the kubelet restarts the container when it hangs",
        ),
        (
            "readinessProbe",
            c.view.readiness_probe,
            "so traffic reaches the container only when it is ready",
        ),
    ] {
        if !declared.0 {
            let message = format!("is not set: declare one {why}");
            run.container_finding(
                CheckId::HealthProbes,
                c,
                c.path().key(probe),
                message,
                Vec::new(),
            );
        }
    }
}
