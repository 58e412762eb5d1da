//! `--write-reports`: the policy reports applied back to the cluster with server-side
//! apply, in the API whose CRDs the cluster serves, and the ones a run no longer produces
//! deleted.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::{Cluster, ClusterError};
use crate::report::policyreport::{MANAGED_BY, ReportApi};

impl Cluster {
    /// The report API to write: OpenReports when the cluster serves it (Kyverno with
    /// `openreports.enabled`, newer Kubewarden), else `wgpolicyk8s.io`.
    pub fn report_api(&self) -> ReportApi {
        let api = ReportApi::OpenReports;
        let served = self
            .runtime
            .block_on(self.client.list_api_group_resources(api.api_version()));
        match served {
            Ok(list) if list.resources.iter().any(|r| r.name == api.plural(false)) => api,
            _ => ReportApi::Wgpolicy,
        }
    }

    /// Applies `reports` with server-side apply under `field_manager`, then deletes the
    /// reports audit wrote before that this run no longer produces (a namespace that lost
    /// its workloads, a report that needs fewer parts). With `--namespace`, only that
    /// namespace's reports are touched and the cluster-wide report is left alone.
    pub fn write_reports(
        &self,
        reports: &[Value],
        api: ReportApi,
        field_manager: &str,
    ) -> Result<usize, ClusterError> {
        self.runtime
            .block_on(self.write_reports_async(reports, api, field_manager))
    }

    async fn write_reports_async(
        &self,
        reports: &[Value],
        api_kind: ReportApi,
        field_manager: &str,
    ) -> Result<usize, ClusterError> {
        let cluster_kind = api_kind.kind(true);
        let namespaced_kind = api_kind.kind(false);
        let only = self.options.namespace.as_deref();
        let params = PatchParams::apply(field_manager).force();
        let mut written: BTreeSet<(String, String)> = BTreeSet::new();
        for report in reports {
            let kind = report["kind"].as_str().unwrap_or_default();
            let name = report["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = report["metadata"]["namespace"].as_str();
            let cluster_wide = kind == cluster_kind;
            let resource = resource(api_kind, cluster_wide);
            let api = match (cluster_wide, namespace) {
                (true, _) if only.is_some() => continue,
                (true, _) => Api::<DynamicObject>::all_with(self.client.clone(), &resource),
                (false, Some(ns)) => {
                    Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &resource)
                }
                (false, None) => continue,
            };
            api.patch(name, &params, &Patch::Apply(report))
                .await
                .map_err(|err| write_error(err, api_kind, kind, namespace, name))?;
            written.insert((namespace.unwrap_or_default().to_owned(), name.to_owned()));
        }

        // Reports of ours that this run did not write are stale.
        let namespaced = resource(api_kind, false);
        let api = match only {
            Some(ns) => Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &namespaced),
            None => Api::<DynamicObject>::all_with(self.client.clone(), &namespaced),
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
                .map_err(|err| write_error(err, api_kind, namespaced_kind, only, "(list)"))?;
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
            Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &namespaced)
                .delete(name, &DeleteParams::default())
                .await
                .map_err(|err| {
                    write_error(err, api_kind, namespaced_kind, Some(namespace), name)
                })?;
        }
        Ok(written.len())
    }
}

fn resource(api: ReportApi, cluster_wide: bool) -> ApiResource {
    let (group, version) = api.api_version().split_once('/').expect("group/version");
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, api.kind(cluster_wide)),
        api.plural(cluster_wide),
    )
}

fn write_error(
    err: kube::Error,
    api: ReportApi,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> ClusterError {
    let target = match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let advice = match &err {
        kube::Error::Api(status) if status.code == 404 => format!(
            ": the API server has no {} {kind}; install {}",
            api.api_version(),
            api.crd_source()
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            ": forbidden; grant get, list, patch and delete on {} and {} ({}) to this user or service account (deploy/audit has the ClusterRole)",
            api.plural(false),
            api.plural(true),
            api.api_version()
                .split_once('/')
                .map_or("", |(group, _)| group)
        ),
        _ => String::new(),
    };
    ClusterError::Write {
        target,
        advice,
        source: Box::new(err),
    }
}
