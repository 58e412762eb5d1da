//! Properties over generated pod specs: evaluation never panics, mutation is idempotent,
//! and a mutated object that was admitted evaluates clean on its own.

use podguard_policy::{
    AdmissionRequest, Policy, WorkloadKind, evaluate, evaluate_object, policy_from_settings,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn optional<T: std::fmt::Debug + Clone + 'static>(
    values: Vec<T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(prop::sample::select(values))
}

/// Values a field may hold, including ones of the wrong type.
fn flag() -> impl Strategy<Value = Option<Value>> {
    optional(vec![json!(true), json!(false), json!("yes"), Value::Null])
}

fn quantity() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("100m"),
        json!("1"),
        json!("2"),
        json!("0.5"),
        json!("128Mi"),
        json!("1Gi"),
        json!("1gi"),
        json!(1),
        json!("-1"),
        json!(null),
    ])
}

fn security_context() -> impl Strategy<Value = Option<Value>> {
    (
        flag(),
        optional(vec![json!(0), json!(1000), json!("root")]),
        flag(),
        flag(),
        flag(),
        prop::collection::vec(
            prop::sample::select(vec!["ALL", "all", "NET_RAW", "cap_all"]),
            0..3,
        ),
        prop::collection::vec(
            prop::sample::select(vec![
                "NET_BIND_SERVICE",
                "cap_sys_admin",
                "CAP_SYS_ADMIN",
                "ALL",
            ]),
            0..3,
        ),
        optional(vec!["RuntimeDefault", "Unconfined", "Localhost"]),
    )
        .prop_map(
            |(non_root, user, privileged, escalation, read_only, drop, add, seccomp)| {
                let mut sc = Map::new();
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        sc.insert(key.to_owned(), value);
                    }
                };
                put("runAsNonRoot", non_root);
                put("runAsUser", user);
                put("privileged", privileged);
                put("allowPrivilegeEscalation", escalation);
                put("readOnlyRootFilesystem", read_only);
                if !drop.is_empty() || !add.is_empty() {
                    sc.insert("capabilities".to_owned(), json!({"drop": drop, "add": add}));
                }
                if let Some(kind) = seccomp {
                    sc.insert("seccompProfile".to_owned(), json!({"type": kind}));
                }
                Value::Object(sc)
            },
        )
        .prop_map(Some)
        .boxed()
        .prop_union(Just(None).boxed())
}

fn container() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["app", "sidecar", "metrics", "debug"]),
        prop::sample::select(vec![
            "nginx",
            "nginx:latest",
            "ghcr.io/a/b:1.2",
            "r.io:5000/x@sha256:aa",
        ]),
        security_context(),
        prop::collection::btree_map(
            prop::sample::select(vec!["cpu", "memory"]),
            quantity(),
            0..3,
        ),
        prop::collection::btree_map(
            prop::sample::select(vec!["cpu", "memory"]),
            quantity(),
            0..3,
        ),
        prop::sample::select(vec![None, Some(("metrics", 9090)), Some(("http", 8080))]),
        any::<bool>(),
    )
        .prop_map(|(name, image, sc, limits, requests, port, future)| {
            let mut c = json!({"name": name, "image": image});
            if let Some(sc) = sc {
                c["securityContext"] = sc;
            }
            if !limits.is_empty() || !requests.is_empty() {
                c["resources"] = json!({"limits": limits, "requests": requests});
            }
            if let Some((port_name, number)) = port {
                c["ports"] = json!([{"name": port_name, "containerPort": number}]);
            }
            if future {
                // A field podguard does not model must survive mutation untouched.
                c["futureField"] = json!({"nested": [1, 2]});
            }
            c
        })
}

fn pod_spec() -> impl Strategy<Value = (Value, Value)> {
    (
        prop::collection::vec(container(), 0..3),
        prop::collection::vec(container(), 0..2),
        any::<bool>(),
        security_context(),
        optional(vec!["windows", "linux"]),
        flag(),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "prometheus.io/scrape",
                "prometheus.io/port",
                "prometheus.io/path",
            ]),
            prop::sample::select(vec!["true", "false", "9090", "metrics", "/metrics"]),
            0..3,
        ),
    )
        .prop_map(
            |(containers, init, restartable, pod_sc, os, host_users, annotations)| {
                let init: Vec<Value> = init
                    .into_iter()
                    .map(|mut c| {
                        if restartable {
                            c["restartPolicy"] = json!("Always");
                        }
                        c
                    })
                    .collect();
                let mut spec = json!({"containers": containers, "initContainers": init});
                if let Some(sc) = pod_sc {
                    spec["securityContext"] = sc;
                }
                if let Some(os) = os {
                    spec["os"] = json!({"name": os});
                }
                if let Some(host_users) = host_users {
                    spec["hostUsers"] = host_users;
                }
                (spec, json!({"annotations": annotations}))
            },
        )
}

fn workload(kind: WorkloadKind, spec: Value, metadata: Value) -> Value {
    let template = json!({"metadata": metadata, "spec": spec});
    match kind {
        WorkloadKind::Pod => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": template["metadata"]["annotations"]}, "spec": template["spec"]})
        }
        WorkloadKind::CronJob => {
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        _ => {
            json!({"apiVersion": "apps/v1", "kind": kind.as_str(), "metadata": {"name": "d"}, "spec": {"template": template}})
        }
    }
}

fn kind() -> impl Strategy<Value = WorkloadKind> {
    prop::sample::select(vec![
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::CronJob,
    ])
}

/// Every check that can mutate in mutate mode, the others off, so every violation that
/// remains after mutation is one mutation could not fix.
fn mutate_policy() -> Policy {
    policy_from_settings(&json!({"checks": {
        "run-as-non-root": {"mode": "mutate", "defaultRunAsUser": 1000},
        "drop-capabilities": {"mode": "mutate"},
        "resource-limits": {"mode": "mutate"},
        "prometheus-annotations": {"mode": "mutate", "defaultPort": 9090},
        "no-privilege-escalation": {"mode": "mutate"},
        "read-only-root-filesystem": {"mode": "mutate"},
        "seccomp-profile": {"mode": "mutate"},
        "no-privileged": {"mode": "off"},
        "host-namespaces": {"mode": "off"},
        "image-tag-pinned": {"mode": "off"},
        "health-probes": {"mode": "off"}
    }}))
    .unwrap()
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9./:-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "spec",
            "containers",
            "securityContext",
            "template",
            "metadata"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "spec",
                    "template",
                    "jobTemplate",
                    "metadata",
                    "annotations",
                    "containers",
                    "initContainers",
                    "ephemeralContainers",
                    "securityContext",
                    "capabilities",
                    "resources",
                    "limits",
                    "requests",
                    "ports",
                    "name",
                    "image",
                    "runAsUser",
                ])
                .prop_map(str::to_owned),
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn evaluation_never_panics_on_arbitrary_objects(object in arbitrary_json(), kind in kind(), old in arbitrary_json()) {
        for policy in [policy_from_settings(&json!({})).unwrap(), mutate_policy()] {
            let _ = evaluate_object(&policy, kind, &object);
            let request: AdmissionRequest = serde_json::from_value(json!({
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "UPDATE", "subResource": "ephemeralcontainers",
                "object": object, "oldObject": old
            })).unwrap();
            let _ = evaluate(&policy, &request);
        }
    }

    #[test]
    fn mutation_is_idempotent_and_its_admitted_output_is_clean((spec, metadata) in pod_spec(), kind in kind()) {
        let policy = mutate_policy();
        let object = workload(kind, spec, metadata);
        let first = evaluate_object(&policy, kind, &object);
        if let Some(mutated) = &first.mutated_object {
            let second = evaluate_object(&policy, kind, mutated);
            prop_assert!(second.mutated_object.is_none(), "mutating the mutated object changed it again: {:?}", second.mutated_object);
            if first.accepted {
                prop_assert!(second.accepted && second.violations.is_empty(),
                    "an admitted mutation left violations: {:?}", second.violations);
            }
            // Fields podguard does not model survive, and nothing is removed.
            prop_assert!(removed_nothing(&object, mutated), "mutation removed or rewrote a field:\n{object}\n{mutated}");
        } else if first.accepted {
            let fixed = first.violations.iter().filter(|v| v.disposition == podguard_policy::Disposition::Fixed).count();
            prop_assert_eq!(fixed, 0, "violations reported fixed but no mutation: {:?}", first.violations);
        }
        // A fixable violation is one mutation really fixes.
        for v in first.violations.iter().filter(|v| v.fixable) {
            prop_assert_eq!(v.disposition, podguard_policy::Disposition::Fixed, "{:?}", v);
        }
    }
}

/// Every scalar of `before` is still in `after` at the same place, except capability
/// names rewritten to their canonical spelling. Only a container's capabilities are
/// rewritten, so elsewhere (e.g. a stray pod-level `capabilities`) the name stays as
/// written.
fn removed_nothing(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => b.iter().all(|(k, v)| match a.get(k) {
            Some(av) => removed_nothing(v, av),
            None => false,
        }),
        (Value::Array(b), Value::Array(a)) => {
            b.len() <= a.len() && b.iter().zip(a).all(|(bv, av)| removed_nothing(bv, av))
        }
        (Value::Null, _) => true,
        (Value::String(b), Value::String(a))
            if b.eq_ignore_ascii_case("all") || b.eq_ignore_ascii_case("cap_all") =>
        {
            a == "ALL" || a == b
        }
        (b, a) => b == a,
    }
}
