//! `host-namespaces`: no `hostNetwork`, `hostPID` or `hostIPC`.

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, Flag, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Host namespaces",
    description: "Pods must not share the node's network, PID or IPC namespace (Pod Security Standards, baseline).",
    requires: "no `hostNetwork`, `hostPID`, `hostIPC`",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("hostNamespaces")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Pod(check);

fn check(run: &mut Run, _: &[Container]) {
    let spec = &run.pod.spec;
    for (field, value) in [
        ("hostNetwork", &spec.host_network),
        ("hostPID", &spec.host_pid),
        ("hostIPC", &spec.host_ipc),
    ] {
        let message = match Flag::of(value) {
            Flag::Set(true) => "is true: remove it",
            Flag::Invalid => "is not a boolean: remove it",
            _ => continue,
        };
        let path = run.pod.spec_path().key(field);
        run.pod_finding(CheckId::HostNamespaces, path, message.to_owned(), Vec::new());
    }
}
