//! `prometheus-annotations`: the pod (a workload's pod template) carries Prometheus
//! scrape annotations naming a declared port.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{CheckId, Definition, Severity, Input, OptionDoc, Rule, Run};
use crate::object::{Container, ContainerKind, Edit, WorkloadKind};
use crate::settings::{Mode, Problems};
use crate::view::Scalar;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Prometheus annotations",
    description: "Pods must carry prometheus.io scrape, port and path annotations naming a declared port.",
    requires: "the pod (a workload's pod template) has `prometheus.io/scrape: \"true\"`, `prometheus.io/port` naming a declared TCP container port by number, and `prometheus.io/path`",
    mutation: Some("the three annotations, the port from a container port named `metrics`/`http-metrics`"),
    default_mode: Mode::Enforce,
    severity: Severity::Info,
    linux_only: false,
    kinds: WorkloadKind::LONG_RUNNING,
    pss: &[],
    options: &[
        OptionDoc {
            key: "annotations",
            label: "Annotation keys",
            description: "The keys of the scrape, port and path annotations on the pod (the pod template's metadata for workloads); clusters differ, e.g. prometheus.io.scrape or their own prefix.",
            input: Input::Map,
            mutate_only: false,
        },
        OptionDoc {
            key: "portNames",
            label: "Metrics port names",
            description: "Mutation sets the port annotation to the first container port with one of these names.",
            input: Input::List,
            mutate_only: true,
        },
        OptionDoc {
            key: "defaultPort",
            label: "Default metrics port",
            description: "Mutation uses this port when no container port has one of the names above and a container declares it.",
            input: Input::Int,
            mutate_only: true,
        },
        OptionDoc {
            key: "defaultPath",
            label: "Default metrics path",
            description: "Mutation writes this path into the path annotation.",
            input: Input::String,
            mutate_only: true,
        },
    ],
};

/// Options of `prometheus-annotations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// The annotation keys; clusters differ (`prometheus.io.scrape`, own prefixes).
    pub annotations: AnnotationKeys,
    /// Container port names mutation looks for, in order.
    pub port_names: Vec<String>,
    /// Port mutation uses when no container port has one of `port_names`.
    pub default_port: Option<u16>,
    /// Path mutation writes into the path annotation.
    pub default_path: String,
}

impl Default for Options {
    fn default() -> Self {
        default_options()
    }
}

pub(crate) fn default_options() -> Options {
        Options {
            mode: DEFINITION.default_mode,
kinds: Some(DEFINITION.kinds.to_vec()),
            annotations: AnnotationKeys::default(),
            port_names: vec!["metrics".to_owned(), "http-metrics".to_owned()],
            default_port: None,
            default_path: "/metrics".to_owned(),
        }
}

/// The three Prometheus annotation keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AnnotationKeys {
    /// Must be `"true"`.
    pub scrape: String,
    /// Must name a declared TCP container port by number.
    pub port: String,
    /// Must be an HTTP path.
    pub path: String,
}

impl Default for AnnotationKeys {
    fn default() -> Self {
        AnnotationKeys {
            scrape: "prometheus.io/scrape".to_owned(),
            port: "prometheus.io/port".to_owned(),
            path: "prometheus.io/path".to_owned(),
        }
    }
}


/// The compiled options.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The three annotation keys.
    pub keys: AnnotationKeys,
    /// Port names mutation looks for.
    pub port_names: Vec<String>,
    /// Fallback port for mutation.
    pub default_port: Option<u16>,
    /// Path for mutation.
    pub default_path: String,
}

pub(crate) fn compile(settings: &Options, problems: &mut Problems) -> Compiled {
    const FIELD: &str = "checks.prometheus-annotations";
    let keys = &settings.annotations;
    for (name, key) in [
        ("scrape", &keys.scrape),
        ("port", &keys.port),
        ("path", &keys.path),
    ] {
        if !is_annotation_key(key) {
            problems.add(
                format!("{FIELD}.annotations.{name}"),
                format!("{key:?} is not an annotation key such as prometheus.io/{name}"),
            );
        }
    }
    if keys.scrape == keys.port || keys.port == keys.path || keys.scrape == keys.path {
        problems.add(
            format!("{FIELD}.annotations"),
            "scrape, port and path need three different keys",
        );
    }
    if settings.default_port == Some(0) {
        problems.add(
            format!("{FIELD}.defaultPort"),
            "0 is not a port; write 1-65535 or remove it",
        );
    }
    if !settings.default_path.starts_with('/') {
        problems.add(
            format!("{FIELD}.defaultPath"),
            format!(
                "{:?} is not an HTTP path; write one starting with /, e.g. /metrics",
                settings.default_path
            ),
        );
    }
    Compiled {
        keys: keys.clone(),
        port_names: settings.port_names.clone(),
        default_port: settings.default_port,
        default_path: settings.default_path.clone(),
    }
}

/// Annotation keys are qualified names: an optional DNS prefix and `/`, then a name of
/// alphanumerics, `-`, `_` and `.` (63 characters at most).
fn is_annotation_key(key: &str) -> bool {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return false;
            }
            name
        }
        None => key,
    };
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}


pub(crate) const RULE: Rule = Rule::Pod(check);

fn check(run: &mut Run, containers: &[Container]) {
    let policy = run.policy;
    let pod = run.pod;
    let rules = &policy.checks.prometheus_annotations;
    let annotations = pod.annotations();
    let annotation = |key: &str| annotations.get_set(key);
    let path_of = |key: &str| {
        pod.metadata_path()
            .key("annotations")
            .key(key.to_owned())
    };
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
        .flat_map(|c| &c.view.ports.0)
        .filter(|port| {
            port.protocol
                .as_ref()
                .and_then(Scalar::as_str)
                .is_none_or(|protocol| protocol == "TCP")
        })
        .filter_map(|port| {
            let number = port.container_port.as_ref().and_then(Scalar::as_i64)?;
            Some((port.name.as_ref().and_then(Scalar::as_str), number))
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
        Some(Scalar::Str(value)) if value == "true" => {}
        None => run.pod_finding(
            CheckId::PrometheusAnnotations,
            path_of(scrape),
            "must be \"true\"".to_owned(),
            insert(scrape, "true"),
        ),
        Some(other) => run.pod_finding(
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
            run.pod_finding(CheckId::PrometheusAnnotations, path_of(port), message, fix);
        }
        Some(Scalar::Str(text)) => {
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
                run.pod_finding(
                    CheckId::PrometheusAnnotations,
                    path_of(port),
                    message,
                    Vec::new(),
                );
            }
        }
        Some(other) => run.pod_finding(
            CheckId::PrometheusAnnotations,
            path_of(port),
            format!("must be a port number written as a string, found {other}"),
            Vec::new(),
        ),
    }

    let path = &rules.keys.path;
    match annotation(path) {
        Some(Scalar::Str(value)) if value.starts_with('/') => {}
        None => run.pod_finding(
            CheckId::PrometheusAnnotations,
            path_of(path),
            format!("must be set (e.g. {:?})", rules.default_path),
            insert(path, &rules.default_path),
        ),
        Some(other) => run.pod_finding(
            CheckId::PrometheusAnnotations,
            path_of(path),
            format!("must be an HTTP path starting with /, found {other}"),
            Vec::new(),
        ),
    }
}
