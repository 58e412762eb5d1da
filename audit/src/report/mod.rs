//! Reports: what the people and tools downstream of an audit read. Each format is fed
//! verdicts in input order as they arrive and writes what it can at once; only formats
//! whose structure needs totals up front (JUnit, PolicyReport) hold compact records.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use podguard_policy::{CheckId, Mode};

use super::model::{FailOn, InputError, SkipReason, Verdict};

pub mod json;
pub mod junit;
pub mod policyreport;
pub mod sarif;
pub mod table;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// Grouped by workload, for people.
    #[default]
    Table,
    /// One JSON document, streamed.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// JUnit XML, for CI test views.
    Junit,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReports, for `kubectl apply` and Policy Reporter.
    #[cfg_attr(feature = "clap", value(name = "policyreport"))]
    PolicyReport,
    /// `openreports.io/v1alpha1` Reports, the successor Kyverno and Kubewarden move to.
    #[cfg_attr(feature = "clap", value(name = "openreports"))]
    OpenReports,
}

impl OutputFormat {
    /// Every format, as `--output` names them.
    pub const ALL: [(OutputFormat, &'static str); 6] = [
        (OutputFormat::Table, "table"),
        (OutputFormat::Json, "json"),
        (OutputFormat::Sarif, "sarif"),
        (OutputFormat::Junit, "junit"),
        (OutputFormat::PolicyReport, "policyreport"),
        (OutputFormat::OpenReports, "openreports"),
    ];

    /// The format as `--output` names it.
    pub fn as_str(self) -> &'static str {
        OutputFormat::ALL
            .iter()
            .find(|(format, _)| *format == self)
            .map(|(_, name)| *name)
            .expect("every format is listed")
    }
}

/// One report of a run: its format, and the file it goes to (`None`: stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTarget {
    /// The format.
    pub format: OutputFormat,
    /// The file; `None` (or `-`) is stdout.
    pub path: Option<std::path::PathBuf>,
}

impl OutputTarget {
    /// A report on stdout.
    pub fn stdout(format: OutputFormat) -> OutputTarget {
        OutputTarget { format, path: None }
    }
}

impl std::str::FromStr for OutputTarget {
    type Err = String;

    /// `FORMAT` (stdout) or `FORMAT=FILE`, e.g. `sarif=podguard.sarif`.
    fn from_str(text: &str) -> Result<OutputTarget, String> {
        let (name, path) = match text.split_once('=') {
            Some((name, path)) => (name, Some(path)),
            None => (text, None),
        };
        let Some((format, _)) = OutputFormat::ALL.iter().find(|(_, n)| *n == name) else {
            let names: Vec<&str> = OutputFormat::ALL.iter().map(|(_, n)| *n).collect();
            return Err(format!(
                "{name:?} is not a report format: write one of {}, each optionally =FILE (e.g. sarif=podguard.sarif)",
                names.join(", ")
            ));
        };
        let path = match path {
            None | Some("-") => None,
            Some("") => {
                return Err(format!(
                    "{name}= names no file: write {name}=FILE, or {name} alone for stdout"
                ));
            }
            Some(path) => Some(std::path::PathBuf::from(path)),
        };
        Ok(OutputTarget {
            format: *format,
            path,
        })
    }
}

/// A report format.
pub trait Report {
    /// Called once per judged workload, in input order.
    fn workload(&mut self, out: &mut dyn Write, verdict: &Verdict) -> io::Result<()>;
    /// Called once per input error, in input order.
    fn input_error(&mut self, _out: &mut dyn Write, _error: &InputError) -> io::Result<()> {
        Ok(())
    }
    /// Called once at the end.
    fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()>;
}

/// Counts for one check.
#[derive(Debug, Clone, Default)]
pub struct CheckTally {
    /// Its mode, as the module reported it.
    pub mode: Option<Mode>,
    /// Violations.
    pub violations: usize,
    /// Workloads with at least one.
    pub workloads: usize,
}

/// Counts for one namespace.
#[derive(Debug, Clone, Default)]
pub struct NamespaceTally {
    /// Workloads judged.
    pub workloads: usize,
    /// Workloads with a finding at or above `--fail-on`.
    pub failing: usize,
    /// Violations.
    pub violations: usize,
}

/// Everything counted during an audit.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// `--fail-on`.
    pub fail_on: FailOn,
    /// Workloads judged.
    pub workloads: usize,
    /// Workloads without a single violation.
    pub compliant: usize,
    /// Workloads with a finding at or above `--fail-on`.
    pub failing: usize,
    /// Workloads with findings below `--fail-on` only.
    pub below_threshold: usize,
    /// Workloads in an exempt namespace.
    pub exempt: usize,
    /// Workloads the module could not judge.
    pub evaluation_errors: usize,
    /// Inputs or documents that could not be read.
    pub input_errors: usize,
    /// Objects not judged: reason label, then kind, then count.
    pub skipped: BTreeMap<&'static str, BTreeMap<String, usize>>,
    /// Violations by check.
    pub by_check: BTreeMap<CheckId, CheckTally>,
    /// Workloads by namespace (`""` for objects that name none).
    pub by_namespace: BTreeMap<String, NamespaceTally>,
    /// Documents rewritten by `--fix`, and the files they are in.
    pub fixed_documents: usize,
    /// Files rewritten by `--fix`.
    pub fixed_files: usize,
    /// Notes for the end of the report (settings fixes cannot use, ...).
    pub notes: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The label a skip reason is counted under.
pub fn skip_label(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::NotWorkload => "not a workload",
        SkipReason::NotKubernetesObject => "not a Kubernetes object",
        SkipReason::OwnedByController { .. } => "owned by a controller (judged through it)",
        SkipReason::OtherNamespace => "outside --namespace",
    }
}

impl Summary {
    /// Counts one verdict.
    pub fn record(&mut self, verdict: &Verdict) {
        self.workloads += 1;
        let namespace = verdict.workload.namespace.clone().unwrap_or_default();
        let tally = self.by_namespace.entry(namespace).or_default();
        tally.workloads += 1;
        let judgement = match &verdict.result {
            Ok(judgement) => judgement,
            Err(_) => {
                self.evaluation_errors += 1;
                return;
            }
        };
        if judgement.exempt_namespace.is_some() {
            self.exempt += 1;
            return;
        }
        tally.violations += judgement.violations.len();
        if judgement.violations.is_empty() {
            self.compliant += 1;
        } else if judgement.violations.iter().any(|v| v.counts(self.fail_on)) {
            self.failing += 1;
            tally.failing += 1;
        } else {
            self.below_threshold += 1;
        }
        let mut seen: Vec<CheckId> = Vec::new();
        for violation in &judgement.violations {
            let check = self.by_check.entry(violation.check).or_default();
            check.mode = Some(violation.mode);
            check.violations += 1;
            if !seen.contains(&violation.check) {
                seen.push(violation.check);
                check.workloads += 1;
            }
        }
    }

    /// Total objects skipped.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().flat_map(|kinds| kinds.values()).sum()
    }

    /// The exit status: 2 when something could not be read or judged (the audit is
    /// incomplete), else 1 when a finding reaches `--fail-on`, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.input_errors > 0 || self.evaluation_errors > 0 {
            2
        } else if self.failing > 0 {
            1
        } else {
            0
        }
    }
}

/// ANSI colour, on or off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paint {
    /// Whether to colour.
    pub enabled: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Red: rejections.
    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    /// Yellow: warnings.
    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    /// Green: all clear.
    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    /// Cyan: fixes.
    pub fn cyan(self, text: &str) -> String {
        self.wrap("36", text)
    }

    /// Bold: headings.
    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// Dim: locations and notes.
    pub fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }
}

/// The policy name reports use.
pub const POLICY_NAME: &str = "podguard";

/// Where the project lives, for links in reports.
pub const INFORMATION_URI: &str = "https://github.com/podguard/podguard";
