//! The admission request as kube-apiserver sends it, and the waPC `validate` payload.
//!
//! Two readings of the same JSON: [`AdmissionRequest`] holds the objects as `Value`s, for
//! callers that build requests themselves; [`WirePayload`] is how the module reads the
//! bytes a host sends, with the objects read straight into the checks' views and nothing
//! else of them built.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::view::{Key, ObjectView, OldObjectView};

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

/// The waPC payload as the module reads it: the request's objects as views, the settings
/// as their text (the key of the compiled-settings cache).
#[derive(Debug, Deserialize)]
pub(crate) struct WirePayload<'a> {
    #[serde(borrow)]
    pub request: WireRequest<'a>,
    #[serde(default, borrow)]
    pub settings: Option<&'a RawValue>,
}

/// The fields of `AdmissionReview.request` the evaluation reads; see [`AdmissionRequest`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRequest<'a> {
    pub kind: GroupVersionKind,
    #[serde(default, alias = "sub_resource")]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default, borrow)]
    pub object: Option<ObjectView<'a>>,
    #[serde(default, alias = "old_object", borrow)]
    pub old_object: Option<OldObjectView<'a>>,
}

/// Reads one value out of a JSON document by its path of keys, skipping everything else
/// unbuilt; each step names the keys it accepts (camelCase and its snake_case alias).
#[derive(Clone, Copy)]
pub(crate) struct ValueAt<'p> {
    pub path: &'p [&'p [&'p str]],
}

impl ValueAt<'_> {
    /// The value at the path in `text`, if every step is there.
    pub fn read(&self, text: &[u8]) -> Result<Option<Value>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        self.deserialize(&mut deserializer)
    }
}

impl<'de> DeserializeSeed<'de> for ValueAt<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Value>, D::Error> {
        match self.path.split_first() {
            None => Value::deserialize(deserializer).map(Some),
            Some(_) => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for ValueAt<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let Some((step, rest)) = self.path.split_first() else {
            return Value::deserialize(MapAccessDeserializer::new(map)).map(Some);
        };
        let mut found = None;
        while let Some(Key(key)) = map.next_key()? {
            if step.contains(&key.as_ref()) {
                // The last of duplicate keys wins, as in a `Value`.
                found = map.next_value_seed(ValueAt { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wire_payload_reads_what_a_request_holds() {
        let payload = json!({
            "request": {
                "uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "operation": "UPDATE", "namespace": "shop", "sub_resource": "",
                "object": {"metadata": {"name": "web", "managedFields": [{"manager": "k"}]}},
                "old_object": {"metadata": {"deletionTimestamp": "2030-01-01T00:00:00Z"}},
            },
            "settings": {"checks": {}},
        })
        .to_string();
        let wire: WirePayload = serde_json::from_str(&payload).unwrap();
        assert_eq!(wire.request.kind.kind, "Deployment");
        assert_eq!(wire.request.namespace.as_deref(), Some("shop"));
        assert_eq!(wire.request.sub_resource.as_deref(), Some(""));
        let object = wire.request.object.unwrap();
        assert_eq!(object.metadata.name.unwrap().as_str(), Some("web"));
        assert!(
            wire.request
                .old_object
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        );
        assert_eq!(wire.settings.unwrap().get(), r#"{"checks":{}}"#);
    }

    #[test]
    fn a_value_is_read_at_its_path_and_nothing_else_is_built() {
        let text = br#"{"request": {"object": {"a": 1}, "oldObject": [1], "old_object": {"b": {"c": 2}}}}"#;
        let at = |path: &[&[&str]]| ValueAt { path }.read(text).unwrap();
        assert_eq!(at(&[&["request"], &["object"]]), Some(json!({"a": 1})));
        assert_eq!(
            at(&[&["request"], &["oldObject", "old_object"], &["b"]]),
            Some(json!({"c": 2}))
        );
        assert_eq!(at(&[&["request"], &["missing"]]), None);
        assert_eq!(at(&[&["request"], &["object"], &["a"], &["deeper"]]), None);
    }
}
