//! `host-ports`: containers bind no port of the node, but those the settings allow (Pod
//! Security Standards, baseline).

use serde::{Deserialize, Serialize};

use super::{CheckId, Definition, Severity, baseline, Input, OptionDoc, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::{Mode, Problems};
use crate::view::set;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No host ports",
    description: "Containers must not bind ports of the node (hostPort), except those the settings allow (Pod Security Standards, baseline).",
    requires: "no `hostPort` but those in `allowedHostPorts` (PSA allows none)",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::Medium,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("hostPorts")],
    options: &[OptionDoc {
        key: "allowedHostPorts",
        label: "Allowed host ports",
        description: "Host ports containers may bind, e.g. 9100 for a node exporter DaemonSet. Pod Security Admission allows none.",
        input: Input::List,
        mutate_only: false,
    }],
};

/// Options of `host-ports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// Host ports containers may bind.
    pub allowed_host_ports: Vec<u16>,
}

impl Default for Options {
    fn default() -> Self {
        default_options()
    }
}

pub(crate) fn default_options() -> Options {
    Options {
        mode: DEFINITION.default_mode,
kinds: Some(DEFINITION.kinds.to_vec()),
        allowed_host_ports: Vec::new(),
    }
}

/// The compiled options: the allowed ports.
pub type Compiled = Vec<u16>;

pub(crate) fn compile(settings: &Options, problems: &mut Problems) -> Compiled {
    if settings.allowed_host_ports.contains(&0) {
        problems.add(
            "checks.host-ports.allowedHostPorts",
            "0 is not a port (it means no host port); write 1-65535",
        );
    }
    settings.allowed_host_ports.clone()
}

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let allowed = &run.policy.checks.host_ports;
    for (index, port) in c.view.ports.iter() {
        let Some(host_port) = set(&port.host_port) else {
            continue;
        };
        // PSA forbids any hostPort but 0, which means none.
        let message = match host_port.as_i64() {
            Some(0) => continue,
            Some(number) if u16::try_from(number).is_ok_and(|n| allowed.contains(&n)) => continue,
            Some(number) => format!(
                "is {number}: containers must not bind a port of the node; reach the container through a Service, or list the port in checks.host-ports.allowedHostPorts"
            ),
            None => "is not a port number: remove it".to_owned(),
        };
        let path = c.path().key("ports").index(index).key("hostPort");
        run.container_finding(CheckId::HostPorts, c, path, message, Vec::new());
    }
}
