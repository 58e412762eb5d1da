//! Policy reports, as Policy Reporter, Kyverno and Kubewarden read them
//! (`wgpolicyk8s.io/v1alpha2`, or `openreports.io/v1alpha1`): a report per namespace with
//! a result per workload and check that is on, and a cluster-wide report with a result per
//! namespace. Printed as YAML for `kubectl apply`,
//! or applied by `--write-reports`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::SystemTime;

use podguard_policy::{CheckId, Mode};
use serde_json::{Value, json};

use super::{POLICY_NAME, Report, Summary};
use crate::model::{Verdict, WorkloadRef};
use crate::yaml;
use podguard_policy::contract::CheckModes;

/// The report APIs audit writes. Their reports share one shape; OpenReports (which
/// Kyverno writes when `openreports.enabled`, and Kubewarden is moving to) renames the
/// kinds and adds the report-level `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportApi {
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` and `ClusterPolicyReport`.
    Wgpolicy,
    /// `openreports.io/v1alpha1` `Report` and `ClusterReport`.
    OpenReports,
}

impl ReportApi {
    /// The API group and version.
    pub fn api_version(self) -> &'static str {
        match self {
            ReportApi::Wgpolicy => "wgpolicyk8s.io/v1alpha2",
            ReportApi::OpenReports => "openreports.io/v1alpha1",
        }
    }

    /// The kind of the namespaced report, or of the cluster-wide one.
    pub fn kind(self, cluster_wide: bool) -> &'static str {
        match (self, cluster_wide) {
            (ReportApi::Wgpolicy, false) => "PolicyReport",
            (ReportApi::Wgpolicy, true) => "ClusterPolicyReport",
            (ReportApi::OpenReports, false) => "Report",
            (ReportApi::OpenReports, true) => "ClusterReport",
        }
    }

    /// The resource (plural) of that kind.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only --write-reports uses it")
    )]
    pub fn plural(self, cluster_wide: bool) -> &'static str {
        match (self, cluster_wide) {
            (ReportApi::Wgpolicy, false) => "policyreports",
            (ReportApi::Wgpolicy, true) => "clusterpolicyreports",
            (ReportApi::OpenReports, false) => "reports",
            (ReportApi::OpenReports, true) => "clusterreports",
        }
    }

    /// Where its CRDs come from, for an error that says to install them.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only --write-reports uses it")
    )]
    pub fn crd_source(self) -> &'static str {
        match self {
            ReportApi::Wgpolicy => {
                "the PolicyReport CRDs (Policy Reporter's Helm chart, or kubernetes-sigs/wg-policy-prototypes)"
            }
            ReportApi::OpenReports => "the OpenReports CRDs (openreports/reports-api)",
        }
    }
}
/// The name of every report audit writes (with `-2`, `-3`, ... for large namespaces).
pub const REPORT_NAME: &str = "podguard-audit";
/// The label selecting the reports audit owns.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "podguard");
/// Results per report: a report is one etcd object, which must stay well under 1.5 MiB.
pub const RESULTS_PER_REPORT: usize = 1000;

/// Collects results per namespace.
pub struct PolicyReports {
    modes: CheckModes,
    timestamp: Value,
    namespaces: BTreeMap<String, Vec<Value>>,
}

/// Result counts, as `summary` holds them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    pass: usize,
    fail: usize,
    warn: usize,
    error: usize,
    skip: usize,
}

impl Counts {
    fn add(&mut self, result: &str) {
        match result {
            "pass" => self.pass += 1,
            "fail" => self.fail += 1,
            "warn" => self.warn += 1,
            "error" => self.error += 1,
            _ => self.skip += 1,
        }
    }

    fn of(results: &[Value]) -> Counts {
        let mut counts = Counts::default();
        for result in results {
            counts.add(result["result"].as_str().unwrap_or("skip"));
        }
        counts
    }

    fn to_json(self) -> Value {
        json!({"pass": self.pass, "fail": self.fail, "warn": self.warn, "error": self.error, "skip": self.skip})
    }
}

fn resource(workload: &WorkloadRef) -> Value {
    let mut reference = json!({
        "apiVersion": workload.api_version,
        "kind": workload.kind.as_str(),
        "name": workload.name,
    });
    if let Some(namespace) = &workload.namespace {
        reference["namespace"] = json!(namespace);
    }
    if let Some(uid) = &workload.uid {
        reference["uid"] = json!(uid);
    }
    reference
}

impl PolicyReports {
    /// An empty collection; results are stamped with the time it was made.
    pub fn new(modes: CheckModes) -> PolicyReports {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        PolicyReports {
            modes,
            timestamp: json!({"seconds": now.as_secs(), "nanos": 0}),
            namespaces: BTreeMap::new(),
        }
    }

    fn result(&self, workload: &WorkloadRef, rule: &str, result: &str, message: String) -> Value {
        json!({
            "source": POLICY_NAME,
            "policy": POLICY_NAME,
            "rule": rule,
            "category": "Workload hardening",
            "result": result,
            "scored": true,
            "message": message,
            "timestamp": self.timestamp,
            "resources": [resource(workload)],
        })
    }

    /// Adds one workload's results.
    pub fn record(&mut self, verdict: &Verdict) {
        let workload = &verdict.workload;
        let mut results = Vec::new();
        match &verdict.result {
            Err(message) => results.push(self.result(
                workload,
                "evaluation",
                "error",
                format!("podguard could not judge {workload}: {message}"),
            )),
            Ok(judgement) => {
                if let Some(namespace) = &judgement.exempt_namespace {
                    results.push(self.result(
                        workload,
                        "namespace-exemption",
                        "skip",
                        format!("namespace {namespace} is exempt from every check (exemptions.namespaces)"),
                    ));
                } else {
                    let mut checks: Vec<CheckId> = self.modes.active().map(|(c, _)| c).collect();
                    for finding in &judgement.violations {
                        if !checks.contains(&finding.check) {
                            checks.push(finding.check);
                        }
                    }
                    for check in checks {
                        let findings: Vec<_> = judgement
                            .violations
                            .iter()
                            .filter(|v| v.check == check)
                            .collect();
                        let mut result = if findings.is_empty() {
                            self.result(
                                workload,
                                check.as_str(),
                                "pass",
                                format!("{workload} passes {check}"),
                            )
                        } else {
                            let outcome = if findings.iter().any(|f| f.mode == Mode::Warn) {
                                "warn"
                            } else {
                                "fail"
                            };
                            let lines: Vec<&str> =
                                findings.iter().map(|f| f.message.as_str()).collect();
                            let mut result =
                                self.result(workload, check.as_str(), outcome, lines.join("\n"));
                            let mut containers: Vec<&str> = findings
                                .iter()
                                .filter_map(|f| f.container.as_deref())
                                .collect();
                            containers.dedup();
                            let fields: Vec<&str> =
                                findings.iter().map(|f| f.field.as_str()).collect();
                            result["properties"] = json!({
                                "mode": findings[0].mode.to_string(),
                                "containers": containers.join(","),
                                "fields": fields.join(","),
                                "fixable": findings.iter().all(|f| f.fixable).to_string(),
                            });
                            result
                        };
                        result["severity"] = json!(check.definition().severity.as_str());
                        results.push(result);
                    }
                }
            }
        }
        self.namespaces
            .entry(workload.namespace.clone().unwrap_or_default())
            .or_default()
            .extend(results);
    }

    fn metadata(name: String, namespace: Option<&str>) -> Value {
        let mut metadata = json!({
            "name": name,
            "labels": {MANAGED_BY.0: MANAGED_BY.1, "podguard.io/report": "audit"},
        });
        if let Some(namespace) = namespace {
            metadata["namespace"] = json!(namespace);
        }
        metadata
    }

    /// Every report: `PolicyReport`s by namespace (objects that name no namespace go in
    /// one without `metadata.namespace`, which `kubectl apply` puts where they would go),
    /// then the `ClusterPolicyReport`.
    pub fn build(&self, api: ReportApi) -> Vec<Value> {
        let report = |cluster_wide: bool, metadata: Value, summary: Value, results: Value| {
            let mut report = json!({
                "apiVersion": api.api_version(),
                "kind": api.kind(cluster_wide),
                "metadata": metadata,
            });
            if api == ReportApi::OpenReports {
                report["source"] = json!(POLICY_NAME);
            }
            report["summary"] = summary;
            report["results"] = results;
            report
        };
        let mut reports = Vec::new();
        let mut cluster_results = Vec::new();
        for (namespace, results) in &self.namespaces {
            let namespace_ref = (!namespace.is_empty()).then_some(namespace.as_str());
            for (index, chunk) in results.chunks(RESULTS_PER_REPORT).enumerate() {
                let name = if index == 0 {
                    REPORT_NAME.to_owned()
                } else {
                    format!("{REPORT_NAME}-{}", index + 1)
                };
                reports.push(report(
                    false,
                    Self::metadata(name, namespace_ref),
                    Counts::of(chunk).to_json(),
                    json!(chunk),
                ));
            }
            let counts = Counts::of(results);
            let mut failing_checks: BTreeMap<&str, usize> = BTreeMap::new();
            for result in results.iter().filter(|r| r["result"] == "fail") {
                if let Some(rule) = result["rule"].as_str() {
                    *failing_checks.entry(rule).or_default() += 1;
                }
            }
            let outcome = if counts.error > 0 {
                "error"
            } else if counts.fail > 0 {
                "fail"
            } else if counts.warn > 0 {
                "warn"
            } else if counts.pass == 0 {
                "skip"
            } else {
                "pass"
            };
            let shown = namespace_ref.unwrap_or("(none given)");
            let mut message = format!(
                "namespace {shown}: {} failing, {} warning, {} passing, {} skipped results",
                counts.fail, counts.warn, counts.pass, counts.skip
            );
            if !failing_checks.is_empty() {
                let listed: Vec<String> = failing_checks
                    .iter()
                    .map(|(check, n)| format!("{check} {n}"))
                    .collect();
                message.push_str(&format!(" (failing: {})", listed.join(", ")));
            }
            let mut result = json!({
                "source": POLICY_NAME,
                "policy": POLICY_NAME,
                "rule": "namespace-workloads",
                "category": "Workload hardening",
                "result": outcome,
                "scored": true,
                "message": message,
                "timestamp": self.timestamp,
            });
            if let Some(namespace) = namespace_ref {
                result["resources"] =
                    json!([{"apiVersion": "v1", "kind": "Namespace", "name": namespace}]);
            }
            cluster_results.push(result);
        }
        reports.push(report(
            true,
            Self::metadata(REPORT_NAME.to_owned(), None),
            Counts::of(&cluster_results).to_json(),
            json!(cluster_results),
        ));
        reports
    }
}

/// `--output policyreport` and `--output openreports`: the reports as a YAML stream.
pub struct PolicyReportOutput {
    reports: PolicyReports,
    api: ReportApi,
}

impl PolicyReportOutput {
    /// Prints the reports of `api` at the end.
    pub fn new(modes: CheckModes, api: ReportApi) -> PolicyReportOutput {
        PolicyReportOutput {
            reports: PolicyReports::new(modes),
            api,
        }
    }
}

impl Report for PolicyReportOutput {
    fn workload(&mut self, _out: &mut dyn Write, verdict: &Verdict) -> io::Result<()> {
        self.reports.record(verdict);
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, _summary: &Summary) -> io::Result<()> {
        for report in self.reports.build(self.api) {
            writeln!(out, "---")?;
            out.write_all(yaml::emit(&report, yaml::Style::default()).as_bytes())?;
        }
        Ok(())
    }
}
