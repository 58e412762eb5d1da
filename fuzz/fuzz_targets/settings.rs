//! Arbitrary bytes into `validate_settings`. Settings it calls valid must compile with
//! `policy_from_settings`, and the compiled policy must judge sample workloads (every check
//! violated, mutated where the settings say so) without panicking, with a message on every
//! rejection and idempotent mutation.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use podguard_policy::{policy_from_settings, validate_settings_payload};
use serde_json::Value;

const SAMPLES: [&str; 2] = [
    include_str!("../../tests/fixtures/pod-noncompliant/review.json"),
    include_str!("../../tests/fixtures/deployment-noncompliant/review.json"),
];

fn samples() -> &'static [(String, String, Value)] {
    static SAMPLES_PARSED: std::sync::OnceLock<Vec<(String, String, Value)>> =
        std::sync::OnceLock::new();
    SAMPLES_PARSED.get_or_init(|| {
        SAMPLES
            .iter()
            .map(|text| {
                let review: Value = serde_json::from_str(text).expect("fixture is JSON");
                let request = &review["request"];
                (
                    request["kind"]["group"].as_str().unwrap().to_owned(),
                    request["kind"]["kind"].as_str().unwrap().to_owned(),
                    request["object"].clone(),
                )
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let response = validate_settings_payload(data);
    if !response.valid {
        assert!(
            response
                .message
                .as_deref()
                .is_some_and(|m| !m.trim().is_empty()),
            "invalid settings without a message"
        );
        return;
    }
    assert!(
        response.message.is_none(),
        "valid settings with a message: {response:?}"
    );
    let overrides: Value = if data.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(data).expect("settings validate_settings accepted are JSON")
    };
    let policy = policy_from_settings(&overrides).unwrap_or_else(|err| {
        panic!("validate_settings said valid, policy_from_settings refused: {err}")
    });
    for (group, kind, object) in samples() {
        common::evaluate_idempotent(&policy, group, kind, object);
    }
});
