//! Prometheus metrics, kept and encoded by the `prometheus-client` crate (OpenMetrics text).
//!
//! Labels are what operators slice admission by, as Kubewarden's policy-server labels its
//! own: policy, endpoint, operation, resource kind, verdict, mutation; and a counter per
//! check that found violations. Every label value comes from a closed set (the configured
//! policies, the workload kinds, the operations, the checks the module names): a client
//! that sends made-up kinds or operations gets `other`, never a new series. The namespace
//! is left out for that reason: any request can name any namespace.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use podguard_policy::{CheckId, Disposition, WorkloadKind};

/// The content type of [`Metrics::render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: admission answers are expected well under a millisecond,
/// and the API server gives up at its webhook timeout (10 s at most).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// What one admission request was, as its metrics are labelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// Policy name.
    pub(crate) policy: String,
    /// `validate` or `mutate`.
    pub(crate) endpoint: &'static str,
    /// CREATE, UPDATE, DELETE, CONNECT, or `other`.
    pub(crate) operation: &'static str,
    /// The workload kind (Pod, Deployment, ...), or `other`.
    pub(crate) kind: &'static str,
    /// `allowed`, `denied` or `error` (answered by the failure mode).
    pub(crate) verdict: &'static str,
    /// Whether a patch was returned.
    pub(crate) mutated: bool,
}

impl RequestLabels {
    /// `operation` and `kind` as the request named them, kept to their closed sets.
    pub(crate) fn operation_label(operation: &str) -> &'static str {
        ["CREATE", "UPDATE", "DELETE", "CONNECT"]
            .into_iter()
            .find(|known| *known == operation)
            .unwrap_or("other")
    }

    /// The request's resource kind, among the kinds podguard judges, else `other`.
    pub(crate) fn kind_label(kind: &str) -> &'static str {
        WorkloadKind::ALL
            .into_iter()
            .map(WorkloadKind::as_str)
            .find(|known| *known == kind)
            .unwrap_or("other")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    policy: String,
    check: &'static str,
    disposition: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// What the server knows only at render time: its connections and buffers, and the
/// totals other parts keep.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// Connections open now.
    pub(crate) open_connections: usize,
    /// Body bytes buffered now.
    pub(crate) buffered_body_bytes: usize,
    /// Connections closed for idleness so far.
    pub(crate) closed_idle: u64,
    /// Connections dropped for unread responses so far.
    pub(crate) closed_stalled: u64,
    /// Each policy's instances discarded so far.
    pub(crate) restarts: Vec<(String, u64)>,
}

/// Everything `/metrics` shows.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    evaluation_duration: Family<PolicyLabels, Histogram, fn() -> Histogram>,
    check_violations: Family<CheckLabels, Counter>,
    rejected_requests: Family<StatusLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    /// Requests being handled now.
    pub(crate) in_flight: Gauge,
    /// Evaluations running now, whether or not their client is still there.
    pub(crate) evaluations_running: Gauge,
    open_connections: Gauge,
    buffered_body_bytes: Gauge,
    closed_idle: Counter,
    closed_stalled: Counter,
    instance_restarts: Family<PolicyLabels, Counter>,
    /// Renders one at a time: each brings the totals kept elsewhere up to date first.
    rendering: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            evaluation_duration: Family::new_with_constructor(latency_histogram),
            check_violations: Family::default(),
            rejected_requests: Family::default(),
            tls_reloads: Family::default(),
            in_flight: Gauge::default(),
            evaluations_running: Gauge::default(),
            open_connections: Gauge::default(),
            buffered_body_bytes: Gauge::default(),
            closed_idle: Counter::default(),
            closed_stalled: Counter::default(),
            instance_restarts: Family::default(),
            rendering: Mutex::new(()),
        };
        // Counters get `_total` from the encoder.
        let registry = &mut metrics.registry;
        registry.register(
            "podguard_admission_requests",
            "Admission requests answered, by policy, endpoint, operation, kind, verdict and mutation",
            metrics.requests.clone(),
        );
        registry.register(
            "podguard_admission_duration_seconds",
            "Time from request arrival to answer, by policy, endpoint, operation, kind, verdict and mutation",
            metrics.request_duration.clone(),
        );
        registry.register(
            "podguard_evaluation_duration_seconds",
            "Time spent evaluating in the Wasm module, by policy",
            metrics.evaluation_duration.clone(),
        );
        registry.register(
            "podguard_check_violations",
            "Admission requests in which a check found violations, by policy, check and what the answer did with them (rejected, warned, fixed, tolerated)",
            metrics.check_violations.clone(),
        );
        registry.register(
            "podguard_http_rejected_requests",
            "Requests refused before evaluation, by HTTP status",
            metrics.rejected_requests.clone(),
        );
        registry.register(
            "podguard_in_flight_requests",
            "Requests being handled",
            metrics.in_flight.clone(),
        );
        registry.register(
            "podguard_evaluations_running",
            "Evaluations running now, including those whose client has gone",
            metrics.evaluations_running.clone(),
        );
        registry.register(
            "podguard_open_connections",
            "Client connections open now",
            metrics.open_connections.clone(),
        );
        registry.register(
            "podguard_buffered_body_bytes",
            "Bytes of request bodies held now (bounded by --max-buffered-bytes)",
            metrics.buffered_body_bytes.clone(),
        );
        registry.register(
            "podguard_idle_connections_closed",
            "Connections closed after sitting idle",
            metrics.closed_idle.clone(),
        );
        registry.register(
            "podguard_stalled_connections_dropped",
            "Connections dropped because their client did not read a response within --write-timeout",
            metrics.closed_stalled.clone(),
        );
        registry.register(
            "podguard_wasm_instance_restarts",
            "Policy instances discarded after a trap, timeout or memory cap",
            metrics.instance_restarts.clone(),
        );
        registry.register(
            "podguard_tls_reloads",
            "Certificate reloads, by result",
            metrics.tls_reloads.clone(),
        );
        for result in ["success", "failure"] {
            // Present at zero, so alerts on their rate have a series from the start.
            let _ = metrics.tls_reloads.get_or_create(&ResultLabels { result });
        }
        metrics
    }
}

impl Metrics {
    /// Counts one answered admission request, how long it took, and the checks that
    /// found violations in it (the module's `violations` audit annotation).
    pub(crate) fn count_request(
        &self,
        labels: RequestLabels,
        elapsed: Duration,
        violated: Option<&str>,
    ) {
        for (check, disposition) in violated.into_iter().flat_map(parse_violations) {
            self.check_violations
                .get_or_create(&CheckLabels {
                    policy: labels.policy.clone(),
                    check: check.as_str(),
                    disposition: disposition.as_str(),
                })
                .inc();
        }
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Records the time one evaluation spent in the module.
    pub(crate) fn observe_evaluation(&self, policy: &str, elapsed: Duration) {
        self.evaluation_duration
            .get_or_create(&PolicyLabels {
                policy: policy.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request refused before evaluation, by HTTP status.
    pub(crate) fn count_rejected(&self, status: u16) {
        self.rejected_requests
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// Counts a certificate reload.
    pub(crate) fn count_tls_reload(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.tls_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn render(&self, live: &Live) -> String {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        self.open_connections.set(live.open_connections as i64);
        self.buffered_body_bytes
            .set(live.buffered_body_bytes as i64);
        catch_up(&self.closed_idle, live.closed_idle);
        catch_up(&self.closed_stalled, live.closed_stalled);
        for (policy, restarts) in &live.restarts {
            let counter = self.instance_restarts.get_or_create(&PolicyLabels {
                policy: policy.clone(),
            });
            catch_up(&counter, *restarts);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Brings a counter up to a total kept elsewhere (it only ever grows).
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// Reads the `violations` audit annotation (`check=disposition,...`); what is not a
/// check and disposition podguard knows is left out, so a module cannot make series up.
fn parse_violations(value: &str) -> impl Iterator<Item = (CheckId, Disposition)> + '_ {
    value.split(',').filter_map(|entry| {
        let (check, disposition) = entry.split_once('=')?;
        Some((CheckId::parse(check)?, Disposition::parse(disposition)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_checks_and_dispositions_become_series() {
        let parsed: Vec<_> = parse_violations(
            "drop-capabilities=rejected,made-up=rejected,resource-limits=exploded,no-privileged=warned",
        )
        .map(|(check, disposition)| (check.as_str(), disposition.as_str()))
        .collect();
        assert_eq!(
            parsed,
            [
                ("drop-capabilities", "rejected"),
                ("no-privileged", "warned")
            ]
        );
        assert_eq!(RequestLabels::kind_label("Deployment"), "Deployment");
        assert_eq!(RequestLabels::kind_label("Secret"), "other");
        assert_eq!(RequestLabels::operation_label("CREATE"), "CREATE");
        assert_eq!(RequestLabels::operation_label("create"), "other");
    }
}
