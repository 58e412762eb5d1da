//! `--write-reports`: the PolicyReports applied back to the cluster with server-side
//! apply, and the ones a run no longer produces deleted.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::{Cluster, ClusterError};
use crate::report::policyreport::{API_VERSION, MANAGED_BY};

impl Cluster {
    /// Applies `reports` with server-side apply under `field_manager`, then deletes the
    /// reports audit wrote before that this run no longer produces (a namespace that lost
    /// its workloads, a report that needs fewer parts). With `--namespace`, only that
    /// namespace's reports are touched and the cluster-wide report is left alone.
    pub fn write_reports(
        &self,
        reports: &[Value],
        field_manager: &str,
    ) -> Result<usize, ClusterError> {
        self.runtime
            .block_on(self.write_reports_async(reports, field_manager))
    }

    async fn write_reports_async(
        &self,
        reports: &[Value],
        field_manager: &str,
    ) -> Result<usize, ClusterError> {
        let only = self.options.namespace.as_deref();
        let params = PatchParams::apply(field_manager).force();
        let mut written: BTreeSet<(String, String)> = BTreeSet::new();
        for report in reports {
            let kind = report["kind"].as_str().unwrap_or_default();
            let name = report["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = report["metadata"]["namespace"].as_str();
            let api = match (kind, namespace) {
                ("ClusterPolicyReport", _) if only.is_some() => continue,
                ("ClusterPolicyReport", _) => {
                    Api::<DynamicObject>::all_with(self.client.clone(), &resource(kind))
                }
                (_, Some(ns)) => {
                    Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &resource(kind))
                }
                (_, None) => continue,
            };
            api.patch(name, &params, &Patch::Apply(report))
                .await
                .map_err(|err| write_error(err, kind, namespace, name))?;
            written.insert((namespace.unwrap_or_default().to_owned(), name.to_owned()));
        }

        // Reports of ours that this run did not write are stale.
        let api = match only {
            Some(ns) => Api::<DynamicObject>::namespaced_with(
                self.client.clone(),
                ns,
                &resource("PolicyReport"),
            ),
            None => Api::<DynamicObject>::all_with(self.client.clone(), &resource("PolicyReport")),
        };
        let selector = format!("{}={},podguard.io/report=audit", MANAGED_BY.0, MANAGED_BY.1);
        let mut stale = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default()
                .labels(&selector)
                .limit(self.options.page_size.max(1));
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let page = api
                .list(&params)
                .await
                .map_err(|err| write_error(err, "PolicyReport", only, "(list)"))?;
            for report in &page.items {
                let namespace = report.metadata.namespace.clone().unwrap_or_default();
                let name = report.metadata.name.clone().unwrap_or_default();
                if !written.contains(&(namespace.clone(), name.clone())) {
                    stale.push((namespace, name));
                }
            }
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        for (namespace, name) in &stale {
            Api::<DynamicObject>::namespaced_with(
                self.client.clone(),
                namespace,
                &resource("PolicyReport"),
            )
            .delete(name, &DeleteParams::default())
            .await
            .map_err(|err| write_error(err, "PolicyReport", Some(namespace), name))?;
        }
        Ok(written.len())
    }
}

fn resource(kind: &str) -> ApiResource {
    let (group, version) = API_VERSION.split_once('/').expect("group/version");
    let plural = if kind == "ClusterPolicyReport" {
        "clusterpolicyreports"
    } else {
        "policyreports"
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn write_error(err: kube::Error, kind: &str, namespace: Option<&str>, name: &str) -> ClusterError {
    let target = match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let advice = match &err {
        kube::Error::Api(status) if status.code == 404 => format!(
            ": the API server has no {API_VERSION} {kind}; install the PolicyReport CRDs (Policy Reporter's Helm chart, or kubernetes-sigs/wg-policy-prototypes)"
        ),
        kube::Error::Api(status) if status.code == 403 => ": forbidden; grant get, list, patch and delete on policyreports and clusterpolicyreports (wgpolicyk8s.io) to this user or service account (deploy/audit has the ClusterRole)".to_owned(),
        _ => String::new(),
    };
    ClusterError::Write {
        target,
        advice,
        source: Box::new(err),
    }
}
