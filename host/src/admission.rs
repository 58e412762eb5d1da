//! AdmissionReview in, AdmissionReview out: what kube-apiserver sends a webhook and what
//! it expects back, around one call of a policy module.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use std::convert::Infallible;
use std::sync::Arc;

use crate::{CallError, PolicyModule, Unfinished};
use podguard_policy::ValidationResponse;
use podguard_policy::contract::operation::VALIDATE;

/// The only AdmissionReview version podguard speaks (v1beta1 was removed in Kubernetes 1.22).
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an AdmissionReview podguard can answer. The server answers these
/// with HTTP 400 and this message (with its source: [`crate::chain`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReviewError {
    /// The body is not JSON.
    #[error("the body is not a JSON AdmissionReview")]
    NotJson(#[source] Arc<serde_json::Error>),
    /// `apiVersion` is not `admission.k8s.io/v1`.
    #[error(
        "apiVersion is {0:?}; podguard speaks admission.k8s.io/v1 only: set admissionReviewVersions: [v1] in the webhook configuration"
    )]
    WrongVersion(String),
    /// `kind` is not `AdmissionReview`.
    #[error("kind is {0:?}; send an AdmissionReview")]
    WrongKind(String),
    /// No `request`.
    #[error("the AdmissionReview has no request; kube-apiserver always sends one")]
    NoRequest,
    /// `request` is not an object, or lacks what every request carries.
    #[error("request is invalid: {0}")]
    InvalidRequest(String),
    /// `request` does not parse as a request (a field repeated, of the wrong type).
    #[error("request is invalid")]
    MalformedRequest(#[source] Arc<serde_json::Error>),
}

/// Whether the caller can apply a patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A ValidatingWebhookConfiguration: never patches.
    Validate,
    /// A MutatingWebhookConfiguration: patches when the policy mutated the object.
    Mutate,
}

/// What to answer when the policy cannot produce a verdict (trap, deadline, memory cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FailureMode {
    /// Deny the request, saying why (the safe default).
    #[default]
    Deny,
    /// Allow the request with a warning saying why.
    Allow,
}

/// The answer to one review, with what the server logs and counts about it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The AdmissionReview response body.
    pub review: Value,
    /// The request's uid.
    pub uid: String,
    /// Operation, kind, namespace and name, for logs.
    pub summary: RequestSummary,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Whether a patch was returned.
    pub patched: bool,
    /// Set when the policy could not produce a verdict and the failure mode answered.
    pub failure: Option<CallError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewEnvelope<'a> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestHead {
    #[serde(default)]
    uid: Option<Value>,
    #[serde(default)]
    operation: Option<Value>,
    #[serde(default)]
    kind: Option<Value>,
    #[serde(default)]
    namespace: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
}

/// What a log line says about a request: never its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSummary {
    /// CREATE, UPDATE, ...
    pub operation: String,
    /// The object's kind.
    pub kind: String,
    /// The namespace, if any.
    pub namespace: String,
    /// The object's name, if the request names it.
    pub name: String,
}

/// A review that passed the envelope checks.
#[derive(Debug)]
pub struct ParsedReview<'a> {
    /// `request.uid`.
    pub uid: String,
    /// `request`, exactly as sent, handed to the policy without re-encoding.
    pub request: &'a RawValue,
    /// Operation, kind, namespace and name, for logs.
    pub summary: RequestSummary,
}

/// Checks the envelope: version, kind, a request with a uid, operation and kind.
pub fn parse_review(body: &[u8]) -> Result<ParsedReview<'_>, ReviewError> {
    let envelope: ReviewEnvelope =
        serde_json::from_slice(body).map_err(|e| ReviewError::NotJson(Arc::new(e)))?;
    match envelope.api_version.as_deref() {
        Some(ADMISSION_API_VERSION) => {}
        other => {
            return Err(ReviewError::WrongVersion(echo_prefix(
                other.unwrap_or("(missing)"),
            )));
        }
    }
    if envelope.kind.as_deref() != Some("AdmissionReview") {
        return Err(ReviewError::WrongKind(echo_prefix(
            envelope.kind.as_deref().unwrap_or("(missing)"),
        )));
    }
    let request = envelope
        .request
        .filter(|r| r.get() != "null")
        .ok_or(ReviewError::NoRequest)?;
    // serde would read a JSON array into the struct field by field.
    if !request.get().starts_with('{') {
        return Err(ReviewError::InvalidRequest(
            "it is not an object".to_owned(),
        ));
    }
    // An object that still fails here repeats a field (`"uid"` twice, say): say so, since
    // which of the two values counts is exactly what the sender must fix.
    let head: RequestHead = serde_json::from_str(request.get())
        .map_err(|e| ReviewError::MalformedRequest(Arc::new(e)))?;
    let uid = match head.uid {
        Some(Value::String(uid)) if uid.len() > MAX_UID_BYTES => {
            return Err(ReviewError::InvalidRequest(format!(
                "request.uid is {} bytes long; kube-apiserver sends a UUID of 36 characters",
                uid.len()
            )));
        }
        Some(Value::String(uid)) if !uid.is_empty() => uid,
        _ => {
            return Err(ReviewError::InvalidRequest(
                "request.uid is missing or not a non-empty string".to_owned(),
            ));
        }
    };
    let Some(Value::String(operation)) = head.operation else {
        return Err(ReviewError::InvalidRequest(
            "request.operation is missing or not a string".to_owned(),
        ));
    };
    let Some(kind) = head
        .kind
        .as_ref()
        .and_then(|k| k.get("kind"))
        .and_then(Value::as_str)
    else {
        return Err(ReviewError::InvalidRequest(
            "request.kind.kind is missing or not a string".to_owned(),
        ));
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    // Every field is cut before it reaches a log line: a sender could otherwise write
    // megabytes into the log with each request.
    let summary = RequestSummary {
        operation: echo_prefix(&operation),
        kind: echo_prefix(kind),
        namespace: echo_prefix(&text(head.namespace)),
        name: echo_prefix(&text(head.name)),
    };
    Ok(ParsedReview {
        uid,
        request,
        summary,
    })
}

/// The longest `request.uid` answered. Kubernetes uids are UUIDs (36 characters); the uid
/// is echoed in the answer and the log, so a longer one would let a sender make both as
/// large as its body.
pub const MAX_UID_BYTES: usize = 128;

/// At most the first 64 characters of a value an error message repeats: the message goes
/// into the response and the log, and a sender controls the value's length (up to the
/// whole body).
pub(crate) fn echo_prefix(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes)", &value[..end], value.len()),
    }
}

/// The waPC `validate` payload, built around the request's own bytes.
pub fn validate_payload(request: &RawValue, settings_json: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(request.get().len() + settings_json.len() + 32);
    payload.extend_from_slice(b"{\"request\":");
    payload.extend_from_slice(request.get().as_bytes());
    payload.extend_from_slice(b",\"settings\":");
    payload.extend_from_slice(settings_json.as_bytes());
    payload.push(b'}');
    payload
}

/// Answers one AdmissionReview body with `module` under `settings_json`.
pub fn review(
    module: &PolicyModule,
    settings_json: &str,
    body: &[u8],
    endpoint: Endpoint,
    failure_mode: FailureMode,
) -> Result<Answer, ReviewError> {
    let Ok(answer) = review_by(
        module,
        settings_json,
        body,
        endpoint,
        failure_mode,
        |payload| Ok::<_, Infallible>(module.call(VALIDATE, payload)),
    );
    answer
}

/// [`review`], but the policy gets only until the engine's next epoch tick
/// ([`PolicyModule::call_briefly`]); [`Unfinished`] when it needs longer, and then the
/// caller runs [`review`] where blocking is allowed.
pub fn review_briefly(
    module: &PolicyModule,
    settings_json: &str,
    body: &[u8],
    endpoint: Endpoint,
    failure_mode: FailureMode,
) -> Result<Result<Answer, ReviewError>, Unfinished> {
    review_by(
        module,
        settings_json,
        body,
        endpoint,
        failure_mode,
        |payload| module.call_briefly(VALIDATE, payload),
    )
}

fn review_by<E>(
    module: &PolicyModule,
    settings_json: &str,
    body: &[u8],
    endpoint: Endpoint,
    failure_mode: FailureMode,
    call: impl FnOnce(&[u8]) -> Result<Result<Vec<u8>, CallError>, E>,
) -> Result<Result<Answer, ReviewError>, E> {
    let parsed = match parse_review(body) {
        Ok(parsed) => parsed,
        Err(err) => return Ok(Err(err)),
    };
    let payload = validate_payload(parsed.request, settings_json);
    let verdict = call(&payload)?.and_then(|bytes| {
        serde_json::from_slice::<ValidationResponse>(&bytes).map_err(|e| CallError::Answer {
            operation: VALIDATE.to_owned(),
            expected: "a ValidationResponse",
            source: Arc::new(e),
        })
    });
    Ok(Ok(answer(
        parsed,
        verdict,
        module.name(),
        endpoint,
        failure_mode,
    )))
}

/// Builds the AdmissionReview response from a policy's verdict or failure.
pub fn answer(
    parsed: ParsedReview<'_>,
    verdict: Result<ValidationResponse, CallError>,
    policy_name: &str,
    endpoint: Endpoint,
    failure_mode: FailureMode,
) -> Answer {
    let (response, failure) = match verdict {
        Ok(response) => (response, None),
        Err(error) => {
            let message = format!(
                "podguard could not evaluate policy {policy_name}: {}",
                crate::chain(&error)
            );
            let response = match failure_mode {
                FailureMode::Deny => ValidationResponse::unreadable(message),
                FailureMode::Allow => ValidationResponse {
                    accepted: true,
                    message: None,
                    code: None,
                    mutated_object: None,
                    audit_annotations: None,
                    warnings: Some(vec![format!(
                        "{message}; allowed because the failure mode is allow"
                    )]),
                },
            };
            let response = ValidationResponse {
                code: (!response.accepted).then_some(500),
                ..response
            };
            (response, Some(error))
        }
    };

    let mut warnings = response.warnings.unwrap_or_default();
    let mut patch = None;
    if let (Endpoint::Mutate, true, Some(mutated)) =
        (endpoint, response.accepted, response.mutated_object)
    {
        match original_object(parsed.request) {
            Some(original) => {
                let diff = json_patch::diff(&original, &mutated);
                if !diff.0.is_empty() {
                    patch = Some(diff);
                }
            }
            None => warnings.push(format!(
                "podguard: policy {policy_name} mutated a request without an object; the mutation is ignored"
            )),
        }
    }

    let allowed = response.accepted;
    let status = (!allowed).then(|| Status {
        code: response.code.unwrap_or(403),
        message: response
            .message
            .unwrap_or_else(|| format!("denied by policy {policy_name}")),
    });
    let body = AdmissionResponse {
        uid: &parsed.uid,
        allowed,
        status,
        patch_type: patch.as_ref().map(|_| "JSONPatch"),
        patch: patch.as_ref().map(|p| {
            let bytes = serde_json::to_vec(p).expect("a JSON Patch serialises");
            base64::engine::general_purpose::STANDARD.encode(bytes)
        }),
        warnings: (!warnings.is_empty()).then_some(warnings),
        audit_annotations: response.audit_annotations,
    };
    let review = serde_json::json!({
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "AdmissionReview",
        "response": body,
    });
    Answer {
        review,
        uid: parsed.uid,
        summary: parsed.summary,
        allowed,
        patched: patch.is_some(),
        failure,
    }
}

fn original_object(request: &RawValue) -> Option<Value> {
    #[derive(Deserialize)]
    struct WithObject {
        #[serde(default)]
        object: Option<Value>,
    }
    serde_json::from_str::<WithObject>(request.get())
        .ok()?
        .object
        .filter(Value::is_object)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionResponse<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct Status {
    code: u16,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_name_the_problem() {
        let cases: [(&[u8], &str); 6] = [
            (b"{not json", "the body is not a JSON AdmissionReview: key must be a string at line 1 column 2"),
            (
                br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#,
                "apiVersion is \"admission.k8s.io/v1beta1\"; podguard speaks admission.k8s.io/v1 only",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
                "kind is \"Pod\"; send an AdmissionReview",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "the AdmissionReview has no request",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[1]}"#,
                "request is invalid: it is not an object",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE","kind":{"kind":"Pod"}}}"#,
                "request is invalid: request.uid is missing or not a non-empty string",
            ),
        ];
        let long_kind = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"{}","request":{{}}}}"#,
            "k".repeat(100_000)
        );
        match parse_review(long_kind.as_bytes()).unwrap_err() {
            ReviewError::WrongKind(kind) => {
                assert_eq!(kind, format!("{}… (100000 bytes)", "k".repeat(64)));
            }
            other => panic!("expected WrongKind, got {other:?}"),
        }
        let duplicate_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b","operation":"CREATE","kind":{"kind":"Pod"}}}"#;
        let err = parse_review(duplicate_uid).unwrap_err();
        assert!(matches!(err, ReviewError::MalformedRequest(_)), "{err:?}");
        assert!(
            crate::chain(&err).contains("request is invalid: duplicate field `uid`"),
            "{}",
            crate::chain(&err)
        );
        for (body, expected) in cases {
            let message = crate::chain(&parse_review(body).unwrap_err());
            assert!(
                message.starts_with(expected),
                "body {}:\n  expected: {expected}\n  actual:   {message}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn payload_wraps_the_request_bytes_unchanged() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"CREATE","kind":{"kind":"Pod"},"object":{"a":1.50}}}"#;
        let parsed = parse_review(body).unwrap();
        let payload = validate_payload(parsed.request, "{}");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"request":{"uid":"u1","operation":"CREATE","kind":{"kind":"Pod"},"object":{"a":1.50}},"settings":{}}"#
        );
    }
}
