//! `resource-limits`: every container (ephemeral ones excepted) sets the required
//! quantities, within the configured bounds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CheckId, Definition, Severity, Input, OptionDoc, Rule, Run};
use crate::object::{Container, ContainerKind, Edit, WorkloadKind};
use crate::quantity::{Quantity, ratio_exceeds};
use crate::settings::{Mode, Problems};
use crate::view::Entries;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Resource limits",
    description: "Containers must set CPU and memory limits and requests within the configured bounds.",
    requires: "every container (ephemeral ones excepted) sets `limits.cpu`, `limits.memory`, `requests.cpu`, `requests.memory`; optional maxima and limit/request ratios",
    mutation: Some("missing values from `defaults`"),
    default_mode: Mode::Enforce,
    severity: Severity::Low,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[],
    options: &[
        OptionDoc {
            key: "required",
            label: "Required quantities",
            description: "Quantities every container must set, as <limits|requests>.<resource>, e.g. limits.cpu or requests.memory.",
            input: Input::List,
            mutate_only: false,
        },
        OptionDoc {
            key: "requireExplicitRequests",
            label: "Require explicit requests",
            description: "By default a missing request counts as its limit, because the API server copies the limit into the request when it creates a Pod. Set true to require requests written out.",
            input: Input::Bool,
            mutate_only: false,
        },
        OptionDoc {
            key: "exemptInitContainers",
            label: "Exempt init containers",
            description: "Exempt plain init containers, which run to completion before the app starts. Restartable init containers (sidecars, restartPolicy: Always) are always checked.",
            input: Input::Bool,
            mutate_only: false,
        },
        OptionDoc {
            key: "defaults",
            label: "Default quantities",
            description: "Values mutation fills in where a required quantity is missing. Keys are <limits|requests>.<resource>, values Kubernetes quantities.",
            input: Input::Map,
            mutate_only: true,
        },
        OptionDoc {
            key: "maximum",
            label: "Maximum quantities",
            description: "Upper bounds, e.g. limits.memory: 8Gi.",
            input: Input::Map,
            mutate_only: false,
        },
        OptionDoc {
            key: "maxLimitRequestRatio",
            label: "Maximum limit/request ratio",
            description: "Upper bounds on limit / request per resource, e.g. cpu: \"4\".",
            input: Input::Map,
            mutate_only: false,
        },
    ],
};

/// Options of `resource-limits`. Keys are `<limits|requests>.<resource>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// Quantities every container must set, e.g. `limits.cpu`.
    pub required: Vec<String>,
    /// Require requests written out instead of counting a missing request as its limit.
    pub require_explicit_requests: bool,
    /// Skip plain (run-to-completion) init containers.
    pub exempt_init_containers: bool,
    /// Values mutation fills in where a required quantity is missing.
    pub defaults: BTreeMap<String, Value>,
    /// Upper bounds per quantity.
    pub maximum: BTreeMap<String, Value>,
    /// Upper bounds on limit / request per resource name.
    pub max_limit_request_ratio: BTreeMap<String, Value>,
}

impl Default for Options {
    fn default() -> Self {
        default_options()
    }
}

pub(crate) fn default_options() -> Options {
    let text = |s: &str| Value::String(s.to_owned());
    Options {
            mode: DEFINITION.default_mode,
kinds: Some(DEFINITION.kinds.to_vec()),
            required: [
                "limits.cpu",
                "limits.memory",
                "requests.cpu",
                "requests.memory",
            ]
            .map(str::to_owned)
            .to_vec(),
            require_explicit_requests: false,
            exempt_init_containers: false,
            defaults: BTreeMap::from([
                ("limits.cpu".to_owned(), text("500m")),
                ("limits.memory".to_owned(), text("512Mi")),
                ("requests.cpu".to_owned(), text("100m")),
                ("requests.memory".to_owned(), text("128Mi")),
            ]),
            maximum: BTreeMap::new(),
            max_limit_request_ratio: BTreeMap::new(),
    }
}


/// Which half of `resources` a quantity lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `resources.limits`
    Limits,
    /// `resources.requests`
    Requests,
}

impl Section {
    /// The field name in a container's `resources`.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Requests => "requests",
        }
    }
}

/// A quantity's place, e.g. `limits.cpu`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// Limits or requests.
    pub section: Section,
    /// The resource name, e.g. `cpu`, `memory`, `ephemeral-storage`.
    pub resource: String,
}

impl ResourceKey {
    fn parse(text: &str) -> Option<ResourceKey> {
        let (section, resource) = text.split_once('.')?;
        let section = match section {
            "limits" => Section::Limits,
            "requests" => Section::Requests,
            _ => return None,
        };
        (!resource.is_empty()).then(|| ResourceKey {
            section,
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.section.as_str(), self.resource)
    }
}

/// The compiled options.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Quantities every container must set.
    pub required: Vec<ResourceKey>,
    /// Requests must be written out.
    pub require_explicit_requests: bool,
    /// Plain init containers are skipped.
    pub exempt_init_containers: bool,
    /// Values for mutation.
    pub defaults: BTreeMap<ResourceKey, Quantity>,
    /// Upper bounds.
    pub maximum: BTreeMap<ResourceKey, Quantity>,
    /// Upper bounds on limit / request, by resource name.
    pub max_ratio: BTreeMap<String, Quantity>,
}

pub(crate) fn compile(settings: &Options, problems: &mut Problems) -> Compiled {
    const FIELD: &str = "checks.resource-limits";
    let key_hint = "write <limits|requests>.<resource>, e.g. limits.cpu or requests.memory";
    let mut required = Vec::new();
    for (i, text) in settings.required.iter().enumerate() {
        match ResourceKey::parse(text) {
            Some(key) if required.contains(&key) => problems.add(
                format!("{FIELD}.required[{i}]"),
                format!("{text:?} is listed twice"),
            ),
            Some(key) => required.push(key),
            None => problems.add(
                format!("{FIELD}.required[{i}]"),
                format!("{text:?}: {key_hint}"),
            ),
        }
    }
    let mut quantities = |map: &BTreeMap<String, Value>, name: &str| {
        let mut out = BTreeMap::new();
        for (text, value) in map {
            let field = format!("{FIELD}.{name}.{text}");
            let Some(key) = ResourceKey::parse(text) else {
                problems.add(field, format!("{text:?} is not a quantity key: {key_hint}"));
                continue;
            };
            match Quantity::from_json(value) {
                Ok(q) if q.is_negative() => problems.add(field, format!("{q} is negative")),
                Ok(q) => {
                    out.insert(key, q);
                }
                Err(err) => problems.add(field, err.to_string()),
            }
        }
        out
    };
    let defaults = quantities(&settings.defaults, "defaults");
    let maximum = quantities(&settings.maximum, "maximum");

    for (key, default) in &defaults {
        if let Some(max) = maximum.get(key).filter(|max| default > *max) {
            problems.add(
                format!("{FIELD}.defaults.{key}"),
                format!("the default {default} is above maximum.{key} {max}; mutation would create a violation"),
            );
        }
        if key.section == Section::Requests {
            let limit_key = ResourceKey {
                section: Section::Limits,
                resource: key.resource.clone(),
            };
            if let Some(limit) = defaults.get(&limit_key).filter(|limit| default > *limit) {
                problems.add(
                    format!("{FIELD}.defaults.{key}"),
                    format!("the default request {default} is above the default limit {limit}; the API server rejects a request above its limit"),
                );
            }
        }
    }

    let mut max_ratio = BTreeMap::new();
    for (resource, value) in &settings.max_limit_request_ratio {
        let field = format!("{FIELD}.maxLimitRequestRatio.{resource}");
        if resource.is_empty() || resource.contains('.') {
            problems.add(field, "key a ratio by resource name, e.g. cpu or memory");
            continue;
        }
        match Quantity::from_json(value) {
            Ok(q) if q.nanos() < 1_000_000_000 => problems.add(
                field,
                format!("{q} is below 1; a limit is never below its request, so write a ratio of at least 1"),
            ),
            Ok(q) => {
                max_ratio.insert(resource.clone(), q);
            }
            Err(err) => problems.add(field, err.to_string()),
        }
    }

    Compiled {
        required,
        require_explicit_requests: settings.require_explicit_requests,
        exempt_init_containers: settings.exempt_init_containers,
        defaults,
        maximum,
        max_ratio,
    }
}


pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let policy = run.policy;
    let pod = run.pod;
    let rules = &policy.checks.resource_limits;
    match c.kind {
        // The API refuses resources on ephemeral containers.
        ContainerKind::Ephemeral => return,
        ContainerKind::Init { restartable: false } if rules.exempt_init_containers => return,
        _ => {}
    }
    let resources = &c.view.resources;
    let written = |section: Section| match section {
        Section::Limits => &resources.limits,
        Section::Requests => &resources.requests,
    };
    // Pod-level resources (KEP-2837) bound the whole pod and satisfy a requirement for
    // every container.
    let pod_level = |section: Section| match section {
        Section::Limits => &pod.spec.resources.limits,
        Section::Requests => &pod.spec.resources.requests,
    };
    let key_path = |key: &ResourceKey| {
        c.path()
            .key("resources")
            .key(key.section.as_str())
            .key(key.resource.clone())
    };

    let mut parsed = std::collections::BTreeMap::new();
    for section in [Section::Limits, Section::Requests] {
        for (resource, value) in &written(section).0 {
            let key = ResourceKey {
                section,
                resource: resource.as_ref().to_owned(),
            };
            match Quantity::from_scalar(value) {
                Ok(q) if q.is_negative() => {
                    let message = format!("is {q}, which is negative: set a positive quantity");
                    run.container_finding(
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
                    run.container_finding(
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
        let is_set = |map: &Entries| map.get_set(&key.resource).is_some();
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
        run.container_finding(CheckId::ResourceLimits, c, key_path(key), message, fix);
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
            run.container_finding(
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
            run.container_finding(
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
            run.container_finding(
                CheckId::ResourceLimits,
                c,
                key_path(&limit_key(resource)),
                message,
                Vec::new(),
            );
        }
    }
}
