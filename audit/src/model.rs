//! What flows through an audit: units of input, and what the policy module concluded
//! about each object in them.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

pub use podguard_policy::Disposition;
use podguard_policy::{CheckId, Mode, WorkloadKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where objects come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InputName {
    /// A file, as the user named it (or as found under a directory they named).
    File(PathBuf),
    /// Standard input.
    Stdin,
    /// A live cluster, named by its API server URL.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only the cluster reader names one")
    )]
    Cluster(String),
}

impl InputName {
    /// The file, for inputs that are files.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            InputName::File(path) => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for InputName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputName::File(path) => write!(f, "{}", path.display()),
            InputName::Stdin => f.write_str("<stdin>"),
            InputName::Cluster(server) => write!(f, "cluster {server}"),
        }
    }
}

/// Where one object is written.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The input.
    pub input: Arc<InputName>,
    /// Index of the document in the stream (every `---` starts one, empty ones too).
    pub document: usize,
    /// Index in the document's `items`, for objects of a `kind: List`.
    pub item: Option<usize>,
    /// 1-based line where the object starts; 0 when there is no file (live objects).
    pub line: usize,
    /// The template Helm rendered it from (`# Source:` comment), if any.
    pub helm_source: Option<Arc<str>>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.input {
            InputName::Cluster(_) => f.write_str("cluster")?,
            input if self.line > 0 => write!(f, "{input}:{}", self.line)?,
            input => write!(f, "{input}")?,
        }
        if let Some(source) = &self.helm_source {
            write!(f, ", from {source}")?;
        }
        Ok(())
    }
}

/// One unit of work for an evaluation worker, numbered so results come out in input order.
#[derive(Debug)]
pub struct Unit {
    /// Position in the input.
    pub seq: u64,
    /// What to do.
    pub body: UnitBody,
}

/// The payload of a [`Unit`].
#[derive(Debug)]
pub enum UnitBody {
    /// One YAML document: the text of its segment, which starts on `origin.line`'s file
    /// line `first_line`; `origin.line` is its first content line.
    Yaml {
        /// Where it is.
        origin: Origin,
        /// The segment's text, `---` line included.
        text: String,
        /// The file line of the segment's first line.
        first_line: usize,
    },
    /// One item of a YAML list document, cut out of the shared document text by the
    /// worker that judges it.
    YamlItem {
        /// Where it is.
        origin: Origin,
        /// The list document (a `String` behind the `Arc`, not a `str`: moving the text
        /// in costs no copy of what may be tens of megabytes).
        document: Arc<String>,
        /// Where the item is in it.
        item: super::yaml::ListItem,
        /// `apiVersion` and `kind` its list implies.
        implied_type: Option<Arc<(String, String)>>,
    },
    /// One JSON value (an object, or one item of a list), a slice of a shared buffer.
    Json {
        /// Where it is.
        origin: Origin,
        /// The buffer.
        text: Arc<str>,
        /// The value's bytes in it.
        range: Range<usize>,
        /// `apiVersion` and `kind` of items of a typed list (`DeploymentList`), whose
        /// items do not repeat them.
        implied_type: Option<Arc<(String, String)>>,
    },
    /// One object from a live cluster.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only the cluster reader sends one")
    )]
    Object {
        /// Where it is.
        origin: Origin,
        /// The object, `apiVersion` and `kind` set.
        value: Value,
    },
    /// Something could not be read; reported in order with the rest.
    Error(InputError),
    /// Every document of this file has been sent (only with `--fix`).
    FileDone(Arc<InputName>),
}

/// An input that could not be read or a document that does not parse.
#[derive(Debug, Clone, Serialize)]
pub struct InputError {
    /// The file (or stdin, or the cluster).
    pub input: String,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.input, self.message),
            None => write!(f, "{}: {}", self.input, self.message),
        }
    }
}

/// What a worker made of one unit, in input order.
#[derive(Debug)]
pub struct Judged {
    /// The unit's number.
    pub seq: u64,
    /// One entry per object in the unit (several for a `kind: List`).
    pub items: Vec<Item>,
}

/// One object's fate.
#[derive(Debug)]
pub enum Item {
    /// A workload, judged by the policy module.
    Workload(Box<Verdict>),
    /// Not judged, and why.
    Skipped(Skip),
    /// Could not be read.
    Error(InputError),
    /// Marks the end of a file's documents (only with `--fix`).
    FileDone(Arc<InputName>),
}

/// An object audit does not judge.
#[derive(Debug, Clone)]
pub struct Skip {
    /// Its kind, or what it is instead.
    pub kind: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why an object was not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A kind that carries no pod (ConfigMap, Service, ...).
    NotWorkload,
    /// No `apiVersion`/`kind`, or not a mapping at all.
    NotKubernetesObject,
    /// A controller that audit also judges owns it (a Pod of a ReplicaSet, a ReplicaSet of
    /// a Deployment, a Job of a CronJob) and that controller is audited too (always, in a
    /// live cluster): it is judged through that controller.
    OwnedByController {
        /// `Kind/name` of the controller.
        owner: String,
    },
    /// Outside the namespace given with `--namespace`.
    OtherNamespace,
}

/// Identity of a judged workload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `apiVersion`.
    pub api_version: String,
    /// The kind.
    #[serde(serialize_with = "serialize_kind")]
    pub kind: WorkloadKind,
    /// `metadata.namespace` (or the `--namespace` assumed for objects without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName` followed by `*`).
    pub name: String,
    /// `metadata.uid`, for live objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Where it is written.
    #[serde(skip)]
    pub origin: Origin,
}

fn serialize_kind<S: serde::Serializer>(kind: &WorkloadKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The policy module's verdict on one workload.
#[derive(Debug)]
pub struct Verdict {
    /// Which workload.
    pub workload: WorkloadRef,
    /// Its controller, when it has one audit also judges (files and stdin only: the
    /// verdict counts only when that controller is not among the inputs).
    pub owner: Option<Owner>,
    /// What the module said, or why it could not say.
    pub result: Result<Judgement, String>,
}

/// A workload's controller, from its `ownerReferences`.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name, in the owned object's namespace.
    pub name: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What identifies a workload among the inputs: kind, namespace and name.
pub type WorkloadKey = (WorkloadKind, Option<String>, String);

impl Verdict {
    /// This workload's identity.
    pub fn key(&self) -> WorkloadKey {
        let workload = &self.workload;
        (
            workload.kind,
            workload.namespace.clone(),
            workload.name.clone(),
        )
    }

    /// Its controller's identity (controllers own only objects of their own namespace).
    pub fn owner_key(&self) -> Option<WorkloadKey> {
        let owner = self.owner.as_ref()?;
        Some((
            owner.kind,
            self.workload.namespace.clone(),
            owner.name.clone(),
        ))
    }
}

/// What the module found, as audit reports it.
#[derive(Debug, Default)]
pub struct Judgement {
    /// Every violation of the object as it stands (mutate mode fixing one does not make the
    /// object compliant today).
    pub violations: Vec<Finding>,
    /// Set when the whole namespace is exempt (`exemptions.namespaces`).
    pub exempt_namespace: Option<String>,
    /// Exemptions used, described.
    pub exemptions: Vec<String>,
    /// The module's notes that are not violation lines (relaxed checks, ignored
    /// exemption annotations).
    pub notes: Vec<String>,
    /// What mutate mode would change (`--show-fix`, `--fix`).
    pub fix: Option<FixProposal>,
}

/// One violation, as the module reported it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The check.
    pub check: CheckId,
    /// The check's mode under the audit's settings.
    pub mode: Mode,
    /// The container, for container checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The field to change.
    pub field: String,
    /// The field as a JSON Pointer into the object: with the check, what identifies the
    /// violation.
    #[serde(skip)]
    pub pointer: String,
    /// The full line.
    pub message: String,
    /// Whether mutate mode can fix it.
    pub fixable: bool,
    /// What a CREATE would do with it: rejected, warned or fixed (mutate mode).
    pub disposition: Disposition,
    /// The line the field (or its nearest written parent) is on, for file inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Set when `--fix` rewrote the document and the rewrite fixed this violation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_in_file: bool,
}

impl Finding {
    /// Whether this finding makes the audit fail at `fail_on`.
    pub fn counts(&self, fail_on: FailOn) -> bool {
        if self.fixed_in_file {
            return false;
        }
        match (fail_on, self.mode) {
            (FailOn::Never, _) | (_, Mode::Off) => false,
            (_, Mode::Enforce | Mode::Mutate) => true,
            (FailOn::Warn, Mode::Warn) => true,
            (FailOn::Enforce, Mode::Warn) => false,
        }
    }
}

/// The lowest mode whose findings fail the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FailOn {
    /// Findings of checks in enforce or mutate mode.
    #[default]
    Enforce,
    /// Those, and findings of checks in warn mode.
    Warn,
    /// None: findings never fail the run (scheduled runs that only write reports); input
    /// and evaluation errors still do.
    Never,
}

impl FailOn {
    /// The value as `--fail-on` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Enforce => "enforce",
            FailOn::Warn => "warn",
            FailOn::Never => "never",
        }
    }
}

/// What mutate mode would change in one workload.
#[derive(Debug, Clone)]
pub struct FixProposal {
    /// The object as mutate mode would leave it.
    pub mutated: Value,
    /// RFC 6902 JSON Patch from the object to `mutated`.
    pub patch: Value,
    /// Unified diff of the object as YAML.
    pub diff: String,
    /// Checks whose violations the mutation fixes.
    pub fixes: Vec<CheckId>,
    /// Violations mutate mode cannot fix, as their messages.
    pub unfixable: Vec<String>,
    /// The same violations by identity: check and JSON pointer.
    pub unfixable_at: Vec<(CheckId, String)>,
    /// Mutable checks whose fixes are left out: mutate mode cannot fix every one of their
    /// violations in this workload, so it would reject the workload rather than fix it.
    pub left_out: Vec<CheckId>,
}
