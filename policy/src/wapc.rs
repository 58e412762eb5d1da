//! The Kubewarden waPC glue: registers the operations and converts, nothing more.

use kubewarden_policy_sdk::wapc_guest::{self as guest, CallResult};

use crate::contract::operation;

#[allow(
    unsafe_code,
    reason = "waPC hosts call the guest's init function by this exact symbol"
)]
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    guest::register_function(operation::VALIDATE, validate);
    guest::register_function(operation::VALIDATE_SETTINGS, validate_settings);
    guest::register_function(
        operation::PROTOCOL_VERSION,
        kubewarden_policy_sdk::protocol_version_guest,
    );
    // Not part of Kubewarden's protocol (its hosts never call them): podguard's audit
    // reads every violation with its disposition, and every check's mode, from the same
    // module.
    guest::register_function(operation::EVALUATE, evaluate);
    guest::register_function(operation::MODES, modes);
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

fn modes(payload: &[u8]) -> CallResult {
    let modes = crate::contract::modes_payload(payload)
        .map_err(|err| -> Box<dyn std::error::Error + Send + Sync> { err.to_string().into() })?;
    Ok(serde_json::to_vec(&modes)?)
}
