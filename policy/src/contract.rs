//! What hosts and podguard's own tools say to the module, typed: the waPC operations it
//! registers, the admission requests they ask about, and the mode of every check.
//!
//! Kubewarden hosts only ever call `validate`, `validate_settings` and
//! `protocol_version`. podguard's audit also calls [`operation::EVALUATE`] (every
//! violation with its disposition and JSON pointer) and [`operation::MODES`] (the mode of
//! every check under the settings), so a module built from an organisation's own
//! requirements is described by the module itself, never guessed.
//!
//! ```
//! use podguard_policy::contract::RequestBuilder;
//! use podguard_policy::WorkloadKind;
//!
//! let object = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[]}}"#;
//! let review = RequestBuilder::create(WorkloadKind::Pod, "v1", object)
//!     .name("web")
//!     .namespace("shop")
//!     .review();
//! let review: serde_json::Value = serde_json::from_slice(&review).unwrap();
//! assert_eq!(review["request"]["resource"]["resource"], "pods");
//! assert_eq!(review["request"]["operation"], "CREATE");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::object::WorkloadKind;
use crate::settings::{CheckId, Mode, Policy};

/// The waPC operations the module registers.
pub mod operation {
    /// Kubewarden's: judge a `{request, settings}` payload.
    pub const VALIDATE: &str = "validate";
    /// Kubewarden's: check a settings document.
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    /// Kubewarden's: the protocol version the guest speaks.
    pub const PROTOCOL_VERSION: &str = "protocol_version";
    /// podguard's: the whole [`crate::Outcome`] for a `{request, settings}` payload.
    pub const EVALUATE: &str = "podguard_evaluate";
    /// podguard's: the [`super::CheckModes`] a settings document gives.
    pub const MODES: &str = "podguard_modes";
}

/// The mode every check runs in under some settings: the answer of
/// [`operation::MODES`]. A check that is off is listed as off; every check is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckModes {
    /// By check.
    pub modes: BTreeMap<CheckId, Mode>,
}

impl CheckModes {
    /// The modes of a compiled policy.
    pub fn of(policy: &Policy) -> CheckModes {
        CheckModes {
            modes: CheckId::ALL
                .into_iter()
                .map(|id| (id, policy.mode(id)))
                .collect(),
        }
    }

    /// Every check in `mode` (reports built without a module, tests).
    pub fn uniform(mode: Mode) -> CheckModes {
        CheckModes {
            modes: CheckId::ALL.into_iter().map(|id| (id, mode)).collect(),
        }
    }

    /// The mode of `check`; a check the answer does not list (a module older than this
    /// binary) is off.
    pub fn get(&self, check: CheckId) -> Mode {
        self.modes.get(&check).copied().unwrap_or(Mode::Off)
    }

    /// Checks that are not off, in report order.
    pub fn active(&self) -> impl Iterator<Item = (CheckId, Mode)> + '_ {
        CheckId::ALL
            .into_iter()
            .map(|id| (id, self.get(id)))
            .filter(|(_, mode)| *mode != Mode::Off)
    }
}

/// The [`operation::MODES`] operation: the payload is the runtime settings as JSON (empty
/// for none).
pub fn modes_payload(payload: &[u8]) -> Result<CheckModes, crate::SettingsError> {
    let overrides = if payload.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(payload)
            .map_err(|err| crate::SettingsError::NotJson(err.to_string()))?
    };
    crate::policy_from_settings(&overrides).map(|policy| CheckModes::of(&policy))
}

/// Builds the admission request podguard's tools ask the module about: the JSON of an
/// `AdmissionRequest` around an object's own JSON text, which goes in unchanged.
#[derive(Debug, Clone)]
pub struct RequestBuilder<'a> {
    kind: WorkloadKind,
    version: &'a str,
    object: &'a [u8],
    uid: &'a str,
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    operation: &'a str,
    dry_run: bool,
}

impl<'a> RequestBuilder<'a> {
    /// A dry-run CREATE of `object` (its JSON text), a `kind` of `api_version`.
    pub fn create(
        kind: WorkloadKind,
        api_version: &'a str,
        object: &'a [u8],
    ) -> RequestBuilder<'a> {
        RequestBuilder {
            kind,
            version: api_version.rsplit_once('/').map_or(api_version, |(_, v)| v),
            object,
            uid: "podguard",
            name: None,
            namespace: None,
            operation: "CREATE",
            dry_run: true,
        }
    }

    /// The request's uid.
    pub fn uid(mut self, uid: &'a str) -> Self {
        self.uid = uid;
        self
    }

    /// The object's name, as the request names it.
    pub fn name(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    /// The namespace of the request.
    pub fn namespace(mut self, namespace: &'a str) -> Self {
        self.namespace = Some(namespace);
        self
    }

    /// Whether the request is a dry run (the default; podguard judges either the same).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Appends the `AdmissionRequest` JSON to `out`.
    pub fn write_request(&self, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, text: &str| {
            serde_json::to_writer(&mut *out, text).expect("a string serialises")
        };
        let group = self.kind.group();
        out.extend_from_slice(b"{\"uid\":");
        string(out, self.uid);
        out.extend_from_slice(b",\"kind\":{\"group\":");
        string(out, group);
        out.extend_from_slice(b",\"version\":");
        string(out, self.version);
        out.extend_from_slice(b",\"kind\":");
        string(out, self.kind.as_str());
        out.extend_from_slice(b"},\"resource\":{\"group\":");
        string(out, group);
        out.extend_from_slice(b",\"version\":");
        string(out, self.version);
        out.extend_from_slice(b",\"resource\":");
        string(out, self.kind.resource());
        out.push(b'}');
        if let Some(name) = self.name {
            out.extend_from_slice(b",\"name\":");
            string(out, name);
        }
        if let Some(namespace) = self.namespace {
            out.extend_from_slice(b",\"namespace\":");
            string(out, namespace);
        }
        out.extend_from_slice(b",\"operation\":");
        string(out, self.operation);
        out.extend_from_slice(if self.dry_run {
            b",\"dryRun\":true,\"object\":"
        } else {
            b",\"dryRun\":false,\"object\":"
        });
        out.extend_from_slice(self.object);
        out.push(b'}');
    }

    /// Replaces `out` with the `{"request": ..., "settings": ...}` payload of
    /// [`operation::VALIDATE`] and [`operation::EVALUATE`]; `settings` is JSON.
    pub fn write_payload(&self, settings: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(b"{\"request\":");
        self.write_request(out);
        out.extend_from_slice(b",\"settings\":");
        out.extend_from_slice(settings.as_bytes());
        out.push(b'}');
    }

    /// The `admission.k8s.io/v1` AdmissionReview kube-apiserver would send.
    pub fn review(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.object.len() + 256);
        out.extend_from_slice(
            b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":",
        );
        self.write_request(&mut out);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_parses_as_what_the_module_reads() {
        let object = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}"#;
        let builder = RequestBuilder::create(WorkloadKind::Deployment, "apps/v1", object)
            .uid("u-1")
            .name("d");
        let mut payload = Vec::new();
        builder.write_payload("{}", &mut payload);
        let parsed: crate::ValidatePayload = serde_json::from_slice(&payload).unwrap();
        assert_eq!(parsed.request.kind.group, "apps");
        assert_eq!(parsed.request.kind.version, "v1");
        assert_eq!(parsed.request.uid, "u-1");
        assert_eq!(parsed.request.namespace, None);
        assert_eq!(parsed.request.object.unwrap()["metadata"]["name"], "d");
    }

    #[test]
    fn every_check_has_a_mode_in_the_answer() {
        let modes = modes_payload(b"").unwrap();
        for id in CheckId::ALL {
            assert_eq!(
                modes.modes.get(&id),
                Some(&id.definition().default_mode),
                "{id}"
            );
        }
        let modes = modes_payload(br#"{"checks": {"health-probes": {"mode": "warn"}}}"#).unwrap();
        assert_eq!(modes.get(CheckId::HealthProbes), Mode::Warn);
        let text = serde_json::to_string(&modes).unwrap();
        assert!(text.contains(r#""health-probes":"warn""#), "{text}");
        assert!(modes_payload(b"{not json").is_err());
    }
}
