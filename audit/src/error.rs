//! Why an audit could not run, or could not finish. An input that cannot be read, or a
//! workload the module cannot judge, is not an error of the audit: it is reported with the
//! rest (and makes the exit code 2); these are what stops the audit itself.

use podguard_host::CallError;
use podguard_host::policy_file::PolicyFileError;

/// Why `podguard audit` stopped. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The options ask for something audit cannot do.
    #[error("{0}")]
    Usage(&'static str),
    /// The module or its settings could not be loaded.
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    /// The module does not answer the operations audit asks podguard modules.
    #[error(
        "the policy module does not answer {operation} as a podguard module does; pass a podguard policy module (--policy) built from this version"
    )]
    NotPodguard {
        /// The waPC operation.
        operation: &'static str,
        /// What went wrong.
        #[source]
        source: ModuleAnswerError,
    },
    /// This build has no cluster client (the `cluster` feature is off).
    #[error("this build of podguard audit has no cluster support; audit files instead")]
    NoClusterSupport,
    /// The live cluster could not be read or written.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The report could not be written.
    #[error("cannot write the report")]
    Report(#[source] std::io::Error),
    /// A report file could not be created or written.
    #[error("cannot write the report file {}: check the directory exists and is writable", path.display())]
    ReportFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How a module failed to answer one of podguard's own operations.
#[derive(Debug, thiserror::Error)]
pub enum ModuleAnswerError {
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The answer is not what the operation returns.
    #[error("the answer does not parse")]
    Answer(#[from] serde_json::Error),
}
