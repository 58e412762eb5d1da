//! The Kubewarden waPC glue: registers the operations and converts, nothing more.

use kubewarden_policy_sdk::wapc_guest::{self as guest, CallResult};

#[allow(
    unsafe_code,
    reason = "waPC hosts call the guest's init function by this exact symbol"
)]
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    guest::register_function("validate", validate);
    guest::register_function("validate_settings", validate_settings);
    guest::register_function(
        "protocol_version",
        kubewarden_policy_sdk::protocol_version_guest,
    );
    // Not part of Kubewarden's protocol (its hosts never call it): podguard's audit uses
    // it to read every violation with its disposition from the same module.
    guest::register_function("podguard_evaluate", evaluate);
}

fn validate(payload: &[u8]) -> CallResult {
    Ok(serde_json::to_vec(&crate::validate_payload(payload))?)
}

fn validate_settings(payload: &[u8]) -> CallResult {
    let response = crate::validate_settings_payload(payload);
    Ok(serde_json::to_vec(
        &kubewarden_policy_sdk::settings::SettingsValidationResponse {
            valid: response.valid,
            message: response.message,
        },
    )?)
}

fn evaluate(payload: &[u8]) -> CallResult {
    let outcome = crate::evaluate_payload(payload)
        .map_err(|message| -> Box<dyn std::error::Error + Send + Sync> { message.into() })?;
    Ok(serde_json::to_vec(&outcome)?)
}
