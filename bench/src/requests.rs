//! The three AdmissionReview bodies every benchmark uses, generated here rather than copied
//! from fixtures so their size and shape are fixed by code:
//!
//! - [`Workload::SmallPod`]: one container, as `kubectl run` plus a hardened security context
//!   would create it (about 1.5 KB);
//! - [`Workload::Deployment`]: a Helm-managed Deployment with three containers (app, Envoy
//!   sidecar, log shipper) and two init containers, with the `managedFields` kube-apiserver
//!   sends (about 12 KB);
//! - [`Workload::Pod30`]: a Pod with 30 containers (about 25 KB).
//!
//! Each is compliant with the default requirements where it matters (the four enforced
//! checks pass, so the answer is `allowed: true`) and, as real workloads do, misses a few
//! warn-level checks, so the answer carries warnings.

use serde_json::{Map, Value, json};

/// One of the benchmark requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// A Pod with one container.
    SmallPod,
    /// A Deployment with three containers and two init containers.
    Deployment,
    /// A Pod with 30 containers.
    #[value(name = "pod-30")]
    Pod30,
}

impl Workload {
    /// Every request, smallest first.
    pub const ALL: [Workload; 3] = [Workload::SmallPod, Workload::Deployment, Workload::Pod30];

    /// The name used in benchmark ids, file names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::SmallPod => "small-pod",
            Workload::Deployment => "deployment",
            Workload::Pod30 => "pod-30",
        }
    }

    /// What the request is, for tables.
    pub fn description(self) -> &'static str {
        match self {
            Workload::SmallPod => "Pod, 1 container",
            Workload::Deployment => "Deployment, 3 containers + 2 init containers",
            Workload::Pod30 => "Pod, 30 containers",
        }
    }

    /// The request's uid (each request has its own).
    pub fn uid(self) -> &'static str {
        match self {
            Workload::SmallPod => "0b1e6c0a-5f55-4c1c-9d5e-000000000001",
            Workload::Deployment => "0b1e6c0a-5f55-4c1c-9d5e-000000000002",
            Workload::Pod30 => "0b1e6c0a-5f55-4c1c-9d5e-000000000003",
        }
    }

    /// The full AdmissionReview, as JSON.
    pub fn review(self) -> Value {
        match self {
            Workload::SmallPod => small_pod(),
            Workload::Deployment => deployment(),
            Workload::Pod30 => pod_with_containers(30),
        }
    }

    /// The AdmissionReview body as kube-apiserver sends it (compact JSON).
    pub fn body(self) -> Vec<u8> {
        serde_json::to_vec(&self.review()).expect("JSON values serialise")
    }

    /// The waPC `validate` payload for this request under `settings` (JSON), byte for byte
    /// what podguard's server hands the module: the request's own bytes, then the settings.
    pub fn validate_payload(self, settings: &str) -> Vec<u8> {
        let review = self.review();
        let request = serde_json::to_string(&review["request"]).expect("JSON values serialise");
        format!("{{\"request\":{request},\"settings\":{settings}}}").into_bytes()
    }
}

fn review(
    uid: &str,
    (group, version, kind, resource): (&str, &str, &str, &str),
    namespace: &str,
    name: &str,
    object: Value,
) -> Value {
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "8c9d3f1e-2b7a-4e61-a0f4-5d2c9b7e1a30",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// A hardened container: non-root through the pod, drops ALL, limits and requests set.
fn container(name: &str, image: &str, cpu: (&str, &str), memory: (&str, &str)) -> Value {
    json!({
        "name": name,
        "image": image,
        "resources": {
            "limits": {"cpu": cpu.1, "memory": memory.1},
            "requests": {"cpu": cpu.0, "memory": memory.0}
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false
        }
    })
}

fn with(mut value: Value, key: &str, field: Value) -> Value {
    value
        .as_object_mut()
        .expect("a container is an object")
        .insert(key.to_owned(), field);
    value
}

fn port(name: &str, number: u16) -> Value {
    json!({"name": name, "containerPort": number, "protocol": "TCP"})
}

fn http_probe(path: &str, port: &str) -> Value {
    json!({
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3
    })
}

fn pod_security_context() -> Value {
    json!({
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "runAsNonRoot": true,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

fn scrape_annotations(port: u16) -> Value {
    json!({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": port.to_string(),
        "prometheus.io/path": "/metrics"
    })
}

/// `kubectl run`-sized: one container, the usual defaults the API server fills in.
fn small_pod() -> Value {
    let uid = Workload::SmallPod.uid();
    let app = with(
        container(
            "web",
            "ghcr.io/acme/web:1.8.2",
            ("100m", "250m"),
            ("64Mi", "128Mi"),
        ),
        "ports",
        json!([port("http", 8080), port("metrics", 9090)]),
    );
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"run": "web"},
            "annotations": scrape_annotations(9090)
        },
        "spec": {
            "containers": [app],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "securityContext": pod_security_context(),
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        },
        "status": {}
    });
    review(uid, ("", "v1", "Pod", "pods"), "shop", "web", object)
}

/// The `managedFields` entry Helm's server-side apply leaves on a workload: a map shaped
/// like the object with every field as `f:name` and every list item as `k:{...}`.
fn managed_fields(object: &Value) -> Value {
    fn fields(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                out.insert(".".to_owned(), json!({}));
                for (key, child) in map {
                    out.insert(format!("f:{key}"), fields(child));
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Map::new();
                for item in items {
                    let key = match item.get("name") {
                        Some(name) => format!("k:{{\"name\":{name}}}"),
                        None => format!("v:{item}"),
                    };
                    out.insert(key, fields(item));
                }
                Value::Object(out)
            }
            _ => json!({}),
        }
    }
    let mut set = Map::new();
    set.insert("f:metadata".to_owned(), fields(&object["metadata"]));
    set.insert("f:spec".to_owned(), fields(&object["spec"]));
    json!([{
        "manager": "helm",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2026-11-18T09:41:07Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": Value::Object(set)
    }])
}

/// A Helm-managed Deployment: app, Envoy sidecar and log shipper, a migration and a
/// wait-for-database init container. The log shipper writes to its root filesystem
/// (a warning), the wait-for-database image is `:latest` (another).
fn deployment() -> Value {
    let uid = Workload::Deployment.uid();
    let labels = json!({
        "app.kubernetes.io/instance": "checkout",
        "app.kubernetes.io/name": "checkout",
        "app.kubernetes.io/version": "2.3.1"
    });
    let app = container(
        "checkout",
        "ghcr.io/acme/checkout:2.3.1",
        ("250m", "1"),
        ("256Mi", "512Mi"),
    );
    let app = with(
        app,
        "ports",
        json!([port("http", 8080), port("metrics", 9090)]),
    );
    let app = with(
        app,
        "env",
        json!([
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-agent.observability:4317"},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "url"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
        ]),
    );
    let app = with(
        app,
        "volumeMounts",
        json!([{"name": "tmp", "mountPath": "/tmp"}]),
    );
    let app = with(app, "livenessProbe", http_probe("/healthz", "http"));
    let app = with(app, "readinessProbe", http_probe("/readyz", "http"));

    let envoy = container(
        "envoy",
        "docker.io/envoyproxy/envoy:v1.34.1@sha256:6d9310341733d58b9b7442e8dac759573892e5c97103e61d136e0a2383811899",
        ("100m", "500m"),
        ("128Mi", "256Mi"),
    );
    let envoy = with(
        envoy,
        "args",
        json!(["-c", "/etc/envoy/envoy.yaml", "--log-level", "warn"]),
    );
    let envoy = with(
        envoy,
        "ports",
        json!([port("https", 8443), port("admin", 9901)]),
    );
    let envoy = with(
        envoy,
        "volumeMounts",
        json!([{"name": "envoy-config", "readOnly": true, "mountPath": "/etc/envoy"}]),
    );
    let envoy = with(envoy, "readinessProbe", http_probe("/ready", "admin"));

    let mut shipper = container(
        "log-shipper",
        "cr.fluentbit.io/fluent/fluent-bit:3.2.4",
        ("20m", "100m"),
        ("32Mi", "64Mi"),
    );
    shipper["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    let shipper = with(
        shipper,
        "volumeMounts",
        json!([{"name": "varlog", "mountPath": "/var/log/app", "readOnly": true}]),
    );

    let migrate = container(
        "migrate",
        "ghcr.io/acme/checkout-migrate:2.3.1",
        ("50m", "200m"),
        ("64Mi", "128Mi"),
    );
    let migrate = with(migrate, "args", json!(["migrate", "up"]));
    let wait = container(
        "wait-for-db",
        "docker.io/library/busybox:latest",
        ("10m", "50m"),
        ("16Mi", "32Mi"),
    );
    let wait = with(
        wait,
        "command",
        json!(["sh", "-c", "until nc -z checkout-db 5432; do sleep 1; done"]),
    );

    let mut object = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "labels": {
                "app.kubernetes.io/instance": "checkout",
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": "checkout",
                "app.kubernetes.io/version": "2.3.1",
                "helm.sh/chart": "checkout-2.3.1"
            },
            "annotations": {
                "meta.helm.sh/release-name": "checkout",
                "meta.helm.sh/release-namespace": "shop"
            }
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {
                "app.kubernetes.io/instance": "checkout",
                "app.kubernetes.io/name": "checkout"
            }},
            "template": {
                "metadata": {"labels": labels, "annotations": scrape_annotations(9090)},
                "spec": {
                    "volumes": [
                        {"name": "envoy-config", "configMap": {"name": "checkout-envoy", "defaultMode": 420}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "varlog", "emptyDir": {}}
                    ],
                    "initContainers": [migrate, wait],
                    "containers": [app, envoy, shipper],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "checkout",
                    "securityContext": pod_security_context(),
                    "schedulerName": "default-scheduler",
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}}
                    }]
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    });
    object["metadata"]["managedFields"] = managed_fields(&object);
    review(
        uid,
        ("apps", "v1", "Deployment", "deployments"),
        "shop",
        "checkout",
        object,
    )
}

/// A Pod with `count` containers: a batch of workers behind one metrics exporter, every
/// container hardened; every fifth one keeps a writable root filesystem (warnings).
fn pod_with_containers(count: usize) -> Value {
    let uid = Workload::Pod30.uid();
    let containers: Vec<Value> = (0..count)
        .map(|i| {
            let mut c = container(
                &format!("worker-{i:02}"),
                &format!("ghcr.io/acme/pipeline-stage-{}:4.{}.0", i % 6, i % 4),
                ("50m", "250m"),
                ("64Mi", "256Mi"),
            );
            if i % 5 == 4 {
                c["securityContext"]["readOnlyRootFilesystem"] = json!(false);
            }
            let ports = if i == 0 {
                json!([port("metrics", 9090), port("http", 8080)])
            } else {
                json!([port("http", 8080 + i as u16)])
            };
            let c = with(c, "ports", ports);
            let c = with(
                c,
                "env",
                json!([
                    {"name": "STAGE", "value": i.to_string()},
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}
                ]),
            );
            with(
                c,
                "volumeMounts",
                json!([{"name": "scratch", "mountPath": "/scratch"}]),
            )
        })
        .collect();
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "pipeline-7d9f8b6c5-x2kqz",
            "generateName": "pipeline-7d9f8b6c5-",
            "namespace": "batch",
            "labels": {"app": "pipeline", "pod-template-hash": "7d9f8b6c5"},
            "annotations": scrape_annotations(9090),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "pipeline-7d9f8b6c5",
                "uid": "3f0c5a9e-8d41-4b7e-9f2a-6c1d0e7b8a45", "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "pipeline",
            "securityContext": pod_security_context(),
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "priority": 0
        },
        "status": {}
    });
    review(
        uid,
        ("", "v1", "Pod", "pods"),
        "batch",
        "pipeline-7d9f8b6c5-x2kqz",
        object,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_admission_reviews_of_the_intended_size() {
        for workload in Workload::ALL {
            let body = workload.body();
            let review: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(review["request"]["uid"], workload.uid());
            let (low, high) = match workload {
                Workload::SmallPod => (1_000, 3_000),
                Workload::Deployment => (8_000, 20_000),
                Workload::Pod30 => (20_000, 40_000),
            };
            assert!(
                (low..high).contains(&body.len()),
                "{}: {} bytes",
                workload.name(),
                body.len()
            );
        }
        let deployment = Workload::Deployment.review();
        let spec = &deployment["request"]["object"]["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().unwrap().len(), 3);
        assert_eq!(spec["initContainers"].as_array().unwrap().len(), 2);
        let pod = Workload::Pod30.review();
        assert_eq!(
            pod["request"]["object"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            30
        );
    }

    #[test]
    fn payload_embeds_the_request_and_settings() {
        let payload = Workload::SmallPod.validate_payload("{}");
        let value: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["settings"], json!({}));
        assert_eq!(value["request"]["uid"], Workload::SmallPod.uid());
    }
}
