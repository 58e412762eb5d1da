//! SARIF 2.1.0: one rule per check id, one result per violation, located at the file and
//! line of the field (or of the object) for file inputs, so code-scanning UIs annotate
//! the line. Live objects get a logical location (`namespace/Kind/name`) instead.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use podguard_policy::{CheckId, Definition, Mode, PssLevel, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{INFORMATION_URI, Report, Summary};
use crate::model::{Finding, InputError, Verdict, WorkloadRef};
use podguard_policy::contract::CheckModes;

/// The schema SARIF consumers look for.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Writes the SARIF report.
pub struct Sarif {
    base: PathBuf,
    started: bool,
    first: bool,
    errors: Vec<InputError>,
    modes: CheckModes,
}

impl Sarif {
    /// A SARIF report; file URIs are made relative to `base` (the working directory) when
    /// they are below it, as code-scanning services expect paths from the repository root.
    pub fn new(base: PathBuf, modes: CheckModes) -> Sarif {
        Sarif {
            base,
            started: false,
            first: true,
            errors: Vec::new(),
            modes,
        }
    }

    fn start(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let driver = json!({
            "name": "podguard",
            "version": podguard_policy::VERSION,
            "semanticVersion": podguard_policy::VERSION,
            "informationUri": INFORMATION_URI,
            "rules": rules(&self.modes),
        });
        let head = json!({
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
        });
        let head = serde_json::to_string(&head)?;
        write!(
            out,
            "{},\"runs\":[{{\"tool\":{{\"driver\":{}}},\"columnKind\":\"unicodeCodePoints\",\"results\":[",
            &head[..head.len() - 1],
            serde_json::to_string(&driver)?
        )
    }

    fn uri(&self, path: &Path) -> String {
        let (relative, absolute) = match path.strip_prefix(&self.base) {
            Ok(relative) => (relative, false),
            Err(_) => (path, path.is_absolute()),
        };
        let text = relative
            .components()
            .filter(|c| !matches!(c, Component::CurDir | Component::RootDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if absolute {
            percent_encode(&format!("file:///{text}"))
        } else {
            percent_encode(&text)
        }
    }

    fn location(&self, workload: &WorkloadRef, line: Option<usize>) -> Value {
        let logical = json!([{
            "name": workload.name,
            "fullyQualifiedName": qualified_name(workload),
            "kind": "resource",
        }]);
        match workload.origin.input.path() {
            Some(path) => {
                let line = line.unwrap_or(workload.origin.line).max(1);
                json!({
                    "physicalLocation": {
                        "artifactLocation": {"uri": self.uri(path)},
                        "region": {"startLine": line},
                    },
                    "logicalLocations": logical,
                })
            }
            None => json!({"logicalLocations": logical}),
        }
    }

    fn result(&self, workload: &WorkloadRef, finding: &Finding) -> Value {
        let index = CheckId::ALL
            .iter()
            .position(|c| *c == finding.check)
            .expect("every check is in ALL");
        let fingerprint = {
            let mut hash = Sha256::new();
            for part in [
                qualified_name(workload).as_str(),
                finding.check.as_str(),
                finding.field.as_str(),
            ] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            hex::encode(&hash.finalize()[..16])
        };
        let mut properties = json!({
            "mode": finding.mode,
            "field": finding.field,
            "fixable": finding.fixable,
            "workload": workload.to_string(),
        });
        if let Some(container) = &finding.container {
            properties["container"] = json!(container);
        }
        json!({
            "ruleId": finding.check.as_str(),
            "ruleIndex": index,
            "kind": "fail",
            "level": level(finding.mode),
            "message": {"text": format!("{}: {}", workload, finding.message)},
            "locations": [self.location(workload, finding.line)],
            "partialFingerprints": {"podguardFinding/v1": fingerprint},
            "properties": properties,
        })
    }

    fn emit(&mut self, out: &mut dyn Write, result: &Value) -> io::Result<()> {
        if !self.first {
            out.write_all(b",")?;
        }
        self.first = false;
        out.write_all(b"\n")?;
        serde_json::to_writer(&mut *out, result)?;
        Ok(())
    }
}

/// `namespace/Kind/name`, the logical name of a workload.
fn qualified_name(workload: &WorkloadRef) -> String {
    match &workload.namespace {
        Some(ns) => format!("{ns}/{}/{}", workload.kind, workload.name),
        None => format!("{}/{}", workload.kind, workload.name),
    }
}

/// SARIF levels: a rejection is an error, a warning a warning.
fn level(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce | Mode::Mutate => "error",
        Mode::Warn => "warning",
        Mode::Off => "none",
    }
}

/// `SecurityContext`-style rule names from check ids: `run-as-non-root` is `RunAsNonRoot`.
fn rule_name(check: CheckId) -> String {
    check
        .as_str()
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One rule per check id, with help text from the check's description.
pub fn rules(modes: &CheckModes) -> Value {
    CheckId::ALL
        .iter()
        .map(|check| {
            let definition = check.definition();
            let (enabled, level) = match modes.get(*check) {
                Mode::Off => (false, "none"),
                mode => (true, self::level(mode)),
            };
            let mutation = if check.can_mutate() {
                "Mutate mode can fix it."
            } else {
                "Mutate mode cannot fix it; change the manifest."
            };
            let help = format!(
                "{} {mutation} Where podguard's settings allow it (exemptions.annotation), a workload can exempt itself with the annotations podguard.io/exempt: \"{}\" and podguard.io/exempt-reason.",
                check.description(),
                check.as_str()
            );
            json!({
                "id": check.as_str(),
                "name": rule_name(*check),
                "shortDescription": {"text": check.description()},
                "fullDescription": {"text": check.description()},
                "help": {
                    "text": help,
                    "markdown": format!("**{}**: {help}", check.as_str()),
                },
                "helpUri": format!("{INFORMATION_URI}#what-it-checks"),
                "defaultConfiguration": {"enabled": enabled, "level": level},
                "properties": {
                    "security-severity": security_severity(definition.severity),
                    "tags": tags(definition),
                },
            })
        })
        .collect()
}

/// GitHub code scanning ranks a rule by this score (as text): 9.0 and above critical,
/// 7.0 high, 4.0 medium, below that low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// Tags code-scanning UIs filter by: the area, and the Pod Security Standards level the
/// check follows.
fn tags(definition: &Definition) -> Vec<&'static str> {
    let mut tags = vec!["kubernetes"];
    if definition.severity > Severity::Info {
        tags.push("security");
    }
    for control in definition.pss {
        let tag = match control.level {
            PssLevel::Baseline => "pss-baseline",
            PssLevel::Restricted => "pss-restricted",
        };
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// Percent-encodes what a URI reference cannot hold literally.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Report for Sarif {
    fn workload(&mut self, out: &mut dyn Write, verdict: &Verdict) -> io::Result<()> {
        self.start(out)?;
        let Ok(judgement) = &verdict.result else {
            return Ok(());
        };
        for finding in &judgement.violations {
            let result = self.result(&verdict.workload, finding);
            self.emit(out, &result)?;
        }
        Ok(())
    }

    fn input_error(&mut self, _out: &mut dyn Write, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        self.start(out)?;
        let notifications: Vec<Value> = self
            .errors
            .iter()
            .map(|error| {
                let mut notification = json!({
                    "level": "error",
                    "message": {"text": error.to_string()},
                });
                let path = Path::new(&error.input);
                if error.input != "<stdin>" && !error.input.starts_with("cluster") {
                    let mut physical = json!({"artifactLocation": {"uri": self.uri(path)}});
                    if let Some(line) = error.line {
                        physical["region"] = json!({"startLine": line.max(1)});
                    }
                    notification["locations"] = json!([{"physicalLocation": physical}]);
                }
                notification
            })
            .collect();
        let invocation = json!({
            "executionSuccessful": summary.input_errors == 0 && summary.evaluation_errors == 0,
            "exitCode": summary.exit_code(),
            "toolExecutionNotifications": notifications,
        });
        write!(
            out,
            "\n],\"invocations\":[{}]}}]}}\n",
            serde_json::to_string(&invocation)?
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_camel_case() {
        assert_eq!(rule_name(CheckId::RunAsNonRoot), "RunAsNonRoot");
        assert_eq!(rule_name(CheckId::ImageTagPinned), "ImageTagPinned");
    }

    #[test]
    fn uris_are_relative_and_encoded() {
        let sarif = Sarif::new(PathBuf::from("/repo"), CheckModes::uniform(Mode::Warn));
        assert_eq!(
            sarif.uri(Path::new("/repo/deploy/my app.yaml")),
            "deploy/my%20app.yaml"
        );
        assert_eq!(sarif.uri(Path::new("./a/b.yaml")), "a/b.yaml");
        assert_eq!(
            sarif.uri(Path::new("/elsewhere/x.yaml")),
            "file:///elsewhere/x.yaml"
        );
    }
}
