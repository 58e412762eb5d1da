//! Responses in the shape Kubewarden hosts read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The answer to `validate`, field for field the Kubewarden SDK's `ValidationResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationResponse {
    /// Whether the request is allowed.
    pub accepted: bool,
    /// Why it was rejected, one violation per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// HTTP status code for a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// The object as mutate mode leaves it; absent when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutated_object: Option<Value>,
    /// Context for the cluster's audit log (exemptions used, mutations made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    /// Admission warnings shown to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

impl ValidationResponse {
    /// A rejection for a request podguard cannot read at all.
    pub fn unreadable(message: String) -> ValidationResponse {
        ValidationResponse {
            accepted: false,
            message: Some(message),
            code: Some(400),
            mutated_object: None,
            audit_annotations: None,
            warnings: None,
        }
    }
}

/// The answer to `validate_settings`, as the Kubewarden SDK defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsValidationResponse {
    /// Whether the settings are usable.
    pub valid: bool,
    /// What is wrong, naming the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
