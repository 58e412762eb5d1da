//! The playground in a real browser: Debian's headless Chromium, driven through
//! chromedriver by `tests/node/browser.mjs`. It loads the page, checks every example's
//! verdict, pastes a non-compliant Deployment and finds each violation the native policy
//! reports, checks that YAML errors in either editor are shown at their line, switches a
//! check to mutate and finds the diff and patch, then follows the share link and finds
//! the same state. The screenshot lands in `target/playground-test/screenshot.png`.

mod support;

use std::net::TcpListener;
use std::path::Path;

use podguard_policy::{AdmissionRequest, Outcome};
use serde_json::{Value, json};

/// Two containers, neither marked non-root: `run-as-non-root` rejects both, and the
/// log shipper's writable root filesystem is a warning. Mutate mode fixes the rejection
/// with one pod-level field, so switching that one check yields an admitted, patched object.
const WORKLOAD: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: storefront
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: storefront}
  template:
    metadata:
      labels: {app: storefront}
      annotations:
        prometheus.io/scrape: \"true\"
        prometheus.io/port: \"9090\"
        prometheus.io/path: /metrics
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: web
          image: ghcr.io/acme/storefront:4.1.0
          ports:
            - {name: metrics, containerPort: 9090, protocol: TCP}
          resources:
            limits: {cpu: 500m, memory: 256Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
        - name: log-shipper
          image: fluent/fluent-bit:3.2.2
          resources:
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
";

/// What the native policy answers for [`WORKLOAD`] as a CREATE under `settings`, in the
/// shape the browser test reads off the page.
fn native(settings: &Value) -> (Outcome, Value) {
    let object: Value = serde_saphyr::from_str(WORKLOAD).unwrap();
    let request: AdmissionRequest = serde_json::from_value(json!({
        "uid": "browser-test",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "operation": "CREATE",
        "name": "storefront",
        "namespace": "shop",
        "object": object,
    }))
    .unwrap();
    let policy = podguard_policy::policy_from_settings(settings).unwrap();
    let outcome = podguard_policy::evaluate(&policy, &request);
    let patch = outcome
        .mutated_object
        .as_ref()
        // As a webhook (and the conformance harness) turns the mutated object into a patch.
        .map(|mutated| serde_json::to_value(json_patch::diff(&object, mutated)).unwrap())
        .unwrap_or(Value::Null);
    let shown = json!({
        "violations": outcome.violations.iter().map(|v| json!({
            "check": v.check,
            "container": v.container,
            "field": v.field,
            "disposition": v.disposition,
            "message": v.message,
        })).collect::<Vec<_>>(),
        "message": outcome.message,
        "warnings": outcome.warnings,
        "patch": patch,
    });
    (outcome, shown)
}

#[test]
fn chromium_runs_the_playground() {
    let chromium =
        std::env::var("PODGUARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing; install it: apt-get install chromium chromium-driver (scripts/test does)"
    );
    let site = support::site();

    let (denied, denied_shown) = native(&json!({}));
    assert!(!denied.accepted);
    let rejected: Vec<_> = denied
        .violations
        .iter()
        .map(|v| (v.check.as_str(), v.container.as_deref()))
        .collect();
    assert!(
        rejected.contains(&("run-as-non-root", Some("web")))
            && rejected.contains(&("run-as-non-root", Some("log-shipper")))
            && rejected.contains(&("read-only-root-filesystem", Some("log-shipper"))),
        "the test workload no longer fails as this test expects: {rejected:?}"
    );
    let (mutated, mut mutated_shown) =
        native(&json!({"checks": {"run-as-non-root": {"mode": "mutate"}}}));
    assert!(
        mutated.accepted && mutated.mutated_object.is_some(),
        "{mutated:?}"
    );
    mutated_shown["diffAdds"] = json!(["runAsNonRoot: true"]);

    let case = json!({
        "site": site,
        "workload": WORKLOAD,
        "name": "storefront",
        "denied": denied_shown,
        "mutateCheck": "run-as-non-root",
        "mutated": mutated_shown,
    });

    let out = support::target_dir().join("playground-test");
    std::fs::create_dir_all(&out).unwrap();
    let case_path = out.join("case.json");
    std::fs::write(&case_path, serde_json::to_vec_pretty(&case).unwrap()).unwrap();
    let screenshot = out.join("screenshot.png");
    let _ = std::fs::remove_file(&screenshot);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let root = site.to_path_buf();
    std::thread::spawn(move || podguard_playground::serve(listener, root));

    let output = support::node(
        &[
            "playground/tests/node/browser.mjs",
            &url,
            case_path.to_str().unwrap(),
            screenshot.to_str().unwrap(),
        ],
        b"",
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let png = std::fs::read(&screenshot).expect("the browser test saved a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
}
