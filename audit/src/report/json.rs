//! One JSON document, written as verdicts arrive: `workloads` first, then `errors` and
//! `summary` (which need the whole run).

use std::io::{self, Write};

use podguard_policy::CheckId;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Report, Summary};
use crate::model::{FailOn, InputError, Verdict};

/// Writes the JSON report.
pub struct Json {
    fail_on: FailOn,
    started: bool,
    first: bool,
    errors: Vec<InputError>,
}

impl Json {
    /// A JSON report; `fail_on` decides each workload's `status`.
    pub fn new(fail_on: FailOn) -> Json {
        Json {
            fail_on,
            started: false,
            first: true,
            errors: Vec::new(),
        }
    }

    fn start(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            write!(
                out,
                "{{\"apiVersion\":\"podguard.io/v1alpha1\",\"kind\":\"AuditReport\",\"workloads\":["
            )?;
        }
        Ok(())
    }
}

/// Where a workload is written, as JSON reports show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Source<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    helm_source: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FixJson<'a> {
    fixes: &'a [podguard_policy::CheckId],
    patch: &'a Value,
    diff: &'a str,
    unfixable: &'a [String],
    left_out: &'a [podguard_policy::CheckId],
}

/// One workload as JSON reports show it, serialised without an intermediate tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadJson<'a> {
    #[serde(flatten)]
    workload: &'a crate::model::WorkloadRef,
    source: Source<'a>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<&'a [crate::model::Finding]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    exemptions: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<FixJson<'a>>,
}

fn workload_json<'a>(verdict: &'a Verdict, fail_on: FailOn) -> WorkloadJson<'a> {
    let origin = &verdict.workload.origin;
    let (file, input) = match origin.input.path() {
        Some(path) => (Some(path.display().to_string()), None),
        None => (None, Some(origin.input.to_string())),
    };
    let source = Source {
        file,
        input,
        line: (origin.line > 0).then_some(origin.line),
        document: (origin.line > 0).then_some(origin.document),
        item: origin.item,
        helm_source: origin.helm_source.as_deref(),
    };
    let mut entry = WorkloadJson {
        workload: &verdict.workload,
        source,
        status: "error",
        error: None,
        violations: None,
        exemptions: &[],
        notes: &[],
        fix: None,
    };
    match &verdict.result {
        Err(message) => entry.error = Some(message),
        Ok(judgement) => {
            entry.status = if judgement.exempt_namespace.is_some() {
                "exempt"
            } else if judgement.violations.iter().any(|v| v.counts(fail_on)) {
                "fail"
            } else if judgement.violations.is_empty() {
                "pass"
            } else {
                "warn"
            };
            entry.violations = Some(&judgement.violations);
            entry.exemptions = &judgement.exemptions;
            entry.notes = &judgement.notes;
            entry.fix = judgement.fix.as_ref().map(|fix| FixJson {
                fixes: &fix.fixes,
                patch: &fix.patch,
                diff: &fix.diff,
                unfixable: &fix.unfixable,
                left_out: &fix.left_out,
            });
        }
    }
    entry
}

impl Report for Json {
    fn workload(&mut self, out: &mut dyn Write, verdict: &Verdict) -> io::Result<()> {
        self.start(out)?;
        if !self.first {
            out.write_all(b",")?;
        }
        self.first = false;
        let entry = workload_json(verdict, self.fail_on);
        out.write_all(b"\n")?;
        serde_json::to_writer(&mut *out, &entry)?;
        Ok(())
    }

    fn input_error(&mut self, _out: &mut dyn Write, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        self.start(out)?;
        let by_check: serde_json::Map<String, Value> = CheckId::ALL
            .iter()
            .filter_map(|check| {
                summary.by_check.get(check).map(|tally| {
                    (
                        check.as_str().to_owned(),
                        json!({
                            "mode": tally.mode,
                            "violations": tally.violations,
                            "workloads": tally.workloads,
                        }),
                    )
                })
            })
            .collect();
        let by_namespace: serde_json::Map<String, Value> = summary
            .by_namespace
            .iter()
            .map(|(namespace, tally)| {
                (
                    namespace.clone(),
                    json!({
                        "workloads": tally.workloads,
                        "failing": tally.failing,
                        "violations": tally.violations,
                    }),
                )
            })
            .collect();
        let skipped: serde_json::Map<String, Value> = summary
            .skipped
            .iter()
            .map(|(reason, kinds)| ((*reason).to_owned(), json!(kinds)))
            .collect();
        let tail = json!({
            "errors": self.errors,
            "summary": {
                "failOn": summary.fail_on.as_str(),
                "workloads": summary.workloads,
                "compliant": summary.compliant,
                "failing": summary.failing,
                "belowThreshold": summary.below_threshold,
                "exempt": summary.exempt,
                "evaluationErrors": summary.evaluation_errors,
                "inputErrors": summary.input_errors,
                "skipped": skipped,
                "byCheck": by_check,
                "byNamespace": by_namespace,
                "fixedDocuments": summary.fixed_documents,
                "fixedFiles": summary.fixed_files,
                "notes": summary.notes,
                "exitCode": summary.exit_code(),
            }
        });
        // Close `workloads`, then append the tail's members to the same object.
        let tail_text = serde_json::to_string(&tail)?;
        write!(out, "\n],{}\n", &tail_text[1..])?;
        Ok(())
    }
}
