//! The checks: each looks at one pod (template) and reports [`Finding`]s.
//!
//! Checks only read; what mutate mode would change is carried as an [`Edit`] on the
//! finding and applied by the evaluator, which then runs the checks again on the result.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::object::{Container, ContainerKind, Edit, FieldPath, Flag, PodView};
use crate::quantity::{Quantity, ratio_exceeds};
use crate::settings::{CheckId, Mode, Policy, ResourceKey, Section, canonical_capability};

/// One thing a check found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The check that found it.
    pub check: CheckId,
    /// The container, for container checks.
    pub container: Option<String>,
    /// The image of that container, for image exemptions.
    pub image: Option<String>,
    /// The field to change.
    pub path: FieldPath,
    /// What is wrong and what to set, e.g. `must be true`.
    pub message: String,
    /// What mutate mode would change; `None` when only a person can fix it.
    pub fix: Vec<Edit>,
    /// Not a violation, only a spelling mutate mode normalises (e.g. drop `all`).
    pub advisory: bool,
}

impl Finding {
    /// Whether mutate mode can fix it.
    pub fn is_fixable(&self) -> bool {
        !self.fix.is_empty()
    }

    /// The line people read: `check: container "app" (path) message`.
    pub fn render(&self, subject: &str) -> String {
        match &self.container {
            Some(name) => format!(
                "{}: container {name:?} ({}) {}",
                self.check, self.path, self.message
            ),
            None => format!("{}: {subject} ({}) {}", self.check, self.path, self.message),
        }
    }
}

/// Which containers and which levels of the pod a request lets podguard judge and change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'s> {
    /// The whole pod; `pod_edits` says whether pod-level fields may be mutated.
    Whole {
        /// Pod-level mutation is possible (not a Pod UPDATE).
        pod_edits: bool,
    },
    /// Only these ephemeral containers (a `pods/ephemeralcontainers` request): pod-level
    /// checks are skipped and fixes go on the containers themselves.
    AddedEphemeral(&'s HashSet<String>),
}

impl Scope<'_> {
    fn includes(&self, container: &Container) -> bool {
        match self {
            Scope::Whole { .. } => true,
            Scope::AddedEphemeral(names) => {
                container.kind == ContainerKind::Ephemeral && names.contains(&container.name)
            }
        }
    }

    fn pod_checks(&self) -> bool {
        matches!(self, Scope::Whole { .. })
    }

    fn pod_edits(&self) -> bool {
        matches!(self, Scope::Whole { pod_edits: true })
    }
}

/// Runs every check that is not off over the pod and returns what they found, plus notes
/// on checks relaxed for this pod.
pub fn run(policy: &Policy, pod: &PodView, scope: Scope) -> (Vec<Finding>, Vec<String>) {
    // A pod-level default reaches every container, including image-exempt ones that
    // may need to run as root; fixes then go on the judged containers themselves.
    let reaches_exempt = pod.containers().iter().any(|c| {
        c.image()
            .is_some_and(|image| policy.exempt_images.iter().any(|glob| glob.matches(image)))
    });
    let mut run = Run {
        policy,
        pod,
        pod_level_edits: scope.pod_edits() && !reaches_exempt,
        findings: Vec::new(),
        notes: Vec::new(),
    };
    let containers: Vec<Container> = pod
        .containers()
        .into_iter()
        .filter(|c| scope.includes(c))
        .collect();
    let windows = pod.is_windows();
    for c in &containers {
        run.on(CheckId::RunAsNonRoot, |r| r.run_as_non_root(c));
        // Pod Security Admission skips Linux-only fields for Windows pods, and the API
        // server forbids setting them there, so requiring them would reject every
        // Windows pod.
        if !windows {
            run.on(CheckId::NoPrivileged, |r| r.no_privileged(c));
            run.on(CheckId::DropCapabilities, |r| r.drop_capabilities(c));
            run.on(CheckId::NoPrivilegeEscalation, |r| {
                r.no_privilege_escalation(c)
            });
            run.on(CheckId::ReadOnlyRootFilesystem, |r| {
                r.read_only_root_filesystem(c)
            });
            run.on(CheckId::SeccompProfile, |r| r.seccomp_profile(c));
        }
        run.on(CheckId::ImageTagPinned, |r| r.image_tag_pinned(c));
        run.on(CheckId::ResourceLimits, |r| r.resource_limits(c));
        run.on(CheckId::HealthProbes, |r| r.health_probes(c));
    }
    if scope.pod_checks() {
        run.on(CheckId::PrometheusAnnotations, |r| {
            r.prometheus_annotations(&containers)
        });
        run.on(CheckId::HostNamespaces, Run::host_namespaces);
    }
    (run.findings, run.notes)
}

struct Run<'p, 'v> {
    policy: &'p Policy,
    pod: &'p PodView<'v>,
    pod_level_edits: bool,
    findings: Vec<Finding>,
    notes: Vec<String>,
}

impl Run<'_, '_> {
    fn on(&mut self, check: CheckId, body: impl FnOnce(&mut Self)) {
        if self.policy.mode(check) != Mode::Off {
            body(self);
        }
    }

    fn container_finding(
        &mut self,
        check: CheckId,
        c: &Container,
        path: FieldPath,
        message: String,
        fix: Vec<Edit>,
    ) {
        self.findings.push(Finding {
            check,
            container: Some(c.name.clone()),
            image: c.image().map(str::to_owned),
            path,
            message,
            fix,
            advisory: false,
        });
    }

    fn pod_finding(&mut self, check: CheckId, path: FieldPath, message: String, fix: Vec<Edit>) {
        self.findings.push(Finding {
            check,
            container: None,
            image: None,
            path,
            message,
            fix,
            advisory: false,
        });
    }

    /// Sets a security field at the pod level where the request allows it, else on the
    /// container (ephemeral-container requests may not touch the rest of the pod, and a
    /// pod-level value would also reach image-exempt containers).
    fn security_insert(&self, c: &Container, field: &str, value: Value) -> Edit {
        let path = if self.pod_level_edits {
            self.pod.security_path(field)
        } else {
            c.security_path(field)
        };
        Edit::Insert { path, value }
    }

    fn run_as_non_root(&mut self, c: &Container) {
        let container_sc = c.security_context();
        let pod_sc = self.pod.security_context();
        // The container's value wins; the pod's applies only where the container is silent.
        let effective = |field: &str| match container_sc.and_then(|sc| sc.get(field)) {
            Some(v) if !v.is_null() => (Some(v), c.security_path(field)),
            _ => (
                pod_sc.and_then(|sc| sc.get(field)).filter(|v| !v.is_null()),
                self.pod.security_path(field),
            ),
        };
        let (user, user_path) = effective("runAsUser");
        let (non_root, non_root_path) = effective("runAsNonRoot");
        let uid = user.and_then(Value::as_i64);

        // The kubelet refuses this pair whatever the pod's user namespace says, so it is
        // never relaxed.
        if uid == Some(0) && non_root == Some(&Value::Bool(true)) {
            let message = "is 0 while runAsNonRoot is true, so the kubelet will refuse to start it: set a non-zero uid";
            self.container_finding(
                CheckId::RunAsNonRoot,
                c,
                user_path,
                message.to_owned(),
                Vec::new(),
            );
            return;
        }
        let mut found = Vec::new();
        if uid == Some(0) {
            found.push((
                user_path,
                "is 0 (root): set a non-zero uid".to_owned(),
                Vec::new(),
            ));
        }
        match non_root {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => found.push((
                non_root_path,
                "is false: set it to true".to_owned(),
                Vec::new(),
            )),
            Some(other) => found.push((
                non_root_path,
                format!("must be true, found {other}"),
                Vec::new(),
            )),
            None => {
                let mut fix = vec![self.security_insert(c, "runAsNonRoot", json!(true))];
                // Windows pods cannot set runAsUser at all.
                if let (Some(default_uid), None, true, false) = (
                    self.policy.default_run_as_user,
                    user,
                    self.pod_level_edits,
                    self.pod.is_windows(),
                ) {
                    fix.push(Edit::Insert {
                        path: self.pod.security_path("runAsUser"),
                        value: json!(default_uid),
                    });
                }
                let message = match uid {
                    Some(uid) if uid > 0 => {
                        format!(
                            "is unset while runAsUser is {uid}: set it to true so the kubelet enforces it"
                        )
                    }
                    _ => "must be true".to_owned(),
                };
                found.push((c.security_path("runAsNonRoot"), message, fix));
            }
        }
        if found.is_empty() {
            return;
        }
        if self.pod.in_user_namespace() {
            // Pod Security Admission relaxes the non-root checks under user namespaces:
            // uid 0 in the pod maps to an unprivileged uid on the node.
            self.notes.push(format!(
                "run-as-non-root: container {:?} may run as root: spec.hostUsers is false, so it is not root on the node",
                c.name
            ));
            return;
        }
        for (path, message, fix) in found {
            self.container_finding(CheckId::RunAsNonRoot, c, path, message, fix);
        }
    }

    fn no_privileged(&mut self, c: &Container) {
        match Flag::read(c.security_context(), "privileged") {
            Flag::Set(true) => self.container_finding(
                CheckId::NoPrivileged,
                c,
                c.security_path("privileged"),
                "is true: remove it (privileged grants every capability and the host's devices)"
                    .to_owned(),
                Vec::new(),
            ),
            Flag::Invalid => self.container_finding(
                CheckId::NoPrivileged,
                c,
                c.security_path("privileged"),
                "is not a boolean: remove it or set false".to_owned(),
                Vec::new(),
            ),
            _ => {}
        }
    }

    fn drop_capabilities(&mut self, c: &Container) {
        let sc = c.security_context();
        if Flag::read(sc, "privileged").is_true() {
            // privileged grants every capability whatever `drop` says: a passing verdict
            // here would be false.
            self.container_finding(
                CheckId::DropCapabilities,
                c,
                c.security_path("privileged"),
                "is true: it grants every capability whatever capabilities.drop says".to_owned(),
                Vec::new(),
            );
            return;
        }
        let capabilities = sc.and_then(|sc| sc.get("capabilities"));
        let caps_path = c.security_path("capabilities");
        let drop = capabilities
            .and_then(|caps| caps.get("drop"))
            .and_then(Value::as_array);
        let mut drops_all = false;
        let mut near_miss = None;
        for (i, entry) in drop.into_iter().flatten().enumerate() {
            let Some(name) = entry.as_str() else { continue };
            if runtime_reads_as_all(name) {
                drops_all = true;
                if name != "ALL" {
                    // Runtimes treat `all` as ALL but Pod Security Admission compares
                    // exactly, so mutate mode spells it the canonical way.
                    self.findings.push(Finding {
                        check: CheckId::DropCapabilities,
                        container: Some(c.name.clone()),
                        image: c.image().map(str::to_owned),
                        path: caps_path.key("drop").index(i),
                        message: format!("{name:?} is read as ALL; it is spelled ALL"),
                        fix: vec![Edit::Normalize {
                            path: caps_path.key("drop").index(i),
                            value: json!("ALL"),
                        }],
                        advisory: true,
                    });
                }
            } else if near_miss.is_none() && canonical_capability(name) == "ALL" {
                near_miss = Some((i, name));
            }
        }
        if !drops_all {
            // An entry that only looks like ALL (`"ALL "`, `CAP_ALL`) drops nothing at all,
            // so the container keeps every default capability: say which entry misleads.
            let message = match near_miss {
                Some((i, name)) => format!(
                    "must include ALL: drop[{i}] {name:?} is not ALL to container runtimes, which compare the whole entry with ALL, ignoring only case; write ALL"
                ),
                None => "must include ALL".to_owned(),
            };
            self.container_finding(
                CheckId::DropCapabilities,
                c,
                caps_path.key("drop"),
                message,
                vec![Edit::Append {
                    path: caps_path.key("drop"),
                    value: json!("ALL"),
                }],
            );
        }
        let add = capabilities
            .and_then(|caps| caps.get("add"))
            .and_then(Value::as_array);
        for (i, entry) in add.into_iter().flatten().enumerate() {
            let name = entry.as_str().unwrap_or_default();
            let canonical = canonical_capability(name);
            if !self.policy.allowed_add.contains(&canonical) {
                let allowed = match self.policy.allowed_add.as_slice() {
                    [] => "none may be added".to_owned(),
                    list => format!("only {} may be added", list.join(", ")),
                };
                self.container_finding(
                    CheckId::DropCapabilities,
                    c,
                    caps_path.key("add").index(i),
                    match name == canonical {
                        true => format!("adds {name}, but {allowed}: remove it"),
                        false => format!("adds {entry} ({canonical}), but {allowed}: remove it"),
                    },
                    Vec::new(),
                );
            }
        }
    }

    fn no_privilege_escalation(&mut self, c: &Container) {
        let sc = c.security_context();
        let path = c.security_path("allowPrivilegeEscalation");
        let (message, fix) = match Flag::read(sc, "allowPrivilegeEscalation") {
            Flag::Set(false) => return,
            Flag::Set(true) => ("is true: set it to false", Vec::new()),
            Flag::Invalid => ("is not a boolean: set it to false", Vec::new()),
            Flag::Unset => {
                // The API server refuses allowPrivilegeEscalation: false together with
                // privileged: true or an added "CAP_SYS_ADMIN" (compared exactly), so
                // setting it there would turn a fixable request into a failed one.
                let adds_sys_admin = sc
                    .and_then(|sc| sc.get("capabilities"))
                    .and_then(|caps| caps.get("add"))
                    .and_then(Value::as_array)
                    .is_some_and(|add| add.iter().any(|a| a.as_str() == Some("CAP_SYS_ADMIN")));
                if Flag::read(sc, "privileged").is_true() {
                    (
                        "must be false, which the API allows only without privileged: true",
                        Vec::new(),
                    )
                } else if adds_sys_admin {
                    (
                        "must be false, which the API allows only without adding CAP_SYS_ADMIN",
                        Vec::new(),
                    )
                } else {
                    let fix = Edit::Insert {
                        path: path.clone(),
                        value: json!(false),
                    };
                    ("must be false", vec![fix])
                }
            }
        };
        self.container_finding(
            CheckId::NoPrivilegeEscalation,
            c,
            path,
            message.to_owned(),
            fix,
        );
    }

    fn read_only_root_filesystem(&mut self, c: &Container) {
        let path = c.security_path("readOnlyRootFilesystem");
        let (message, fix) = match Flag::read(c.security_context(), "readOnlyRootFilesystem") {
            Flag::Set(true) => return,
            Flag::Set(false) => (
                "is false: set it to true and mount writable paths as volumes".to_owned(),
                Vec::new(),
            ),
            Flag::Invalid => ("is not a boolean: set it to true".to_owned(), Vec::new()),
            Flag::Unset => (
                "must be true".to_owned(),
                vec![Edit::Insert {
                    path: path.clone(),
                    value: json!(true),
                }],
            ),
        };
        self.container_finding(CheckId::ReadOnlyRootFilesystem, c, path, message, fix);
    }

    fn seccomp_profile(&mut self, c: &Container) {
        fn profile_type(sc: Option<&serde_json::Map<String, Value>>) -> Option<&Value> {
            sc.and_then(|sc| sc.get("seccompProfile"))
                .and_then(|p| p.get("type"))
                .filter(|t| !t.is_null())
        }
        let (found, path) = match profile_type(c.security_context()) {
            Some(t) => (Some(t), c.security_path("seccompProfile").key("type")),
            None => (
                profile_type(self.pod.security_context()),
                self.pod.security_path("seccompProfile").key("type"),
            ),
        };
        match found.map(|t| t.as_str()) {
            Some(Some("RuntimeDefault" | "Localhost")) => {}
            Some(other) => {
                let shown = other.map_or_else(
                    || found.map(Value::to_string).unwrap_or_default(),
                    str::to_owned,
                );
                self.container_finding(
                    CheckId::SeccompProfile,
                    c,
                    path,
                    format!("is {shown}: set RuntimeDefault or Localhost"),
                    Vec::new(),
                );
            }
            None => {
                let fix = vec![self.security_insert(
                    c,
                    "seccompProfile",
                    json!({"type": "RuntimeDefault"}),
                )];
                self.container_finding(
                    CheckId::SeccompProfile,
                    c,
                    c.security_path("seccompProfile").key("type"),
                    "must be RuntimeDefault or Localhost".to_owned(),
                    fix,
                );
            }
        }
    }

    fn image_tag_pinned(&mut self, c: &Container) {
        let path = c.path.key("image");
        let message = match c.image() {
            None | Some("") => "is not set: name an image with a version tag or digest".to_owned(),
            Some(image) => match image_tag(image) {
                ImageTag::Digest | ImageTag::Tag => return,
                ImageTag::Latest => {
                    format!("{image:?} uses the latest tag: pin a version tag or a digest")
                }
                ImageTag::Missing => format!(
                    "{image:?} has no tag, which means latest: pin a version tag or a digest"
                ),
            },
        };
        self.container_finding(CheckId::ImageTagPinned, c, path, message, Vec::new());
    }

    fn health_probes(&mut self, c: &Container) {
        if c.kind != ContainerKind::Regular {
            return;
        }
        for (probe, why) in [
            (
                "livenessProbe",
                "so the kubelet restarts the container when it hangs",
            ),
            (
                "readinessProbe",
                "so traffic reaches the container only when it is ready",
            ),
        ] {
            if !c.fields.get(probe).is_some_and(Value::is_object) {
                let message = format!("is not set: declare one {why}");
                self.container_finding(
                    CheckId::HealthProbes,
                    c,
                    c.path.key(probe),
                    message,
                    Vec::new(),
                );
            }
        }
    }

    fn resource_limits(&mut self, c: &Container) {
        let rules = &self.policy.limits;
        match c.kind {
            // The API refuses resources on ephemeral containers.
            ContainerKind::Ephemeral => return,
            ContainerKind::Init { restartable: false } if rules.exempt_init_containers => return,
            _ => {}
        }
        let resources_path = c.path.key("resources");
        let resources = c.fields.get("resources").and_then(Value::as_object);
        let written = |section: Section| {
            resources
                .and_then(|r| r.get(section.as_str()))
                .and_then(Value::as_object)
        };
        // Pod-level resources (KEP-2837) bound the whole pod and satisfy a requirement for
        // every container.
        let pod_level = |section: Section| {
            self.pod
                .spec
                .and_then(|spec| spec.get("resources"))
                .and_then(|r| r.get(section.as_str()))
                .and_then(Value::as_object)
        };
        let key_path =
            |key: &ResourceKey| resources_path.key(key.section.as_str()).key(&key.resource);

        let mut parsed = std::collections::BTreeMap::new();
        for section in [Section::Limits, Section::Requests] {
            for (resource, value) in written(section).into_iter().flatten() {
                let key = ResourceKey {
                    section,
                    resource: resource.clone(),
                };
                match Quantity::from_json(value) {
                    Ok(q) if q.is_negative() => {
                        let message = format!("is {q}, which is negative: set a positive quantity");
                        self.container_finding(
                            CheckId::ResourceLimits,
                            c,
                            key_path(&key),
                            message,
                            Vec::new(),
                        );
                    }
                    Ok(q) => {
                        parsed.insert(key, q);
                    }
                    Err(err) => {
                        let message = err.to_string();
                        self.container_finding(
                            CheckId::ResourceLimits,
                            c,
                            key_path(&key),
                            message,
                            Vec::new(),
                        );
                    }
                }
            }
        }
        let limit_key = |resource: &str| ResourceKey {
            section: Section::Limits,
            resource: resource.to_owned(),
        };
        let request_key = |resource: &str| ResourceKey {
            section: Section::Requests,
            resource: resource.to_owned(),
        };

        for key in &rules.required {
            let is_set = |map: Option<&serde_json::Map<String, Value>>| {
                map.is_some_and(|m| m.get(&key.resource).is_some_and(|v| !v.is_null()))
            };
            if is_set(written(key.section)) || is_set(pod_level(key.section)) {
                continue;
            }
            // The API server copies a missing request from its limit when it creates the
            // Pod, so the limit stands in for it unless requests must be written out.
            let request_follows_limit = !rules.require_explicit_requests;
            if key.section == Section::Requests && request_follows_limit {
                let limit = limit_key(&key.resource);
                // With the limit set the request is satisfied; with it missing too, the
                // limit's own finding covers both (setting the limit sets the request).
                if is_set(written(Section::Limits))
                    || is_set(pod_level(Section::Limits))
                    || rules.required.contains(&limit)
                {
                    continue;
                }
            }
            let mut fix: Vec<Edit> = rules
                .defaults
                .get(key)
                .map(|default| {
                    // Fill without creating a request above its limit.
                    let value = match key.section {
                        Section::Limits => parsed
                            .get(&request_key(&key.resource))
                            .filter(|request| *request > default)
                            .unwrap_or(default),
                        Section::Requests => parsed
                            .get(&limit_key(&key.resource))
                            .filter(|limit| *limit < default)
                            .unwrap_or(default),
                    };
                    Edit::Insert {
                        path: key_path(key),
                        value: json!(value.to_string()),
                    }
                })
                .into_iter()
                .collect();
            // Filling the limit also fills a missing request with its own default, as
            // teams expect requests below limits rather than equal to them.
            let request = request_key(&key.resource);
            let folds_request = key.section == Section::Limits
                && request_follows_limit
                && rules.required.contains(&request)
                && !is_set(written(Section::Requests))
                && !is_set(pod_level(Section::Requests));
            if folds_request && !fix.is_empty() {
                // Settings validation keeps a default request at or below its default limit.
                if let Some(default) = rules.defaults.get(&request) {
                    fix.push(Edit::Insert {
                        path: key_path(&request),
                        value: json!(default.to_string()),
                    });
                }
            }
            let message = match (rules.defaults.get(key), folds_request) {
                (Some(default), true) => {
                    format!("must be set (e.g. {default}; the request follows it)")
                }
                (Some(default), false) => format!("must be set (e.g. {default})"),
                (None, _) => "must be set".to_owned(),
            };
            self.container_finding(CheckId::ResourceLimits, c, key_path(key), message, fix);
        }

        for (key, request) in parsed
            .iter()
            .filter(|(k, _)| k.section == Section::Requests)
        {
            if let Some(limit) = parsed
                .get(&limit_key(&key.resource))
                .filter(|limit| request > *limit)
            {
                let message = format!(
                    "{request} is above the limit {limit}, which the API refuses: lower the request or raise the limit"
                );
                self.container_finding(
                    CheckId::ResourceLimits,
                    c,
                    key_path(key),
                    message,
                    Vec::new(),
                );
            }
        }
        for (key, max) in &rules.maximum {
            if let Some(value) = parsed.get(key).filter(|value| *value > max) {
                let message = format!("{value} is above the maximum {max}: lower it");
                self.container_finding(
                    CheckId::ResourceLimits,
                    c,
                    key_path(key),
                    message,
                    Vec::new(),
                );
            }
        }
        for (resource, max_ratio) in &rules.max_ratio {
            let Some(limit) = parsed.get(&limit_key(resource)) else {
                continue;
            };
            let request = parsed.get(&request_key(resource)).unwrap_or(limit);
            if ratio_exceeds(limit, request, max_ratio) {
                let message = format!(
                    "{limit} is more than {max_ratio} times the request {request}: raise the request or lower the limit"
                );
                self.container_finding(
                    CheckId::ResourceLimits,
                    c,
                    key_path(&limit_key(resource)),
                    message,
                    Vec::new(),
                );
            }
        }
    }

    fn prometheus_annotations(&mut self, containers: &[Container]) {
        let rules = &self.policy.prometheus;
        let annotations = self.pod.annotations();
        let annotation = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .filter(|v| !v.is_null())
        };
        let path_of = |key: &str| self.pod.metadata_path.key("annotations").key(key);
        let insert = |key: &str, value: &str| {
            vec![Edit::Insert {
                path: path_of(key),
                value: json!(value),
            }]
        };

        // Ports Prometheus can scrape: TCP ports of containers that run for the pod's whole
        // life (regular containers and restartable init sidecars).
        let ports: Vec<(Option<&str>, i64)> = containers
            .iter()
            .filter(|c| {
                matches!(
                    c.kind,
                    ContainerKind::Regular | ContainerKind::Init { restartable: true }
                )
            })
            .filter_map(|c| c.fields.get("ports").and_then(Value::as_array))
            .flatten()
            .filter(|port| {
                port.get("protocol")
                    .and_then(Value::as_str)
                    .is_none_or(|protocol| protocol == "TCP")
            })
            .filter_map(|port| {
                let number = port.get("containerPort").and_then(Value::as_i64)?;
                Some((port.get("name").and_then(Value::as_str), number))
            })
            .collect();
        let named = |name: &str| {
            ports
                .iter()
                .find(|(n, _)| *n == Some(name))
                .map(|(_, number)| *number)
        };

        let scrape = &rules.keys.scrape;
        match annotation(scrape) {
            Some(Value::String(value)) if value == "true" => {}
            None => self.pod_finding(
                CheckId::PrometheusAnnotations,
                path_of(scrape),
                "must be \"true\"".to_owned(),
                insert(scrape, "true"),
            ),
            Some(other) => self.pod_finding(
                CheckId::PrometheusAnnotations,
                path_of(scrape),
                format!("must be \"true\", found {other}"),
                Vec::new(),
            ),
        }

        let port = &rules.keys.port;
        match annotation(port) {
            None => {
                let resolved = rules
                    .port_names
                    .iter()
                    .find_map(|name| named(name))
                    // The default port only helps when a container declares it; writing
                    // an undeclared port would trade one violation for another.
                    .or(rules
                        .default_port
                        .map(i64::from)
                        .filter(|port| ports.iter().any(|(_, declared)| declared == port)));
                let (message, fix) = match resolved {
                    Some(number) => (
                        format!("must be the metrics port number, e.g. \"{number}\""),
                        insert(port, &number.to_string()),
                    ),
                    None => (
                        format!(
                            "must be the metrics port number (no container port is named {})",
                            rules.port_names.join(" or ")
                        ),
                        Vec::new(),
                    ),
                };
                self.pod_finding(CheckId::PrometheusAnnotations, path_of(port), message, fix);
            }
            Some(Value::String(text)) => {
                let number = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| text.parse::<i64>().ok())
                    .flatten()
                    .filter(|n| (1..=65535).contains(n));
                let message = match number {
                    Some(n) if ports.iter().any(|(_, declared)| *declared == n) => None,
                    Some(n) => Some(match ports.first() {
                        Some((_, declared)) => format!(
                            "is {n}, which no container declares as a TCP port: set a declared port number, e.g. \"{declared}\""
                        ),
                        None => format!(
                            "is {n}, which no container declares as a TCP port: declare it in the container's ports"
                        ),
                    }),
                    // Scrape configs substitute the annotation into the target address,
                    // so a port name yields an unreachable target.
                    None => Some(match named(text) {
                        Some(n) => format!(
                            "names port {text:?}; Prometheus needs the number: set it to \"{n}\""
                        ),
                        None => format!("is {text:?}, not a port number (1-65535)"),
                    }),
                };
                if let Some(message) = message {
                    self.pod_finding(
                        CheckId::PrometheusAnnotations,
                        path_of(port),
                        message,
                        Vec::new(),
                    );
                }
            }
            Some(other) => self.pod_finding(
                CheckId::PrometheusAnnotations,
                path_of(port),
                format!("must be a port number written as a string, found {other}"),
                Vec::new(),
            ),
        }

        let path = &rules.keys.path;
        match annotation(path) {
            Some(Value::String(value)) if value.starts_with('/') => {}
            None => self.pod_finding(
                CheckId::PrometheusAnnotations,
                path_of(path),
                format!("must be set (e.g. {:?})", rules.default_path),
                insert(path, &rules.default_path),
            ),
            Some(other) => self.pod_finding(
                CheckId::PrometheusAnnotations,
                path_of(path),
                format!("must be an HTTP path starting with /, found {other}"),
                Vec::new(),
            ),
        }
    }

    fn host_namespaces(&mut self) {
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            let message = match Flag::read(self.pod.spec, field) {
                Flag::Set(true) => "is true: remove it",
                Flag::Invalid => "is not a boolean: remove it",
                _ => continue,
            };
            self.pod_finding(
                CheckId::HostNamespaces,
                self.pod.spec_path.key(field),
                message.to_owned(),
                Vec::new(),
            );
        }
    }
}

enum ImageTag {
    Digest,
    Tag,
    Latest,
    Missing,
}

/// Splits an image reference the way container runtimes do: a digest pins it; otherwise
/// the tag is what follows the last `:` after the last `/` (a `:` before it is a
/// registry port).
fn image_tag(image: &str) -> ImageTag {
    if image.contains('@') {
        return ImageTag::Digest;
    }
    let last_part = image.rsplit('/').next().unwrap_or(image);
    match last_part.rsplit_once(':') {
        Some((_, "latest")) => ImageTag::Latest,
        Some((_, tag)) if !tag.is_empty() => ImageTag::Tag,
        _ => ImageTag::Missing,
    }
}

/// Whether a `capabilities.drop` entry drops every capability once it reaches the
/// container runtime. containerd and CRI-O compare the entry with `ALL` after upper-casing
/// it and do nothing else: no trimming, no `CAP_` prefix, so `"ALL "` or `CAP_ALL` drops
/// nothing. Go's `strings.ToUpper` maps no character outside ASCII to `A` or `L`, so an
/// ASCII case-insensitive comparison is exactly theirs.
pub fn runtime_reads_as_all(entry: &str) -> bool {
    entry.eq_ignore_ascii_case("ALL")
}
