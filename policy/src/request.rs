//! The admission request as kube-apiserver sends it, and the waPC `validate` payload.

use std::fmt;
use std::ops::Deref;

use serde::de::value::SeqAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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
    pub object: Option<RequestObject>,
    /// The object as stored before an UPDATE or DELETE, without its `managedFields`.
    #[serde(
        default,
        alias = "old_object",
        deserialize_with = "old_object_without_managed_fields"
    )]
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

/// `request.object`, parsed without `metadata.managedFields`.
///
/// kube-apiserver sends the server-side-apply bookkeeping with every object, often half of
/// its bytes, as thousands of tiny JSON maps; no check reads it, and building and freeing
/// those maps was most of the cost of judging a request. It is kept as raw JSON text and put
/// back only into a mutated object, so a patch never touches it.
#[derive(Debug, Clone)]
pub struct RequestObject {
    value: Value,
    managed_fields: Option<Box<RawValue>>,
}

impl RequestObject {
    /// Puts `metadata.managedFields` back into `object` (a mutated copy of this one).
    pub fn restore_managed_fields(&self, object: &mut Value) {
        let Some(raw) = &self.managed_fields else {
            return;
        };
        let managed_fields: Value =
            serde_json::from_str(raw.get()).expect("raw JSON was checked when it was read");
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("managedFields".to_owned(), managed_fields);
        }
    }

    /// The object as the request sent it, `managedFields` included.
    pub fn to_full(&self) -> Value {
        let mut full = self.value.clone();
        self.restore_managed_fields(&mut full);
        full
    }
}

impl Deref for RequestObject {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

impl From<Value> for RequestObject {
    fn from(value: Value) -> RequestObject {
        RequestObject {
            value,
            managed_fields: None,
        }
    }
}

impl Serialize for RequestObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_full().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RequestObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RequestObject, D::Error> {
        let mut managed_fields = None;
        let value = Lean::object(Some(&mut managed_fields)).deserialize(deserializer)?;
        Ok(RequestObject {
            value,
            managed_fields,
        })
    }
}

fn old_object_without_managed_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    let value = Lean::object(None).deserialize(deserializer)?;
    Ok((!value.is_null()).then_some(value))
}

/// Builds an object as a `Value`, except `metadata.managedFields`, which goes raw into
/// `managed_fields` (or is skipped when that is `None`). A part that is not a map is taken
/// as it is, so a malformed object still reaches the checks and their messages.
struct Lean<'a> {
    in_metadata: bool,
    managed_fields: Option<&'a mut Option<Box<RawValue>>>,
}

impl<'a> Lean<'a> {
    fn object(managed_fields: Option<&'a mut Option<Box<RawValue>>>) -> Lean<'a> {
        Lean {
            in_metadata: false,
            managed_fields,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Lean<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Lean<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        let mut managed_fields = self.managed_fields;
        while let Some(key) = map.next_key::<String>()? {
            if !self.in_metadata && key == "metadata" {
                let metadata = map.next_value_seed(Lean {
                    in_metadata: true,
                    managed_fields: managed_fields.take(),
                })?;
                fields.insert(key, metadata);
            } else if self.in_metadata && key == "managedFields" {
                match managed_fields.take() {
                    Some(slot) => *slot = Some(map.next_value()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        Ok(Value::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object_with_managed_fields() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                "labels": {"app": "web"}
            },
            "spec": {"containers": [{"name": "app"}]}
        })
    }

    #[test]
    fn managed_fields_are_left_out_and_restored_whole() {
        let text = object_with_managed_fields().to_string();
        for object in [
            serde_json::from_str::<RequestObject>(&text).unwrap(),
            // Hosts and the playground also build requests from a parsed Value.
            serde_json::from_value::<RequestObject>(object_with_managed_fields()).unwrap(),
        ] {
            assert!(object["metadata"].get("managedFields").is_none());
            assert_eq!(object["metadata"]["labels"]["app"], "web");
            assert_eq!(object["spec"]["containers"][0]["name"], "app");
            assert_eq!(object.to_full(), object_with_managed_fields());
        }
    }

    #[test]
    fn malformed_objects_are_kept_as_they_are() {
        for odd in [
            json!(7),
            json!("pod"),
            json!([1, {"metadata": 2}]),
            json!({"metadata": []}),
        ] {
            let object: RequestObject = serde_json::from_value(odd.clone()).unwrap();
            assert_eq!(*object, odd);
        }
        let request: AdmissionRequest = serde_json::from_value(json!({
            "kind": {"kind": "Pod"}, "operation": "UPDATE",
            "object": null, "oldObject": object_with_managed_fields()
        }))
        .unwrap();
        assert!(request.object.is_none());
        let old = request.old_object.unwrap();
        assert!(old["metadata"].get("managedFields").is_none());
        assert_eq!(old["metadata"]["name"], "web");
    }
}
