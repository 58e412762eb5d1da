//! `--show-fix` and `--fix`: what mutate mode would change, and writing it back into the
//! files, byte for byte outside the rewritten documents.

mod audit_support;

use std::path::Path;

use audit_support::{Invocation, audit, audit_stdin, fixture, run, workloads};
use serde_json::Value;

fn copy_fixtures(dir: &Path) {
    for name in ["manifests.yaml", "list.json"] {
        std::fs::copy(fixture(&format!("fix/{name}")), dir.join(name)).unwrap();
    }
}

fn audit_in(dir: &Path, args: &[&str]) -> audit_support::Run {
    run(Invocation {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        cwd: Some(dir),
        ..Invocation::default()
    })
}

/// The documents of a YAML stream as text, split at `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.starts_with("---") {
            documents.push(String::new());
        }
        documents.last_mut().unwrap().push_str(line);
    }
    documents
}

#[test]
fn show_fix_prints_a_yaml_diff_and_the_json_patch() {
    let run = audit(&["tests/audit-fixtures/fix/manifests.yaml", "--show-fix"]);
    run.expect_code(1)
        .stdout_has("what mutate mode would change (YAML diff, then JSON Patch):")
        .stdout_has("    --- a/tests/audit-fixtures/fix/manifests.yaml")
        .stdout_has("    +      securityContext:")
        .stdout_has("    +        prometheus.io/port: '9102'")
        .stdout_has(r#"{"op":"add","path":"/spec/template/spec/securityContext","value":{"runAsNonRoot":true"#)
        // The privileged Job: mutate mode cannot fix drop-capabilities (privileged grants
        // every capability), so it would reject the Job; those fixes are left out and said
        // so.
        .stdout_has("left out: drop-capabilities, no-privilege-escalation (mutate mode cannot fix every violation of these checks here");

    let report = audit(&[
        "tests/audit-fixtures/fix/manifests.yaml",
        "--show-fix",
        "-o",
        "json",
    ])
    .json();
    let list = workloads(&report);
    let inventory = &list[0].1;
    let fixes: Vec<&str> = inventory["fix"]["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(fixes.contains(&"run-as-non-root") && fixes.contains(&"prometheus-annotations"));
    assert!(
        inventory["fix"]["patch"]
            .as_array()
            .unwrap()
            .iter()
            .all(|op| op["op"] == "add")
    );
    // Audit reports violations: the workload mutate mode would fix is still failing.
    assert_eq!(inventory["status"], "fail");
}

#[test]
fn show_fix_keeps_off_checks_off() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(&settings, "checks:\n  seccomp-profile:\n    mode: off\n").unwrap();
    let report = audit(&[
        "tests/audit-fixtures/fix/manifests.yaml",
        "--settings",
        settings.to_str().unwrap(),
        "--show-fix",
        "-o",
        "json",
    ])
    .json();
    let patch = serde_json::to_string(&report["workloads"][0]["fix"]["patch"]).unwrap();
    assert!(patch.contains("runAsNonRoot"), "{patch}");
    assert!(
        !patch.contains("seccompProfile"),
        "an off check is not switched on: {patch}"
    );
}

#[test]
fn fix_rewrites_only_the_fixed_documents_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let before = std::fs::read_to_string(dir.path().join("manifests.yaml")).unwrap();

    let run = audit_in(dir.path(), &[".", "--fix"]);
    // The privileged Job still fails: mutate mode cannot fix privileged.
    run.expect_code(1)
        .stdout_has("(fixed in the file)")
        .stdout_has("Rewrote 3 documents in 2 files");
    assert!(!run.stdout.contains("were not kept"), "{}", run.stdout);

    let after = std::fs::read_to_string(dir.path().join("manifests.yaml")).unwrap();
    let (old, new) = (documents(&before), documents(&after));
    assert_eq!(old.len(), new.len(), "same documents, same order:\n{after}");
    assert_eq!(
        old[0], new[0],
        "the ConfigMap, its comments included, is untouched"
    );
    assert_eq!(old[2], new[2], "the Service is untouched");
    assert_ne!(old[1], new[1]);
    // The Deployment gained lines and lost none: its comments, flow mappings and quoted
    // values are as they were.
    let mut kept = old[1].lines().peekable();
    for line in new[1].lines() {
        if kept.peek() == Some(&line) {
            kept.next();
        }
    }
    assert_eq!(
        kept.next(),
        None,
        "a line of the Deployment was lost:\n{}",
        new[1]
    );
    assert!(new[1].contains("      # The API container; --fix edits only the lines it needs"));
    assert!(new[1].contains("        - {name: FEATURE_FLAGS, value: \"on\"}\n"));
    assert!(
        new[1].starts_with(
            "---\n# Source: inventory/templates/deployment.yaml\napiVersion: apps/v1\n"
        )
    );
    assert!(new[3].starts_with("---\n# A privileged Job"));
    assert!(new[3].ends_with("...\n# trailing comment after an explicit document end\n"));
    // Values whose type YAML could change keep it.
    let parsed: Vec<Value> = serde_saphyr::from_multiple(&after).unwrap();
    let env = &parsed[1]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["value"], "on");
    assert_eq!(env[1]["value"], "30");

    let list = std::fs::read_to_string(dir.path().join("list.json")).unwrap();
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "untouched");
    assert_eq!(
        list["items"][1]["spec"]["securityContext"]["runAsNonRoot"], true,
        "the Pod in the JSON list is fixed"
    );

    // Fixed files audit clean in mutate mode's scope: mutate mode would change nothing
    // more, the Deployment now passes, and only what mutate mode cannot fix remains.
    let report = audit_in(dir.path(), &[".", "--show-fix", "-o", "json"]).json();
    for (name, entry) in workloads(&report) {
        assert!(
            entry.get("fix").is_none(),
            "{name} still has a fix: {entry}"
        );
    }
    let entries = workloads(&report);
    let inventory = &entries
        .iter()
        .find(|(n, _)| n == "Deployment shop/inventory")
        .unwrap()
        .1;
    assert_eq!(inventory["status"], "pass", "{inventory}");
    let reindex = &entries
        .iter()
        .find(|(n, _)| n == "Job shop/reindex")
        .unwrap()
        .1;
    assert!(
        reindex["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["check"] == "no-privileged")
    );

    // A second --fix has nothing left to do.
    let again = audit_in(dir.path(), &[".", "--fix"]);
    again.expect_code(1);
    assert!(!again.stdout.contains("Rewrote"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("manifests.yaml")).unwrap(),
        after
    );
}

#[test]
fn fix_refuses_stdin_and_live_input() {
    audit_stdin(&["-", "--fix"], b"kind: Pod\n")
        .expect_code(2)
        .stderr_has("--fix writes fixes back into files, and stdin is not a file");
    audit(&["--cluster", "--fix", "--kubeconfig", "/nonexistent"])
        .expect_code(2)
        .stderr_has("--fix writes fixes back into files; a live cluster");
}
