//! podguard's workload-hardening policy: the checks, the mutations and the settings.
//!
//! This crate is the only place a rule is evaluated. It builds as a native library (used
//! by the server, the audit and the tests as the speed floor) and, for `wasm32-wasip1`, as
//! a Kubewarden waPC policy module. Both run the same code path.
//!
//! ```
//! use serde_json::json;
//!
//! let policy = podguard_policy::policy_from_settings(&json!({})).unwrap();
//! let request = serde_json::from_value(json!({
//!     "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
//!     "kind": {"group": "", "version": "v1", "kind": "Pod"},
//!     "operation": "CREATE",
//!     "namespace": "shop",
//!     "object": {"metadata": {"name": "web"},
//!                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
//! })).unwrap();
//! let outcome = podguard_policy::evaluate(&policy, &request);
//! assert!(!outcome.accepted);
//! assert!(outcome.message.unwrap().contains(
//!     r#"run-as-non-root: container "app" (spec.containers[0].securityContext.runAsNonRoot) must be true"#));
//! ```

#[cfg(feature = "browser")]
pub mod browser;
mod checks;
pub mod contract;
pub mod docs;
mod evaluate;
mod glob;
mod object;
mod quantity;
mod request;
mod response;
mod settings;
mod view;
#[cfg(target_os = "wasi")]
mod wapc;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use serde_json::Value;

pub use checks::{Definition, Input, OptionDoc, PssControl, PssLevel, Severity};
pub use evaluate::{
    Disposition, ExemptedBy, Exemption, Outcome, Violation, evaluate, evaluate_object,
};
pub use evaluate::{MAX_LINES_PER_OBJECT, VIOLATIONS_ANNOTATION};
pub use object::WorkloadKind;
pub use request::{AdmissionRequest, ValidatePayload};
pub use response::{SettingsValidationResponse, ValidationResponse};
pub use settings::{CheckId, Mode, Policy, Settings, SettingsError};

/// The policy's version; `policy/metadata.yml` and `artifacthub-pkg.yml` must agree.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The requirements document embedded at build time (`policy/requirements.yaml`, or the
/// file `PODGUARD_REQUIREMENTS` named), as JSON.
pub const EMBEDDED_REQUIREMENTS: &str =
    include_str!(concat!(env!("OUT_DIR"), "/requirements.json"));

/// The embedded requirements, parsed once.
pub fn embedded_requirements() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::from_str(EMBEDDED_REQUIREMENTS).expect("build.rs embeds valid JSON")
    })
}

/// The settings a request is judged by: the embedded requirements with runtime settings
/// layered over them field by field.
pub fn settings_from_overrides(overrides: &Value) -> Result<Settings, SettingsError> {
    Settings::from_layers(embedded_requirements(), overrides)
}

/// [`settings_from_overrides`], compiled for evaluation.
pub fn policy_from_settings(overrides: &Value) -> Result<Policy, SettingsError> {
    settings_from_overrides(overrides)?.compile()
}

/// The waPC `validate_settings` operation: payload is the runtime settings as JSON.
pub fn validate_settings_payload(payload: &[u8]) -> SettingsValidationResponse {
    let result = if payload.iter().all(u8::is_ascii_whitespace) {
        policy_from_settings(&Value::Null)
    } else {
        serde_json::from_slice(payload)
            .map_err(|err| SettingsError::NotJson(err.to_string()))
            .and_then(|overrides: Value| policy_from_settings(&overrides))
    };
    match result {
        Ok(_) => SettingsValidationResponse {
            valid: true,
            message: None,
        },
        Err(err) => SettingsValidationResponse {
            valid: false,
            message: Some(err.to_string()),
        },
    }
}

/// The waPC `validate` operation: `{"request": …, "settings": …}` in, the Kubewarden
/// response out. A payload podguard cannot read is rejected with a message saying why.
pub fn validate_payload(payload: &[u8]) -> ValidationResponse {
    match evaluate_payload(payload) {
        Ok(outcome) => outcome.to_response(),
        Err(message) => ValidationResponse::unreadable(message),
    }
}

/// Like [`validate_payload`], but returns the whole [`Outcome`] (every violation with its
/// disposition), which audit reports are built from.
pub fn evaluate_payload(payload: &[u8]) -> Result<Outcome, String> {
    let wire: request::WirePayload = serde_json::from_slice(payload)
        .map_err(|err| format!("podguard cannot read the admission request: {err}"))?;
    let policy = cached_policy(wire.settings.map(|raw| raw.get()))
        .map_err(|err| format!("podguard's settings are invalid: {err}"))?;
    let originals = evaluate::Originals::Text {
        text: payload,
        request: &[&["request"]],
    };
    Ok(evaluate::evaluate_wire(&policy, wire.request, &originals))
}

thread_local! {
    /// Hosts send the same settings with every request; compiling them once per distinct
    /// document keeps evaluation to the checks themselves. The key is the settings' text,
    /// so a cache hit costs one comparison of bytes.
    static POLICY_CACHE: RefCell<Option<(String, Rc<Policy>)>> = const { RefCell::new(None) };
}

fn cached_policy(settings: Option<&str>) -> Result<Rc<Policy>, SettingsError> {
    let text = settings.unwrap_or("null");
    POLICY_CACHE.with(|cache| {
        if let Some((key, policy)) = cache.borrow().as_ref()
            && key == text
        {
            return Ok(Rc::clone(policy));
        }
        let overrides: Value =
            serde_json::from_str(text).map_err(|err| SettingsError::NotJson(err.to_string()))?;
        let policy = Rc::new(policy_from_settings(&overrides)?);
        *cache.borrow_mut() = Some((text.to_owned(), Rc::clone(&policy)));
        Ok(policy)
    })
}
