//! The hub listing, the Kubewarden metadata, the deploy manifests and the policy itself
//! must tell the same story: one version, the same rules, the same kinds.

use std::path::{Path, PathBuf};

use podguard_policy::WorkloadKind;
use podguard_server::publish::annotate::Metadata;
use podguard_server::publish::artifacthub::{self, ListingSources};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn metadata() -> Metadata {
    Metadata::from_yaml_file(&repo().join("policy/metadata.yml")).expect("metadata.yml is valid")
}

fn annotation(metadata: &Metadata, key: &str) -> String {
    metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn metadata_version_is_the_policy_crate_version() {
    assert_eq!(
        annotation(&metadata(), "io.kubewarden.policy.version"),
        podguard_policy::VERSION
    );
}

#[test]
fn artifacthub_listing_is_what_the_metadata_generates() {
    let path = repo().join("artifacthub-pkg.yml");
    let committed = std::fs::read_to_string(&path).expect("artifacthub-pkg.yml exists");
    let created_at = artifacthub::existing_created_at(&committed).expect("it has createdAt");
    let questions_ui = std::fs::read_to_string(repo().join("policy/questions-ui.yml")).unwrap();
    let generated = artifacthub::render(&ListingSources {
        metadata: &metadata(),
        questions_ui: &questions_ui,
        created_at: &created_at,
    })
    .unwrap();
    assert!(
        committed == generated,
        "artifacthub-pkg.yml disagrees with policy/metadata.yml or questions-ui.yml; regenerate it with\n  \
         cargo run -p podguard-server -- artifacthub\n--- committed\n{committed}\n--- generated\n{generated}"
    );
    assert!(committed.contains(&format!("version: \"{}\"", podguard_policy::VERSION)));
}

#[test]
fn metadata_rules_cover_every_kind_the_policy_judges() {
    let metadata = metadata();
    assert!(metadata.mutating, "the policy can mutate");
    assert!(
        metadata.context_aware_resources.is_empty(),
        "the policy reads no cluster state"
    );
    for (group, resource, kind) in [
        ("", "pods", WorkloadKind::Pod),
        ("", "pods/ephemeralcontainers", WorkloadKind::Pod),
        (
            "",
            "replicationcontrollers",
            WorkloadKind::ReplicationController,
        ),
        ("apps", "deployments", WorkloadKind::Deployment),
        ("apps", "replicasets", WorkloadKind::ReplicaSet),
        ("apps", "statefulsets", WorkloadKind::StatefulSet),
        ("apps", "daemonsets", WorkloadKind::DaemonSet),
        ("batch", "jobs", WorkloadKind::Job),
        ("batch", "cronjobs", WorkloadKind::CronJob),
    ] {
        let covered = metadata.rules.iter().any(|rule| {
            rule.api_groups.iter().any(|g| g == group)
                && rule.resources.iter().any(|r| r == resource)
                && ["CREATE", "UPDATE"]
                    .iter()
                    .all(|op| rule.operations.iter().any(|o| o == op))
        });
        assert!(
            covered,
            "metadata.yml does not route {group}/{resource} ({kind}) CREATE and UPDATE to the policy"
        );
    }
    let resources: Vec<String> = annotation(&metadata, "io.artifacthub.resources")
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    for kind in [
        "Pod",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
    ] {
        assert!(
            resources.iter().any(|r| r == kind),
            "io.artifacthub.resources lacks {kind}"
        );
    }
}

#[test]
fn deploy_manifests_reference_this_version() {
    let version = podguard_policy::VERSION;
    let kubewarden =
        std::fs::read_to_string(repo().join("deploy/kubewarden/cluster-admission-policy.yaml"))
            .unwrap();
    let oci = annotation(&metadata(), "io.kubewarden.policy.ociUrl");
    assert!(
        kubewarden.contains(&format!("registry://{oci}:v{version}")),
        "the ClusterAdmissionPolicy must run registry://{oci}:v{version}"
    );
}
