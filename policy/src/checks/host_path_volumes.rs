//! `host-path-volumes`: no `hostPath` volumes (Pod Security Standards, baseline).

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;
use crate::view::{MAX_SHOWN, Scalar};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "No hostPath volumes",
    description: "Pods must not mount the node's filesystem through hostPath volumes (Pod Security Standards, baseline).",
    requires: "no `hostPath` volume",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::Critical,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("hostPathVolumes")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Pod(check);

fn check(run: &mut Run, _: &[Container]) {
    for (index, volume) in run.pod.spec.volumes.iter() {
        let Some(host_path) = &volume.host_path else {
            continue;
        };
        let name = volume.name.as_ref().and_then(Scalar::as_str);
        let what = match (name, host_path.path.as_ref().and_then(Scalar::as_str)) {
            (Some(name), Some(path)) if path.len() <= MAX_SHOWN => {
                format!("volume {name:?} mounts the node's {path:?}")
            }
            (Some(name), _) => format!("volume {name:?} mounts a path of the node"),
            (None, _) => "a volume mounts a path of the node".to_owned(),
        };
        let message = format!(
            "is set: {what}, which gives the pod the node's files; use a configMap, secret, emptyDir or persistentVolumeClaim volume"
        );
        let path = run.pod.spec_path().key("volumes").index(index).key("hostPath");
        run.pod_finding(CheckId::HostPathVolumes, path, message, Vec::new());
    }
}
