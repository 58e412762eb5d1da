//! Publishing a policy the way Kubewarden's tools do: metadata embedded in the module
//! (`annotate`, `inspect`), the module pushed to and pulled from an OCI registry (`oci`),
//! and the ArtifactHub listing (`artifacthub`).

pub mod annotate;
pub mod artifacthub;
pub mod inspect;
pub mod oci;
