//! How the cost of judging an object grows with what it holds. A sender chooses the
//! object, so a cost that grows faster than its size is a way to stall the webhook: a Pod
//! of 2,000 bare containers once took the whole evaluation deadline.

use std::time::{Duration, Instant};

use podguard_policy::{AdmissionRequest, MAX_LINES_PER_OBJECT, evaluate, policy_from_settings};
use serde_json::{Value, json};

/// A Pod of `n` containers carrying only a name and an image: every container breaks
/// several checks, so the findings number several per container.
fn bare_pod(n: usize) -> AdmissionRequest {
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("registry.example/app:{i}")}))
        .collect();
    serde_json::from_value(json!({
        "uid": "scaling",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": "shop",
        "object": {"metadata": {"name": "many"}, "spec": {"containers": containers}}
    }))
    .unwrap()
}

/// The fastest of a few runs: the least disturbed by whatever else the machine does.
fn fastest(settings: &Value, request: &AdmissionRequest) -> Duration {
    let policy = policy_from_settings(settings).unwrap();
    (0..5)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(evaluate(&policy, request));
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn the_cost_of_findings_grows_linearly() {
    let small = bare_pod(250);
    let large = bare_pod(2_000);
    for (settings, context) in [
        (json!({}), "default settings"),
        (
            json!({"checks": {
                "run-as-non-root": {"mode": "mutate"},
                "drop-capabilities": {"mode": "mutate"},
                "resource-limits": {"mode": "mutate"},
                "no-privilege-escalation": {"mode": "mutate"},
                "read-only-root-filesystem": {"mode": "mutate"},
                "seccomp-profile": {"mode": "mutate"}
            }}),
            "mutate mode (a second pass over the mutated object)",
        ),
        (
            json!({"exemptions": {"images": ["registry.example/*"]}}),
            "every container exempt by image",
        ),
    ] {
        let (a, b) = (fastest(&settings, &small), fastest(&settings, &large));
        let ratio = b.as_secs_f64() / a.as_secs_f64();
        // Eight times the containers: linear growth gives about 8, the pairwise matching
        // this guards against gave about 64. The bound leaves room for a noisy machine.
        assert!(
            ratio < 24.0,
            "{context}: 250 containers took {a:?}, 2,000 took {b:?} ({ratio:.1}x for 8x the findings)"
        );
    }
}

#[test]
fn an_answer_lists_a_bounded_number_of_findings_and_counts_the_rest() {
    let policy = policy_from_settings(&json!({})).unwrap();
    let outcome = evaluate(&policy, &bare_pod(2_000));
    assert!(!outcome.accepted);
    let message = outcome.message.unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].starts_with(r#"Pod "many" violates podguard's requirements ("#),
        "{}",
        lines[0]
    );
    // The header counts every violation, the body lists the first ones, one line the rest.
    let rejected = outcome
        .violations
        .iter()
        .filter(|v| v.disposition == podguard_policy::Disposition::Rejected)
        .count();
    assert!(
        lines[0].contains(&format!("({rejected} violations)")),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len(),
        1 + MAX_LINES_PER_OBJECT + 1,
        "{}",
        &message[..2000]
    );
    assert_eq!(
        lines[MAX_LINES_PER_OBJECT + 1],
        format!(
            "podguard: {} more violations not listed (the first {MAX_LINES_PER_OBJECT} are); `podguard audit -o json` lists every one",
            rejected - MAX_LINES_PER_OBJECT
        )
    );
    // Warnings are bounded the same way.
    assert!(
        outcome.warnings.len() <= MAX_LINES_PER_OBJECT + 1,
        "{}",
        outcome.warnings.len()
    );
    assert!(
        outcome
            .warnings
            .last()
            .unwrap()
            .contains("more warnings not listed"),
        "{:?}",
        outcome.warnings.last()
    );
    // Audit still sees every violation.
    assert!(
        outcome.violations.len() > 8_000,
        "{}",
        outcome.violations.len()
    );
}
