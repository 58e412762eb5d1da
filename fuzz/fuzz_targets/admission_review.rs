//! Arbitrary bytes into the server's AdmissionReview parser. A review it accepts must give
//! a waPC `validate` payload that is valid JSON carrying the request's bytes unchanged, and
//! the policy (natively, the code the Wasm module runs) must answer that payload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podguard_host::admission::{parse_review, validate_payload};
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(borrow)]
    settings: &'a RawValue,
}

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_review(data) else {
        return;
    };
    assert!(
        !parsed.uid.is_empty(),
        "an accepted review with an empty uid"
    );
    let payload = validate_payload(parsed.request, "{}");
    // RawValue checks syntax at any depth (a Value would stop at serde_json's 128 levels,
    // which is a limit, not invalid JSON).
    let read: Payload = serde_json::from_slice(&payload).unwrap_or_else(|err| {
        panic!(
            "validate_payload built invalid JSON ({err}): {}",
            String::from_utf8_lossy(&payload)
        )
    });
    assert_eq!(
        read.request.get(),
        parsed.request.get(),
        "the request was re-encoded"
    );
    assert_eq!(read.settings.get(), "{}");
    let response = podguard_policy::validate_payload(&payload);
    if !response.accepted {
        assert!(
            response
                .message
                .as_deref()
                .is_some_and(|m| !m.trim().is_empty()),
            "a rejection without a message: {response:?}"
        );
    }
    serde_json::to_vec(&response).expect("the response serialises");
});
