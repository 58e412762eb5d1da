//! The parts of a workload object the checks read, deserialized straight from the
//! request's JSON text (or from a `Value` audit or a mutation built), borrowing its
//! strings.
//!
//! Building a `serde_json::Value` of the whole object was most of the cost of judging a
//! request: every key and string allocated, the `managedFields` bookkeeping included, to
//! be read by a dozen lookups. These views keep only the fields a check reads and skip the
//! rest without building anything. The full `Value` is built only when mutate mode has an
//! edit to apply.
//!
//! The views never fail on a wrong type. The API server would refuse most of what an
//! offline manifest can hold, but a check must still see it and say what is wrong, as it
//! did when it read a `Value`: a scalar field keeps whatever JSON it held ([`Scalar`]), a
//! map that is not a map reads as empty, a list that is not a list as empty, and a list
//! entry that is not a map as an entry with no fields (it keeps its index). Duplicate keys
//! resolve as `serde_json::Value` resolves them: the last value wins, in the first key's
//! place.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A field's value as found: what the API declares (a boolean, a number, a string) or
/// anything else an offline manifest holds, kept so a message can quote it.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as `serde_json` reads it.
    Number(Number),
    /// A string, borrowed from the request's text where it holds no escapes.
    Str(Cow<'a, str>),
    /// A map or a list, where the API wants a scalar: rare, so kept whole, and boxed so
    /// every other field stays small.
    Other(Box<Value>),
}

/// The longest value a sender writes that a message repeats whole.
pub const MAX_SHOWN: usize = 64;

impl Scalar<'_> {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Number(number) => number.as_i64(),
            _ => None,
        }
    }

    /// The value as a message quotes it, or `long` when it is a string past
    /// [`MAX_SHOWN`] bytes: the sender chooses its length.
    pub fn shown_or(&self, long: &str) -> String {
        match self {
            Scalar::Str(text) if text.len() > MAX_SHOWN => long.to_owned(),
            other => other.to_string(),
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// The same JSON as a `Value`.
    #[cfg(test)]
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(flag) => Value::Bool(*flag),
            Scalar::Number(number) => Value::Number(number.clone()),
            Scalar::Str(text) => Value::String(text.as_ref().to_owned()),
            Scalar::Other(value) => Value::clone(value),
        }
    }
}

/// The JSON text, as `serde_json::Value` prints it: messages quote values this way.
impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(flag) => write!(f, "{flag}"),
            Scalar::Number(number) => fmt::Display::fmt(&Value::Number(number.clone()), f),
            Scalar::Str(text) => fmt::Display::fmt(&Value::String(text.as_ref().to_owned()), f),
            Scalar::Other(value) => fmt::Display::fmt(value, f),
        }
    }
}

/// Present and not `null`: what every check means by a field being set.
pub fn set<'s, 'a>(field: &'s Option<Scalar<'a>>) -> Option<&'s Scalar<'a>> {
    field.as_ref().filter(|value| !value.is_null())
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor<'a>(PhantomData<Scalar<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Number(v.into()))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Number(v.into()))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
                // JSON has no NaN or infinity, so this is never `Null` from real input.
                Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }

            fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }

            fn visit_none<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'a>, D::Error> {
                Scalar::deserialize(d)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'a>, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map))
                    .map(|v| Scalar::Other(Box::new(v)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'a>, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq))
                    .map(|v| Scalar::Other(Box::new(v)))
            }
        }

        deserializer.deserialize_any(ScalarVisitor(PhantomData))
    }
}

/// A map key, borrowed where the text allows.
pub(crate) struct Key<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<Key<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// The visits of a value that is not what a view expected: it reads as `$default`, after
/// consuming whatever it holds.
macro_rules! read_anything_else_as {
    ($default:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! skip_map_as {
    ($default:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

macro_rules! skip_seq_as {
    ($default:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

/// A list; anything else reads as an empty one. Entries read as `T` reads them, so an
/// entry of the wrong type keeps its place (and index).
#[derive(Clone, Debug, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T> List<T> {
    /// The entries with their indices.
    pub fn iter(&self) -> std::iter::Enumerate<std::slice::Iter<'_, T>> {
        self.0.iter().enumerate()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element()? {
                    entries.push(entry);
                }
                Ok(List(entries))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<List<T>, D::Error> {
                List::deserialize(d)
            }

            read_anything_else_as!(List::default());
            skip_map_as!(List::default());
        }

        deserializer.deserialize_any(ListVisitor(std::marker::PhantomData))
    }
}

/// A map of names to values (annotations, resource quantities), in the order written;
/// anything that is not a map reads as an empty one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entries<'a>(pub Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'a> Entries<'a> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Scalar<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under `key`, unless absent or `null`.
    pub fn get_set(&self, key: &str) -> Option<&Scalar<'a>> {
        self.get(key).filter(|value| !value.is_null())
    }
}

/// Past this many entries a map's duplicate keys are found through a hash map: a scan per
/// key would make a map of many thousand keys cost their square.
const LINEAR_LOOKUP_MAX: usize = 16;

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(PhantomData<Entries<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = Entries<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'a>, A::Error> {
                let mut entries: Vec<(Cow<'a, str>, Scalar<'a>)> = Vec::new();
                let mut index: Option<HashMap<String, usize>> = None;
                while let Some(Key(key)) = map.next_key()? {
                    let value: Scalar = map.next_value()?;
                    if entries.len() == LINEAR_LOOKUP_MAX && index.is_none() {
                        index = Some(
                            entries
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (k.as_ref().to_owned(), i))
                                .collect(),
                        );
                    }
                    let existing = match &index {
                        Some(index) => index.get(key.as_ref()).copied(),
                        None => entries.iter().position(|(k, _)| *k == key),
                    };
                    match existing {
                        Some(i) => entries[i].1 = value,
                        None => {
                            if let Some(index) = &mut index {
                                index.insert(key.as_ref().to_owned(), entries.len());
                            }
                            entries.push((key, value));
                        }
                    }
                }
                Ok(Entries(entries))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Entries<'a>, D::Error> {
                Entries::deserialize(d)
            }

            read_anything_else_as!(Entries::default());
            skip_seq_as!(Entries::default());
        }

        deserializer.deserialize_any(EntriesVisitor(PhantomData))
    }
}

/// Whether a field holds a map, whatever is in it (a probe is declared or not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IsMap(pub bool);

impl<'de> Deserialize<'de> for IsMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IsMapVisitor;

        impl<'de> Visitor<'de> for IsMapVisitor {
            type Value = IsMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<IsMap, D::Error> {
                IsMap::deserialize(d)
            }

            read_anything_else_as!(IsMap(false));
            skip_map_as!(IsMap(true));
            skip_seq_as!(IsMap(false));
        }

        deserializer.deserialize_any(IsMapVisitor)
    }
}

/// Declares a view of a JSON map: the fields it reads, each under its JSON key; every
/// other key is skipped unread. A value that is not a map reads as the default view with
/// `is_map: false`.
macro_rules! view {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty = $key:literal, )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name<'a> {
            /// Whether the JSON value was a map.
            pub is_map: bool,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl<'de: 'a, 'a> Deserialize<'de> for $name<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ViewVisitor<'a>(PhantomData<$name<'a>>);

                impl<'de: 'a, 'a> Visitor<'de> for ViewVisitor<'a> {
                    type Value = $name<'a>;

                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str(stringify!($name))
                    }

                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name<'a>, A::Error> {
                        let mut view = $name { is_map: true, ..Default::default() };
                        while let Some(Key(key)) = map.next_key()? {
                            match key.as_ref() {
                                $( $key => view.$field = map.next_value()?, )*
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(view)
                    }

                    fn visit_some<D: Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<$name<'a>, D::Error> {
                        $name::deserialize(d)
                    }

                    read_anything_else_as!($name::default());
                    skip_seq_as!($name::default());
                }

                deserializer.deserialize_any(ViewVisitor(PhantomData))
            }
        }
    )*};
}

view! {
    /// A workload object: a Pod, or any kind with a pod template. One view serves every
    /// kind (a Pod's `spec` and a workload's `spec` share no field the checks read), so
    /// the object can be read before its kind is known.
    ObjectView {
        /// `metadata`
        metadata: MetaView<'a> = "metadata",
        /// `spec`
        spec: SpecView<'a> = "spec",
    }

    /// `metadata` of an object or a pod template.
    MetaView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
        /// `generateName`
        generate_name: Option<Scalar<'a>> = "generateName",
        /// `namespace`
        namespace: Option<Scalar<'a>> = "namespace",
        /// `annotations`
        annotations: Entries<'a> = "annotations",
        /// `deletionTimestamp`
        deletion_timestamp: Option<Scalar<'a>> = "deletionTimestamp",
        /// `ownerReferences`
        owner_references: List<OwnerView<'a>> = "ownerReferences",
    }

    /// One of `metadata.ownerReferences`.
    OwnerView {
        /// `apiVersion`
        api_version: Option<Scalar<'a>> = "apiVersion",
        /// `kind`
        kind: Option<Scalar<'a>> = "kind",
        /// `controller`
        controller: Option<Scalar<'a>> = "controller",
    }

    /// A Pod's `spec`, or a workload's, or a Job template's.
    SpecView {
        /// `containers`
        containers: List<ContainerView<'a>> = "containers",
        /// `initContainers`
        init_containers: List<ContainerView<'a>> = "initContainers",
        /// `ephemeralContainers`
        ephemeral_containers: List<ContainerView<'a>> = "ephemeralContainers",
        /// `securityContext`
        security_context: SecurityView<'a> = "securityContext",
        /// `hostNetwork`
        host_network: Option<Scalar<'a>> = "hostNetwork",
        /// `hostPID`
        host_pid: Option<Scalar<'a>> = "hostPID",
        /// `hostIPC`
        host_ipc: Option<Scalar<'a>> = "hostIPC",
        /// `hostUsers`
        host_users: Option<Scalar<'a>> = "hostUsers",
        /// `os`
        os: OsView<'a> = "os",
        /// Pod-level `resources` (KEP-2837).
        resources: ResourcesView<'a> = "resources",
        /// `volumes`
        volumes: List<VolumeView<'a>> = "volumes",
        /// A workload's `template`.
        template: Option<Box<TemplateView<'a>>> = "template",
        /// A CronJob's `jobTemplate`.
        job_template: Option<Box<JobTemplateView<'a>>> = "jobTemplate",
    }

    /// A pod template.
    TemplateView {
        /// `metadata`
        metadata: MetaView<'a> = "metadata",
        /// `spec`
        spec: SpecView<'a> = "spec",
    }

    /// A CronJob's `jobTemplate`.
    JobTemplateView {
        /// `spec`, a Job's spec.
        spec: SpecView<'a> = "spec",
    }

    /// One of the pod's `volumes`.
    VolumeView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
        /// `hostPath`
        host_path: Option<HostPathView<'a>> = "hostPath",
        /// `configMap`
        config_map: IsMap = "configMap",
        /// `csi`
        csi: IsMap = "csi",
        /// `downwardAPI`
        downward_api: IsMap = "downwardAPI",
        /// `emptyDir`
        empty_dir: IsMap = "emptyDir",
        /// `ephemeral`
        ephemeral: IsMap = "ephemeral",
        /// `image`
        image: IsMap = "image",
        /// `persistentVolumeClaim`
        persistent_volume_claim: IsMap = "persistentVolumeClaim",
        /// `projected`
        projected: IsMap = "projected",
        /// `secret`
        secret: IsMap = "secret",
    }

    /// A volume's `hostPath`.
    HostPathView {
        /// `path`
        path: Option<Scalar<'a>> = "path",
    }

    /// `os`
    OsView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
    }

    /// A container, init container or ephemeral container.
    ContainerView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
        /// `image`
        image: Option<Scalar<'a>> = "image",
        /// `restartPolicy` (sidecars: `Always`)
        restart_policy: Option<Scalar<'a>> = "restartPolicy",
        /// `securityContext`
        security_context: SecurityView<'a> = "securityContext",
        /// `resources`
        resources: ResourcesView<'a> = "resources",
        /// `ports`
        ports: List<PortView<'a>> = "ports",
        /// `livenessProbe`
        liveness_probe: IsMap = "livenessProbe",
        /// `readinessProbe`
        readiness_probe: IsMap = "readinessProbe",
    }

    /// A container's or a pod's `securityContext` (each reads the fields it has).
    SecurityView {
        /// `privileged`
        privileged: Option<Scalar<'a>> = "privileged",
        /// `allowPrivilegeEscalation`
        allow_privilege_escalation: Option<Scalar<'a>> = "allowPrivilegeEscalation",
        /// `readOnlyRootFilesystem`
        read_only_root_filesystem: Option<Scalar<'a>> = "readOnlyRootFilesystem",
        /// `runAsUser`
        run_as_user: Option<Scalar<'a>> = "runAsUser",
        /// `runAsNonRoot`
        run_as_non_root: Option<Scalar<'a>> = "runAsNonRoot",
        /// `capabilities`
        capabilities: CapabilitiesView<'a> = "capabilities",
        /// `seccompProfile`
        seccomp_profile: SeccompView<'a> = "seccompProfile",
        /// `procMount` (containers only)
        proc_mount: Option<Scalar<'a>> = "procMount",
        /// `windowsOptions`
        windows_options: WindowsOptionsView<'a> = "windowsOptions",
        /// `seLinuxOptions`
        se_linux_options: Option<SeLinuxView<'a>> = "seLinuxOptions",
        /// `appArmorProfile`
        app_armor_profile: Option<AppArmorView<'a>> = "appArmorProfile",
        /// `sysctls` (the pod's only)
        sysctls: List<NameView<'a>> = "sysctls",
    }

    /// `seLinuxOptions`
    SeLinuxView {
        /// `type`
        selinux_type: Option<Scalar<'a>> = "type",
        /// `user`
        user: Option<Scalar<'a>> = "user",
        /// `role`
        role: Option<Scalar<'a>> = "role",
    }

    /// `appArmorProfile`
    AppArmorView {
        /// `type`
        profile_type: Option<Scalar<'a>> = "type",
    }

    /// `windowsOptions`
    WindowsOptionsView {
        /// `hostProcess`
        host_process: Option<Scalar<'a>> = "hostProcess",
    }

    /// `capabilities`
    CapabilitiesView {
        /// `add`
        add: List<Scalar<'a>> = "add",
        /// `drop`
        drop: List<Scalar<'a>> = "drop",
    }

    /// `seccompProfile`
    SeccompView {
        /// `type`
        profile_type: Option<Scalar<'a>> = "type",
    }

    /// `resources`
    ResourcesView {
        /// `limits`
        limits: Entries<'a> = "limits",
        /// `requests`
        requests: Entries<'a> = "requests",
    }

    /// One of a container's `ports`.
    PortView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
        /// `containerPort`
        container_port: Option<Scalar<'a>> = "containerPort",
        /// `protocol`
        protocol: Option<Scalar<'a>> = "protocol",
        /// `hostPort`
        host_port: Option<Scalar<'a>> = "hostPort",
    }

    /// The stored object of an UPDATE: what tolerance and `pods/ephemeralcontainers`
    /// requests compare against.
    OldObjectView {
        /// `metadata`
        metadata: OldMetaView<'a> = "metadata",
        /// `spec`
        spec: OldSpecView<'a> = "spec",
    }

    /// `metadata` of the stored object.
    OldMetaView {
        /// `deletionTimestamp`
        deletion_timestamp: Option<Scalar<'a>> = "deletionTimestamp",
    }

    /// `spec` of the stored object.
    OldSpecView {
        /// `ephemeralContainers`
        ephemeral_containers: List<NameView<'a>> = "ephemeralContainers",
    }

    /// Anything with a `name`.
    NameView {
        /// `name`
        name: Option<Scalar<'a>> = "name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_text<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, serde_json::Error> {
        T::deserialize(&mut serde_json::Deserializer::from_str(text))
    }

    /// Reads `value` from its text and from the `Value` itself, which must agree.
    fn both<'a, T: Deserialize<'a> + PartialEq + fmt::Debug>(value: &'a Value, text: &'a str) -> T {
        let from_text: T = serde_json::from_str(text).unwrap();
        let from_value = T::deserialize(value).unwrap();
        assert_eq!(from_text, from_value, "text and Value read alike");
        from_value
    }

    #[test]
    fn wrong_types_read_as_empty_and_scalars_are_kept() {
        let value = json!({
            "name": "app",
            "securityContext": "oops",
            "ports": {"a": 1},
            "resources": {"limits": ["cpu"], "requests": {"cpu": {"x": 1}, "memory": null}},
            "livenessProbe": {"exec": {}},
            "readinessProbe": [],
        });
        let text = value.to_string();
        let view: ContainerView = both(&value, &text);
        assert!(view.is_map);
        assert_eq!(view.name, Some(Scalar::Str("app".into())));
        assert!(!view.security_context.is_map);
        assert!(view.ports.0.is_empty());
        assert!(view.resources.limits.0.is_empty());
        assert_eq!(
            view.resources.requests.get("cpu"),
            Some(&Scalar::Other(Box::new(json!({"x": 1}))))
        );
        assert_eq!(view.resources.requests.get("memory"), Some(&Scalar::Null));
        assert!(view.resources.requests.get_set("memory").is_none());
        assert_eq!(view.liveness_probe, IsMap(true));
        assert_eq!(view.readiness_probe, IsMap(false));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let text = r#"{"name": "app", "image": "a\/b"}"#;
        let view: ContainerView = from_text(text).unwrap();
        assert!(matches!(view.name, Some(Scalar::Str(Cow::Borrowed("app")))));
        assert!(matches!(view.image, Some(Scalar::Str(Cow::Owned(ref s))) if s == "a/b"));
    }

    #[test]
    fn duplicate_keys_resolve_as_value_does() {
        let text = r#"{"a": "1", "b": "2", "a": "3"}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let entries: Entries = from_text(text).unwrap();
        let as_value: Vec<(String, Value)> = value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let read: Vec<(String, Value)> = entries
            .0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_value()))
            .collect();
        assert_eq!(read, as_value);

        // The same past the point where lookups go through a hash map.
        let mut many: String = (0..40).map(|i| format!("\"k{i}\": {i},")).collect();
        many.push_str("\"k3\": \"last\", \"k39\": null");
        let text = format!("{{{many}}}");
        let value: Value = serde_json::from_str(&text).unwrap();
        let entries: Entries = from_text(&text).unwrap();
        assert_eq!(entries.0.len(), 40);
        for (k, v) in value.as_object().unwrap() {
            assert_eq!(entries.get(k).map(Scalar::to_value).as_ref(), Some(v));
        }
        let view: SecurityView = from_text(r#"{"privileged": true, "privileged": false}"#).unwrap();
        assert_eq!(view.privileged, Some(Scalar::Bool(false)));
    }

    #[test]
    fn fields_stay_small() {
        // Every field of every view is one of these: what is rare is boxed, so a view is
        // cheap to build and to move.
        assert!(std::mem::size_of::<Scalar>() <= 32);
        assert!(std::mem::size_of::<Option<Scalar>>() <= 32);
    }

    #[test]
    fn scalars_print_as_json() {
        for value in [
            json!(null),
            json!(true),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(1e300),
            json!("say \"hi\"\n"),
            json!({"a": [1, "b"]}),
        ] {
            let text = value.to_string();
            let scalar: Scalar = both(&value, &text);
            assert_eq!(scalar.to_string(), value.to_string());
            assert_eq!(scalar.to_value(), value);
        }
    }

    #[test]
    fn one_view_reads_every_kind() {
        let value = json!({
            "metadata": {"name": "nightly", "annotations": {"a": "b"}},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                "metadata": {"annotations": {"c": "d"}},
                "spec": {"containers": [{"name": "app"}, 3]}
            }}}}
        });
        let text = value.to_string();
        let cronjob: ObjectView = both(&value, &text);
        let template = &cronjob
            .spec
            .job_template
            .as_ref()
            .unwrap()
            .spec
            .template
            .as_ref()
            .unwrap();
        assert_eq!(
            template.metadata.annotations.get("c").unwrap().as_str(),
            Some("d")
        );
        let containers = &template.spec.containers.0;
        assert_eq!(containers.len(), 2);
        assert!(containers[0].is_map && !containers[1].is_map);
    }
}
