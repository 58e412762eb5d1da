//! `volume-types`: only the volume types the restricted Pod Security Standard allows.

use super::{CheckId, Definition, Severity, restricted, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;
use crate::view::{MAX_SHOWN, Scalar, VolumeView};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Volume types",
    description: "Volumes only of the types the restricted Pod Security Standard allows: configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret.",
    requires: "every volume a `configMap`, `csi`, `downwardAPI`, `emptyDir`, `ephemeral`, `image`, `persistentVolumeClaim`, `projected` or `secret`",
    mutation: None,
    default_mode: Mode::Warn,
    severity: Severity::Low,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[restricted("restrictedVolumes")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Pod(check);

fn allowed(volume: &VolumeView) -> bool {
    [
        volume.config_map,
        volume.csi,
        volume.downward_api,
        volume.empty_dir,
        volume.ephemeral,
        volume.image,
        volume.persistent_volume_claim,
        volume.projected,
        volume.secret,
    ]
    .iter()
    .any(|declared| declared.0)
}

fn check(run: &mut Run, _: &[Container]) {
    let bad: Vec<(usize, String)> = run
        .pod
        .spec
        .volumes
        .iter()
        .filter(|(_, volume)| !allowed(volume))
        .map(|(index, volume)| {
            let name = match volume.name.as_ref().and_then(Scalar::as_str) {
                Some(name) if name.len() <= MAX_SHOWN => format!("volume {name:?}"),
                _ => "the volume".to_owned(),
            };
            (index, name)
        })
        .collect();
    for (index, name) in bad {
        let path = run.pod.spec_path().key("volumes").index(index);
        run.pod_finding(
            CheckId::VolumeTypes,
            path,
            format!(
                "is of a type the restricted level does not allow: make {name} a configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volume (a PersistentVolumeClaim can stand for NFS or cloud disks)"
            ),
            Vec::new(),
        );
    }
}
