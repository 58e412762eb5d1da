//! Reading and editing workload objects as JSON.
//!
//! podguard never round-trips an object through typed structs: a typed round-trip drops
//! fields the types do not know and turns zero values into explicit ones, and the JSON
//! Patch computed from it would then rewrite what the user wrote. Checks read the object's
//! own JSON, and mutations are [`Edit`]s applied to that JSON in place.

use std::fmt;

use serde_json::{Map, Value};

/// The kinds podguard judges: Pods and every kind that carries a pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `v1/Pod`
    Pod,
    /// `apps/v1/Deployment`
    Deployment,
    /// `apps/v1/ReplicaSet`
    ReplicaSet,
    /// `apps/v1/StatefulSet`
    StatefulSet,
    /// `apps/v1/DaemonSet`
    DaemonSet,
    /// `batch/v1/Job`
    Job,
    /// `batch/v1/CronJob`, whose template sits at `spec.jobTemplate.spec.template`
    CronJob,
    /// `v1/ReplicationController`
    ReplicationController,
}

impl WorkloadKind {
    /// Resolves an API group and kind; other groups' kinds of the same name are not ours.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<WorkloadKind> {
        use WorkloadKind::*;
        Some(match (group, kind) {
            ("", "Pod") => Pod,
            ("", "ReplicationController") => ReplicationController,
            ("apps", "Deployment") => Deployment,
            ("apps", "ReplicaSet") => ReplicaSet,
            ("apps", "StatefulSet") => StatefulSet,
            ("apps", "DaemonSet") => DaemonSet,
            ("batch", "Job") => Job,
            ("batch", "CronJob") => CronJob,
            _ => return None,
        })
    }

    /// Resolves an object's own `apiVersion` and `kind`, as manifests carry them.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<WorkloadKind> {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        WorkloadKind::from_group_kind(group, kind)
    }

    /// Its API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            WorkloadKind::Pod | WorkloadKind::ReplicationController => "",
            WorkloadKind::Deployment
            | WorkloadKind::ReplicaSet
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet => "apps",
            WorkloadKind::Job | WorkloadKind::CronJob => "batch",
        }
    }

    /// Its resource, as an AdmissionRequest's `resource.resource` names it.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "pods",
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::ReplicaSet => "replicasets",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::Job => "jobs",
            WorkloadKind::CronJob => "cronjobs",
            WorkloadKind::ReplicationController => "replicationcontrollers",
        }
    }

    /// The kind's name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::ReplicationController => "ReplicationController",
        }
    }

    /// Where the pod (template) lives: its metadata is `<base>.metadata` and its spec
    /// `<base>.spec`; for a Pod the base is the object itself.
    pub fn template_base(self) -> FieldPath {
        match self {
            WorkloadKind::Pod => FieldPath::root(),
            WorkloadKind::CronJob => FieldPath::root()
                .key("spec")
                .key("jobTemplate")
                .key("spec")
                .key("template"),
            _ => FieldPath::root().key("spec").key("template"),
        }
    }

    /// The part of the object whose change means new pods: a Pod's `spec`, or the
    /// workload's whole pod template.
    pub fn pod_defining_path(self) -> FieldPath {
        match self {
            WorkloadKind::Pod => FieldPath::root().key("spec"),
            _ => self.template_base(),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A field's location, shown to people as `spec.containers[0].securityContext` and to JSON
/// Patch as `/spec/containers/0/securityContext`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The object itself.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// This path extended by a map key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        FieldPath(segments)
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The value at this path, if every step exists.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(root, |value, segment| match segment {
                Segment::Key(key) => value.get(key.as_str()),
                Segment::Index(index) => value.get(*index),
            })
    }

    /// RFC 6901 JSON Pointer, escaping `~` as `~0` and `/` as `~1`.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            out.push('/');
            match segment {
                Segment::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(index) => out.push_str(&index.to_string()),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                // Annotation keys such as `prometheus.io/port` cannot be written as a
                // dotted step without becoming ambiguous.
                Segment::Key(key) if !is_plain_key(key) => write!(f, "[{key:?}]")?,
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A change mutate mode makes. Edits only add what is missing or normalise spelling; they
/// never overwrite a value the user chose, which is what keeps mutation unsurprising and
/// idempotent.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Sets a field that is absent or null, creating missing parent maps.
    Insert {
        /// Where the field goes.
        path: FieldPath,
        /// Its value.
        value: Value,
    },
    /// Appends to a list, creating it when absent.
    Append {
        /// The list.
        path: FieldPath,
        /// The new element.
        value: Value,
    },
    /// Rewrites an existing value into its canonical spelling (e.g. `all` to `ALL`).
    Normalize {
        /// The value to rewrite.
        path: FieldPath,
        /// Its canonical form.
        value: Value,
    },
}

impl Edit {
    /// Applies the edit; returns whether the object changed. An edit whose path runs
    /// through a value of the wrong type changes nothing: the check then still reports
    /// the violation, so nothing is silently dropped.
    pub fn apply(&self, object: &mut Value) -> bool {
        match self {
            Edit::Insert { path, value } => {
                let Some((last, parents)) = path.segments().split_last() else {
                    return false;
                };
                let Segment::Key(last) = last else {
                    return false;
                };
                let Some(parent) = ensure_map(object, parents) else {
                    return false;
                };
                match parent.get(last) {
                    Some(existing) if !existing.is_null() => false,
                    _ => {
                        parent.insert(last.clone(), value.clone());
                        true
                    }
                }
            }
            Edit::Append { path, value } => {
                let Some((Segment::Key(last), parents)) = path.segments().split_last() else {
                    return false;
                };
                let Some(parent) = ensure_map(object, parents) else {
                    return false;
                };
                let list = parent
                    .entry(last.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if list.is_null() {
                    *list = Value::Array(Vec::new());
                }
                match list {
                    Value::Array(items) if !items.contains(value) => {
                        items.push(value.clone());
                        true
                    }
                    _ => false,
                }
            }
            Edit::Normalize { path, value } => match lookup_mut(object, path.segments()) {
                Some(existing) if existing != value => {
                    *existing = value.clone();
                    true
                }
                _ => false,
            },
        }
    }
}

fn lookup_mut<'v>(root: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Value> {
    segments
        .iter()
        .try_fold(root, |value, segment| match segment {
            Segment::Key(key) => value.get_mut(key.as_str()),
            Segment::Index(index) => value.get_mut(*index),
        })
}

/// Walks `segments` from `root`, creating absent (or null) maps on the way.
fn ensure_map<'v>(root: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Map<String, Value>> {
    let mut current = root;
    for segment in segments {
        current = match segment {
            Segment::Key(key) => {
                let map = current.as_object_mut()?;
                let child = map
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if child.is_null() {
                    *child = Value::Object(Map::new());
                }
                child
            }
            Segment::Index(index) => current.get_mut(*index)?,
        };
    }
    current.as_object_mut()
}

/// A boolean field as found: absent, a boolean, or something else (which the API server
/// would reject, but offline manifests can hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Absent or null.
    Unset,
    /// `true` or `false`.
    Set(bool),
    /// Not a boolean.
    Invalid,
}

impl Flag {
    /// Reads `key` from a map that may itself be absent.
    pub fn read(map: Option<&Map<String, Value>>, key: &str) -> Flag {
        match map.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => Flag::Unset,
            Some(Value::Bool(b)) => Flag::Set(*b),
            Some(_) => Flag::Invalid,
        }
    }

    /// True only for an explicit `true`; `Invalid` is not treated as true because the
    /// callers that forbid a value report `Invalid` themselves.
    pub fn is_true(self) -> bool {
        self == Flag::Set(true)
    }
}

/// Where a container sits in the pod spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// `containers[]`
    Regular,
    /// `initContainers[]`; `restartable` for sidecars (`restartPolicy: Always`), which run
    /// for the pod's whole life.
    Init {
        /// Whether this is a restartable sidecar.
        restartable: bool,
    },
    /// `ephemeralContainers[]`, added by `kubectl debug`.
    Ephemeral,
}

/// A container and where it lives.
#[derive(Clone, Debug)]
pub struct Container<'a> {
    /// Its section of the pod spec.
    pub kind: ContainerKind,
    /// `name`, or a placeholder naming its index when the name is missing.
    pub name: String,
    /// The container's own JSON.
    pub fields: &'a Map<String, Value>,
    /// Path of the container, e.g. `spec.template.spec.containers[1]`.
    pub path: FieldPath,
}

impl<'a> Container<'a> {
    /// The container's `securityContext`, if it is a map.
    pub fn security_context(&self) -> Option<&'a Map<String, Value>> {
        self.fields
            .get("securityContext")
            .and_then(Value::as_object)
    }

    /// Path of a field of the container's `securityContext`.
    pub fn security_path(&self, field: &str) -> FieldPath {
        self.path.key("securityContext").key(field)
    }

    /// The image reference, when it is a string.
    pub fn image(&self) -> Option<&'a str> {
        self.fields.get("image").and_then(Value::as_str)
    }
}

/// The pod (or pod template) inside a workload object.
#[derive(Clone, Debug)]
pub struct PodView<'a> {
    /// The pod's (template's) `metadata`.
    pub metadata: Option<&'a Map<String, Value>>,
    /// The pod's (template's) `spec`.
    pub spec: Option<&'a Map<String, Value>>,
    /// Path of `metadata`.
    pub metadata_path: FieldPath,
    /// Path of `spec`.
    pub spec_path: FieldPath,
}

impl<'a> PodView<'a> {
    /// Locates the pod inside `object`.
    pub fn new(kind: WorkloadKind, object: &'a Value) -> PodView<'a> {
        let base = kind.template_base();
        let metadata_path = base.key("metadata");
        let spec_path = base.key("spec");
        PodView {
            metadata: metadata_path.lookup(object).and_then(Value::as_object),
            spec: spec_path.lookup(object).and_then(Value::as_object),
            metadata_path,
            spec_path,
        }
    }

    /// The pod's `securityContext`, if it is a map.
    pub fn security_context(&self) -> Option<&'a Map<String, Value>> {
        self.spec?.get("securityContext").and_then(Value::as_object)
    }

    /// Path of a field of the pod's `securityContext`.
    pub fn security_path(&self, field: &str) -> FieldPath {
        self.spec_path.key("securityContext").key(field)
    }

    /// The pod's annotations, if any.
    pub fn annotations(&self) -> Option<&'a Map<String, Value>> {
        self.metadata?.get("annotations").and_then(Value::as_object)
    }

    /// Whether the pod runs Windows containers (`spec.os.name: windows`), where Linux-only
    /// fields cannot be set at all.
    pub fn is_windows(&self) -> bool {
        self.spec
            .and_then(|spec| spec.get("os"))
            .and_then(|os| os.get("name"))
            .and_then(Value::as_str)
            == Some("windows")
    }

    /// Whether the pod runs in a user namespace (`spec.hostUsers: false`), where uid 0 in
    /// the pod is an unprivileged uid on the node.
    pub fn in_user_namespace(&self) -> bool {
        Flag::read(self.spec, "hostUsers") == Flag::Set(false)
    }

    /// Every container in spec order: regular, then init, then ephemeral. Entries that
    /// are not maps are skipped; the API server would never admit them.
    pub fn containers(&self) -> Vec<Container<'a>> {
        let mut out = Vec::new();
        let Some(spec) = self.spec else {
            return out;
        };
        for (field, fallback) in [
            ("containers", ContainerKind::Regular),
            ("initContainers", ContainerKind::Init { restartable: false }),
            ("ephemeralContainers", ContainerKind::Ephemeral),
        ] {
            let Some(list) = spec.get(field).and_then(Value::as_array) else {
                continue;
            };
            for (index, entry) in list.iter().enumerate() {
                let Some(fields) = entry.as_object() else {
                    continue;
                };
                let kind = match fallback {
                    ContainerKind::Init { .. } => ContainerKind::Init {
                        restartable: fields.get("restartPolicy").and_then(Value::as_str)
                            == Some("Always"),
                    },
                    other => other,
                };
                let name = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{field}[{index}]"), str::to_owned);
                out.push(Container {
                    kind,
                    name,
                    fields,
                    path: self.spec_path.key(field).index(index),
                });
            }
        }
        out
    }
}

/// `metadata.name`, or `generateName` followed by `*` for objects the server names.
pub fn display_name(object: &Value) -> String {
    let metadata = object.get("metadata");
    let field = |key| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
    match (field("name"), field("generateName")) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(prefix)) => format!("{prefix}*"),
        _ => "(unnamed)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_for_people_and_for_json_patch() {
        let path = FieldPath::root()
            .key("spec")
            .key("template")
            .key("metadata")
            .key("annotations")
            .key("prometheus.io/port");
        assert_eq!(
            path.to_string(),
            r#"spec.template.metadata.annotations["prometheus.io/port"]"#
        );
        assert_eq!(
            path.pointer(),
            "/spec/template/metadata/annotations/prometheus.io~1port"
        );
        let tilde = FieldPath::root().key("a~b").index(3);
        assert_eq!(tilde.pointer(), "/a~0b/3");
        assert_eq!(
            FieldPath::root()
                .key("spec")
                .key("containers")
                .index(0)
                .key("securityContext")
                .to_string(),
            "spec.containers[0].securityContext"
        );
    }

    #[test]
    fn insert_creates_parents_and_never_overwrites() {
        let mut pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let path = FieldPath::root()
            .key("spec")
            .key("containers")
            .index(0)
            .key("securityContext")
            .key("runAsNonRoot");
        let edit = Edit::Insert {
            path: path.clone(),
            value: json!(true),
        };
        assert!(edit.apply(&mut pod));
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"],
            json!(true)
        );
        assert!(
            !edit.apply(&mut pod),
            "a second application changes nothing"
        );

        let mut explicit =
            json!({"spec": {"containers": [{"securityContext": {"runAsNonRoot": false}}]}});
        assert!(
            !Edit::Insert {
                path,
                value: json!(true)
            }
            .apply(&mut explicit)
        );
        assert_eq!(
            explicit["spec"]["containers"][0]["securityContext"]["runAsNonRoot"],
            json!(false)
        );
    }

    #[test]
    fn insert_through_a_wrong_type_changes_nothing() {
        let mut pod = json!({"spec": {"securityContext": "oops"}});
        let path = FieldPath::root()
            .key("spec")
            .key("securityContext")
            .key("runAsNonRoot");
        assert!(
            !Edit::Insert {
                path,
                value: json!(true)
            }
            .apply(&mut pod)
        );
        assert_eq!(pod, json!({"spec": {"securityContext": "oops"}}));
    }

    #[test]
    fn append_creates_the_list_once() {
        let mut c = json!({"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}});
        let path = FieldPath::root()
            .key("securityContext")
            .key("capabilities")
            .key("drop");
        let edit = Edit::Append {
            path,
            value: json!("ALL"),
        };
        assert!(edit.apply(&mut c));
        assert!(!edit.apply(&mut c));
        assert_eq!(
            c["securityContext"]["capabilities"],
            json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]})
        );
    }

    #[test]
    fn kinds_resolve_by_group_and_kind() {
        assert_eq!(
            WorkloadKind::from_type_meta("apps/v1", "Deployment"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::from_type_meta("v1", "Pod"),
            Some(WorkloadKind::Pod)
        );
        assert_eq!(
            WorkloadKind::from_type_meta("example.com/v1", "Deployment"),
            None
        );
        assert_eq!(
            WorkloadKind::from_group_kind("batch", "CronJob"),
            Some(WorkloadKind::CronJob)
        );
        assert_eq!(
            WorkloadKind::CronJob.template_base().to_string(),
            "spec.jobTemplate.spec.template"
        );
    }

    #[test]
    fn containers_are_listed_with_their_paths_and_kinds() {
        let pod = json!({"spec": {
            "containers": [{"name": "app"}, "garbage"],
            "initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
            "ephemeralContainers": [{}]
        }});
        let view = PodView::new(WorkloadKind::Pod, &pod);
        let containers = view.containers();
        let summary: Vec<_> = containers
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.path.to_string()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "app",
                    ContainerKind::Regular,
                    "spec.containers[0]".to_owned()
                ),
                (
                    "setup",
                    ContainerKind::Init { restartable: false },
                    "spec.initContainers[0]".to_owned()
                ),
                (
                    "proxy",
                    ContainerKind::Init { restartable: true },
                    "spec.initContainers[1]".to_owned()
                ),
                (
                    "ephemeralContainers[0]",
                    ContainerKind::Ephemeral,
                    "spec.ephemeralContainers[0]".to_owned()
                ),
            ]
        );
    }
}
