//! Workload objects: where their pod lives, how checks find containers, and how mutate mode
//! edits them.
//!
//! Checks read [views](crate::view) of the object, which keep only the fields they need.
//! Mutations never go through typed structs: a typed round-trip drops fields the types do
//! not know and turns zero values into explicit ones, and the JSON Patch computed from it
//! would then rewrite what the user wrote. They are [`Edit`]s applied to the object's own
//! JSON in place.

use std::fmt::{self, Write as _};

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::view::{
    ContainerView, Entries, MetaView, ObjectView, Scalar, SecurityView, SpecView, TemplateView,
};

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
    /// Every kind, in the order settings and documents list them: the long-running ones,
    /// then the batch ones.
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
    ];

    /// The kinds whose pods run until stopped: every kind but the batch ones, which `ALL`
    /// lists last.
    pub const LONG_RUNNING: &[WorkloadKind] = WorkloadKind::ALL.split_at(6).0;

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

    /// Where the pod's (template's) `spec` lives.
    pub fn pod_spec_path(self) -> FieldPath {
        self.template_base().key("spec")
    }

    /// The keys leading to the part of the object whose change means new pods: a Pod's
    /// `spec`, or the workload's whole pod template.
    pub fn pod_defining_keys(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &["spec"],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }
}

/// A set of workload kinds, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    /// The set of `kinds`.
    pub fn of(kinds: &[WorkloadKind]) -> KindSet {
        KindSet(kinds.iter().fold(0, |bits, &kind| bits | 1 << kind as u8))
    }

    /// Whether `kind` is in it.
    pub fn contains(self, kind: WorkloadKind) -> bool {
        self.0 & 1 << kind as u8 != 0
    }
}

impl serde::Serialize for WorkloadKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for WorkloadKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = <Cow<'de, str>>::deserialize(deserializer)?;
        WorkloadKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == written)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{written:?} is not a workload kind podguard judges; write one of {}",
                    WorkloadKind::ALL.map(WorkloadKind::as_str).join(", ")
                ))
            })
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
    /// A map key; the API's own field names are static, so most paths allocate no key.
    Key(Cow<'static, str>),
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
    pub fn key(mut self, key: impl Into<Cow<'static, str>>) -> FieldPath {
        self.0.push(Segment::Key(key.into()));
        self
    }

    /// This path extended by a list index.
    pub fn index(mut self, index: usize) -> FieldPath {
        self.0.push(Segment::Index(index));
        self
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
                Segment::Key(key) => value.get(key.as_ref()),
                Segment::Index(index) => value.get(*index),
            })
    }

    /// RFC 6901 JSON Pointer, escaping `~` as `~0` and `/` as `~1`.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            out.push('/');
            match segment {
                Segment::Key(key) => {
                    for c in key.chars() {
                        match c {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                }
                Segment::Index(index) => {
                    let _ = write!(out, "{index}");
                }
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
                match parent.get(last.as_ref()) {
                    Some(existing) if !existing.is_null() => false,
                    _ => {
                        parent.insert(last.as_ref().to_owned(), value.clone());
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
            Segment::Key(key) => value.get_mut(key.as_ref()),
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
    /// Reads a field of a view.
    pub fn of(field: &Option<Scalar>) -> Flag {
        match field {
            None | Some(Scalar::Null) => Flag::Unset,
            Some(Scalar::Bool(b)) => Flag::Set(*b),
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

/// A container and where it lives. Its path is built only when a finding needs it.
#[derive(Clone, Debug)]
pub struct Container<'w> {
    /// Its section of the pod spec.
    pub kind: ContainerKind,
    /// `name`, or a placeholder naming its index when the name is missing.
    pub name: Cow<'w, str>,
    /// The fields the checks read.
    pub view: &'w ContainerView<'w>,
    list: &'static str,
    index: usize,
    workload: WorkloadKind,
}

impl<'w> Container<'w> {
    /// Path of the container, e.g. `spec.template.spec.containers[1]`.
    pub fn path(&self) -> FieldPath {
        self.workload
            .pod_spec_path()
            .key(self.list)
            .index(self.index)
    }

    /// The container's `securityContext`.
    pub fn security(&self) -> &'w SecurityView<'w> {
        &self.view.security_context
    }

    /// Path of a field of the container's `securityContext`.
    pub fn security_path(&self, field: &'static str) -> FieldPath {
        self.path().key("securityContext").key(field)
    }

    /// The image reference, when it is a string.
    pub fn image(&self) -> Option<&'w str> {
        self.view.image.as_ref().and_then(Scalar::as_str)
    }
}

/// A workload object as the checks read it: its own metadata, and its pod (a Pod's own
/// metadata and spec, a workload's pod template).
#[derive(Clone, Debug)]
pub struct Workload<'a> {
    /// Its kind.
    pub kind: WorkloadKind,
    /// The object's `metadata`.
    pub metadata: MetaView<'a>,
    /// A workload's pod template `metadata` (empty for a Pod).
    template_metadata: MetaView<'a>,
    /// The pod's (template's) `spec`.
    pub spec: SpecView<'a>,
}

impl<'a> Workload<'a> {
    /// Finds the pod inside `object`; a template missing on the way reads as empty.
    pub fn new(kind: WorkloadKind, object: ObjectView<'a>) -> Workload<'a> {
        let ObjectView { metadata, spec, .. } = object;
        let template = match kind {
            WorkloadKind::Pod => {
                return Workload {
                    kind,
                    metadata,
                    template_metadata: MetaView::default(),
                    spec,
                };
            }
            WorkloadKind::CronJob => spec.job_template.and_then(|job| job.spec.template),
            _ => spec.template,
        };
        let TemplateView {
            metadata: template_metadata,
            spec,
            ..
        } = template.map(|t| *t).unwrap_or_default();
        Workload {
            kind,
            metadata,
            template_metadata,
            spec,
        }
    }

    /// The kind a check's `kinds` setting sees: the object's own, but a Pod whose
    /// controller is a Job counts as a Job and a Job whose controller is a CronJob as a
    /// CronJob, so a batch workload's pods are judged as batch work wherever they are
    /// admitted.
    pub fn counted_kind(&self) -> WorkloadKind {
        let batch_controller = self.metadata.owner_references.0.iter().find_map(|owner| {
            if !Flag::of(&owner.controller).is_true() {
                return None;
            }
            let api_version = owner.api_version.as_ref()?.as_str()?;
            let kind = owner.kind.as_ref()?.as_str()?;
            WorkloadKind::from_type_meta(api_version, kind)
                .filter(|kind| matches!(kind, WorkloadKind::Job | WorkloadKind::CronJob))
        });
        batch_controller.unwrap_or(self.kind)
    }

    /// The pod's (template's) `metadata`.
    pub fn pod_metadata(&self) -> &MetaView<'a> {
        match self.kind {
            WorkloadKind::Pod => &self.metadata,
            _ => &self.template_metadata,
        }
    }

    /// Path of the pod's (template's) `metadata`.
    pub fn metadata_path(&self) -> FieldPath {
        self.kind.template_base().key("metadata")
    }

    /// Path of the pod's (template's) `spec`.
    pub fn spec_path(&self) -> FieldPath {
        self.kind.pod_spec_path()
    }

    /// Path of a field of the pod's `securityContext`.
    pub fn security_path(&self, field: &'static str) -> FieldPath {
        self.spec_path().key("securityContext").key(field)
    }

    /// The pod's annotations.
    pub fn annotations(&self) -> &Entries<'a> {
        &self.pod_metadata().annotations
    }

    /// Whether the pod runs Windows containers (`spec.os.name: windows`), where Linux-only
    /// fields cannot be set at all.
    pub fn is_windows(&self) -> bool {
        self.spec.os.name.as_ref().and_then(Scalar::as_str) == Some("windows")
    }

    /// Whether the pod runs in a user namespace (`spec.hostUsers: false`), where uid 0 in
    /// the pod is an unprivileged uid on the node.
    pub fn in_user_namespace(&self) -> bool {
        Flag::of(&self.spec.host_users) == Flag::Set(false)
    }

    /// Every container in spec order: regular, then init, then ephemeral. Entries that
    /// are not maps are skipped; the API server would never admit them.
    pub fn containers(&self) -> Vec<Container<'_>> {
        let spec = &self.spec;
        let lists = [
            ("containers", ContainerKind::Regular, &spec.containers),
            (
                "initContainers",
                ContainerKind::Init { restartable: false },
                &spec.init_containers,
            ),
            (
                "ephemeralContainers",
                ContainerKind::Ephemeral,
                &spec.ephemeral_containers,
            ),
        ];
        let mut out = Vec::with_capacity(lists.iter().map(|(_, _, list)| list.0.len()).sum());
        for (list_name, fallback, list) in lists {
            for (index, view) in list.iter().filter(|(_, view)| view.is_map) {
                let kind = match fallback {
                    ContainerKind::Init { .. } => ContainerKind::Init {
                        restartable: view.restart_policy.as_ref().and_then(Scalar::as_str)
                            == Some("Always"),
                    },
                    other => other,
                };
                let name = match view.name.as_ref().and_then(Scalar::as_str) {
                    Some(name) => Cow::Borrowed(name),
                    None => Cow::Owned(format!("{list_name}[{index}]")),
                };
                out.push(Container {
                    kind,
                    name,
                    view,
                    list: list_name,
                    index,
                    workload: self.kind,
                });
            }
        }
        out
    }

    /// `metadata.name`, or `generateName` followed by `*` for objects the server names.
    pub fn display_name(&self) -> String {
        let field =
            |value: &Option<Scalar>| value.as_ref().and_then(Scalar::as_str).map(str::to_owned);
        match (
            field(&self.metadata.name),
            field(&self.metadata.generate_name),
        ) {
            (Some(name), _) if !name.is_empty() => name,
            (_, Some(prefix)) => format!("{prefix}*"),
            _ => "(unnamed)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
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
        let object = ObjectView::deserialize(&pod).unwrap();
        let workload = Workload::new(WorkloadKind::Pod, object);
        let containers = workload.containers();
        let summary: Vec<_> = containers
            .iter()
            .map(|c| (c.name.as_ref(), c.kind, c.path().to_string()))
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
