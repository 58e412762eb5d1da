//! The default report: workloads with findings, one line per violation, then totals by
//! check and by namespace.

use std::io::{self, Write};

use podguard_policy::CheckId;

use super::{Paint, Report, Summary};
use crate::model::{FailOn, Finding, Verdict};

/// Writes the table report.
pub struct Table {
    paint: Paint,
    fail_on: FailOn,
    show_fix: bool,
}

impl Table {
    /// A table report; `paint` colours it, `show_fix` prints fix proposals. Input errors
    /// go to stderr alone (a CI log that holds both streams shows each once); the table
    /// counts them.
    pub fn new(paint: Paint, fail_on: FailOn, show_fix: bool) -> Table {
        Table {
            paint,
            fail_on,
            show_fix,
        }
    }

    fn mode_label(&self, finding: &Finding) -> String {
        let label = format!("{:<7}", finding.mode.to_string());
        if finding.counts(self.fail_on) {
            self.paint.red(&label)
        } else {
            self.paint.yellow(&label)
        }
    }
}

impl Report for Table {
    fn workload(&mut self, out: &mut dyn Write, verdict: &Verdict) -> io::Result<()> {
        let paint = self.paint;
        let heading = |out: &mut dyn Write| {
            writeln!(
                out,
                "{}  {}",
                paint.bold(&verdict.workload.to_string()),
                paint.dim(&verdict.workload.origin.to_string())
            )
        };
        let judgement = match &verdict.result {
            Err(message) => {
                heading(out)?;
                writeln!(out, "  {}  {message}", paint.red("error  "))?;
                writeln!(out)?;
                return Ok(());
            }
            Ok(judgement) => judgement,
        };
        if judgement.violations.is_empty() && judgement.fix.is_none() {
            return Ok(());
        }
        heading(out)?;
        for finding in &judgement.violations {
            let mut line = format!("  {}  {}", self.mode_label(finding), finding.message);
            if finding.fixed_in_file {
                line.push_str(&format!("  {}", paint.green("(fixed in the file)")));
            } else if finding.fixable {
                line.push_str(&format!("  {}", paint.cyan("(mutate mode can fix)")));
            }
            writeln!(out, "{line}")?;
        }
        for note in &judgement.notes {
            writeln!(out, "  {}", paint.dim(&format!("note: {note}")))?;
        }
        if let (true, Some(fix)) = (self.show_fix, &judgement.fix) {
            writeln!(
                out,
                "  {}",
                paint.cyan("what mutate mode would change (YAML diff, then JSON Patch):")
            )?;
            for line in fix.diff.lines() {
                let shown = if line.starts_with('+') && !line.starts_with("+++") {
                    paint.green(line)
                } else if line.starts_with('-') && !line.starts_with("---") {
                    paint.red(line)
                } else {
                    line.to_owned()
                };
                writeln!(out, "    {shown}")?;
            }
            writeln!(
                out,
                "    {}",
                serde_json::to_string(&fix.patch).expect("a patch serialises")
            )?;
            if !fix.left_out.is_empty() {
                let checks: Vec<&str> = fix.left_out.iter().map(|c| c.as_str()).collect();
                writeln!(
                    out,
                    "    {}",
                    paint.dim(&format!(
                        "left out: {} (mutate mode cannot fix every violation of {} here, so it would reject the workload instead)",
                        checks.join(", "),
                        if checks.len() == 1 { "this check" } else { "these checks" }
                    ))
                )?;
            }
            if !fix.unfixable.is_empty() {
                writeln!(
                    out,
                    "    {}",
                    paint.dim(&format!(
                        "{} violation{} remain after this change; fix {} by hand",
                        fix.unfixable.len(),
                        if fix.unfixable.len() == 1 { "" } else { "s" },
                        if fix.unfixable.len() == 1 {
                            "it"
                        } else {
                            "them"
                        }
                    ))
                )?;
            }
        }
        writeln!(out)?;
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        let paint = self.paint;
        let threshold = summary.fail_on.as_str();
        let mut parts = vec![
            format!("{} compliant", summary.compliant),
            format!("{} failing", summary.failing),
        ];
        if summary.below_threshold > 0 {
            parts.push(format!(
                "{} with findings below --fail-on {threshold}",
                summary.below_threshold
            ));
        }
        if summary.exempt > 0 {
            parts.push(format!("{} in exempt namespaces", summary.exempt));
        }
        if summary.evaluation_errors > 0 {
            parts.push(format!("{} could not be judged", summary.evaluation_errors));
        }
        writeln!(
            out,
            "{} {} workload{}: {}.",
            paint.bold("Audited"),
            summary.workloads,
            plural(summary.workloads),
            parts.join(", ")
        )?;
        if summary.skipped_total() > 0 {
            let reasons: Vec<String> = summary
                .skipped
                .iter()
                .map(|(reason, kinds)| {
                    let count: usize = kinds.values().sum();
                    let mut kinds: Vec<(&String, &usize)> = kinds.iter().collect();
                    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    let listed: Vec<String> = kinds
                        .iter()
                        .take(6)
                        .map(|(kind, n)| format!("{kind} {n}"))
                        .collect();
                    let more = if kinds.len() > 6 { ", ..." } else { "" };
                    format!("{count} {reason} ({}{more})", listed.join(", "))
                })
                .collect();
            writeln!(
                out,
                "Skipped {} object{}: {}.",
                summary.skipped_total(),
                plural(summary.skipped_total()),
                reasons.join("; ")
            )?;
        }
        if summary.input_errors > 0 {
            writeln!(
                out,
                "{}",
                paint.red(&format!(
                    "{} input{} could not be read (listed on stderr); the rest was audited.",
                    summary.input_errors,
                    plural(summary.input_errors)
                ))
            )?;
        }
        if summary.fixed_documents > 0 {
            writeln!(
                out,
                "{}",
                paint.green(&format!(
                    "Rewrote {} document{} in {} file{} with mutate mode's fixes.",
                    summary.fixed_documents,
                    plural(summary.fixed_documents),
                    summary.fixed_files,
                    plural(summary.fixed_files)
                ))
            )?;
        }
        for note in &summary.notes {
            writeln!(out, "{}", paint.dim(&format!("note: {note}")))?;
        }

        if !summary.by_check.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                paint.bold(&format!(
                    "{:<27} {:<8} {:>10} {:>10}",
                    "CHECK", "MODE", "VIOLATIONS", "WORKLOADS"
                ))
            )?;
            for check in CheckId::ALL {
                let Some(tally) = summary.by_check.get(&check) else {
                    continue;
                };
                let mode = tally.mode.map_or("?".to_owned(), |m| m.to_string());
                writeln!(
                    out,
                    "{:<27} {:<8} {:>10} {:>10}",
                    check.as_str(),
                    mode,
                    tally.violations,
                    tally.workloads
                )?;
            }
        }
        if summary.by_namespace.len() > 1 || summary.by_namespace.values().any(|t| t.violations > 0)
        {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                paint.bold(&format!(
                    "{:<27} {:>9} {:>8} {:>10}",
                    "NAMESPACE", "WORKLOADS", "FAILING", "VIOLATIONS"
                ))
            )?;
            for (namespace, tally) in &summary.by_namespace {
                let name = if namespace.is_empty() {
                    "(none given)"
                } else {
                    namespace.as_str()
                };
                writeln!(
                    out,
                    "{:<27} {:>9} {:>8} {:>10}",
                    name, tally.workloads, tally.failing, tally.violations
                )?;
            }
        }
        writeln!(out)?;
        let verdict = match summary.exit_code() {
            0 => paint.green(&format!(
                "PASS: no finding at or above --fail-on {threshold}."
            )),
            1 => paint.red(&format!(
                "FAIL: {} workload{} with findings at or above --fail-on {threshold}; fix {}, or run with --show-fix to see what mutate mode would change.",
                summary.failing,
                plural(summary.failing),
                if summary.failing == 1 { "it" } else { "them" }
            )),
            _ => paint.red(
                "INCOMPLETE: some inputs could not be read or judged; fix them and run again.",
            ),
        };
        writeln!(out, "{verdict}")?;
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
