//! What the `podguard` binary's tests also reach: publishing (Kubewarden metadata, OCI
//! artifacts, the ArtifactHub listing) and throwaway certificates. The rest of the binary
//! (the webhook server, the commands) is private to it; the host and the audit are the
//! `podguard-host` and `podguard-audit` libraries.

pub mod gen_certs;
pub mod policy_ref;
pub mod publish;
