//! `--cluster`: the workloads of a live cluster, listed page by page through the `kube`
//! crate, and `--write-reports`, which applies the PolicyReports back (server-side apply).
//!
//! Kubeconfig resolution is kube's, as kubectl's: `--kubeconfig`, else `KUBECONFIG`, else
//! `~/.kube/config`, else the pod's service account (in-cluster); `--context` picks a
//! context. List calls ask for `--page-size` objects at a time and follow
//! `metadata.continue`, so memory stays flat however many workloads the cluster runs.

use std::sync::Arc;

use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ClusterOptions;
use super::model::{InputError, InputName, Origin, UnitBody};
mod write;

/// Why the cluster could not be reached or written. Listing errors are not here: a kind
/// that cannot be listed is reported with the rest and the others are still listed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The client's runtime could not start.
    #[error("cannot start the Kubernetes client's runtime")]
    Runtime(#[source] std::io::Error),
    /// `--kubeconfig` names a file that cannot be read as a kubeconfig.
    #[error("cannot read the kubeconfig {}; pass a readable kubeconfig to --kubeconfig", path.display())]
    Kubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// What kube said.
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    /// The context cannot be loaded.
    #[error("{hint}")]
    Context {
        /// What to check.
        hint: String,
        /// What kube said.
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    /// Neither a kubeconfig nor a service account was found.
    #[error(
        "no Kubernetes configuration found: set KUBECONFIG or pass --kubeconfig, or run in a pod with a service account"
    )]
    NoConfig(#[source] Box<kube::config::InferConfigError>),
    /// The client could not be built from the configuration.
    #[error(
        "cannot build the Kubernetes client from the kubeconfig; check its certificate and credentials"
    )]
    Client(#[source] Box<kube::Error>),
    /// A PolicyReport could not be written or deleted.
    #[error("cannot write {target}{advice}")]
    Write {
        /// The object.
        target: String,
        /// What to do, for the causes that have a known fix.
        advice: String,
        /// What the API server said (boxed: it is large, and errors travel by value).
        #[source]
        source: Box<kube::Error>,
    },
}

/// A connected client, and the runtime its calls run on.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    server: Arc<InputName>,
    options: ClusterOptions,
}

/// A kind audit lists: every kind with a pod template, and Pods.
struct Listed {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
}

/// Controllers first; Pods last (most of them are skipped as owned by a controller).
const LISTED: [Listed; 8] = [
    listed("apps", "v1", "deployments", "Deployment"),
    listed("apps", "v1", "statefulsets", "StatefulSet"),
    listed("apps", "v1", "daemonsets", "DaemonSet"),
    listed("apps", "v1", "replicasets", "ReplicaSet"),
    listed("", "v1", "replicationcontrollers", "ReplicationController"),
    listed("batch", "v1", "cronjobs", "CronJob"),
    listed("batch", "v1", "jobs", "Job"),
    listed("", "v1", "pods", "Pod"),
];

const fn listed(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
) -> Listed {
    Listed {
        group,
        version,
        plural,
        kind,
    }
}

impl Listed {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

/// One page of a list response.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<Value>,
}

#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

impl Cluster {
    /// Resolves the kubeconfig (or the in-cluster service account) and builds a client.
    /// Nothing is sent until listing starts.
    pub fn connect(options: ClusterOptions) -> Result<Cluster, ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClusterError::Runtime)?;
        let config = runtime.block_on(config(&options))?;
        let server = Arc::new(InputName::Cluster(config.cluster_url.to_string()));
        let client = {
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|err| ClusterError::Client(Box::new(err)))?
        };
        Ok(Cluster {
            runtime,
            client,
            server,
            options,
        })
    }

    /// The API server, as reports name it.
    pub fn server(&self) -> Arc<InputName> {
        Arc::clone(&self.server)
    }

    /// Lists every workload kind, page by page, and sends each object as a unit. An error
    /// on one kind (forbidden, not served) is reported as an input error and the other
    /// kinds are still listed; one that every kind would meet (the server unreachable,
    /// the credentials refused) is reported once and ends the listing.
    pub fn read(&self, send: &mut dyn FnMut(UnitBody) -> bool) {
        let namespace = self.options.namespace.as_deref();
        for listed in &LISTED {
            let result = self
                .runtime
                .block_on(self.read_kind(listed, namespace, send));
            match result {
                Ok(true) => {}
                Ok(false) => return,
                Err(ListError {
                    message,
                    for_every_kind,
                }) => {
                    let error = InputError {
                        input: self.server.to_string(),
                        line: None,
                        message,
                    };
                    if !send(UnitBody::Error(error)) || for_every_kind {
                        return;
                    }
                }
            }
        }
    }

    async fn read_kind(
        &self,
        listed: &Listed,
        namespace: Option<&str>,
        send: &mut dyn FnMut(UnitBody) -> bool,
    ) -> Result<bool, ListError> {
        let api_version = listed.api_version();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(self.options.page_size.max(1));
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let request = kube::core::Request::new(listed.path(namespace))
                .list(&params)
                .map_err(|e| ListError {
                    message: format!("cannot build the list request: {e}"),
                    for_every_kind: true,
                })?;
            let page: Page = self
                .client
                .request(request)
                .await
                .map_err(|err| list_error(&err, listed, namespace, token.is_some()))?;
            for item in page.items {
                let value = prepare(item, &api_version, listed.kind);
                let origin = Origin {
                    input: Arc::clone(&self.server),
                    document: 0,
                    item: None,
                    line: 0,
                    helm_source: None,
                };
                if !send(UnitBody::Object { origin, value }) {
                    return Ok(false);
                }
            }
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(true),
            }
        }
    }
}

async fn config(options: &ClusterOptions) -> Result<kube::Config, ClusterError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|source| ClusterError::Context {
                    hint: context_hint(options),
                    source: Box::new(source),
                })?
        }
        (None, Some(_)) => {
            kube::Config::from_kubeconfig(&kube_options)
                .await
                .map_err(|source| ClusterError::Context {
                    hint: context_hint(options),
                    source: Box::new(source),
                })?
        }
        (None, None) => kube::Config::infer()
            .await
            .map_err(|err| ClusterError::NoConfig(Box::new(err)))?,
    };
    // A list page of workloads can take the API server a while on a large cluster, but
    // never minutes.
    config.read_timeout = Some(std::time::Duration::from_secs(120));
    Ok(config)
}

fn context_hint(options: &ClusterOptions) -> String {
    match &options.context {
        Some(context) => format!(
            "cannot load context {context:?} of the kubeconfig; check the name with `kubectl config get-contexts`"
        ),
        None => "cannot load the kubeconfig's current context; pick one with --context".to_owned(),
    }
}

/// List items carry no `apiVersion`/`kind` (the list does); `status` and
/// `metadata.managedFields` are the server's bookkeeping, which no check reads.
fn prepare(item: Value, api_version: &str, kind: &str) -> Value {
    let Value::Object(fields) = item else {
        return item;
    };
    let mut object = Map::with_capacity(fields.len() + 2);
    object.insert(
        "apiVersion".to_owned(),
        Value::String(api_version.to_owned()),
    );
    object.insert("kind".to_owned(), Value::String(kind.to_owned()));
    for (key, mut value) in fields {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => continue,
            "metadata" => {
                if let Some(metadata) = value.as_object_mut() {
                    metadata.remove("managedFields");
                }
            }
            _ => {}
        }
        object.insert(key, value);
    }
    Value::Object(object)
}

/// Why a kind could not be listed, and whether the other kinds would fail the same way.
struct ListError {
    message: String,
    for_every_kind: bool,
}

fn list_error(
    err: &kube::Error,
    listed: &Listed,
    namespace: Option<&str>,
    paging: bool,
) -> ListError {
    let for_every_kind = !matches!(err, kube::Error::Api(status) if status.code != 401);
    let message = if for_every_kind && !matches!(err, kube::Error::Api(_)) {
        format!(
            "cannot reach the API server: {}; check that it is reachable from here (kubectl cluster-info), or pick another --context",
            error_chain(err)
        )
    } else {
        list_error_message(err, listed, namespace, paging)
    };
    ListError {
        message,
        for_every_kind,
    }
}

fn list_error_message(
    err: &kube::Error,
    listed: &Listed,
    namespace: Option<&str>,
    paging: bool,
) -> String {
    let scope = match namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in all namespaces".to_owned(),
    };
    let what = format!("{} ({})", listed.plural, listed.api_version());
    match err {
        kube::Error::Api(status) if status.code == 403 => format!(
            "cannot list {what} {scope}: forbidden ({}); grant list on {} to this user or service account (deploy/audit has the ClusterRole)",
            status.message,
            if listed.group.is_empty() {
                listed.plural.to_owned()
            } else {
                format!("{}.{}", listed.plural, listed.group)
            }
        ),
        kube::Error::Api(status) if status.code == 410 && paging => format!(
            "listing {what} {scope} took longer than the API server keeps a list snapshot ({}); run again, or raise --page-size",
            status.message
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "cannot list {what} {scope}: the API server refused the credentials ({}); refresh them (e.g. log in again) or pick another --context",
            status.message
        ),
        kube::Error::Api(status) => format!(
            "cannot list {what} {scope}: {} (HTTP {}); check that the API server serves {}",
            status.message,
            status.code,
            listed.api_version()
        ),
        other => format!(
            "cannot list {what} {scope}: {}; check that the API server is reachable from here",
            error_chain(other)
        ),
    }
}

pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_items_get_their_type_and_lose_server_bookkeeping() {
        let item = json!({"metadata": {"name": "a", "managedFields": [{}]}, "spec": {}, "status": {"replicas": 1}});
        assert_eq!(
            prepare(item, "apps/v1", "Deployment"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {}})
        );
    }

    #[test]
    fn list_paths() {
        assert_eq!(LISTED[0].path(None), "/apis/apps/v1/deployments");
        assert_eq!(LISTED[7].path(Some("shop")), "/api/v1/namespaces/shop/pods");
    }
}
