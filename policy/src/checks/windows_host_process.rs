//! `windows-host-process`: no Windows HostProcess containers (Pod Security Standards,
//! baseline).

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, Flag, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No Windows HostProcess",
    description: "Windows pods and containers must not run as HostProcess, with the node's full access (Pod Security Standards, baseline).",
    requires: "no `windowsOptions.hostProcess: true` on the pod or a container",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::Critical,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("windowsHostProcess")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

// A container runs as HostProcess when it says so, or says nothing and the pod does: the
// pod's value is inherited. Judged per container, so an ephemeral container added to a
// running pod is judged too.
fn check(run: &mut Run, c: &Container) {
    let path = match Flag::of(&c.security().windows_options.host_process) {
        Flag::Set(true) => c.security_path("windowsOptions").key("hostProcess"),
        Flag::Unset
            if Flag::of(&run.pod.spec.security_context.windows_options.host_process)
                == Flag::Set(true) =>
        {
            run.pod.security_path("windowsOptions").key("hostProcess")
        }
        _ => return,
    };
    run.container_finding(
        CheckId::WindowsHostProcess,
        c,
        path,
        "is true: remove it (a HostProcess container runs on the node itself, with its full access)"
            .to_owned(),
        Vec::new(),
    );
}
