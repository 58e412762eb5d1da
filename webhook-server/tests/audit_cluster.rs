//! `podguard audit --cluster` against a local HTTPS server that answers as kube-apiserver
//! does: typed list responses whose items lack `apiVersion`/`kind`, pagination with
//! `limit` and `metadata.continue`, `Status` errors, server-side apply of PolicyReports.
//! No Kubernetes API server can run on the build machines; the recorded-shape lists are
//! in `tests/audit-fixtures/cluster/`. The server records every request, and the tests
//! check what podguard asked for as much as what it reported.

mod audit_support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use audit_support::{Invocation, fixture, run, workloads};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    /// Resources (plural) that answer 403 to list.
    forbidden: Vec<String>,
    /// PolicyReports that exist before the run: (namespace, name).
    existing_reports: Vec<(String, String)>,
    /// Whether the OpenReports CRDs are installed (`openreports.io/v1alpha1` is served).
    openreports: bool,
}

struct FakeApi {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
    _certs: tempfile::TempDir,
}

const TOKEN: &str = "test-token-7f3a";
const RESOURCE_VERSION: &str = "48311";

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// `apps`/`deployments` → `Deployment`.
fn kind_of(plural: &str) -> &'static str {
    match plural {
        "deployments" => "Deployment",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        "replicasets" => "ReplicaSet",
        "replicationcontrollers" => "ReplicationController",
        "cronjobs" => "CronJob",
        "jobs" => "Job",
        "pods" => "Pod",
        "policyreports" => "PolicyReport",
        _ => "Unknown",
    }
}

/// Splits `/api/v1/...` or `/apis/GROUP/VERSION/...` into group/version, namespace and
/// the rest.
fn parse_path(path: &str) -> Option<(String, Option<String>, Vec<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        rest => (None, rest),
    };
    Some((
        group_version,
        namespace,
        rest.iter().map(|s| (*s).to_owned()).collect(),
    ))
}

fn list_page(
    group_version: &str,
    plural: &str,
    namespace: Option<&str>,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
) -> (StatusCode, Value) {
    let items: Vec<Value> = items
        .into_iter()
        .filter(|item| namespace.is_none_or(|ns| item["metadata"]["namespace"] == ns))
        .collect();
    // kube-apiserver's continue token is opaque base64 naming the key to resume after.
    let start = match query.get("continue") {
        None => 0,
        Some(token) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .expect("a token this server issued");
            let token: Value = serde_json::from_slice(&decoded).unwrap();
            let key = token["start"].as_str().unwrap().trim_end_matches('\u{0}');
            items
                .iter()
                .position(|i| {
                    format!(
                        "{}/{}",
                        i["metadata"]["namespace"].as_str().unwrap_or_default(),
                        i["metadata"]["name"].as_str().unwrap()
                    ) == key
                })
                .expect("the token names an item")
        }
    };
    let limit = query
        .get("limit")
        .map_or(usize::MAX, |l| l.parse::<usize>().unwrap());
    let end = start.saturating_add(limit).min(items.len());
    let mut metadata = json!({"resourceVersion": RESOURCE_VERSION});
    if end < items.len() {
        let next = &items[end];
        let token = json!({"v": "meta.k8s.io/v1", "rv": 48311, "start": format!(
            "{}/{}\u{0}",
            next["metadata"]["namespace"].as_str().unwrap_or_default(),
            next["metadata"]["name"].as_str().unwrap()
        )});
        metadata["continue"] =
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string()));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    (
        StatusCode::OK,
        json!({
            "kind": format!("{}List", kind_of(plural)),
            "apiVersion": group_version,
            "metadata": metadata,
            "items": items[start..end],
        }),
    )
}

fn answer(state: &Mutex<State>, request: &Recorded) -> (StatusCode, Value) {
    if request.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let Some((group_version, namespace, rest)) = parse_path(&request.path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let openreports = state.lock().unwrap().openreports;
    match (request.method.as_str(), rest.as_slice()) {
        ("GET", []) if group_version == "openreports.io/v1alpha1" && openreports => (
            StatusCode::OK,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [
                {"name": "clusterreports", "singularName": "clusterreport", "namespaced": false,
                 "kind": "ClusterReport", "verbs": ["delete", "get", "list", "patch", "create", "update", "watch"]},
                {"name": "reports", "singularName": "report", "namespaced": true,
                 "kind": "Report", "verbs": ["delete", "get", "list", "patch", "create", "update", "watch"]},
            ]}),
        ),
        ("GET", [plural])
            if group_version == "wgpolicyk8s.io/v1alpha2"
                || (group_version == "openreports.io/v1alpha1" && openreports) =>
        {
            let reports: Vec<Value> = state
                .lock()
                .unwrap()
                .existing_reports
                .iter()
                .map(|(ns, name)| {
                    json!({"metadata": {"name": name, "namespace": ns,
                           "labels": {"app.kubernetes.io/managed-by": "podguard", "podguard.io/report": "audit"}},
                           "results": []})
                })
                .collect();
            list_page(
                &group_version,
                plural,
                namespace.as_deref(),
                &request.query,
                reports,
            )
        }
        ("GET", [plural]) => {
            if state.lock().unwrap().forbidden.iter().any(|f| f == plural) {
                let group = group_version.rsplit_once('/').map_or("", |(g, _)| g);
                return status(
                    403,
                    "Forbidden",
                    &format!(
                        "{plural}.{group} is forbidden: User \"system:serviceaccount:podguard:podguard-audit\" cannot list resource \"{plural}\" in API group \"{group}\" at the cluster scope"
                    ),
                );
            }
            let file = fixture(&format!("cluster/{plural}.json"));
            let items = match std::fs::read_to_string(&file) {
                Ok(text) => serde_json::from_str::<Value>(&text).unwrap()["items"]
                    .as_array()
                    .unwrap()
                    .clone(),
                Err(_) => Vec::new(),
            };
            list_page(
                &group_version,
                plural,
                namespace.as_deref(),
                &request.query,
                items,
            )
        }
        ("PATCH", [_plural, name]) => {
            if request.content_type.as_deref() != Some("application/apply-patch+yaml") {
                return status(415, "UnsupportedMediaType", "expected an apply patch");
            }
            let mut object: Value = serde_json::from_slice(&request.body).unwrap();
            if object["metadata"]["name"] != *name {
                return status(
                    400,
                    "BadRequest",
                    "the name in the body differs from the URL",
                );
            }
            object["metadata"]["uid"] = json!("0a1b2c3d-0000-4000-8000-000000000001");
            object["metadata"]["resourceVersion"] = json!("50000");
            object["metadata"]["creationTimestamp"] = json!("2026-11-25T12:00:00Z");
            (StatusCode::OK, object)
        }
        ("DELETE", [_plural, name]) => (
            StatusCode::OK,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": name, "group": "wgpolicyk8s.io", "kind": "policyreports"}}),
        ),
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        content_type: header("content-type"),
        authorization: header("authorization"),
        body,
    };
    let (code, answer) = answer(&state, &recorded);
    state.lock().unwrap().requests.push(recorded);
    let response = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .header("audit-id", "5f0a8a7c-3c1e-4a0e-9d55-0f1e2d3c4b5a")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap();
    Ok(response)
}

/// Percent-decoding of query values (kube encodes label selectors and tokens).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl FakeApi {
    fn start() -> FakeApi {
        let certs = tempfile::tempdir().unwrap();
        podguard_server::gen_certs::generate(
            certs.path(),
            &podguard_server::gen_certs::CertRequest::new(
                vec!["localhost".to_owned()],
                vec!["127.0.0.1".parse().unwrap()],
            ),
        )
        .unwrap();
        let read = |name: &str| std::fs::read(certs.path().join(name)).unwrap();
        let chain: Vec<rustls_pki_types::CertificateDer<'static>> = {
            use rustls_pki_types::pem::PemObject as _;
            rustls_pki_types::CertificateDer::pem_slice_iter(&read("tls.crt"))
                .map(Result::unwrap)
                .collect()
        };
        let key = {
            use rustls_pki_types::pem::PemObject as _;
            rustls_pki_types::PrivateKeyDer::from_pem_slice(&read("tls.key")).unwrap()
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&state), request)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        FakeApi {
            addr,
            ca_pem: String::from_utf8(read("ca.crt")).unwrap(),
            state,
            _runtime: runtime,
            _certs: certs,
        }
    }

    /// A kubeconfig with a working context `test` and a context `unreachable`.
    fn kubeconfig(&self, dir: &Path, current: &str, token: &str) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {ca}\n- name: unreachable\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: {ca}\nusers:\n- name: auditor\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: auditor\n- name: unreachable\n  context:\n    cluster: unreachable\n    user: auditor\ncurrent-context: {current}\n",
            port = self.addr.port()
        );
        let path = dir.join(format!("kubeconfig-{current}-{token}"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn audit_cluster(args: &[&str], env: Vec<(&str, String)>) -> audit_support::Run {
    run(Invocation {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env,
        ..Invocation::default()
    })
}

fn names(report: &Value) -> Vec<String> {
    workloads(report).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn lists_every_workload_kind_page_by_page() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    let run = audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--page-size",
            "2",
            "-o",
            "json",
        ],
        Vec::new(),
    );
    run.expect_code(1);
    let report = run.json();
    assert_eq!(
        names(&report),
        [
            "Deployment shop/api",
            "Deployment shop/web",
            "Deployment monitoring/grafana",
            "Deployment kube-system/coredns",
            "ReplicaSet shop/legacy",
            "CronJob shop/report",
            "Pod ops/debug",
            "Pod kube-system/kube-apiserver-node-1",
        ],
        "every pod-template kind, and Pods no workload controller owns"
    );
    let list = workloads(&report);
    assert_eq!(list[0].1["status"], "pass");
    assert_eq!(list[0].1["uid"], "1f0b7a52-9a44-4c1e-8d0e-2b7c1a9e6f01");
    assert_eq!(
        list[0].1["source"]["input"],
        format!("cluster https://127.0.0.1:{}/", api.addr.port())
    );
    assert_eq!(
        list[3].1["status"], "exempt",
        "kube-system is exempt by default"
    );
    let owned = &report["summary"]["skipped"]["owned by a controller (judged through it)"];
    assert_eq!(owned["ReplicaSet"], 1, "the Deployment's ReplicaSet");
    assert_eq!(owned["Job"], 1, "the CronJob's Job");
    assert_eq!(owned["Pod"], 1, "the ReplicaSet's Pod; never judged twice");

    let requests = api.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "a dry run only reads"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}"))),
        "the kubeconfig's token is sent"
    );
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/daemonsets",
        "/apis/apps/v1/replicasets",
        "/api/v1/replicationcontrollers",
        "/apis/batch/v1/cronjobs",
        "/apis/batch/v1/jobs",
        "/api/v1/pods",
    ] {
        assert!(paths.contains(&path), "{path} was not listed: {paths:?}");
    }
    assert!(
        requests
            .iter()
            .all(|r| r.query.get("limit").map(String::as_str) == Some("2"))
    );
    // Four Deployments in pages of two: the second call resumes with the token the
    // first page returned, and there is no third.
    let deployments: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.path == "/apis/apps/v1/deployments")
        .collect();
    assert_eq!(deployments.len(), 2);
    assert!(!deployments[0].query.contains_key("continue"));
    let token = deployments[1]
        .query
        .get("continue")
        .expect("a continue token");
    assert!(!token.is_empty());
    let pods = requests.iter().filter(|r| r.path == "/api/v1/pods").count();
    assert_eq!(pods, 2, "three Pods in pages of two");
}

#[test]
fn namespace_lists_only_that_namespace() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    let run = audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            "shop",
            "-o",
            "json",
        ],
        Vec::new(),
    );
    run.expect_code(1);
    assert_eq!(
        names(&run.json()),
        [
            "Deployment shop/api",
            "Deployment shop/web",
            "ReplicaSet shop/legacy",
            "CronJob shop/report"
        ]
    );
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path.contains("/namespaces/shop/")),
        "{:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        requests
            .iter()
            .all(|r| r.query.get("limit").map(String::as_str) == Some("500"))
    );
}

#[test]
fn kubeconfig_resolution_follows_kubeconfig_and_context() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    // The current context points at a closed port; --context picks the working one.
    let kubeconfig = api.kubeconfig(dir.path(), "unreachable", TOKEN);
    let kubeconfig = kubeconfig.to_str().unwrap();
    audit_cluster(
        &["--cluster", "--kubeconfig", kubeconfig, "--context", "test"],
        Vec::new(),
    )
    .expect_code(1)
    .stdout_has("Deployment shop/web");
    // KUBECONFIG, as kubectl reads it.
    audit_cluster(
        &["--cluster", "--context", "test"],
        vec![("KUBECONFIG", kubeconfig.to_owned())],
    )
    .expect_code(1)
    .stdout_has("Deployment shop/web");
    // The current context: the server cannot be reached, which is said once, in one line,
    // with what to check; the audit is incomplete.
    let run = audit_cluster(&["--cluster"], vec![("KUBECONFIG", kubeconfig.to_owned())]);
    run.expect_code(2)
        .stderr_has("cannot reach the API server: ")
        .stderr_has("check that it is reachable from here (kubectl cluster-info)");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!run.stdout.contains("cannot reach"), "{}", run.stdout);
    // A context that does not exist.
    audit_cluster(
        &["--cluster", "--kubeconfig", kubeconfig, "--context", "nope"],
        Vec::new(),
    )
    .expect_code(2)
    .stderr_has("check the name with `kubectl config get-contexts`");
    // No configuration at all.
    audit_cluster(
        &["--cluster"],
        vec![
            (
                "KUBECONFIG",
                dir.path().join("missing").display().to_string(),
            ),
            ("HOME", dir.path().display().to_string()),
        ],
    )
    .expect_code(2)
    .stderr_has("set KUBECONFIG or pass --kubeconfig, or run in a pod with a service account");
}

#[test]
fn refused_credentials_and_forbidden_kinds_say_what_to_do() {
    let api = FakeApi::start();
    api.state
        .lock()
        .unwrap()
        .forbidden
        .push("daemonsets".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    let run = audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-o",
            "json",
        ],
        Vec::new(),
    );
    run.expect_code(2)
        .stderr_has("cannot list daemonsets (apps/v1) in all namespaces: forbidden")
        .stderr_has("grant list on daemonsets.apps");
    assert!(
        names(&run.json()).contains(&"Deployment shop/web".to_owned()),
        "the other kinds are still audited"
    );

    let wrong = api.kubeconfig(dir.path(), "test", "wrong-token");
    audit_cluster(
        &["--cluster", "--kubeconfig", wrong.to_str().unwrap()],
        Vec::new(),
    )
    .expect_code(2)
    .stderr_has("the API server refused the credentials");
}

#[test]
fn write_reports_applies_policy_reports_with_one_field_manager() {
    let api = FakeApi::start();
    api.state.lock().unwrap().existing_reports = vec![
        ("shop".to_owned(), "podguard-audit".to_owned()),
        ("gone".to_owned(), "podguard-audit".to_owned()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--write-reports",
        ],
        Vec::new(),
    )
    .expect_code(1)
    .stdout_has("with server-side apply (field manager \"podguard\")");

    let requests = api.requests();
    let patches: Vec<&Recorded> = requests.iter().filter(|r| r.method == "PATCH").collect();
    let paths: Vec<&str> = patches.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/apis/wgpolicyk8s.io/v1alpha2/namespaces/kube-system/policyreports/podguard-audit",
            "/apis/wgpolicyk8s.io/v1alpha2/namespaces/monitoring/policyreports/podguard-audit",
            "/apis/wgpolicyk8s.io/v1alpha2/namespaces/ops/policyreports/podguard-audit",
            "/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports/podguard-audit",
            "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/podguard-audit",
        ]
    );
    for patch in &patches {
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "server-side apply"
        );
        assert_eq!(
            patch.query.get("fieldManager").map(String::as_str),
            Some("podguard")
        );
        assert_eq!(patch.query.get("force").map(String::as_str), Some("true"));
        let body: Value = serde_json::from_slice(&patch.body).unwrap();
        assert_eq!(body["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(
            body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "podguard"
        );
    }
    let shop: Value = serde_json::from_slice(&patches[3].body).unwrap();
    assert_eq!(shop["kind"], "PolicyReport");
    assert!(
        shop["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "run-as-non-root"
                && r["result"] == "fail"
                && r["resources"][0]["uid"] == "2a1c8b63-0b55-4d2f-9e1f-3c8d2b0f7a12")
    );

    // The report of a namespace this run found nothing in is deleted; the others stay.
    let listed = requests
        .iter()
        .find(|r| r.method == "GET" && r.path == "/apis/wgpolicyk8s.io/v1alpha2/policyreports")
        .expect("audit lists its old reports");
    assert_eq!(
        listed.query.get("labelSelector").map(String::as_str),
        Some("app.kubernetes.io/managed-by=podguard,podguard.io/report=audit")
    );
    let deletes: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        deletes,
        ["/apis/wgpolicyk8s.io/v1alpha2/namespaces/gone/policyreports/podguard-audit"]
    );
}

/// A cluster with the OpenReports CRDs gets `openreports.io/v1alpha1` Reports, as Kyverno
/// and Kubewarden write them there.
#[test]
fn write_reports_uses_openreports_when_the_cluster_serves_it() {
    let api = FakeApi::start();
    {
        let mut state = api.state.lock().unwrap();
        state.openreports = true;
        state.existing_reports = vec![("gone".to_owned(), "podguard-audit".to_owned())];
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--write-reports",
        ],
        Vec::new(),
    )
    .expect_code(1)
    .stdout_has("openreports.io/v1alpha1 report objects");

    let requests = api.requests();
    let patches: Vec<&Recorded> = requests.iter().filter(|r| r.method == "PATCH").collect();
    let paths: Vec<&str> = patches.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/apis/openreports.io/v1alpha1/namespaces/kube-system/reports/podguard-audit",
            "/apis/openreports.io/v1alpha1/namespaces/monitoring/reports/podguard-audit",
            "/apis/openreports.io/v1alpha1/namespaces/ops/reports/podguard-audit",
            "/apis/openreports.io/v1alpha1/namespaces/shop/reports/podguard-audit",
            "/apis/openreports.io/v1alpha1/clusterreports/podguard-audit",
        ]
    );
    let shop: Value = serde_json::from_slice(&patches[3].body).unwrap();
    assert_eq!(shop["apiVersion"], "openreports.io/v1alpha1");
    assert_eq!(shop["kind"], "Report");
    assert_eq!(shop["source"], "podguard");
    let cluster: Value = serde_json::from_slice(&patches[4].body).unwrap();
    assert_eq!(cluster["kind"], "ClusterReport");
    let deletes: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        deletes,
        ["/apis/openreports.io/v1alpha1/namespaces/gone/reports/podguard-audit"]
    );
}

#[test]
fn write_reports_in_one_namespace_leaves_the_rest_alone() {
    let api = FakeApi::start();
    api.state.lock().unwrap().existing_reports =
        vec![("gone".to_owned(), "podguard-audit".to_owned())];
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "test", TOKEN);
    audit_cluster(
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            "shop",
            "--write-reports",
            "--field-manager",
            "podguard-cronjob",
        ],
        Vec::new(),
    )
    .expect_code(1);
    let requests = api.requests();
    let patches: Vec<&Recorded> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(
        patches.len(),
        1,
        "only the shop report; no ClusterPolicyReport"
    );
    assert_eq!(
        patches[0].query.get("fieldManager").map(String::as_str),
        Some("podguard-cronjob")
    );
    assert!(requests.iter().all(|r| r.method != "DELETE"));
}
