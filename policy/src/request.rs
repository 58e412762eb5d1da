//! The admission request as kube-apiserver sends it, and the waPC `validate` payload.

use serde::Deserialize;
use serde_json::Value;

/// The payload Kubewarden hosts pass to `validate`.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidatePayload {
    /// The admission request.
    pub request: AdmissionRequest,
    /// Runtime settings, layered over the embedded requirements.
    #[serde(default)]
    pub settings: Value,
}

/// The fields of `AdmissionReview.request` podguard reads. Kubernetes spells them in
/// camelCase; the snake_case aliases accept what other Kubewarden hosts forward.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Identifies the request in logs and the response.
    #[serde(default)]
    pub uid: String,
    /// The kind of `object`, after any conversion the API server made.
    pub kind: GroupVersionKind,
    /// The subresource, e.g. `ephemeralcontainers` or `status`.
    #[serde(default, alias = "sub_resource")]
    pub sub_resource: Option<String>,
    /// The object's name as the request names it.
    #[serde(default)]
    pub name: Option<String>,
    /// The namespace of the object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// The object as it will be stored (absent for DELETE).
    #[serde(default)]
    pub object: Option<Value>,
    /// The object as stored before an UPDATE or DELETE.
    #[serde(default, alias = "old_object")]
    pub old_object: Option<Value>,
    /// Dry-run requests are judged like any other: podguard has no side effects.
    #[serde(default, alias = "dry_run")]
    pub dry_run: Option<bool>,
}

/// `group`, `version`, `kind` of the request's object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1`.
    #[serde(default)]
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an existing object.
    Update,
    /// A deletion.
    Delete,
    /// A connect (exec, attach, port-forward).
    Connect,
}
