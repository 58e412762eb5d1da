//! The edge cases podguard must get right (README, "How it reads Kubernetes"), driven through the policy
//! crate's public API only: settings in, admission requests in, outcomes out.
//!
//! Every test starts from an object that passes every default check and breaks exactly
//! what it is about, so the exact check ids, field paths and messages can be asserted.

mod support {
    #![allow(dead_code)]

    use podguard_policy::{
        AdmissionRequest, Outcome, Policy, Violation, evaluate, policy_from_settings,
    };
    use serde_json::{Map, Value, json};

    // ---- objects -------------------------------------------------------------------

    /// A container that passes every default container check; it declares no port.
    pub fn container(name: &str) -> Value {
        json!({
            "name": name,
            "image": format!("registry.example.com/shop/{name}:1.4.2"),
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            },
            "resources": {
                "limits": {"cpu": "500m", "memory": "256Mi"},
                "requests": {"cpu": "100m", "memory": "128Mi"}
            }
        })
    }

    /// The `app` container: compliant, and declares TCP port 9090 named `metrics`.
    pub fn app() -> Value {
        let mut c = container("app");
        c["ports"] = json!([{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]);
        c
    }

    /// The three Prometheus annotations naming port 9090.
    pub fn prometheus() -> Value {
        json!({
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9090",
            "prometheus.io/path": "/metrics"
        })
    }

    /// A Pod named `web` in `shop` that passes every default check.
    pub fn pod_with(containers: Vec<Value>) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {"app": "web"},
                "annotations": prometheus()
            },
            "spec": {
                "securityContext": {
                    "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "containers": containers
            }
        })
    }

    /// [`pod_with`] the single [`app`] container.
    pub fn pod() -> Value {
        pod_with(vec![app()])
    }

    fn template_of(pod: &Value) -> Value {
        let mut metadata = Map::new();
        for key in ["labels", "annotations"] {
            if let Some(value) = pod["metadata"].get(key) {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
        json!({"metadata": metadata, "spec": pod["spec"].clone()})
    }

    /// A Deployment `web` whose template is `pod`'s labels, annotations and spec.
    pub fn deployment(pod: &Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template_of(pod)
            }
        })
    }

    /// A CronJob `nightly` whose job template's pod template is `pod`'s.
    pub fn cronjob(pod: &Value) -> Value {
        let mut template = template_of(pod);
        template["spec"]["restartPolicy"] = json!("OnFailure");
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": template}}
            }
        })
    }

    fn segments(pointer: &str) -> Vec<String> {
        assert!(pointer.starts_with('/'), "{pointer} is not a JSON pointer");
        pointer[1..]
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    }

    /// Sets the value at a JSON pointer, creating missing maps on the way.
    pub fn set(target: &mut Value, pointer: &str, value: Value) {
        let segments = segments(pointer);
        let (last, parents) = segments.split_last().expect("a non-empty pointer");
        let mut current = target;
        for segment in parents {
            current = match current {
                Value::Array(items) => &mut items[segment.parse::<usize>().expect("an index")],
                Value::Object(map) => map
                    .entry(segment.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                other => panic!("cannot walk through {other} at {segment} of {pointer}"),
            };
        }
        match current {
            Value::Array(items) => {
                let index = last.parse::<usize>().expect("an index");
                if index == items.len() {
                    items.push(value);
                } else {
                    items[index] = value;
                }
            }
            Value::Object(map) => {
                map.insert(last.clone(), value);
            }
            other => panic!("cannot set {pointer} inside {other}"),
        }
    }

    /// Removes the map entry at a JSON pointer; panics when it is absent, so a test never
    /// silently removes nothing.
    pub fn remove(target: &mut Value, pointer: &str) {
        let segments = segments(pointer);
        let (last, parents) = segments.split_last().expect("a non-empty pointer");
        let parent_pointer: String = parents.iter().map(|s| format!("/{s}")).collect();
        let parent = target
            .pointer_mut(&parent_pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no map at {parent_pointer:?}"));
        assert!(
            parent.remove(last).is_some(),
            "nothing to remove at {pointer}"
        );
    }

    // ---- requests and settings -----------------------------------------------------

    /// An AdmissionRequest (as JSON) for `object`, kind and namespace taken from it.
    pub fn review(operation: &str, object: &Value) -> Value {
        let api_version = object["apiVersion"].as_str().unwrap_or("v1");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": &object["kind"]},
            "operation": operation,
            "namespace": object["metadata"]["namespace"].as_str().unwrap_or("shop"),
            "name": &object["metadata"]["name"],
            "object": object,
            "dryRun": false
        })
    }

    /// An UPDATE from `old` to `new`.
    pub fn update_review(old: &Value, new: &Value) -> Value {
        let mut review = review("UPDATE", new);
        review["oldObject"] = old.clone();
        review
    }

    /// Parses a request as a host would.
    pub fn request(review: &Value) -> AdmissionRequest {
        serde_json::from_value(review.clone())
            .unwrap_or_else(|err| panic!("request does not parse: {err}\n{review:#}"))
    }

    /// Compiles runtime settings layered over the embedded requirements.
    pub fn policy(settings: &Value) -> Policy {
        policy_from_settings(settings)
            .unwrap_or_else(|err| panic!("settings {settings} were refused: {err}"))
    }

    /// Evaluates one request under `settings`, both ways a request reaches the policy: as
    /// `Value`s a caller built, and as the JSON text a host sends, which must agree.
    pub fn judge(settings: &Value, review: &Value) -> Outcome {
        let from_values = evaluate(&policy(settings), &request(review));
        let payload = json!({"request": review, "settings": settings}).to_string();
        let from_text = podguard_policy::evaluate_payload(payload.as_bytes())
            .unwrap_or_else(|err| panic!("the payload was refused: {err}\n{payload}"));
        assert_eq!(
            from_values, from_text,
            "a request's Values and its text are judged alike"
        );
        from_text
    }

    /// Evaluates a CREATE of `object` under `settings`.
    pub fn create(settings: &Value, object: &Value) -> Outcome {
        judge(settings, &review("CREATE", object))
    }

    /// No runtime settings: the embedded requirements alone.
    pub fn defaults() -> Value {
        json!({})
    }

    /// Settings that set only the given checks' modes.
    pub fn modes(pairs: &[(&str, &str)]) -> Value {
        let mut checks = Map::new();
        for (check, mode) in pairs {
            checks.insert((*check).to_owned(), json!({"mode": mode}));
        }
        json!({"checks": checks})
    }

    /// Settings that let workloads in `namespaces` exempt themselves from `checks`.
    pub fn annotation_exemptions(checks: &[&str], namespaces: &[&str]) -> Value {
        json!({"exemptions": {"annotation": {"checks": checks, "namespaces": namespaces}}})
    }

    /// Every check that has a mutation, in mutate mode.
    pub fn mutate_all() -> Value {
        modes(&[
            ("run-as-non-root", "mutate"),
            ("drop-capabilities", "mutate"),
            ("resource-limits", "mutate"),
            ("prometheus-annotations", "mutate"),
            ("no-privilege-escalation", "mutate"),
            ("read-only-root-filesystem", "mutate"),
            ("seccomp-profile", "mutate"),
        ])
    }

    // ---- assertions ----------------------------------------------------------------

    /// The whole outcome, for failure messages.
    pub fn show(o: &Outcome) -> String {
        let mut out = format!(
            "accepted: {}\nmessage: {:?}\nwarnings: {:#?}\nviolations:\n",
            o.accepted, o.message, o.warnings
        );
        for v in &o.violations {
            out.push_str(&format!(
                "  [{} | {} | {:?} | fixable={} | container={:?} | field={}] {}\n",
                v.check, v.mode, v.disposition, v.fixable, v.container, v.field, v.message
            ));
        }
        out.push_str(&format!(
            "audit annotations: {:?}\nexemptions: {:?}\nmutated: {}",
            o.audit_annotations,
            o.exemptions,
            o.mutated_object.is_some()
        ));
        out
    }

    /// The violations of one check.
    pub fn of<'o>(o: &'o Outcome, check: &str) -> Vec<&'o Violation> {
        o.violations
            .iter()
            .filter(|v| v.check.as_str() == check)
            .collect()
    }

    /// The distinct check ids violated, sorted.
    pub fn checks(o: &Outcome) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = o.violations.iter().map(|v| v.check.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The violated check ids are exactly `expected`.
    #[track_caller]
    pub fn assert_checks(o: &Outcome, expected: &[&str], context: &str) {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(
            checks(o),
            expected,
            "{context}: violated checks\n  expected: {expected:?}\n  actual:   {:?}\n{}",
            checks(o),
            show(o)
        );
    }

    /// The fields one check reports are exactly `expected` (in any order).
    #[track_caller]
    pub fn assert_fields(o: &Outcome, check: &str, expected: &[&str], context: &str) {
        let mut actual: Vec<&str> = of(o, check).iter().map(|v| v.field.as_str()).collect();
        actual.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(
            actual,
            expected,
            "{context}: fields of {check}\n  expected: {expected:?}\n  actual:   {actual:?}\n{}",
            show(o)
        );
    }

    /// The one violation of `check` at `field`.
    #[track_caller]
    pub fn violation<'o>(o: &'o Outcome, check: &str, field: &str) -> &'o Violation {
        let found: Vec<&Violation> = of(o, check)
            .into_iter()
            .filter(|v| v.field == field)
            .collect();
        match found.as_slice() {
            [one] => one,
            _ => panic!(
                "expected exactly one {check} violation at {field}, found {}\n{}",
                found.len(),
                show(o)
            ),
        }
    }

    /// `text` contains every needle.
    #[track_caller]
    pub fn assert_contains(text: &str, needles: &[&str], context: &str) {
        for needle in needles {
            assert!(
                text.contains(needle),
                "{context}: expected to find {needle:?}\n  in: {text:?}"
            );
        }
    }

    /// Some warning contains every needle.
    #[track_caller]
    pub fn assert_warning(o: &Outcome, needles: &[&str], context: &str) {
        assert!(
            o.warnings
                .iter()
                .any(|w| needles.iter().all(|n| w.contains(n))),
            "{context}: expected a warning containing {needles:?}\n{}",
            show(o)
        );
    }

    /// Accepted with nothing to say: no violation, warning, mutation or message.
    #[track_caller]
    pub fn assert_clean(o: &Outcome, context: &str) {
        assert!(
            o.accepted
                && o.violations.is_empty()
                && o.warnings.is_empty()
                && o.mutated_object.is_none()
                && o.message.is_none(),
            "{context}: expected a clean accept\n{}",
            show(o)
        );
    }

    /// Accepted without looking: the answer of a request podguard does not judge.
    #[track_caller]
    pub fn assert_untouched(o: &Outcome, context: &str) {
        assert!(
            o.accepted
                && o.message.is_none()
                && o.warnings.is_empty()
                && o.mutated_object.is_none()
                && o.audit_annotations.is_empty()
                && o.violations.is_empty()
                && o.exemptions.is_empty(),
            "{context}: expected an untouched accept\n{}",
            show(o)
        );
    }

    /// Rejected.
    #[track_caller]
    pub fn assert_rejected(o: &Outcome, context: &str) {
        assert!(
            !o.accepted && o.mutated_object.is_none() && o.message.is_some(),
            "{context}: expected a rejection without a mutated object\n{}",
            show(o)
        );
    }

    /// The mutated object of an accepted outcome.
    #[track_caller]
    pub fn mutated<'o>(o: &'o Outcome, context: &str) -> &'o Value {
        assert!(o.accepted, "{context}: expected an accept\n{}", show(o));
        o.mutated_object
            .as_ref()
            .unwrap_or_else(|| panic!("{context}: expected a mutated object\n{}", show(o)))
    }

    /// The exact serialisation, for byte-identity checks.
    pub fn text(value: &Value) -> String {
        serde_json::to_string(value).expect("JSON serialises")
    }

    /// `before` and `after` serialise to the same bytes.
    #[track_caller]
    pub fn assert_same_bytes(before: &Value, after: &Value, what: &str) {
        assert_eq!(
            text(before),
            text(after),
            "{what} must stay byte-identical\n  before: {}\n  after:  {}",
            text(before),
            text(after)
        );
    }

    /// Equal JSON values, printing both.
    #[track_caller]
    pub fn assert_json(actual: &Value, expected: &Value, what: &str) {
        assert_eq!(
            actual, expected,
            "{what}\n  expected: {expected:#}\n  actual:   {actual:#}"
        );
    }
}

use podguard_policy::{
    CheckId, Disposition, ExemptedBy, Mode, WorkloadKind, evaluate_object, settings_from_overrides,
    validate_payload, validate_settings_payload,
};
use serde_json::{Value, json};
use support::*;

// =====================================================================================
// run-as-non-root
// =====================================================================================

#[test]
fn baseline_objects_pass_every_default_check() {
    for (name, object) in [
        ("pod", pod()),
        ("deployment", deployment(&pod())),
        ("cronjob", cronjob(&pod())),
    ] {
        assert_clean(&create(&defaults(), &object), name);
        assert_clean(&create(&mutate_all(), &object), name);
    }
}

#[test]
fn container_run_as_non_root_false_overrides_pod_true() {
    let mut p = pod_with(vec![app(), container("sidecar")]);
    set(
        &mut p,
        "/spec/containers/1/securityContext/runAsNonRoot",
        json!(false),
    );
    let o = create(&defaults(), &deployment(&p));

    assert_rejected(&o, "container false beats pod true");
    assert_checks(&o, &["run-as-non-root"], "only the overriding container");
    let field = "spec.template.spec.containers[1].securityContext.runAsNonRoot";
    let v = violation(&o, "run-as-non-root", field);
    assert_eq!(v.container.as_deref(), Some("sidecar"), "{}", show(&o));
    assert_eq!(
        v.message,
        format!(r#"run-as-non-root: container "sidecar" ({field}) is false: set it to true"#)
    );
    assert!(!v.fixable, "an explicit false is the user's choice: {v:?}");
    assert_eq!(v.disposition, Disposition::Rejected);
    assert_eq!(
        o.message.as_deref(),
        Some(
            format!(
                "Deployment \"web\" violates podguard's requirements (1 violation):\n{}",
                v.message
            )
            .as_str()
        )
    );

    // The reverse: a container's true beats the pod's false.
    let mut p = pod();
    set(&mut p, "/spec/securityContext/runAsNonRoot", json!(false));
    set(
        &mut p,
        "/spec/containers/0/securityContext/runAsNonRoot",
        json!(true),
    );
    assert_clean(&create(&defaults(), &p), "container true beats pod false");
}

#[test]
fn run_as_non_root_true_with_uid_0_is_refused_by_the_kubelet() {
    // (case, pod securityContext additions, container securityContext additions, field)
    let cases: [(&str, Value, Value, Option<&str>); 5] = [
        (
            "pod runAsUser 0 under pod runAsNonRoot",
            json!({"runAsUser": 0}),
            json!({}),
            Some("spec.securityContext.runAsUser"),
        ),
        (
            "container runAsUser 0 under pod runAsNonRoot",
            json!({}),
            json!({"runAsUser": 0}),
            Some("spec.containers[0].securityContext.runAsUser"),
        ),
        (
            "container runAsNonRoot and runAsUser 0",
            json!({"runAsNonRoot": null}),
            json!({"runAsNonRoot": true, "runAsUser": 0}),
            Some("spec.containers[0].securityContext.runAsUser"),
        ),
        (
            "pod runAsUser 0 under container runAsNonRoot",
            json!({"runAsNonRoot": null, "runAsUser": 0}),
            json!({"runAsNonRoot": true}),
            Some("spec.securityContext.runAsUser"),
        ),
        (
            "container runAsUser 1000 overrides pod runAsUser 0",
            json!({"runAsUser": 0}),
            json!({"runAsUser": 1000}),
            None,
        ),
    ];
    for (case, pod_sc, container_sc, field) in cases {
        let mut p = pod();
        for (key, value) in pod_sc.as_object().unwrap() {
            set(
                &mut p,
                &format!("/spec/securityContext/{key}"),
                value.clone(),
            );
        }
        for (key, value) in container_sc.as_object().unwrap() {
            set(
                &mut p,
                &format!("/spec/containers/0/securityContext/{key}"),
                value.clone(),
            );
        }
        for settings in [defaults(), mutate_all()] {
            let o = create(&settings, &p);
            let Some(field) = field else {
                assert_clean(&o, case);
                continue;
            };
            assert_rejected(&o, case);
            assert_checks(&o, &["run-as-non-root"], case);
            let v = violation(&o, "run-as-non-root", field);
            assert_eq!(v.container.as_deref(), Some("app"), "{case}");
            assert_contains(
                &v.message,
                &[
                    field,
                    "is 0 while runAsNonRoot is true",
                    "the kubelet will refuse to start it",
                    "set a non-zero uid",
                ],
                case,
            );
            assert!(!v.fixable, "{case}: uid 0 is never fixed for the user");
        }
    }
}

#[test]
fn run_as_user_without_run_as_non_root_is_a_violation_and_mutate_adds_it() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    set(&mut p, "/spec/securityContext/runAsUser", json!(1001));
    set(&mut p, "/spec/futureField", json!({"x": 1}));
    set(&mut p, "/spec/containers/0/futureField", json!({"x": 1}));

    let o = create(&defaults(), &p);
    assert_rejected(&o, "runAsUser alone");
    assert_checks(&o, &["run-as-non-root"], "runAsUser alone");
    let field = "spec.containers[0].securityContext.runAsNonRoot";
    let v = violation(&o, "run-as-non-root", field);
    assert_contains(
        &v.message,
        &[
            "is unset while runAsUser is 1001",
            "set it to true so the kubelet enforces it",
        ],
        "message suggests runAsNonRoot",
    );
    assert!(v.fixable);

    let settings = modes(&[("run-as-non-root", "mutate")]);
    let o = create(&settings, &p);
    let m = mutated(&o, "mutate adds runAsNonRoot");
    assert_json(
        &m["spec"]["securityContext"],
        &json!({"runAsUser": 1001, "seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true}),
        "the pod's securityContext gains runAsNonRoot: true and keeps the rest",
    );
    assert_same_bytes(
        &p["spec"]["containers"],
        &m["spec"]["containers"],
        "containers",
    );
    assert_json(
        &m["spec"]["futureField"],
        &json!({"x": 1}),
        "pod futureField",
    );
    assert_eq!(
        violation(&o, "run-as-non-root", field).disposition,
        Disposition::Fixed
    );
    assert_eq!(
        o.audit_annotations.get("mutated").map(String::as_str),
        Some("run-as-non-root")
    );
    assert_clean(
        &create(&settings, m),
        "the mutated pod validates clean under the same settings",
    );

    // A container-level runAsUser: the message names it, the fix still goes on the pod.
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    set(
        &mut p,
        "/spec/containers/0/securityContext/runAsUser",
        json!(1001),
    );
    let o = create(&defaults(), &p);
    assert_contains(
        &violation(&o, "run-as-non-root", field).message,
        &[field, "is unset while runAsUser is 1001", "set it to true"],
        "container runAsUser",
    );
    let o = create(&settings, &p);
    let m = mutated(&o, "container runAsUser, mutate");
    assert_eq!(m["spec"]["securityContext"]["runAsNonRoot"], json!(true));
    assert_same_bytes(
        &p["spec"]["containers"],
        &m["spec"]["containers"],
        "containers",
    );
}

#[test]
fn uid_0_is_reported_beside_a_run_as_non_root_that_is_not_true() {
    // (case, runAsNonRoot on the pod, message at the runAsNonRoot field)
    let cases: [(&str, Option<Value>, &str, &str); 2] = [
        (
            "unset",
            None,
            "spec.containers[0].securityContext.runAsNonRoot",
            "must be true",
        ),
        (
            "false",
            Some(json!(false)),
            "spec.securityContext.runAsNonRoot",
            "is false: set it to true",
        ),
    ];
    for (case, non_root, non_root_field, non_root_message) in cases {
        let mut p = pod();
        match non_root {
            Some(value) => set(&mut p, "/spec/securityContext/runAsNonRoot", value),
            None => remove(&mut p, "/spec/securityContext/runAsNonRoot"),
        }
        set(
            &mut p,
            "/spec/containers/0/securityContext/runAsUser",
            json!(0),
        );
        let o = create(&defaults(), &p);
        assert_rejected(&o, case);
        assert_checks(&o, &["run-as-non-root"], case);
        let user_field = "spec.containers[0].securityContext.runAsUser";
        assert_fields(&o, "run-as-non-root", &[user_field, non_root_field], case);
        let user = violation(&o, "run-as-non-root", user_field);
        assert_contains(&user.message, &["is 0 (root): set a non-zero uid"], case);
        assert!(!user.fixable, "{case}: uid 0 is never fixed for the user");
        assert_contains(
            &violation(&o, "run-as-non-root", non_root_field).message,
            &[non_root_message],
            case,
        );
    }
}

#[test]
fn default_run_as_user_is_set_on_the_pod_only_where_unset() {
    let settings =
        json!({"checks": {"run-as-non-root": {"mode": "mutate", "defaultRunAsUser": 10001}}});
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    let o = create(&settings, &p);
    let m = mutated(&o, "defaultRunAsUser");
    assert_json(
        &m["spec"]["securityContext"],
        &json!({"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true, "runAsUser": 10001}),
        "runAsNonRoot and the default uid",
    );

    set(&mut p, "/spec/securityContext/runAsUser", json!(2000));
    let o = create(&settings, &p);
    let m = mutated(&o, "defaultRunAsUser with a uid already set");
    assert_eq!(
        m["spec"]["securityContext"]["runAsUser"],
        json!(2000),
        "a uid the user chose is never overwritten"
    );
}

#[test]
fn init_and_ephemeral_containers_count_for_run_as_non_root() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    set(
        &mut p,
        "/spec/containers/0/securityContext/runAsNonRoot",
        json!(true),
    );
    set(&mut p, "/spec/initContainers", json!([container("setup")]));
    let o = create(&defaults(), &p);
    assert_checks(&o, &["run-as-non-root"], "init container");
    let v = violation(
        &o,
        "run-as-non-root",
        "spec.initContainers[0].securityContext.runAsNonRoot",
    );
    assert_eq!(v.container.as_deref(), Some("setup"));
    assert_contains(
        &v.message,
        &[r#"container "setup""#, "must be true"],
        "init",
    );

    // Ephemeral containers exist only on a running pod: judge it as audit would.
    set(
        &mut p,
        "/spec/ephemeralContainers",
        json!([{
            "name": "debugger",
            "image": "busybox:1.36",
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            }
        }]),
    );
    let o = evaluate_object(&policy(&defaults()), WorkloadKind::Pod, &p);
    assert_checks(&o, &["run-as-non-root"], "init and ephemeral");
    assert_fields(
        &o,
        "run-as-non-root",
        &[
            "spec.initContainers[0].securityContext.runAsNonRoot",
            "spec.ephemeralContainers[0].securityContext.runAsNonRoot",
        ],
        "init and ephemeral",
    );
    let v = violation(
        &o,
        "run-as-non-root",
        "spec.ephemeralContainers[0].securityContext.runAsNonRoot",
    );
    assert_eq!(v.container.as_deref(), Some("debugger"));
}

// =====================================================================================
// drop-capabilities and privileged
// =====================================================================================

#[test]
fn capability_names_compare_case_insensitively_without_the_cap_prefix() {
    let caps = "/spec/containers/0/securityContext/capabilities";
    let base = "spec.containers[0].securityContext.capabilities";
    // (case, capabilities, expected (field, message parts) or None for a pass)
    type Case<'a> = (&'a str, Value, Option<(String, Vec<&'a str>)>);
    let cases: Vec<Case> = vec![
        (
            "add cap_sys_admin",
            json!({"drop": ["ALL"], "add": ["cap_sys_admin"]}),
            Some((
                format!("{base}.add[0]"),
                vec![
                    "\"cap_sys_admin\"",
                    "(SYS_ADMIN)",
                    "only NET_BIND_SERVICE may be added",
                ],
            )),
        ),
        (
            "add SYS_ADMIN",
            json!({"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            Some((
                format!("{base}.add[0]"),
                vec![
                    "adds SYS_ADMIN, but only NET_BIND_SERVICE may be added",
                    "remove it",
                ],
            )),
        ),
        (
            "add CAP_SYS_ADMIN after an allowed one",
            json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_SYS_ADMIN"]}),
            Some((
                format!("{base}.add[1]"),
                vec!["\"CAP_SYS_ADMIN\"", "(SYS_ADMIN)"],
            )),
        ),
        ("drop all", json!({"drop": ["all"]}), None),
        ("drop ALL", json!({"drop": ["ALL"]}), None),
        (
            "drop ALL add NET_BIND_SERVICE",
            json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
            None,
        ),
        (
            "drop ALL add net_bind_service",
            json!({"drop": ["ALL"], "add": ["net_bind_service"]}),
            None,
        ),
        (
            "drop ALL add CAP_NET_BIND_SERVICE",
            json!({"drop": ["ALL"], "add": ["CAP_NET_BIND_SERVICE"]}),
            None,
        ),
        (
            "drop only some",
            json!({"drop": ["NET_RAW", "cap_chown"]}),
            Some((format!("{base}.drop"), vec!["must include ALL"])),
        ),
        (
            "no drop at all",
            json!({}),
            Some((format!("{base}.drop"), vec!["must include ALL"])),
        ),
    ];
    for (case, capabilities, expected) in cases {
        let mut p = pod();
        set(&mut p, caps, capabilities);
        let o = create(&defaults(), &p);
        match expected {
            None => assert_clean(&o, case),
            Some((field, parts)) => {
                assert_rejected(&o, case);
                assert_checks(&o, &["drop-capabilities"], case);
                assert_eq!(of(&o, "drop-capabilities").len(), 1, "{case}\n{}", show(&o));
                let v = violation(&o, "drop-capabilities", &field);
                assert_contains(&v.message, &parts, case);
                assert_eq!(v.container.as_deref(), Some("app"), "{case}");
            }
        }
    }
}

#[test]
fn drop_all_lowercase_passes_and_mutate_rewrites_it_to_all() {
    let mut p = pod_with(vec![app(), container("sidecar")]);
    set(
        &mut p,
        "/spec/containers/0/securityContext/capabilities/drop",
        json!(["NET_RAW", "all"]),
    );
    set(&mut p, "/spec/containers/0/futureField", json!({"x": 1}));
    set(&mut p, "/spec/futureField", json!({"x": 1}));

    let o = create(&defaults(), &p);
    assert_clean(&o, "enforce mode reads `all` as ALL");

    let settings = modes(&[("drop-capabilities", "mutate")]);
    let o = create(&settings, &p);
    let m = mutated(&o, "mutate normalises `all`");
    assert!(
        o.violations.is_empty(),
        "a spelling is not a violation\n{}",
        show(&o)
    );
    let mut expected_app = p["spec"]["containers"][0].clone();
    set(
        &mut expected_app,
        "/securityContext/capabilities/drop",
        json!(["NET_RAW", "ALL"]),
    );
    assert_same_bytes(
        &expected_app,
        &m["spec"]["containers"][0],
        "app with drop rewritten in place",
    );
    assert_same_bytes(
        &p["spec"]["containers"][1],
        &m["spec"]["containers"][1],
        "untouched sidecar",
    );
    assert_json(
        &m["spec"]["futureField"],
        &json!({"x": 1}),
        "pod futureField",
    );
    assert_eq!(
        o.audit_annotations.get("mutated").map(String::as_str),
        Some("drop-capabilities")
    );
    assert_clean(&create(&settings, m), "normalised drop is stable");
}

/// containerd (v2.3.4, v2.2.7, v1.7.34: `WithCapabilities`) and CRI-O (v1.36.3:
/// `SpecSetupCapabilities`) compare a drop entry with `ALL` ignoring case and nothing else:
/// an entry that only resembles it drops nothing, and the container keeps the runtime's
/// default capabilities.
#[test]
fn drop_entries_that_only_resemble_all_drop_nothing() {
    for entry in [
        "ALL ",
        " ALL",
        "ALL\t",
        "ALL\n",
        "\u{a0}ALL",
        "CAP_ALL",
        "cap_all",
    ] {
        let mut p = pod();
        set(
            &mut p,
            "/spec/containers/0/securityContext/capabilities/drop",
            json!([entry]),
        );
        let context = format!("drop [{entry:?}]");
        let o = create(&defaults(), &p);
        assert_rejected(&o, &context);
        assert_fields(
            &o,
            "drop-capabilities",
            &["spec.containers[0].securityContext.capabilities.drop"],
            &context,
        );
        assert_contains(
            o.message.as_deref().unwrap(),
            &[&format!(
                "must include ALL: drop[0] {entry:?} is not ALL to container runtimes"
            )],
            &context,
        );

        // Mutate mode adds the real ALL beside the entry, which it leaves alone.
        let o = create(&modes(&[("drop-capabilities", "mutate")]), &p);
        let m = mutated(&o, &context);
        assert_json(
            &m["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"],
            &json!([entry, "ALL"]),
            &context,
        );
    }
    for entry in ["ALL", "all", "All", "aLL"] {
        let mut p = pod();
        set(
            &mut p,
            "/spec/containers/0/securityContext/capabilities/drop",
            json!([entry]),
        );
        assert_clean(&create(&defaults(), &p), &format!("drop [{entry:?}]"));
    }
}

/// Runtimes upper-case added names one character at a time as Go does, so `ſys_admın`
/// (long s, dotless i) is SYS_ADMIN to them: podguard reads it the same way.
#[test]
fn added_capabilities_are_read_as_runtimes_upper_case_them() {
    let mut p = pod();
    set(
        &mut p,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["\u{17f}ys_adm\u{131}n", "net_b\u{131}nd_serv\u{131}ce"]),
    );
    let o = create(&defaults(), &p);
    assert_rejected(&o, "unicode case");
    assert_fields(
        &o,
        "drop-capabilities",
        &["spec.containers[0].securityContext.capabilities.add[0]"],
        "only the first is not allowed",
    );
    assert_contains(
        o.message.as_deref().unwrap(),
        &["(SYS_ADMIN)"],
        "unicode case",
    );
}

#[test]
fn privileged_reports_no_privileged_and_drop_capabilities() {
    let mut p = pod();
    set(
        &mut p,
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    remove(
        &mut p,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
    );
    let o = create(&defaults(), &p);
    assert_rejected(&o, "privileged");
    assert_checks(
        &o,
        &[
            "no-privileged",
            "drop-capabilities",
            "no-privilege-escalation",
        ],
        "privileged",
    );
    let field = "spec.containers[0].securityContext.privileged";
    assert_contains(
        &violation(&o, "no-privileged", field).message,
        &["is true: remove it"],
        "no-privileged",
    );
    let caps = violation(&o, "drop-capabilities", field);
    assert_contains(
        &caps.message,
        &["is true: it grants every capability whatever capabilities.drop says"],
        "no false pass for drop ALL",
    );
    let escalation = violation(
        &o,
        "no-privilege-escalation",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
    );
    assert!(
        !escalation.fixable,
        "the API refuses allowPrivilegeEscalation: false beside privileged"
    );

    // Mutate: the ordinary container gets allowPrivilegeEscalation: false, the privileged
    // one does not (the API would refuse the object).
    let mut p = pod_with(vec![app(), container("worker")]);
    set(
        &mut p,
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    remove(
        &mut p,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
    );
    remove(
        &mut p,
        "/spec/containers/1/securityContext/allowPrivilegeEscalation",
    );
    let o = create(&mutate_all(), &p);
    assert_rejected(&o, "privileged under mutate");
    let privileged = violation(
        &o,
        "no-privilege-escalation",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
    );
    assert!(!privileged.fixable, "{privileged:?}");
    assert_eq!(privileged.disposition, Disposition::Rejected);
    assert_contains(
        &privileged.message,
        &["must be false, which the API allows only without privileged: true"],
        "why not fixed",
    );
    let worker = violation(
        &o,
        "no-privilege-escalation",
        "spec.containers[1].securityContext.allowPrivilegeEscalation",
    );
    assert!(worker.fixable);
    assert_eq!(worker.disposition, Disposition::Fixed);
    let message = o.message.as_deref().unwrap();
    assert_contains(
        message,
        &[
            "no-privileged: container \"app\"",
            "no-privilege-escalation: container \"app\"",
        ],
        "rejection",
    );
    assert!(
        !message.contains("container \"worker\""),
        "the worker was fixed: {message}"
    );
    assert!(!o.audit_annotations.contains_key("mutated"), "{}", show(&o));
}

#[test]
fn added_cap_sys_admin_spelled_exactly_blocks_the_escalation_fix() {
    // The API compares "CAP_SYS_ADMIN" exactly when refusing allowPrivilegeEscalation: false.
    for (add, fixable) in [("CAP_SYS_ADMIN", false), ("SYS_ADMIN", true)] {
        let mut p = pod();
        set(
            &mut p,
            "/spec/containers/0/securityContext/capabilities/add",
            json!([add]),
        );
        remove(
            &mut p,
            "/spec/containers/0/securityContext/allowPrivilegeEscalation",
        );
        let o = create(&mutate_all(), &p);
        let v = violation(
            &o,
            "no-privilege-escalation",
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
        );
        assert_eq!(v.fixable, fixable, "add {add}\n{}", show(&o));
        if !fixable {
            assert_contains(
                &v.message,
                &["must be false, which the API allows only without adding CAP_SYS_ADMIN"],
                add,
            );
        }
    }
}

// =====================================================================================
// resource-limits
// =====================================================================================

fn with_resources(resources: Value) -> Value {
    let mut p = pod();
    set(&mut p, "/spec/containers/0/resources", resources);
    p
}

#[test]
fn a_missing_request_counts_as_its_limit_unless_explicit_requests_are_required() {
    let p = with_resources(json!({"limits": {"cpu": "500m", "memory": "256Mi"}}));
    assert_clean(&create(&defaults(), &p), "limits alone");
    assert_clean(
        &create(&defaults(), &deployment(&p)),
        "limits alone in a template (never defaulted by the API server)",
    );

    let explicit = json!({"checks": {"resource-limits": {"requireExplicitRequests": true}}});
    let o = create(&explicit, &p);
    assert_rejected(&o, "explicit requests");
    assert_checks(&o, &["resource-limits"], "explicit requests");
    assert_fields(
        &o,
        "resource-limits",
        &[
            "spec.containers[0].resources.requests.cpu",
            "spec.containers[0].resources.requests.memory",
        ],
        "explicit requests",
    );
    assert_contains(
        &violation(
            &o,
            "resource-limits",
            "spec.containers[0].resources.requests.cpu",
        )
        .message,
        &["must be set (e.g. 100m)"],
        "requests.cpu",
    );

    // Mutate fills requests, never above their limits.
    let settings =
        json!({"checks": {"resource-limits": {"mode": "mutate", "requireExplicitRequests": true}}});
    let p = with_resources(json!({"limits": {"cpu": "50m", "memory": "256Mi"}}));
    let o = create(&settings, &p);
    let m = mutated(&o, "fill requests");
    assert_json(
        &m["spec"]["containers"][0]["resources"],
        &json!({"limits": {"cpu": "50m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}}),
        "requests filled from defaults, capped at the limit",
    );
    assert_clean(&create(&settings, m), "filled requests are clean");
}

#[test]
fn a_request_above_its_limit_names_both_quantities() {
    let p = with_resources(json!({
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "1", "memory": "1Gi"}
    }));
    let o = create(&defaults(), &p);
    assert_rejected(&o, "request above limit");
    assert_checks(&o, &["resource-limits"], "request above limit");
    assert_contains(
        &violation(
            &o,
            "resource-limits",
            "spec.containers[0].resources.requests.cpu",
        )
        .message,
        &["1 is above the limit 500m", "the API refuses"],
        "cpu",
    );
    assert_contains(
        &violation(
            &o,
            "resource-limits",
            "spec.containers[0].resources.requests.memory",
        )
        .message,
        &["1Gi is above the limit 512Mi"],
        "memory",
    );
    assert_eq!(of(&o, "resource-limits").len(), 2, "{}", show(&o));
}

#[test]
fn an_invalid_quantity_is_reported_as_such() {
    let p = with_resources(json!({
        "limits": {"cpu": "500m", "memory": "1gi"},
        "requests": {"cpu": "100m", "memory": "128Mi"}
    }));
    let o = create(&defaults(), &p);
    assert_rejected(&o, "1gi");
    assert_checks(&o, &["resource-limits"], "1gi");
    assert_eq!(of(&o, "resource-limits").len(), 1, "{}", show(&o));
    let v = violation(
        &o,
        "resource-limits",
        "spec.containers[0].resources.limits.memory",
    );
    // The quantity error is the message, without a repeated prefix.
    assert_contains(
        &v.message,
        &["(spec.containers[0].resources.limits.memory) \"1gi\" is not a valid quantity"],
        "1gi",
    );
    assert_eq!(
        v.message.matches("is not a valid quantity").count(),
        1,
        "{}",
        v.message
    );
    assert!(!v.fixable);
}

#[test]
fn quantities_compare_as_values_not_strings() {
    let field = |key: &str| format!("spec.containers[0].resources.{key}");
    // (case, maximum settings, limits, requests, expected (field, message part))
    type Case<'a> = (&'a str, Value, Value, Value, Option<(String, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "1Gi within maximum 1024Mi",
            json!({"limits.memory": "1024Mi"}),
            json!({"cpu": "500m", "memory": "1Gi"}),
            json!({}),
            None,
        ),
        (
            "1025Mi above maximum 1024Mi",
            json!({"limits.memory": "1024Mi"}),
            json!({"cpu": "500m", "memory": "1025Mi"}),
            json!({}),
            Some((field("limits.memory"), "1025Mi is above the maximum 1024Mi")),
        ),
        (
            "1073741824 bytes within maximum 1Gi",
            json!({"limits.memory": "1Gi"}),
            json!({"cpu": "500m", "memory": "1073741824"}),
            json!({}),
            None,
        ),
        (
            "cpu 0.5 within maximum 500m",
            json!({"limits.cpu": "500m"}),
            json!({"cpu": "0.5", "memory": "256Mi"}),
            json!({}),
            None,
        ),
        (
            "cpu 0.501 above maximum 500m",
            json!({"limits.cpu": "500m"}),
            json!({"cpu": "0.501", "memory": "256Mi"}),
            json!({}),
            Some((field("limits.cpu"), "0.501 is above the maximum 500m")),
        ),
        (
            "cpu 1e3 within maximum 1k",
            json!({"limits.cpu": "1k"}),
            json!({"cpu": "1e3", "memory": "256Mi"}),
            json!({}),
            None,
        ),
        (
            "request 500m equals limit 0.5",
            json!({}),
            json!({"cpu": "0.5", "memory": "256Mi"}),
            json!({"cpu": "500m", "memory": "256Mi"}),
            None,
        ),
        (
            "request 0.5 equals limit 500m",
            json!({}),
            json!({"cpu": "500m", "memory": "268435456"}),
            json!({"cpu": "0.5", "memory": "256Mi"}),
            None,
        ),
        (
            "request 0.6 above limit 500m",
            json!({}),
            json!({"cpu": "500m", "memory": "256Mi"}),
            json!({"cpu": "0.6"}),
            Some((field("requests.cpu"), "0.6 is above the limit 500m")),
        ),
        (
            "1M (10^6) above maximum 976Ki (999424)",
            json!({"limits.memory": "976Ki"}),
            json!({"cpu": "500m", "memory": "1M"}),
            json!({}),
            Some((field("limits.memory"), "1M is above the maximum 976Ki")),
        ),
        (
            "1M within maximum 977Ki (1000448)",
            json!({"limits.memory": "977Ki"}),
            json!({"cpu": "500m", "memory": "1M"}),
            json!({}),
            None,
        ),
        (
            "+1 within maximum 1000m",
            json!({"limits.cpu": "1000m"}),
            json!({"cpu": "+1", "memory": "256Mi"}),
            json!({}),
            None,
        ),
        (
            "negative request",
            json!({}),
            json!({"cpu": "500m", "memory": "256Mi"}),
            json!({"cpu": "-1"}),
            Some((field("requests.cpu"), "is -1, which is negative")),
        ),
        (
            "cpu as a JSON number",
            json!({"limits.cpu": "2"}),
            json!({"cpu": 2, "memory": "256Mi"}),
            json!({}),
            None,
        ),
    ];
    for (case, maximum, limits, requests, expected) in cases {
        // Small defaults, so that no maximum is below them (settings refuse that).
        let settings = json!({"checks": {"resource-limits": {"maximum": maximum, "defaults": {
            "limits.cpu": "100m", "requests.cpu": "100m",
            "limits.memory": "100Ki", "requests.memory": "100Ki"
        }}}});
        let p = with_resources(json!({"limits": limits, "requests": requests}));
        let o = create(&settings, &p);
        match expected {
            None => assert_clean(&o, case),
            Some((field, part)) => {
                assert_rejected(&o, case);
                assert_eq!(of(&o, "resource-limits").len(), 1, "{case}\n{}", show(&o));
                assert_contains(
                    &violation(&o, "resource-limits", &field).message,
                    &[part],
                    case,
                );
            }
        }
    }
}

#[test]
fn max_limit_request_ratio_is_exact() {
    let settings = json!({"checks": {"resource-limits": {"maxLimitRequestRatio": {"cpu": "4"}}}});
    let cases = [
        ("ratio exactly 4", json!({"cpu": "500m"}), true),
        ("ratio 5", json!({"cpu": "400m"}), false),
        ("no request counts as the limit", json!({}), true),
    ];
    for (case, requests, passes) in cases {
        let p = with_resources(json!({
            "limits": {"cpu": "2", "memory": "1Gi"},
            "requests": requests
        }));
        let o = create(&settings, &p);
        if passes {
            assert_clean(&o, case);
        } else {
            assert_rejected(&o, case);
            assert_checks(&o, &["resource-limits"], case);
            let v = violation(
                &o,
                "resource-limits",
                "spec.containers[0].resources.limits.cpu",
            );
            assert_contains(
                &v.message,
                &["2 is more than 4 times the request 400m"],
                case,
            );
        }
    }
}

#[test]
fn pod_level_resources_satisfy_the_requirement() {
    let mut p = pod();
    remove(&mut p, "/spec/containers/0/resources");
    set(
        &mut p,
        "/spec/resources",
        json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
    );
    assert_clean(
        &create(&defaults(), &p),
        "pod-level limits (requests count as limits)",
    );

    set(&mut p, "/spec/resources", json!({"limits": {"cpu": "1"}}));
    let o = create(&defaults(), &p);
    assert_checks(&o, &["resource-limits"], "pod-level cpu only");
    // The missing memory request follows its limit, so only the limit is reported.
    assert_fields(
        &o,
        "resource-limits",
        &["spec.containers[0].resources.limits.memory"],
        "pod-level cpu only",
    );
    assert_contains(
        &violation(
            &o,
            "resource-limits",
            "spec.containers[0].resources.limits.memory",
        )
        .message,
        &["must be set (e.g. 512Mi; the request follows it)"],
        "pod-level cpu only",
    );
}

#[test]
fn ephemeral_containers_never_need_limits() {
    let mut p = pod();
    set(
        &mut p,
        "/spec/ephemeralContainers",
        json!([{
            "name": "debugger",
            "image": "busybox:1.36",
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            }
        }]),
    );
    let explicit = json!({"checks": {"resource-limits": {"requireExplicitRequests": true}}});
    for settings in [defaults(), explicit] {
        let o = evaluate_object(&policy(&settings), WorkloadKind::Pod, &p);
        assert_clean(&o, "ephemeral container without resources");
    }
}

#[test]
fn exempt_init_containers_skips_plain_init_containers_but_not_sidecars() {
    let mut setup = container("setup");
    remove(&mut setup, "/resources");
    let mut proxy = container("proxy");
    remove(&mut proxy, "/resources");
    proxy["restartPolicy"] = json!("Always");
    let mut p = pod();
    set(&mut p, "/spec/initContainers", json!([setup, proxy]));
    // The missing requests follow their limits, so only the limits are reported.
    let quantities = |i: usize| -> Vec<String> {
        ["limits.cpu", "limits.memory"]
            .iter()
            .map(|k| format!("spec.initContainers[{i}].resources.{k}"))
            .collect()
    };

    let o = create(&defaults(), &p);
    let mut both = quantities(0);
    both.extend(quantities(1));
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    assert_fields(
        &o,
        "resource-limits",
        &both,
        "by default init containers need limits",
    );
    assert_contains(
        &violation(
            &o,
            "resource-limits",
            "spec.initContainers[0].resources.limits.cpu",
        )
        .message,
        &["must be set (e.g. 500m; the request follows it)"],
        "limit and request both missing",
    );

    let exempt = json!({"checks": {"resource-limits": {"exemptInitContainers": true}}});
    let o = create(&exempt, &p);
    let sidecar = quantities(1);
    let sidecar: Vec<&str> = sidecar.iter().map(String::as_str).collect();
    assert_fields(&o, "resource-limits", &sidecar, "exemptInitContainers");
    assert!(
        of(&o, "resource-limits")
            .iter()
            .all(|v| v.container.as_deref() == Some("proxy")),
        "{}",
        show(&o)
    );
}

// =====================================================================================
// prometheus-annotations
// =====================================================================================

const PORT_FIELD: &str = r#"metadata.annotations["prometheus.io/port"]"#;

#[test]
fn the_port_annotation_must_name_a_declared_tcp_port_by_number() {
    // (case, port annotation, extra pod edits, expected message parts or None for a pass)
    type Edit = fn(&mut Value);
    let cases: [(&str, &str, Edit, Option<Vec<&str>>); 9] = [
        ("declared number", "9090", |_| {}, None),
        (
            "undeclared number",
            "8080",
            |_| {},
            Some(vec![
                "is 8080, which no container declares as a TCP port",
                r#"set a declared port number, e.g. "9090""#,
            ]),
        ),
        (
            "no port declared at all",
            "9090",
            |p| remove(p, "/spec/containers/0/ports"),
            Some(vec![
                "is 9090, which no container declares as a TCP port",
                "declare it in the container's ports",
            ]),
        ),
        (
            "port name",
            "metrics",
            |_| {},
            Some(vec![
                r#"names port "metrics""#,
                r#"Prometheus needs the number: set it to "9090""#,
            ]),
        ),
        (
            "unknown name",
            "web",
            |_| {},
            Some(vec![r#"is "web", not a port number (1-65535)"#]),
        ),
        (
            "out of range",
            "70000",
            |_| {},
            Some(vec!["not a port number (1-65535)"]),
        ),
        (
            "declared only by a restartable init sidecar",
            "9901",
            |p| {
                let mut sidecar = container("envoy");
                sidecar["restartPolicy"] = json!("Always");
                sidecar["ports"] = json!([{"name": "admin", "containerPort": 9901}]);
                set(p, "/spec/initContainers", json!([sidecar]));
            },
            None,
        ),
        (
            "declared only by a plain init container",
            "9901",
            |p| {
                let mut setup = container("setup");
                setup["ports"] = json!([{"containerPort": 9901}]);
                set(p, "/spec/initContainers", json!([setup]));
            },
            Some(vec![
                "is 9901, which no container declares as a TCP port",
                r#"set a declared port number, e.g. "9090""#,
            ]),
        ),
        (
            "declared as UDP",
            "9125",
            |p| {
                set(
                    p,
                    "/spec/containers/0/ports/1",
                    json!({"name": "statsd", "containerPort": 9125, "protocol": "UDP"}),
                );
            },
            Some(vec![
                "is 9125, which no container declares as a TCP port",
                r#"set a declared port number, e.g. "9090""#,
            ]),
        ),
    ];
    for (case, port, edit, expected) in cases {
        let mut p = pod();
        set(
            &mut p,
            "/metadata/annotations/prometheus.io~1port",
            json!(port),
        );
        edit(&mut p);
        let o = create(&defaults(), &p);
        match expected {
            None => assert_clean(&o, case),
            Some(parts) => {
                assert_rejected(&o, case);
                assert_checks(&o, &["prometheus-annotations"], case);
                let v = violation(&o, "prometheus-annotations", PORT_FIELD);
                assert_eq!(v.container, None, "{case}: a pod-level violation");
                assert_contains(&v.message, &parts, case);
                assert!(
                    v.message
                        .starts_with(&format!("prometheus-annotations: pod ({PORT_FIELD}) ")),
                    "{case}: {}",
                    v.message
                );
            }
        }
    }
}

#[test]
fn prometheus_scrape_must_be_the_string_true() {
    let mut p = pod();
    set(
        &mut p,
        "/metadata/annotations/prometheus.io~1scrape",
        json!("yes"),
    );
    let o = create(&defaults(), &p);
    let v = violation(
        &o,
        "prometheus-annotations",
        r#"metadata.annotations["prometheus.io/scrape"]"#,
    );
    assert_contains(&v.message, &[r#"must be "true", found "yes""#], "scrape");
}

#[test]
fn prometheus_annotations_on_the_deployment_itself_do_not_count() {
    let mut p = pod();
    remove(&mut p, "/metadata/annotations");
    let mut d = deployment(&p);
    set(&mut d, "/metadata/annotations", prometheus());
    let o = create(&defaults(), &d);
    assert_rejected(&o, "annotations on the Deployment");
    assert_checks(
        &o,
        &["prometheus-annotations"],
        "annotations on the Deployment",
    );
    assert_fields(
        &o,
        "prometheus-annotations",
        &[
            r#"spec.template.metadata.annotations["prometheus.io/scrape"]"#,
            r#"spec.template.metadata.annotations["prometheus.io/port"]"#,
            r#"spec.template.metadata.annotations["prometheus.io/path"]"#,
        ],
        "annotations on the Deployment",
    );
    assert_eq!(
        violation(
            &o,
            "prometheus-annotations",
            r#"spec.template.metadata.annotations["prometheus.io/scrape"]"#
        )
        .message,
        r#"prometheus-annotations: pod template (spec.template.metadata.annotations["prometheus.io/scrape"]) must be "true""#
    );
}

#[test]
fn prometheus_mutate_uses_the_port_named_metrics_and_creates_the_map() {
    let settings = modes(&[("prometheus-annotations", "mutate")]);
    let mut p = pod_with(vec![app(), container("worker")]);
    remove(&mut p, "/metadata/annotations");
    set(
        &mut p,
        "/spec/containers/0/ports",
        json!([
            {"name": "http", "containerPort": 8080},
            {"name": "metrics", "containerPort": 9102}
        ]),
    );
    set(&mut p, "/spec/containers/0/futureField", json!({"x": 1}));
    set(&mut p, "/spec/futureField", json!({"x": 1}));
    let d = deployment(&p);
    assert!(
        d["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none()
    );

    let o = create(&settings, &d);
    let m = mutated(&o, "prometheus mutate");
    assert_json(
        &m["spec"]["template"]["metadata"],
        &json!({
            "labels": {"app": "web"},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
                "prometheus.io/path": "/metrics"
            }
        }),
        "template metadata gains the three annotations",
    );
    assert_same_bytes(
        &d["metadata"],
        &m["metadata"],
        "the Deployment's own metadata",
    );
    assert_same_bytes(
        &d["spec"]["template"]["spec"],
        &m["spec"]["template"]["spec"],
        "pod spec",
    );
    let patch = serde_json::to_value(json_patch::diff(&d, m)).unwrap();
    assert_json(
        &patch,
        &json!([{
            "op": "add",
            "path": "/spec/template/metadata/annotations",
            "value": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
                "prometheus.io/path": "/metrics"
            }
        }]),
        "the patch adds the whole map",
    );
    assert_clean(&create(&settings, m), "mutated template is clean");

    // With an existing map, each key is added, escaped in the patch path.
    let mut d2 = d.clone();
    set(
        &mut d2,
        "/spec/template/metadata/annotations",
        json!({"team": "shop"}),
    );
    let o = create(&settings, &d2);
    let m = mutated(&o, "existing annotations");
    let patch = serde_json::to_value(json_patch::diff(&d2, m)).unwrap();
    let mut paths: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            "/spec/template/metadata/annotations/prometheus.io~1path",
            "/spec/template/metadata/annotations/prometheus.io~1port",
            "/spec/template/metadata/annotations/prometheus.io~1scrape",
        ],
        "{patch:#}"
    );
    assert_eq!(
        m["spec"]["template"]["metadata"]["annotations"]["team"],
        json!("shop")
    );
}

#[test]
fn prometheus_annotation_keys_come_from_settings() {
    for (scrape, port, path) in [
        (
            "metrics.example.com/scrape",
            "metrics.example.com/port",
            "metrics.example.com/path",
        ),
        (
            "prometheus.io.scrape",
            "prometheus.io.port",
            "prometheus.io.path",
        ),
    ] {
        let settings = json!({"checks": {"prometheus-annotations": {
            "annotations": {"scrape": scrape, "port": port, "path": path}
        }}});
        let o = create(&settings, &pod());
        assert_rejected(&o, scrape);
        assert_fields(
            &o,
            "prometheus-annotations",
            &[
                &format!("metadata.annotations[{scrape:?}]"),
                &format!("metadata.annotations[{port:?}]"),
                &format!("metadata.annotations[{path:?}]"),
            ],
            scrape,
        );

        let mut p = pod();
        set(
            &mut p,
            "/metadata/annotations",
            json!({scrape: "true", port: "9090", path: "/metrics"}),
        );
        assert_clean(&create(&settings, &p), scrape);
    }
}

// =====================================================================================
// Operations
// =====================================================================================

fn debugger(name: &str) -> Value {
    json!({"name": name, "image": "busybox:1.36", "stdin": true, "tty": true, "futureField": {"x": 1}})
}

#[test]
fn an_ephemeral_container_request_judges_only_the_added_container() {
    // The running pod breaks almost everything, and already has one debug container.
    let mut old = pod_with(vec![
        json!({"name": "app", "image": "registry.example.com/shop/app:1.4.2"}),
    ]);
    remove(&mut old, "/metadata/annotations");
    remove(&mut old, "/spec/securityContext");
    set(
        &mut old,
        "/spec/ephemeralContainers",
        json!([debugger("debug-1")]),
    );
    let mut new = old.clone();
    set(&mut new, "/spec/ephemeralContainers/1", debugger("debug-2"));
    let mut review = update_review(&old, &new);
    review["subResource"] = json!("ephemeralcontainers");

    let o = judge(&defaults(), &review);
    assert_rejected(&o, "ephemeral enforce");
    assert!(
        o.violations
            .iter()
            .all(|v| v.container.as_deref() == Some("debug-2")
                && v.field.starts_with("spec.ephemeralContainers[1].")),
        "only the added container is judged\n{}",
        show(&o)
    );
    assert_checks(
        &o,
        &[
            "run-as-non-root",
            "drop-capabilities",
            "no-privilege-escalation",
            "read-only-root-filesystem",
            "seccomp-profile",
        ],
        "ephemeral enforce",
    );
    let sc = "spec.ephemeralContainers[1].securityContext";
    violation(&o, "run-as-non-root", &format!("{sc}.runAsNonRoot"));
    violation(&o, "drop-capabilities", &format!("{sc}.capabilities.drop"));
    violation(
        &o,
        "no-privilege-escalation",
        &format!("{sc}.allowPrivilegeEscalation"),
    );
    assert_contains(
        o.message.as_deref().unwrap(),
        &[r#"Pod "web" violates podguard's requirements (3 violations):"#],
        "three enforced, two warned",
    );

    let o = judge(&mutate_all(), &review);
    let m = mutated(&o, "ephemeral mutate");
    assert!(
        m["spec"].get("securityContext").is_none(),
        "nothing goes on the pod: {:#}",
        m["spec"]
    );
    assert_same_bytes(&new["metadata"], &m["metadata"], "metadata");
    assert_same_bytes(
        &new["spec"]["containers"],
        &m["spec"]["containers"],
        "regular containers",
    );
    assert_same_bytes(
        &new["spec"]["ephemeralContainers"][0],
        &m["spec"]["ephemeralContainers"][0],
        "the pre-existing ephemeral container",
    );
    let mut expected = debugger("debug-2");
    expected["securityContext"] = json!({
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "seccompProfile": {"type": "RuntimeDefault"}
    });
    assert_json(
        &m["spec"]["ephemeralContainers"][1],
        &expected,
        "every fix goes on the added ephemeral container",
    );
    let mut again = update_review(&old, m);
    again["subResource"] = json!("ephemeralcontainers");
    assert_clean(
        &judge(&mutate_all(), &again),
        "the mutated request is clean",
    );
}

#[test]
fn cronjob_paths_start_at_the_job_template() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    remove(&mut p, "/metadata/annotations/prometheus.io~1path");
    let c = cronjob(&p);
    // prometheus-annotations judges CronJobs only when they opt in.
    let scraping_cronjobs = |mut settings: Value| {
        settings["checks"]["prometheus-annotations"]["kinds"] = json!(["Pod", "CronJob"]);
        settings
    };
    let o = create(&scraping_cronjobs(defaults()), &c);
    assert_rejected(&o, "cronjob");
    assert_checks(
        &o,
        &["run-as-non-root", "prometheus-annotations"],
        "cronjob",
    );
    violation(
        &o,
        "run-as-non-root",
        "spec.jobTemplate.spec.template.spec.containers[0].securityContext.runAsNonRoot",
    );
    violation(
        &o,
        "prometheus-annotations",
        r#"spec.jobTemplate.spec.template.metadata.annotations["prometheus.io/path"]"#,
    );
    assert!(
        o.message
            .as_deref()
            .unwrap()
            .starts_with(r#"CronJob "nightly" violates podguard's requirements (2 violations):"#),
        "{}",
        show(&o)
    );

    let o = create(&scraping_cronjobs(mutate_all()), &c);
    let m = mutated(&o, "cronjob mutate");
    let template = &m["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        template["spec"]["securityContext"]["runAsNonRoot"],
        json!(true)
    );
    assert_eq!(
        template["metadata"]["annotations"]["prometheus.io/path"],
        json!("/metrics")
    );
    assert_same_bytes(
        &c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
        &template["spec"]["containers"],
        "containers",
    );
}

/// A Deployment with two violations: no runAsNonRoot anywhere and no
/// allowPrivilegeEscalation on `app`.
fn violating_deployment() -> Value {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    remove(
        &mut p,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
    );
    deployment(&p)
}

#[test]
fn an_update_that_leaves_the_pod_template_alone_is_tolerated() {
    let old = violating_deployment();
    let mut new = old.clone();
    set(&mut new, "/spec/replicas", json!(5));
    let o = judge(&defaults(), &update_review(&old, &new));
    assert!(
        o.accepted && o.message.is_none() && o.mutated_object.is_none(),
        "{}",
        show(&o)
    );
    assert_eq!(o.violations.len(), 2, "{}", show(&o));
    assert!(
        o.violations
            .iter()
            .all(|v| v.disposition == Disposition::Tolerated),
        "{}",
        show(&o)
    );
    let mut expected = vec![
        "podguard: 2 existing violation(s) allowed because this UPDATE leaves the pod spec unchanged:"
            .to_owned(),
    ];
    expected.extend(o.violations.iter().map(|v| v.message.clone()));
    assert_eq!(o.warnings, expected, "{}", show(&o));
    assert_contains(
        &o.warnings.join("\n"),
        &[
            "spec.template.spec.containers[0].securityContext.runAsNonRoot",
            "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
        ],
        "warnings list the violations",
    );
    // Mutate mode leaves a tolerated update alone too.
    let o = judge(&mutate_all(), &update_review(&old, &new));
    assert!(o.accepted && o.mutated_object.is_none(), "{}", show(&o));
}

#[test]
fn an_update_whose_pods_cannot_be_read_whole_is_judged_not_tolerated() {
    // JSON nested past the parser's depth limit, in a field no check reads: the checks
    // skip it, but the pods cannot be built to compare, so the UPDATE counts as changing
    // them instead of passing as unchanged.
    let old = violating_deployment();
    let mut new = old.clone();
    set(
        &mut new,
        "/spec/template/spec/containers/0/args",
        json!("DEEP"),
    );
    let mut old_deep = old.clone();
    set(
        &mut old_deep,
        "/spec/template/spec/containers/0/args",
        json!("DEEP"),
    );
    let review = update_review(&old_deep, &new);
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let payload = json!({"request": review, "settings": {}})
        .to_string()
        .replace("\"DEEP\"", &deep);
    let o = podguard_policy::evaluate_payload(payload.as_bytes()).unwrap();
    assert_rejected(&o, "deeply nested update");
    assert!(
        o.violations
            .iter()
            .all(|v| v.disposition == Disposition::Rejected),
        "{}",
        show(&o)
    );
}

#[test]
fn an_update_that_changes_the_pod_template_is_judged_normally() {
    let old = violating_deployment();
    for (case, pointer, value) in [
        (
            "new image",
            "/spec/template/spec/containers/0/image",
            json!("registry.example.com/shop/app:1.4.3"),
        ),
        (
            "rollout restart",
            "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
            json!("2025-01-01T00:00:00Z"),
        ),
    ] {
        let mut new = old.clone();
        set(&mut new, pointer, value);
        let o = judge(&defaults(), &update_review(&old, &new));
        assert_rejected(&o, case);
        assert_checks(&o, &["run-as-non-root", "no-privilege-escalation"], case);
        assert!(
            o.violations
                .iter()
                .all(|v| v.disposition == Disposition::Rejected),
            "{case}\n{}",
            show(&o)
        );

        // Templates may be mutated on UPDATE.
        let o = judge(&mutate_all(), &update_review(&old, &new));
        let m = mutated(&o, case);
        assert_eq!(
            m["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            json!(true)
        );
    }
}

#[test]
fn an_object_being_deleted_is_tolerated() {
    let mut old = violating_deployment();
    set(
        &mut old,
        "/metadata/deletionTimestamp",
        json!("2025-01-01T00:00:00Z"),
    );
    let mut new = old.clone();
    set(
        &mut new,
        "/spec/template/spec/containers/0/image",
        json!("registry.example.com/shop/app:9"),
    );
    let o = judge(&defaults(), &update_review(&old, &new));
    assert!(o.accepted && o.message.is_none(), "{}", show(&o));
    assert_warning(
        &o,
        &[
            "2 existing violation(s)",
            "because the object is being deleted",
        ],
        "deleting",
    );
    assert!(
        o.violations
            .iter()
            .all(|v| v.disposition == Disposition::Tolerated)
    );

    // A Pod whose finalizer is removed while it terminates.
    let mut pod_old = pod();
    remove(&mut pod_old, "/spec/securityContext/runAsNonRoot");
    set(
        &mut pod_old,
        "/metadata/finalizers",
        json!(["example.com/cleanup"]),
    );
    set(
        &mut pod_old,
        "/metadata/deletionTimestamp",
        json!("2025-01-01T00:00:00Z"),
    );
    let mut pod_new = pod_old.clone();
    set(&mut pod_new, "/metadata/finalizers", json!([]));
    let o = judge(&defaults(), &update_review(&pod_old, &pod_new));
    assert!(o.accepted, "{}", show(&o));
    assert_warning(
        &o,
        &[
            "run-as-non-root",
            "spec.containers[0].securityContext.runAsNonRoot",
        ],
        "pod",
    );
}

/// The sender writes `object`, deletion timestamp included: kube-apiserver clears it only
/// after mutating admission. Only the stored object's (`oldObject`) counts.
#[test]
fn a_deletion_timestamp_the_sender_wrote_is_not_trusted() {
    let mut forbidden = pod();
    remove(&mut forbidden, "/spec/securityContext/runAsNonRoot");
    set(
        &mut forbidden,
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    set(
        &mut forbidden,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    set(
        &mut forbidden,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["SYS_ADMIN"]),
    );
    set(&mut forbidden, "/spec/hostPID", json!(true));
    let forged_values = [
        json!("2030-01-01T00:00:00Z"),
        json!({}),
        json!(false),
        json!(""),
        json!(0),
    ];
    for forged in forged_values {
        let mut object = forbidden.clone();
        set(&mut object, "/metadata/deletionTimestamp", forged.clone());
        let context = format!("CREATE with deletionTimestamp {forged}");
        for settings in [defaults(), mutate_all()] {
            let o = create(&settings, &object);
            assert_rejected(&o, &context);
            assert!(
                o.violations
                    .iter()
                    .all(|v| v.disposition != Disposition::Tolerated),
                "{context}\n{}",
                show(&o)
            );
            assert_checks(
                &o,
                &[
                    "drop-capabilities",
                    "host-namespaces",
                    "no-privileged",
                    "run-as-non-root",
                ],
                &context,
            );
        }

        // An UPDATE that adds the timestamp to a stored object that has none, and changes
        // the template: judged as the change it is.
        let mut old = violating_deployment();
        let mut new = old.clone();
        set(&mut new, "/metadata/deletionTimestamp", forged.clone());
        set(
            &mut new,
            "/spec/template/spec/containers/0/image",
            json!("registry.example.com/shop/app:9"),
        );
        let o = judge(&defaults(), &update_review(&old, &new));
        assert_rejected(&o, &format!("UPDATE adding deletionTimestamp {forged}"));

        // ... while the stored object's own timestamp still tolerates it.
        set(
            &mut old,
            "/metadata/deletionTimestamp",
            json!("2025-01-01T00:00:00Z"),
        );
        let o = judge(&defaults(), &update_review(&old, &new));
        assert!(o.accepted, "{}", show(&o));
    }
}

#[test]
fn a_pod_update_is_never_mutated() {
    let mut old = pod();
    remove(&mut old, "/spec/securityContext/runAsNonRoot");
    let mut new = old.clone();
    set(
        &mut new,
        "/spec/containers/0/image",
        json!("registry.example.com/shop/app:1.4.3"),
    );

    let o = judge(&mutate_all(), &update_review(&old, &new));
    assert_rejected(&o, "pod update in mutate mode");
    assert_checks(&o, &["run-as-non-root"], "pod update");
    assert!(!o.audit_annotations.contains_key("mutated"), "{}", show(&o));
    let message = o.message.as_deref().unwrap();
    assert_contains(
        message,
        &[
            r#"run-as-non-root: container "app" (spec.containers[0].securityContext.runAsNonRoot) must be true"#,
            "a Pod's spec cannot change after it is created",
        ],
        "pod update",
    );

    // The same Pod on CREATE is mutated.
    let o = create(&mutate_all(), &new);
    assert_eq!(
        mutated(&o, "pod create")["spec"]["securityContext"]["runAsNonRoot"],
        json!(true)
    );

    // A label change leaves the spec alone: tolerated.
    let mut relabelled = old.clone();
    set(&mut relabelled, "/metadata/labels/tier", json!("front"));
    let o = judge(&mutate_all(), &update_review(&old, &relabelled));
    assert!(o.accepted && o.mutated_object.is_none(), "{}", show(&o));
    assert_warning(&o, &["leaves the pod spec unchanged"], "relabel");
}

#[test]
fn dry_run_is_judged_like_any_other_request() {
    let mut bad = pod();
    remove(&mut bad, "/spec/securityContext/runAsNonRoot");
    let cases = [
        ("compliant", defaults(), pod()),
        ("violating", defaults(), bad.clone()),
        ("mutated", mutate_all(), bad.clone()),
        (
            "warned",
            modes(&[("run-as-non-root", "warn")]),
            deployment(&bad),
        ),
    ];
    for (case, settings, object) in cases {
        let wet = review("CREATE", &object);
        let mut dry = wet.clone();
        dry["dryRun"] = json!(true);
        assert_eq!(judge(&settings, &dry), judge(&settings, &wet), "{case}");
    }
}

// =====================================================================================
// Windows and user namespaces
// =====================================================================================

#[test]
fn windows_pods_skip_linux_only_fields_but_need_run_as_non_root() {
    let mut p = pod();
    set(&mut p, "/spec/os", json!({"name": "windows"}));
    set(
        &mut p,
        "/spec/securityContext",
        json!({"runAsNonRoot": true}),
    );
    remove(&mut p, "/spec/containers/0/securityContext");
    assert_clean(
        &create(&defaults(), &p),
        "windows without Linux-only fields",
    );
    assert_clean(
        &create(
            &modes(&[
                ("read-only-root-filesystem", "enforce"),
                ("seccomp-profile", "enforce"),
            ]),
            &p,
        ),
        "even when those checks enforce",
    );

    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    let o = create(&defaults(), &p);
    assert_rejected(&o, "windows without runAsNonRoot");
    assert_checks(&o, &["run-as-non-root"], "windows without runAsNonRoot");
    violation(
        &o,
        "run-as-non-root",
        "spec.containers[0].securityContext.runAsNonRoot",
    );

    // Mutate adds runAsNonRoot but no runAsUser (the API forbids it on Windows).
    let settings =
        json!({"checks": {"run-as-non-root": {"mode": "mutate", "defaultRunAsUser": 1000}}});
    let o = create(&settings, &p);
    let m = mutated(&o, "windows mutate");
    assert_json(
        &m["spec"]["securityContext"],
        &json!({"runAsNonRoot": true}),
        "windows pod securityContext",
    );
}

#[test]
fn host_users_false_allows_uid_0_and_says_why() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    set(&mut p, "/spec/securityContext/runAsUser", json!(0));
    set(&mut p, "/spec/hostUsers", json!(false));
    let o = create(&defaults(), &p);
    assert!(
        o.accepted && o.violations.is_empty() && o.mutated_object.is_none(),
        "{}",
        show(&o)
    );
    // uid 0 and the missing runAsNonRoot become one note for the container.
    let note = r#"run-as-non-root: container "app" may run as root: spec.hostUsers is false, so it is not root on the node"#;
    assert_eq!(o.warnings, vec![note.to_owned()], "{}", show(&o));
    assert_eq!(
        o.audit_annotations.get("notes").map(String::as_str),
        Some(note),
        "{}",
        show(&o)
    );

    set(&mut p, "/spec/hostUsers", json!(true));
    let o = create(&defaults(), &p);
    assert_rejected(&o, "hostUsers true");
    assert_fields(
        &o,
        "run-as-non-root",
        &[
            "spec.securityContext.runAsUser",
            "spec.containers[0].securityContext.runAsNonRoot",
        ],
        "hostUsers true",
    );
    assert_contains(
        &violation(&o, "run-as-non-root", "spec.securityContext.runAsUser").message,
        &["is 0 (root): set a non-zero uid"],
        "hostUsers true",
    );
    assert_contains(
        &violation(
            &o,
            "run-as-non-root",
            "spec.containers[0].securityContext.runAsNonRoot",
        )
        .message,
        &["must be true"],
        "hostUsers true",
    );
}

// =====================================================================================
// Exemptions
// =====================================================================================

#[test]
fn an_exempt_namespace_is_allowed_and_reported() {
    let mut p = pod_with(vec![json!({"name": "app", "image": "nginx"})]);
    set(&mut p, "/metadata/namespace", json!("kube-system"));
    let o = create(&defaults(), &p);
    assert!(
        o.accepted && o.violations.is_empty() && o.mutated_object.is_none(),
        "{}",
        show(&o)
    );
    assert_contains(
        o.audit_annotations
            .get("exemptions")
            .map(String::as_str)
            .unwrap_or(""),
        &["kube-system"],
        "audit annotation",
    );
    assert_eq!(o.exemptions.len(), 1);
    assert_eq!(
        o.exemptions[0].by,
        ExemptedBy::Namespace {
            namespace: "kube-system".to_owned()
        }
    );
}

#[test]
fn an_exempt_image_skips_that_container_only() {
    let settings = json!({"exemptions": {"images": ["registry.example.com/debug/*"]}});
    let debug = json!({"name": "debug", "image": "registry.example.com/debug/tools/shell:2.1"});
    let p = pod_with(vec![app(), debug]);
    let o = create(&settings, &p);
    assert!(o.accepted && o.violations.is_empty(), "{}", show(&o));
    // One warning for the container, however many checks it skips.
    assert_eq!(
        o.warnings,
        vec![
            r#"podguard: container "debug" is not checked: its image matches exemption "registry.example.com/debug/*""#
                .to_owned()
        ],
        "image exemption\n{}",
        show(&o)
    );
    assert!(
        o.audit_annotations.contains_key("exemptions"),
        "{}",
        show(&o)
    );
    assert!(
        o.exemptions
            .iter()
            .any(|e| e.check == Some(CheckId::ResourceLimits)
                && e.container.as_deref() == Some("debug")
                && e.by
                    == ExemptedBy::Image {
                        glob: "registry.example.com/debug/*".to_owned()
                    }),
        "{}",
        show(&o)
    );

    // Other containers are still judged.
    let mut p = pod_with(vec![
        app(),
        json!({"name": "debug", "image": "registry.example.com/debug/tools:2.1"}),
    ]);
    remove(&mut p, "/spec/containers/0/securityContext/capabilities");
    let o = create(&settings, &p);
    assert_checks(&o, &["drop-capabilities"], "app still judged");
    assert_eq!(
        of(&o, "drop-capabilities")[0].container.as_deref(),
        Some("app")
    );
}

fn rootful_pod() -> Value {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    remove(&mut p, "/spec/containers/0/securityContext/capabilities");
    p
}

#[test]
fn an_exemption_annotation_with_a_reason_is_honoured_and_reported() {
    let reason = "vendor image needs root, see OPS-1234";
    let mut p = rootful_pod();
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-non-root, drop-capabilities"),
    );
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt-reason",
        json!(reason),
    );
    let allowed = annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["shop"]);
    let o = create(&allowed, &p);
    assert!(o.accepted && o.violations.is_empty(), "{}", show(&o));
    assert_warning(
        &o,
        &[
            "run-as-non-root, drop-capabilities not enforced by podguard.io/exempt",
            reason,
        ],
        "annotation exemption",
    );
    assert_contains(
        o.audit_annotations
            .get("exemptions")
            .map(String::as_str)
            .unwrap_or(""),
        &["run-as-non-root", "drop-capabilities", reason],
        "audit annotation",
    );

    // On a Deployment, the template's annotations count too.
    let mut tp = rootful_pod();
    set(
        &mut tp,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-non-root,drop-capabilities"),
    );
    set(
        &mut tp,
        "/metadata/annotations/podguard.io~1exempt-reason",
        json!(reason),
    );
    let o = create(&allowed, &deployment(&tp));
    assert!(o.accepted && o.violations.is_empty(), "{}", show(&o));

    // Namespaces may be globs.
    let team_glob = annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["sh*"]);
    let o = create(&team_glob, &p);
    assert!(o.accepted && o.violations.is_empty(), "{}", show(&o));
}

/// Whoever writes a workload writes its annotations: unless the administrator's settings
/// allow it, the annotation exempts nothing, and says so.
#[test]
fn exemption_annotations_are_off_unless_the_settings_allow_them() {
    let mut p = rootful_pod();
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-non-root,drop-capabilities"),
    );
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt-reason",
        json!("vendor image needs root"),
    );
    let off = r#"podguard: metadata.annotations["podguard.io/exempt"] is ignored: annotation exemptions are off in namespace "shop" (settings: exemptions.annotation)"#;
    for (settings, context) in [
        (defaults(), "default settings"),
        (
            annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["team-*"]),
            "another namespace",
        ),
    ] {
        let o = create(&settings, &p);
        assert_rejected(&o, context);
        assert_checks(&o, &["run-as-non-root", "drop-capabilities"], context);
        assert!(o.exemptions.is_empty(), "{}", show(&o));
        assert_warning(&o, &[off], context);
        assert!(
            o.message.as_deref().unwrap().lines().any(|l| l == off),
            "{context}: the rejection says why\n{}",
            show(&o)
        );
    }

    // Allowed for one check only: the other stays enforced, and the answer says why.
    let o = create(&annotation_exemptions(&["run-as-non-root"], &["shop"]), &p);
    assert_rejected(&o, "one check allowed");
    assert_checks(&o, &["drop-capabilities"], "one check allowed");
    assert_warning(
        &o,
        &[
            r#"metadata.annotations["podguard.io/exempt"] cannot exempt drop-capabilities (settings: exemptions.annotation.checks); it is ignored"#,
        ],
        "one check allowed",
    );

    // A cluster-scoped request never matches a namespace.
    let mut review = review("CREATE", &p);
    review.as_object_mut().unwrap().remove("namespace");
    let o = judge(
        &annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["*"]),
        &review,
    );
    assert_rejected(&o, "no namespace");
}

#[test]
fn exemption_annotation_settings_name_what_is_wrong() {
    for (settings, expected) in [
        (
            annotation_exemptions(&["run-as-nonroot"], &["shop"]),
            r#"settings field `exemptions.annotation.checks[0]`: "run-as-nonroot" is not a check id"#,
        ),
        (
            annotation_exemptions(&["resource-limits"], &[]),
            "settings field `exemptions.annotation.namespaces`: is empty, so the annotation exempts nothing",
        ),
        (
            annotation_exemptions(&[], &["shop"]),
            "settings field `exemptions.annotation.checks`: is empty",
        ),
        (
            annotation_exemptions(&["resource-limits", "resource-limits"], &["shop"]),
            r#"`exemptions.annotation.checks[1]`: "resource-limits" is listed twice"#,
        ),
    ] {
        let err = podguard_policy::policy_from_settings(&settings).unwrap_err();
        assert_contains(&err.to_string(), &[expected], "settings");
    }
}

#[test]
fn an_exemption_annotation_without_a_reason_is_ignored_with_a_warning() {
    let allowed = annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["shop"]);
    // A zero-width space, a soft hyphen or punctuation is not a reason anyone can read.
    for reason in [
        None,
        Some("  "),
        Some("\u{200b}"),
        Some("\u{200b}\u{2060}\u{feff}"),
        Some("\u{ad}"),
        Some("-- ."),
    ] {
        let mut p = rootful_pod();
        set(
            &mut p,
            "/metadata/annotations/podguard.io~1exempt",
            json!("run-as-non-root,drop-capabilities"),
        );
        if let Some(reason) = reason {
            set(
                &mut p,
                "/metadata/annotations/podguard.io~1exempt-reason",
                json!(reason),
            );
        }
        let o = create(&allowed, &p);
        assert_rejected(&o, "no reason");
        assert_checks(&o, &["run-as-non-root", "drop-capabilities"], "no reason");
        assert!(o.exemptions.is_empty(), "{}", show(&o));
        assert_warning(
            &o,
            &[
                r#"metadata.annotations["podguard.io/exempt"] is ignored"#,
                "podguard.io/exempt-reason",
            ],
            "no reason",
        );
        // The rejection itself says why the exemption did not apply.
        let ignored = o
            .warnings
            .iter()
            .find(|w| w.contains(r#"metadata.annotations["podguard.io/exempt"] is ignored"#))
            .unwrap();
        assert!(
            o.message.as_deref().unwrap().lines().any(|l| l == ignored),
            "no reason: the rejection repeats the warning\n{}",
            show(&o)
        );
    }
}

#[test]
fn an_unknown_check_in_the_exemption_annotation_is_warned_about() {
    let mut p = rootful_pod();
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-non-root,run-as-nonroot"),
    );
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt-reason",
        json!("legacy"),
    );
    let o = create(
        &annotation_exemptions(&["run-as-non-root", "drop-capabilities"], &["shop"]),
        &p,
    );
    assert_rejected(&o, "unknown id");
    assert_checks(
        &o,
        &["drop-capabilities"],
        "run-as-non-root is still exempt",
    );
    assert_warning(
        &o,
        &[
            r#"podguard: metadata.annotations["podguard.io/exempt"] names unknown check "run-as-nonroot"; it is ignored"#,
        ],
        "unknown id",
    );
}

// =====================================================================================
// What podguard does not judge
// =====================================================================================

#[test]
fn other_kinds_operations_and_subresources_are_accepted_untouched() {
    let mut bad = pod();
    remove(&mut bad, "/spec/securityContext/runAsNonRoot");
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}, "data": {"a": "b"}});
    let mut foreign = deployment(&bad);
    set(&mut foreign, "/apiVersion", json!("example.com/v1"));

    let mut delete = review("DELETE", &bad);
    delete["object"] = Value::Null;
    delete["oldObject"] = bad.clone();
    let mut connect = review("CONNECT", &bad);
    connect["subResource"] = json!("exec");
    connect["object"] = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"]});
    let mut status = update_review(&bad, &bad);
    status["subResource"] = json!("status");
    let mut scale = update_review(&deployment(&bad), &deployment(&bad));
    scale["subResource"] = json!("scale");

    for (case, review) in [
        ("ConfigMap CREATE", review("CREATE", &configmap)),
        ("Deployment of another group", review("CREATE", &foreign)),
        ("Pod DELETE", delete),
        ("Pod CONNECT", connect),
        ("pods/status", status),
        ("deployments/scale", scale),
    ] {
        for settings in [defaults(), mutate_all()] {
            assert_untouched(&judge(&settings, &review), case);
        }
    }
}

// =====================================================================================
// Messages
// =====================================================================================

#[test]
fn every_violation_is_reported_at_once_one_per_line() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot"); // run-as-non-root
    remove(&mut p, "/spec/containers/0/securityContext/capabilities"); // drop-capabilities
    remove(
        &mut p,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
    ); // no-privilege-escalation
    remove(&mut p, "/spec/containers/0/resources/limits/memory"); // resource-limits
    remove(&mut p, "/metadata/annotations/prometheus.io~1port"); // prometheus-annotations
    let o = create(&defaults(), &p);
    assert_rejected(&o, "five checks");
    assert_checks(
        &o,
        &[
            "run-as-non-root",
            "drop-capabilities",
            "no-privilege-escalation",
            "resource-limits",
            "prometheus-annotations",
        ],
        "five checks",
    );
    let message = o.message.as_deref().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 6, "header plus five lines:\n{message}");
    assert_eq!(
        lines[0],
        r#"Pod "web" violates podguard's requirements (5 violations):"#
    );
    let mut body: Vec<&str> = lines[1..].to_vec();
    body.sort_unstable();
    let mut expected: Vec<&str> = o.violations.iter().map(|v| v.message.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(body, expected, "one line per violation");
    for (line, expected_start) in [
        (
            violation(
                &o,
                "resource-limits",
                "spec.containers[0].resources.limits.memory",
            )
            .message
            .as_str(),
            r#"resource-limits: container "app" (spec.containers[0].resources.limits.memory) must be set (e.g. 512Mi)"#,
        ),
        (
            violation(&o, "prometheus-annotations", PORT_FIELD)
                .message
                .as_str(),
            r#"prometheus-annotations: pod (metadata.annotations["prometheus.io/port"]) must be the metrics port number, e.g. "9090""#,
        ),
    ] {
        assert_eq!(line, expected_start);
    }
}

#[test]
fn seccomp_and_probe_messages_say_what_to_set() {
    let settings = modes(&[("seccomp-profile", "enforce"), ("health-probes", "enforce")]);
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/seccompProfile");
    let o = create(&settings, &p);
    assert_rejected(&o, "seccomp and probes");
    assert_checks(
        &o,
        &["seccomp-profile", "health-probes"],
        "seccomp and probes",
    );
    assert_eq!(
        violation(
            &o,
            "seccomp-profile",
            "spec.containers[0].securityContext.seccompProfile.type"
        )
        .message,
        r#"seccomp-profile: container "app" (spec.containers[0].securityContext.seccompProfile.type) must be RuntimeDefault or Localhost"#
    );
    assert_fields(
        &o,
        "health-probes",
        &[
            "spec.containers[0].livenessProbe",
            "spec.containers[0].readinessProbe",
        ],
        "probes",
    );
    assert_eq!(
        violation(&o, "health-probes", "spec.containers[0].livenessProbe").message,
        r#"health-probes: container "app" (spec.containers[0].livenessProbe) is not set: declare one so the kubelet restarts the container when it hangs"#
    );
    assert_eq!(
        violation(&o, "health-probes", "spec.containers[0].readinessProbe").message,
        r#"health-probes: container "app" (spec.containers[0].readinessProbe) is not set: declare one so traffic reaches the container only when it is ready"#
    );
}

// =====================================================================================
// Mutation output
// =====================================================================================

#[test]
fn mutation_is_idempotent_and_its_result_is_clean() {
    let mut bare = json!({
        "name": "app",
        "image": "registry.example.com/shop/app:1.4.2",
        "ports": [{"name": "metrics", "containerPort": 9090}],
        "futureField": {"x": 1}
    });
    bare["env"] = json!([{"name": "MODE", "value": "prod"}]);
    let mut worker = container("worker");
    worker["futureField"] = json!({"x": 1});
    let mut p = pod_with(vec![bare, worker]);
    remove(&mut p, "/metadata/annotations");
    remove(&mut p, "/spec/securityContext");
    set(&mut p, "/spec/futureField", json!({"x": 1}));
    let d = deployment(&p);

    let settings = mutate_all();
    let o = create(&settings, &d);
    let m = mutated(&o, "first mutation").clone();
    assert!(
        o.violations
            .iter()
            .all(|v| v.disposition == Disposition::Fixed && v.fixable),
        "{}",
        show(&o)
    );
    assert_eq!(
        o.audit_annotations.get("mutated").map(String::as_str),
        Some(
            "drop-capabilities,no-privilege-escalation,prometheus-annotations,read-only-root-filesystem,resource-limits,run-as-non-root,seccomp-profile"
        )
    );
    let spec = &m["spec"]["template"]["spec"];
    assert_json(
        &spec["securityContext"],
        &json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
        "pod securityContext",
    );
    let mut expected_app = d["spec"]["template"]["spec"]["containers"][0].clone();
    expected_app["securityContext"] = json!({
        "capabilities": {"drop": ["ALL"]},
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true
    });
    expected_app["resources"] = json!({
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"}
    });
    assert_json(&spec["containers"][0], &expected_app, "app container");
    assert_same_bytes(
        &d["spec"]["template"]["spec"]["containers"][1],
        &spec["containers"][1],
        "untouched worker",
    );
    assert_json(&spec["futureField"], &json!({"x": 1}), "pod futureField");
    assert_json(
        &spec["containers"][0]["futureField"],
        &json!({"x": 1}),
        "container futureField",
    );
    assert_json(
        &m["spec"]["template"]["metadata"]["annotations"],
        &prometheus(),
        "annotations",
    );

    // Mutating the mutated object changes nothing, and it is clean.
    let again = create(&settings, &m);
    assert_clean(&again, "second mutation");
    let audit = evaluate_object(&policy(&settings), WorkloadKind::Deployment, &m);
    assert_clean(&audit, "audit of the mutated object");
    assert!(audit.audit_annotations.is_empty(), "{}", show(&audit));
}

#[test]
fn mutate_mode_reports_violations_to_audit() {
    // A workload mutate would fix is still non-compliant as it stands.
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    let o = evaluate_object(&policy(&mutate_all()), WorkloadKind::Pod, &p);
    let v = violation(
        &o,
        "run-as-non-root",
        "spec.containers[0].securityContext.runAsNonRoot",
    );
    assert_eq!(
        (v.mode, v.disposition, v.fixable),
        (Mode::Mutate, Disposition::Fixed, true)
    );
}

#[test]
fn nothing_to_change_means_no_mutated_object() {
    for (case, object) in [
        ("pod", pod()),
        ("deployment", deployment(&pod())),
        ("cronjob", cronjob(&pod())),
    ] {
        let o = create(&mutate_all(), &object);
        assert_clean(&o, case);
        assert!(o.audit_annotations.is_empty(), "{case}\n{}", show(&o));
        let payload = json!({"request": review("CREATE", &object), "settings": mutate_all()});
        let response = validate_payload(payload.to_string().as_bytes());
        assert!(
            response.accepted && response.mutated_object.is_none(),
            "{case}: {response:?}"
        );
        let wire = serde_json::to_value(&response).unwrap();
        assert!(wire.get("mutated_object").is_none(), "{case}: {wire}");
    }

    // An unfixable violation in mutate mode: rejected, and no mutated object either.
    let mut p = pod();
    set(
        &mut p,
        "/spec/containers/0/securityContext/runAsNonRoot",
        json!(false),
    );
    let o = create(&mutate_all(), &p);
    assert_rejected(&o, "unfixable");
}

#[test]
fn validate_payload_answers_like_evaluate() {
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    let payload = json!({"request": review("CREATE", &p), "settings": {"checks": {"run-as-non-root": {"mode": "warn"}}}});
    let response = validate_payload(payload.to_string().as_bytes());
    assert!(response.accepted, "{response:?}");
    let warnings = response.warnings.unwrap_or_default();
    assert_eq!(
        warnings,
        vec![r#"run-as-non-root: container "app" (spec.containers[0].securityContext.runAsNonRoot) must be true"#.to_owned()]
    );

    let payload = json!({"request": review("CREATE", &p), "settings": {"checks": {"run-as-non-root": {"mode": "sometimes"}}}});
    let response = validate_payload(payload.to_string().as_bytes());
    assert!(!response.accepted);
    assert_contains(
        response.message.as_deref().unwrap_or(""),
        &["settings are invalid", "checks.run-as-non-root.mode"],
        "bad settings in the payload",
    );

    let response = validate_payload(b"{not json");
    assert_eq!(
        (response.accepted, response.code),
        (false, Some(400)),
        "{response:?}"
    );
}

// =====================================================================================
// Settings
// =====================================================================================

#[test]
fn settings_that_are_wrong_are_refused_naming_the_field() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "unknown field",
            json!({"checks": {"resource-limits": {"requierd": ["limits.cpu"]}}}),
            vec!["checks.resource-limits", "requierd"],
        ),
        (
            "unknown check id",
            json!({"checks": {"run-as-nonroot": {"mode": "warn"}}}),
            vec!["run-as-nonroot"],
        ),
        (
            "unknown top-level field",
            json!({"exemption": {"namespaces": []}}),
            vec!["exemption"],
        ),
        (
            "bad quantity",
            json!({"checks": {"resource-limits": {"defaults": {"limits.cpu": "1gi"}}}}),
            vec!["checks.resource-limits.defaults.limits.cpu", "1gi"],
        ),
        (
            "bad glob",
            json!({"exemptions": {"images": ["registry.example.com/[a-"]}}),
            vec!["exemptions.images[0]"],
        ),
        (
            "defaultRunAsUser 0",
            json!({"checks": {"run-as-non-root": {"defaultRunAsUser": 0}}}),
            vec!["checks.run-as-non-root.defaultRunAsUser", "uid 0 is root"],
        ),
        (
            "default request above the default limit",
            json!({"checks": {"resource-limits": {"defaults": {"requests.memory": "1Gi"}}}}),
            vec![
                "checks.resource-limits.defaults.requests.memory",
                "1Gi",
                "512Mi",
            ],
        ),
        (
            "mode true",
            json!({"checks": {"no-privileged": {"mode": true}}}),
            vec!["checks.no-privileged.mode"],
        ),
        (
            "unknown mode",
            json!({"checks": {"no-privileged": {"mode": "block"}}}),
            vec!["checks.no-privileged.mode", "block"],
        ),
        (
            "a string, not a map",
            json!("x"),
            vec!["settings field", "(top level)"],
        ),
    ];
    for (case, settings, needles) in cases {
        let response = validate_settings_payload(settings.to_string().as_bytes());
        assert!(!response.valid, "{case}: {settings} must be refused");
        assert_contains(response.message.as_deref().unwrap_or(""), &needles, case);
        assert!(
            policy_refused(&settings),
            "{case}: policy_from_settings agrees"
        );
    }
    let response = validate_settings_payload(b"{oops");
    assert!(!response.valid);
    assert_contains(
        response.message.as_deref().unwrap_or(""),
        &["not valid JSON"],
        "garbage",
    );
}

fn policy_refused(settings: &Value) -> bool {
    podguard_policy::policy_from_settings(settings).is_err()
}

#[test]
fn empty_settings_are_valid() {
    for payload in [&b"{}"[..], b"", b"  \n", b"null"] {
        let response = validate_settings_payload(payload);
        assert!(
            response.valid && response.message.is_none(),
            "{:?}: {response:?}",
            String::from_utf8_lossy(payload)
        );
    }
    assert_eq!(
        settings_from_overrides(&Value::Null).unwrap(),
        settings_from_overrides(&json!({})).unwrap()
    );
}

#[test]
fn runtime_settings_override_field_by_field() {
    let baseline = settings_from_overrides(&json!({})).unwrap();
    let warn = settings_from_overrides(&modes(&[("run-as-non-root", "warn")])).unwrap();
    let mut expected = baseline.clone();
    expected.checks.run_as_non_root.mode = Mode::Warn;
    assert_eq!(warn, expected, "only run-as-non-root's mode changes");

    // And by behaviour: the other defaults still enforce.
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    remove(&mut p, "/spec/containers/0/securityContext/capabilities");
    let o = create(&modes(&[("run-as-non-root", "warn")]), &p);
    assert_rejected(&o, "drop-capabilities still enforces");
    assert_eq!(
        violation(
            &o,
            "run-as-non-root",
            "spec.containers[0].securityContext.runAsNonRoot"
        )
        .disposition,
        Disposition::Warned
    );
    assert_eq!(
        violation(
            &o,
            "drop-capabilities",
            "spec.containers[0].securityContext.capabilities.drop"
        )
        .disposition,
        Disposition::Rejected
    );
    assert_warning(&o, &["run-as-non-root: container \"app\""], "warned");

    // A nested option keeps its siblings: defaults.limits.cpu alone keeps the other defaults.
    let one_default = json!({"checks": {"resource-limits": {"defaults": {"limits.cpu": "250m"}}}});
    let s = settings_from_overrides(&one_default).unwrap();
    let mut expected = baseline.clone();
    expected
        .checks
        .resource_limits
        .defaults
        .insert("limits.cpu".to_owned(), json!("250m"));
    assert_eq!(s, expected);
    // Lists replace.
    let s = settings_from_overrides(&json!({"exemptions": {"namespaces": ["infra"]}})).unwrap();
    assert_eq!(s.exemptions.namespaces, vec!["infra".to_owned()]);
    assert_eq!(s.checks, baseline.checks);
}

#[test]
fn mode_false_reads_as_off() {
    let settings = json!({"checks": {"run-as-non-root": {"mode": false}}});
    assert!(validate_settings_payload(settings.to_string().as_bytes()).valid);
    assert_eq!(
        settings_from_overrides(&settings)
            .unwrap()
            .checks
            .run_as_non_root
            .mode,
        Mode::Off
    );
    let mut p = pod();
    remove(&mut p, "/spec/securityContext/runAsNonRoot");
    assert_clean(&create(&settings, &p), "run-as-non-root off");
}

#[test]
fn prometheus_mutate_falls_back_to_http_metrics_then_the_default_port() {
    let mut p = pod();
    remove(&mut p, "/metadata/annotations/prometheus.io~1port");
    set(
        &mut p,
        "/spec/containers/0/ports",
        json!([{"name": "web", "containerPort": 8080}, {"name": "http-metrics", "containerPort": 9102}]),
    );
    let settings = modes(&[("prometheus-annotations", "mutate")]);
    let o = create(&settings, &p);
    assert_eq!(
        mutated(&o, "http-metrics")["metadata"]["annotations"]["prometheus.io/port"],
        json!("9102")
    );

    // No named port: the configured default, which must still be declared.
    set(
        &mut p,
        "/spec/containers/0/ports",
        json!([{"name": "web", "containerPort": 8080}]),
    );
    let o = create(&settings, &p);
    assert_rejected(&o, "no metrics port and no default");
    let v = violation(&o, "prometheus-annotations", PORT_FIELD);
    assert!(!v.fixable);
    assert_contains(
        &v.message,
        &["must be the metrics port number (no container port is named metrics or http-metrics)"],
        "no default",
    );

    let with_default =
        json!({"checks": {"prometheus-annotations": {"mode": "mutate", "defaultPort": 8080}}});
    let o = create(&with_default, &p);
    assert_eq!(
        mutated(&o, "defaultPort")["metadata"]["annotations"]["prometheus.io/port"],
        json!("8080")
    );

    let undeclared =
        json!({"checks": {"prometheus-annotations": {"mode": "mutate", "defaultPort": 9999}}});
    let o = create(&undeclared, &p);
    assert_rejected(&o, "an undeclared default port is not written");
    assert!(
        !violation(&o, "prometheus-annotations", PORT_FIELD).fixable,
        "{}",
        show(&o)
    );
    assert_contains(
        &violation(&o, "prometheus-annotations", PORT_FIELD).message,
        &["must be the metrics port number (no container port is named metrics or http-metrics)"],
        "undeclared default",
    );
}

/// Every warning the scenarios produce, with the scenario's name.
fn warnings_of(cases: Vec<(&str, podguard_policy::Outcome)>) -> Vec<(String, String)> {
    cases
        .into_iter()
        .flat_map(|(case, o)| o.warnings.into_iter().map(move |w| (case.to_owned(), w)))
        .collect()
}

#[track_caller]
fn assert_short(warnings: &[(String, String)]) {
    assert!(!warnings.is_empty());
    let long: Vec<String> = warnings
        .iter()
        .filter(|(_, w)| w.chars().count() > 256)
        .map(|(case, w)| format!("{case}: {} chars: {w}", w.chars().count()))
        .collect();
    assert!(
        long.is_empty(),
        "the API server may truncate warnings past 256 characters:\n{}",
        long.join("\n")
    );
}

#[test]
fn violation_warnings_fit_the_api_servers_limit() {
    let warn_all = modes(&[
        ("run-as-non-root", "warn"),
        ("drop-capabilities", "warn"),
        ("resource-limits", "warn"),
        ("prometheus-annotations", "warn"),
        ("no-privilege-escalation", "warn"),
        ("no-privileged", "warn"),
        ("host-namespaces", "warn"),
    ]);
    let mut p = pod();
    remove(&mut p, "/spec/securityContext");
    remove(
        &mut p,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
    );
    set(
        &mut p,
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    set(
        &mut p,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["CAP_SYS_ADMIN"]),
    );
    set(
        &mut p,
        "/spec/containers/0/resources/requests/cpu",
        json!("2"),
    );
    set(
        &mut p,
        "/spec/containers/0/image",
        json!("registry.example.com/shop/app"),
    );
    set(&mut p, "/spec/hostNetwork", json!(true));
    set(
        &mut p,
        "/metadata/annotations/prometheus.io~1port",
        json!("metrics"),
    );
    // uid 0 without runAsNonRoot: true, so the user namespace relaxes it to a note.
    let mut userns = pod();
    remove(&mut userns, "/spec/securityContext/runAsNonRoot");
    set(&mut userns, "/spec/hostUsers", json!(false));
    set(
        &mut userns,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    let old = violating_deployment();
    let mut scaled = old.clone();
    set(&mut scaled, "/spec/replicas", json!(9));
    let mut no_reason = pod();
    set(
        &mut no_reason,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-non-root"),
    );
    let warnings = warnings_of(vec![
        ("pod", create(&warn_all, &p)),
        ("deployment", create(&warn_all, &deployment(&p))),
        ("cronjob", create(&warn_all, &cronjob(&p))),
        ("user namespace pod", create(&defaults(), &userns)),
        (
            "tolerated update",
            judge(&defaults(), &update_review(&old, &scaled)),
        ),
        (
            "exemption without reason",
            create(
                &annotation_exemptions(&["run-as-non-root"], &["shop"]),
                &deployment(&no_reason),
            ),
        ),
    ]);
    assert_short(&warnings);
}

#[test]
fn long_warnings_fit_the_api_servers_limit() {
    let mut p = pod();
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt",
        json!("run-as-nonroot"),
    );
    set(
        &mut p,
        "/metadata/annotations/podguard.io~1exempt-reason",
        json!("legacy"),
    );
    let allowed = annotation_exemptions(&["run-as-non-root"], &["shop"]);
    let warnings = warnings_of(vec![
        ("pod", create(&allowed, &p)),
        ("deployment", create(&allowed, &deployment(&p))),
    ]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for (_, w) in &warnings {
        assert_contains(
            w,
            &["names unknown check \"run-as-nonroot\""],
            "still says what is wrong",
        );
    }
    // The user-namespace note on a CronJob (uid 0 without runAsNonRoot: true is relaxed).
    let mut userns = pod();
    remove(&mut userns, "/spec/securityContext/runAsNonRoot");
    set(&mut userns, "/spec/hostUsers", json!(false));
    set(
        &mut userns,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    let mut notes = warnings_of(vec![(
        "user namespace cronjob",
        create(&defaults(), &cronjob(&userns)),
    )]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let mut all = warnings;
    all.append(&mut notes);
    assert_short(&all);
}

#[test]
fn host_users_false_does_not_excuse_a_pod_the_kubelet_will_not_start() {
    // kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go)
    // refuses runAsNonRoot: true with runAsUser: 0 whatever hostUsers says, so the user
    // namespace must not relax it to a note.
    let mut p = pod();
    set(&mut p, "/spec/hostUsers", json!(false));
    set(
        &mut p,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    let o = create(&defaults(), &p);
    assert_rejected(&o, "runAsNonRoot true with uid 0 under a user namespace");
    let v = violation(
        &o,
        "run-as-non-root",
        "spec.containers[0].securityContext.runAsUser",
    );
    assert_contains(
        &v.message,
        &[
            "is 0 while runAsNonRoot is true",
            "the kubelet will refuse to start it",
            "set a non-zero uid",
        ],
        "user namespace",
    );
    assert!(!v.fixable, "{v:?}");
    assert!(
        o.warnings.is_empty(),
        "no user-namespace note\n{}",
        show(&o)
    );
}

#[test]
fn mutation_does_not_change_what_an_image_exempt_container_runs_with() {
    // The exempt container is skipped by every check, but a pod-level fix made for its
    // neighbour is inherited by it: a root debug image then fails to start
    // ("container has runAsNonRoot and image will run as root").
    let settings = json!({
        "checks": {
            "run-as-non-root": {"mode": "mutate"},
            "seccomp-profile": {"mode": "mutate"}
        },
        "exemptions": {"images": ["registry.example.com/debug/*"]}
    });
    let debug = json!({"name": "debug", "image": "registry.example.com/debug/shell:2.1"});
    let mut p = pod_with(vec![app(), debug]);
    remove(&mut p, "/spec/securityContext");
    let o = create(&settings, &p);
    let m = mutated(&o, "fix the app container");
    let effective = |container: usize, field: &str| -> Value {
        let own = &m["spec"]["containers"][container]["securityContext"][field];
        if own.is_null() {
            m["spec"]["securityContext"][field].clone()
        } else {
            own.clone()
        }
    };
    assert_eq!(effective(0, "runAsNonRoot"), json!(true), "app is fixed");
    assert_eq!(
        effective(0, "seccompProfile"),
        json!({"type": "RuntimeDefault"}),
        "app is fixed"
    );
    assert_eq!(
        effective(1, "runAsNonRoot"),
        Value::Null,
        "the exempt container must run as it was written: {m:#}"
    );
    assert_eq!(
        effective(1, "seccompProfile"),
        Value::Null,
        "the exempt container must run as it was written: {m:#}"
    );
}

#[test]
fn a_mutated_object_keeps_its_managed_fields() {
    // Evaluation leaves managedFields out of the parsed object (no check reads it, and it is
    // often half of a request); a mutated object must carry it back, or the patch a host
    // computes from it would delete the object's server-side-apply bookkeeping.
    let managed_fields = json!([{
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}
    }]);
    let mut d = deployment(&pod());
    remove(&mut d, "/spec/template/spec/securityContext/runAsNonRoot");
    set(&mut d, "/metadata/managedFields", managed_fields.clone());

    let o = create(&mutate_all(), &d);
    let m = o.mutated_object.as_ref().expect("a mutation");
    assert_eq!(m["metadata"]["managedFields"], managed_fields);
    let patch = json_patch::diff(&d, m);
    assert!(
        patch
            .iter()
            .all(|op| !op.path().to_string().contains("managedFields")),
        "{patch:?}"
    );
    assert_eq!(
        m["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
}

/// `rollout`: settings that name no namespace or an unknown check are refused with the
/// field; observe-only turns per-namespace `enforce` into `warn` as well.
#[test]
fn rollout_settings_are_checked_and_observe_only_wins_over_namespace_modes() {
    for (settings, expected) in [
        (
            json!({"rollout": {"namespaces": [{"mode": "warn"}]}}),
            "settings field `rollout.namespaces[0].names`: is empty",
        ),
        (
            json!({"rollout": {"namespaces": [{"names": ["shop"], "checks": {"no-such-check": "off"}}]}}),
            r#"`rollout.namespaces[0].checks.no-such-check`: "no-such-check" is not a check id"#,
        ),
        (
            json!({"rollout": {"namespaces": [{"names": ["[shop"], "mode": "off"}]}}),
            "settings field `rollout.namespaces[0].names[0]`",
        ),
        (json!({"rollout": {"observe": true}}), "rollout.observe"),
    ] {
        let err = podguard_policy::policy_from_settings(&settings).unwrap_err();
        assert_contains(&err.to_string(), &[expected], "settings");
    }

    let enforced_in_shop = json!({"rollout": {
        "observeOnly": true,
        "namespaces": [{"names": ["shop"], "mode": "enforce"}],
    }});
    let policy = podguard_policy::policy_from_settings(&enforced_in_shop).unwrap();
    let rootful = rootful_pod();
    assert_eq!(rootful["metadata"]["namespace"], "shop");
    let outcome = evaluate_object(&policy, WorkloadKind::Pod, &rootful);
    assert!(outcome.accepted, "{outcome:?}");
    assert!(!outcome.warnings.is_empty());
    assert!(
        outcome.violations.iter().all(|v| v.mode == Mode::Warn),
        "{outcome:?}"
    );

    // Without observe-only, the same entry enforces in shop and the rest stays as set.
    let warn_elsewhere = json!({"checks": {
        "run-as-non-root": {"mode": "warn"},
        "drop-capabilities": {"mode": "warn"},
    }, "rollout": {
        "namespaces": [{"names": ["sho?"], "checks": {"run-as-non-root": "enforce"}}],
    }});
    let policy = podguard_policy::policy_from_settings(&warn_elsewhere).unwrap();
    let in_shop = evaluate_object(&policy, WorkloadKind::Pod, &rootful);
    assert!(!in_shop.accepted, "{in_shop:?}");
    assert!(
        in_shop
            .violations
            .iter()
            .all(|v| (v.check == CheckId::RunAsNonRoot) == (v.mode == Mode::Enforce)),
        "{in_shop:?}"
    );
    let mut elsewhere = rootful.clone();
    elsewhere["metadata"]["namespace"] = json!("shipping");
    let outcome = evaluate_object(&policy, WorkloadKind::Pod, &elsewhere);
    assert!(outcome.accepted, "{outcome:?}");
}

/// `kinds`: which workload kinds a check judges. Kind names are checked, an empty list is
/// refused, and a Pod counts as batch work only when its controller is a Job.
#[test]
fn kinds_choose_the_workloads_a_check_judges() {
    for (settings, expected) in [
        (
            json!({"checks": {"no-privileged": {"kinds": ["Pods"]}}}),
            r#""Pods" is not a workload kind podguard judges; write one of Pod, Deployment"#,
        ),
        (
            json!({"checks": {"prometheus-annotations": {"kinds": []}}}),
            "settings field `checks.prometheus-annotations.kinds`: is empty",
        ),
    ] {
        let err = podguard_policy::policy_from_settings(&settings).unwrap_err();
        assert_contains(&err.to_string(), &[expected], "settings");
    }

    let mut unscraped = pod();
    remove(&mut unscraped, "/metadata/annotations");
    let owned_by = |api_version: &str, kind: &str, controller: bool| {
        let mut p = unscraped.clone();
        set(
            &mut p,
            "/metadata/ownerReferences",
            json!([{"apiVersion": api_version, "kind": kind, "name": "owner",
                    "uid": "5ee24b85-7a41-4715-adbd-f8eb33e8beab", "controller": controller}]),
        );
        p
    };
    assert_checks(
        &create(&defaults(), &unscraped),
        &["prometheus-annotations"],
        "a bare Pod is long-running",
    );
    assert_clean(
        &create(&defaults(), &owned_by("batch/v1", "Job", true)),
        "a Job's Pod is batch work",
    );
    for (api_version, kind, controller, context) in [
        ("apps/v1", "ReplicaSet", true, "a ReplicaSet's Pod"),
        (
            "batch/v1",
            "Job",
            false,
            "a Job that is an owner but not the controller",
        ),
        ("example.com/v1", "Job", true, "a Job of another API group"),
    ] {
        assert_checks(
            &create(&defaults(), &owned_by(api_version, kind, controller)),
            &["prometheus-annotations"],
            context,
        );
    }

    // Jobs opt in; any check can be narrowed the same way.
    let opted_in = json!({"checks": {"prometheus-annotations": {"kinds": ["Job"]}}});
    assert_checks(
        &create(&opted_in, &owned_by("batch/v1", "Job", true)),
        &["prometheus-annotations"],
        "Jobs opted in",
    );
    assert_clean(&create(&opted_in, &unscraped), "only Jobs listed");
    let narrowed = json!({"checks": {"run-as-non-root": {"kinds": ["Deployment"]}}});
    let rootful = rootful_pod();
    assert!(!of(&create(&defaults(), &rootful), "run-as-non-root").is_empty());
    assert!(of(&create(&narrowed, &rootful), "run-as-non-root").is_empty());
    assert!(!of(&create(&narrowed, &deployment(&rootful)), "run-as-non-root").is_empty());
}

/// `no-unconfined-seccomp` follows PSA's baseline `seccompProfile_baseline`: the pod's own
/// profile and each container's are judged apart, and `seccomp-profile` does not report the
/// same value again unless it is the stricter of the two.
#[test]
fn unconfined_seccomp_is_a_baseline_violation_reported_once() {
    let mut p = pod();
    set(
        &mut p,
        "/spec/containers/0/securityContext/seccompProfile",
        json!({"type": "Unconfined"}),
    );
    let o = create(&defaults(), &p);
    assert_rejected(&o, "container Unconfined");
    assert_fields(
        &o,
        "no-unconfined-seccomp",
        &["spec.containers[0].securityContext.seccompProfile.type"],
        "container Unconfined",
    );
    assert!(of(&o, "seccomp-profile").is_empty(), "{}", show(&o));

    // With the baseline check off, or only warning while seccomp-profile enforces, the
    // restricted check reports it.
    for settings in [
        modes(&[("no-unconfined-seccomp", "off")]),
        modes(&[
            ("no-unconfined-seccomp", "warn"),
            ("seccomp-profile", "enforce"),
        ]),
    ] {
        let o = create(&settings, &p);
        assert_fields(
            &o,
            "seccomp-profile",
            &["spec.containers[0].securityContext.seccompProfile.type"],
            &settings.to_string(),
        );
    }

    // The pod's own Unconfined fails even when every container sets RuntimeDefault.
    let mut p = pod();
    set(
        &mut p,
        "/spec/securityContext/seccompProfile",
        json!({"type": "Unconfined"}),
    );
    set(
        &mut p,
        "/spec/containers/0/securityContext/seccompProfile",
        json!({"type": "RuntimeDefault"}),
    );
    assert_fields(
        &create(&defaults(), &p),
        "no-unconfined-seccomp",
        &["spec.securityContext.seccompProfile.type"],
        "pod Unconfined",
    );

    let mut p = pod();
    set(
        &mut p,
        "/spec/securityContext/seccompProfile",
        json!({"type": "Localhost", "localhostProfile": "profiles/app.json"}),
    );
    assert_clean(&create(&defaults(), &p), "Localhost");
}
