//! JUnit XML: a test suite per file (or per namespace for live objects), a test case per
//! workload and check that is on. A case fails when the check's findings reach
//! `--fail-on`; findings below it pass with the warnings in `system-out`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use podguard_policy::CheckId;

use super::{Report, Summary};
use crate::model::{FailOn, InputError, InputName, Verdict};
use podguard_policy::contract::CheckModes;

#[derive(Default)]
struct Suite {
    name: String,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    cases: String,
}

/// Writes the JUnit report at the end (suites carry their counts up front).
pub struct Junit {
    fail_on: FailOn,
    modes: CheckModes,
    suites: Vec<Suite>,
    index: HashMap<String, usize>,
}

impl Junit {
    /// A JUnit report with a case per check that `modes` says is on.
    pub fn new(fail_on: FailOn, modes: CheckModes) -> Junit {
        Junit {
            fail_on,
            modes,
            suites: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn suite(&mut self, name: String) -> &mut Suite {
        let next = self.suites.len();
        let index = *self.index.entry(name.clone()).or_insert(next);
        if index == next {
            self.suites.push(Suite {
                name,
                ..Suite::default()
            });
        }
        &mut self.suites[index]
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn suite_name(verdict: &Verdict) -> String {
    match &*verdict.workload.origin.input {
        InputName::Cluster(_) => format!(
            "namespace {}",
            verdict.workload.namespace.as_deref().unwrap_or("(none)")
        ),
        input => input.to_string(),
    }
}

impl Report for Junit {
    fn workload(&mut self, _out: &mut dyn Write, verdict: &Verdict) -> io::Result<()> {
        let fail_on = self.fail_on;
        let classname = escape(&verdict.workload.to_string());
        let file = verdict
            .workload
            .origin
            .input
            .path()
            .map(|p| {
                format!(
                    " file=\"{}\" line=\"{}\"",
                    escape(&p.display().to_string()),
                    verdict.workload.origin.line
                )
            })
            .unwrap_or_default();
        let active: Vec<CheckId> = self.modes.active().map(|(c, _)| c).collect();
        let suite = self.suite(suite_name(verdict));
        let judgement = match &verdict.result {
            Err(message) => {
                suite.tests += 1;
                suite.errors += 1;
                let _ = write!(
                    suite.cases,
                    "    <testcase classname=\"{classname}\" name=\"podguard\"{file}>\n      <error message=\"{}\" type=\"evaluation\"/>\n    </testcase>\n",
                    escape(message)
                );
                return Ok(());
            }
            Ok(judgement) => judgement,
        };
        let mut checks = active;
        for finding in &judgement.violations {
            if !checks.contains(&finding.check) {
                checks.push(finding.check);
            }
        }
        for check in checks {
            suite.tests += 1;
            let _ = write!(
                suite.cases,
                "    <testcase classname=\"{classname}\" name=\"{}\"{file}",
                check.as_str()
            );
            if let Some(namespace) = &judgement.exempt_namespace {
                suite.skipped += 1;
                let _ = write!(
                    suite.cases,
                    ">\n      <skipped message=\"namespace {} is exempt (exemptions.namespaces)\"/>\n    </testcase>\n",
                    escape(namespace)
                );
                continue;
            }
            let findings: Vec<_> = judgement
                .violations
                .iter()
                .filter(|v| v.check == check)
                .collect();
            if findings.is_empty() {
                suite.cases.push_str("/>\n");
                continue;
            }
            let lines: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
            let body = escape(&lines.join("\n"));
            if findings.iter().any(|f| f.counts(fail_on)) {
                suite.failures += 1;
                let _ = write!(
                    suite.cases,
                    ">\n      <failure message=\"{}\" type=\"{}\">{body}</failure>\n    </testcase>\n",
                    escape(&format!(
                        "{} violation{} of {} ({} mode)",
                        findings.len(),
                        if findings.len() == 1 { "" } else { "s" },
                        check.as_str(),
                        findings[0].mode
                    )),
                    check.as_str()
                );
            } else {
                let _ = write!(
                    suite.cases,
                    ">\n      <system-out>{body}</system-out>\n    </testcase>\n"
                );
            }
        }
        Ok(())
    }

    fn input_error(&mut self, _out: &mut dyn Write, error: &InputError) -> io::Result<()> {
        let suite = self.suite(error.input.clone());
        suite.tests += 1;
        suite.errors += 1;
        let line = error
            .line
            .map(|l| format!(" line=\"{l}\""))
            .unwrap_or_default();
        let _ = write!(
            suite.cases,
            "    <testcase classname=\"{}\" name=\"read\" file=\"{}\"{line}>\n      <error message=\"{}\" type=\"input\"/>\n    </testcase>\n",
            escape(&error.input),
            escape(&error.input),
            escape(&error.to_string())
        );
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        let total = |f: fn(&Suite) -> usize| self.suites.iter().map(f).sum::<usize>();
        writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(
            out,
            "<testsuites name=\"podguard audit\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            total(|s| s.tests),
            total(|s| s.failures),
            total(|s| s.errors),
            total(|s| s.skipped),
            summary.elapsed.as_secs_f64()
        )?;
        for suite in &self.suites {
            writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
                escape(&suite.name),
                suite.tests,
                suite.failures,
                suite.errors,
                suite.skipped
            )?;
            out.write_all(suite.cases.as_bytes())?;
            writeln!(out, "  </testsuite>")?;
        }
        writeln!(out, "</testsuites>")
    }
}
