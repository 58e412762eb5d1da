//! Why a module could not be loaded, and why a call produced no answer. Each message says
//! what to do; the source, where there is one, is kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// wasmtime could not set up its engine.
    #[error("cannot start the Wasm engine")]
    Engine(#[source] wasmtime::Error),
    /// The thread that advances the engine's epoch (deadlines) could not start.
    #[error("cannot start the Wasm deadline thread")]
    EpochThread(#[source] std::io::Error),
    /// The bytes are not a valid Wasm module.
    #[error("policy {name}: not a loadable Wasm module; pass a module built for wasm32-wasip1")]
    Compile {
        /// The policy's name.
        name: String,
        /// What wasmtime said.
        #[source]
        source: wasmtime::Error,
    },
    /// The module does not speak waPC.
    #[error(
        "policy {name}: the module does not export {missing}, so it is not a waPC (Kubewarden) policy"
    )]
    NotWaPC {
        /// The policy's name.
        name: String,
        /// The missing export.
        missing: &'static str,
    },
    /// The module imports something this host does not provide.
    #[error("policy {name}: cannot instantiate the module")]
    Link {
        /// The policy's name.
        name: String,
        /// What is missing.
        #[source]
        source: wasmtime::Error,
    },
    /// The policy's own `validate_settings` refused the settings.
    #[error("policy {name} refused its settings: {message}")]
    SettingsRefused {
        /// The policy's name.
        name: String,
        /// The policy's message.
        message: String,
    },
    /// Calling the module during loading failed.
    #[error("policy {name}: {operation} failed while loading")]
    Call {
        /// The policy's name.
        name: String,
        /// The waPC operation.
        operation: &'static str,
        /// What went wrong.
        #[source]
        source: CallError,
    },
    /// The precompiled-module cache could not be used.
    #[error("cannot use the module cache at {}; fix its permissions or drop --cache-dir", path.display())]
    Cache {
        /// The cache file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why one call did not produce an answer. The request is then answered by the
/// configured failure mode; the instance that failed is discarded. Cheap to clone: the
/// sources are shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("the policy ran longer than its {0:?} deadline and was stopped")]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("the policy tried to use more than {} MiB of memory and was stopped", .0 / (1024 * 1024))]
    MemoryCap(usize),
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`).
    #[error("the policy crashed")]
    Trap(#[source] Arc<wasmtime::Error>),
    /// The guest reported an error through waPC; the text is the guest's.
    #[error("the policy returned an error: {0}")]
    Guest(String),
    /// The guest broke the waPC protocol.
    #[error("the policy broke the waPC protocol: {0}")]
    Protocol(&'static str),
    /// The guest answered with something that is not what the operation returns.
    #[error(
        "the policy broke the waPC protocol: {operation} answered something that is not {expected}"
    )]
    Answer {
        /// The waPC operation.
        operation: String,
        /// What it should have returned.
        expected: &'static str,
        /// Why it does not parse.
        #[source]
        source: Arc<serde_json::Error>,
    },
}

/// `err` and its sources, joined as `anyhow`'s `{:#}` does: for messages that go to a
/// person in one line (an admission answer, a log field).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}
