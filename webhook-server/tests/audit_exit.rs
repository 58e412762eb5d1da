//! Exit codes of `podguard audit`: 0 nothing at or above `--fail-on`, 1 findings, 2 usage
//! or input errors, and messages that say what to do.

mod audit_support;

use audit_support::{audit, audit_stdin};

const COMPLIANT: &str = "tests/audit-fixtures/exit/compliant.yaml";
const WARN_ONLY: &str = "tests/audit-fixtures/exit/warn-only.yaml";
const FAILING: &str = "tests/audit-fixtures/manifests/app.yaml";

#[test]
fn compliant_workloads_exit_0() {
    audit(&[COMPLIANT])
        .expect_code(0)
        .stdout_has("Audited 1 workload: 1 compliant, 0 failing.")
        .stdout_has("PASS");
    audit(&[COMPLIANT, "--fail-on", "warn"]).expect_code(0);
}

#[test]
fn warn_mode_findings_fail_only_with_fail_on_warn() {
    audit(&[WARN_ONLY])
        .expect_code(0)
        .stdout_has("with findings below --fail-on enforce")
        .stdout_has("  warn     read-only-root-filesystem: container \"redis\"")
        .stdout_has("  warn     image-tag-pinned: container \"redis\"");
    audit(&[WARN_ONLY, "--fail-on", "warn"])
        .expect_code(1)
        .stdout_has("FAIL: 1 workload with findings at or above --fail-on warn");
}

#[test]
fn enforce_and_mutate_mode_findings_exit_1() {
    audit(&[FAILING]).expect_code(1);
    // A check in mutate mode still counts: the workload is not compliant as it stands.
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("mutate.yaml");
    std::fs::write(
        &settings,
        "checks:\n  run-as-non-root: {mode: mutate}\n  drop-capabilities: {mode: mutate}\n",
    )
    .unwrap();
    let run = audit(&[
        FAILING,
        "--settings",
        settings.to_str().unwrap(),
        "-o",
        "json",
    ]);
    run.expect_code(1);
    let report = run.json();
    let violations = report["workloads"][0]["violations"].as_array().unwrap();
    let non_root = violations
        .iter()
        .find(|v| v["check"] == "run-as-non-root")
        .unwrap();
    assert_eq!(non_root["mode"], "mutate");
    assert_eq!(non_root["disposition"], "fixed");
    assert_eq!(report["workloads"][0]["status"], "fail");
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    audit(&[]).expect_code(2).stderr_has(
        "nothing to audit: name files or directories (or - for stdin), or pass --cluster",
    );
    audit(&[COMPLIANT, "--write-reports"]).expect_code(2);
    audit(&[COMPLIANT, "--show-fix", "-o", "sarif"])
        .expect_code(2)
        .stderr_has("--show-fix prints fixes in the table or json report");
    audit(&[COMPLIANT, "-o", "xml"])
        .expect_code(2)
        .stderr_has("\"xml\" is not a report format: write one of table, json, sarif");
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("bad.yaml");
    std::fs::write(
        &settings,
        "checks:\n  run-as-non-root:\n    mode: sometimes\n",
    )
    .unwrap();
    audit(&[COMPLIANT, "--settings", settings.to_str().unwrap()])
        .expect_code(2)
        .stderr_has("checks.run-as-non-root");
    audit_stdin(&["-", "-"], b"")
        .expect_code(2)
        .stderr_has("stdin (-) can be read only once");
}

#[test]
fn input_errors_exit_2_even_with_findings() {
    audit(&[FAILING, "tests/audit-fixtures/broken/broken.yaml"]).expect_code(2);
}

/// `rollout.observeOnly` turns every finding into a warning, so an audit passes at the
/// default `--fail-on enforce` and still lists each finding; a `rollout.namespaces` entry
/// for `shop` enforces again there, and one for another namespace changes nothing.
#[test]
fn observe_only_and_namespace_modes_set_what_an_audit_fails_on() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let observe = write("observe.yaml", "rollout:\n  observeOnly: true\n");
    let run = audit(&[FAILING, "--settings", &observe, "-o", "json"]);
    run.expect_code(0);
    let report = run.json();
    let violations: Vec<&serde_json::Value> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["violations"].as_array().unwrap())
        .collect();
    assert!(
        !violations.is_empty(),
        "observe-only still reports findings"
    );
    assert!(
        violations.iter().all(|v| v["mode"] == "warn"),
        "{violations:?}"
    );

    let warn_but_shop = write(
        "namespaces.yaml",
        "rollout:\n  namespaces:\n    - names: [team-*]\n      mode: warn\n    - names: [sh*]\n      mode: warn\n      checks: {run-as-non-root: enforce}\n",
    );
    let run = audit(&[FAILING, "--settings", &warn_but_shop, "-o", "json"]);
    run.expect_code(1);
    let report = run.json();
    for workload in report["workloads"].as_array().unwrap() {
        for v in workload["violations"].as_array().unwrap() {
            let expected = if v["check"] == "run-as-non-root" {
                "enforce"
            } else {
                "warn"
            };
            assert_eq!(v["mode"], expected, "{v}");
        }
    }
}
