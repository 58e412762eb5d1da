//! Invariants shared by the policy targets. Not a fuzz target itself (no [[bin]] entry).

#![allow(dead_code)]

use podguard_policy::{AdmissionRequest, Outcome, Policy, ValidationResponse, evaluate};
use serde_json::{Value, json};

/// Every check in mutate mode (checks that cannot mutate then reject, as in enforce).
pub fn all_mutate_settings() -> Value {
    let checks: serde_json::Map<String, Value> = podguard_policy::CheckId::ALL
        .iter()
        .map(|id| (id.as_str().to_owned(), json!({"mode": "mutate"})))
        .collect();
    json!({ "checks": checks })
}

/// Every check that can mutate in mutate mode and the rest off, so that far more objects
/// are accepted with a mutation and the idempotence check applies to them. Except
/// `prometheus-annotations`, also off: it can only mutate when a container declares a port
/// named `metrics`/`http-metrics`, so in mutate mode it rejects most objects (the
/// all-mutate profile still covers its mutation).
pub fn fixable_mutate_settings() -> Value {
    let checks: serde_json::Map<String, Value> = podguard_policy::CheckId::ALL
        .iter()
        .map(|id| {
            let fixable = id.can_mutate() && *id != podguard_policy::CheckId::PrometheusAnnotations;
            let mode = if fixable { "mutate" } else { "off" };
            (id.as_str().to_owned(), json!({ "mode": mode }))
        })
        .collect();
    json!({ "checks": checks })
}

/// The kinds the structured variants wrap an arbitrary object as.
pub const KINDS: [(&str, &str); 3] = [("", "Pod"), ("apps", "Deployment"), ("batch", "CronJob")];

/// A CREATE request for `object` as `group`/`kind`.
pub fn create_request(group: &str, kind: &str, object: &Value) -> AdmissionRequest {
    let request = json!({
        "uid": "u",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": "CREATE",
        "namespace": "fuzz",
        "object": object,
    });
    serde_json::from_value(request).expect("a CREATE request with any object deserialises")
}

/// What every answer must satisfy, whatever the input.
pub fn check_response(response: &ValidationResponse) {
    if !response.accepted {
        let message = response.message.as_deref().unwrap_or("");
        assert!(
            !message.trim().is_empty(),
            "a rejection without a message: {response:?}"
        );
    }
    if response.mutated_object.is_some() {
        assert!(
            response.accepted,
            "a mutated object on a rejection: {response:?}"
        );
    }
    let bytes = serde_json::to_vec(response).expect("the response serialises");
    let back: ValidationResponse =
        serde_json::from_slice(&bytes).expect("the serialised response reads back");
    assert_eq!(
        &back, response,
        "the response does not round-trip through JSON"
    );
}

/// [`check_response`] for a whole [`Outcome`].
pub fn check_outcome(outcome: &Outcome) {
    if !outcome.accepted {
        let message = outcome.message.as_deref().unwrap_or("");
        assert!(
            !message.trim().is_empty(),
            "a rejection without a message: {outcome:?}"
        );
    }
    check_response(&outcome.to_response());
}

/// Evaluates `object` as `group`/`kind` under `policy`; when mutate mode changed it, the
/// mutated object must differ from the original and, evaluated again under the same
/// policy, be accepted with no further mutation.
pub fn evaluate_idempotent(policy: &Policy, group: &str, kind: &str, object: &Value) -> Outcome {
    let outcome = evaluate(policy, &create_request(group, kind, object));
    check_outcome(&outcome);
    if let Some(mutated) = &outcome.mutated_object {
        assert_ne!(
            mutated, object,
            "{kind}: a mutated object identical to the original (a no-op patch)"
        );
        let again = evaluate(policy, &create_request(group, kind, mutated));
        check_outcome(&again);
        assert!(
            again.mutated_object.is_none(),
            "{kind}: mutation is not idempotent\nfirst:  {}\nsecond: {}",
            serde_json::to_string(mutated).unwrap(),
            serde_json::to_string(again.mutated_object.as_ref().unwrap()).unwrap(),
        );
        assert!(
            again.accepted,
            "{kind}: the mutated object is rejected when evaluated again: {:?}\nmutated: {}",
            again.message,
            serde_json::to_string(mutated).unwrap(),
        );
    }
    outcome
}
