//! podguard's server side: the Wasm host, AdmissionReview handling and the `podguard`
//! commands built on them. No rule is evaluated here; every verdict comes from a policy
//! module run by [`host`].

pub mod admission;
pub mod annotate;
pub mod artifacthub;
pub mod audit;
pub mod cli;
pub mod eval;
pub mod gen_certs;
pub mod host;
pub mod oci;
pub mod policy_file;
pub mod server;
