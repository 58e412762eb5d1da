//! podguard's Wasm host: runs waPC policy modules (Kubewarden's protocol) under wasmtime,
//! and answers AdmissionReviews with them. It evaluates no rule itself: every verdict
//! comes from the module.
//!
//! One [`Runtime`] (one wasmtime `Engine` and its epoch ticker) serves every module. A
//! module is compiled once (or loaded from the on-disk cache of precompiled artifacts) and
//! instantiated through an `InstancePre`; instances are pooled and reused across calls but
//! never shared by two calls at once. Every call runs under an epoch deadline and a memory
//! cap; an instance that trapped, timed out or hit the cap is discarded, never reused.
//!
//! ```no_run
//! use podguard_host::admission::{self, Endpoint, FailureMode};
//! use podguard_host::policy_file::{ModuleSource, load_policy, read_settings};
//!
//! let runtime = podguard_host::Runtime::builder().build()?;
//! let module = ModuleSource::File("podguard_policy.wasm".into());
//! let policy = load_policy(&runtime, "podguard", &module, read_settings(None)?)?;
//! let review = std::fs::read("review.json")?;
//! let answer = admission::review(&policy.module, &policy.settings, &review, Endpoint::Mutate, FailureMode::Deny)?;
//! println!("{}", answer.review);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod admission;
mod error;
mod module;
pub mod policy_file;
mod runtime;
mod wapc;

pub use error::{CallError, HostError, chain};
pub use module::{PolicyModule, Unfinished};
pub use runtime::{HostConfig, Runtime, RuntimeBuilder};
