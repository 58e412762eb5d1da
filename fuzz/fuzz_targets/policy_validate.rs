//! The policy's `validate` on arbitrary input, natively.
//!
//! 1. Raw: the bytes as a waPC `validate` payload, through `validate_payload` and
//!    `evaluate_payload`.
//! 2. Structured: the bytes as JSON; `request.object` when there is one, else the whole
//!    value, wrapped as a Pod, a Deployment and a CronJob in a CREATE request and evaluated
//!    under the default settings, with every check in mutate mode, and with every fixable
//!    check in mutate mode and the rest off (so that many more objects are accepted with a
//!    mutation). A rejection has a message; a mutated object differs from the original and,
//!    evaluated again under the same settings, is accepted with no further mutation.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use podguard_policy::{Policy, evaluate_payload, policy_from_settings, validate_payload};
use serde_json::{Value, json};

thread_local! {
    static DEFAULT: Policy = policy_from_settings(&json!({})).expect("default settings compile");
    static MUTATE: Policy =
        policy_from_settings(&common::all_mutate_settings()).expect("all-mutate settings compile");
    static FIXABLE: Policy = policy_from_settings(&common::fixable_mutate_settings())
        .expect("fixable-mutate settings compile");
}

fuzz_target!(|data: &[u8]| {
    // Raw.
    let response = validate_payload(data);
    common::check_response(&response);
    match evaluate_payload(data) {
        Ok(outcome) => {
            common::check_outcome(&outcome);
            assert_eq!(
                outcome.to_response(),
                response,
                "evaluate_payload and validate_payload disagree"
            );
        }
        Err(message) => {
            assert!(!message.is_empty());
            assert!(!response.accepted);
            assert_eq!(response.message.as_deref(), Some(message.as_str()));
        }
    }

    // Structured.
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let object = match value.pointer("/request/object") {
        Some(object) => object.clone(),
        None => value,
    };
    for (group, kind) in common::KINDS {
        DEFAULT.with(|policy| {
            let outcome = common::evaluate_idempotent(policy, group, kind, &object);
            assert!(
                outcome.mutated_object.is_none(),
                "{kind}: a mutation under the default settings, where no check is in mutate mode"
            );
        });
        MUTATE.with(|policy| {
            common::evaluate_idempotent(policy, group, kind, &object);
        });
        FIXABLE.with(|policy| {
            common::evaluate_idempotent(policy, group, kind, &object);
        });
    }
});
