//! Prometheus metrics in the text exposition format, kept with atomics and one small map.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds: admission answers are expected well under a millisecond,
/// and the API server gives up at its webhook timeout (10 s at most).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A histogram with fixed buckets.
#[derive(Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            elapsed.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Labels of one admission request count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RequestLabels {
    /// Policy name.
    pub(crate) policy: String,
    /// `validate` or `mutate`.
    pub(crate) endpoint: &'static str,
    /// `allowed`, `denied` or `error` (answered by the failure mode).
    pub(crate) verdict: &'static str,
    /// Whether a patch was returned.
    pub(crate) mutated: bool,
}

/// What the server knows only at render time: its connections and buffers.
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
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<RequestLabels, u64>>,
    rejected_requests: Mutex<BTreeMap<u16, u64>>,
    /// Time from the request's arrival to its answer.
    pub(crate) request_duration: Histogram,
    /// Time spent in the Wasm module.
    pub(crate) evaluation_duration: Histogram,
    /// Requests being handled now.
    pub(crate) in_flight: AtomicI64,
    /// Evaluations running now, whether or not their client is still there.
    pub(crate) evaluations_running: AtomicI64,
    /// Certificate reloads that swapped in a new certificate.
    pub(crate) tls_reloads: AtomicU64,
    /// Certificate reloads that failed (the old certificate kept serving).
    pub(crate) tls_reload_failures: AtomicU64,
}

impl Metrics {
    /// Counts one answered admission request.
    pub(crate) fn count_request(&self, labels: RequestLabels) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels)
            .or_default() += 1;
    }

    /// Counts a request refused before evaluation, by HTTP status.
    pub(crate) fn count_rejected(&self, status: u16) {
        *self
            .rejected_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    /// The text exposition; `restarts` lists each policy's discarded instances.
    pub(crate) fn render(&self, restarts: &[(String, u64)], live: &Live) -> String {
        let mut out = String::new();
        out.push_str("# HELP podguard_admission_requests_total Admission requests answered, by policy, endpoint, verdict and mutation.\n");
        out.push_str("# TYPE podguard_admission_requests_total counter\n");
        for (labels, count) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "podguard_admission_requests_total{{policy=\"{}\",endpoint=\"{}\",verdict=\"{}\",mutated=\"{}\"}} {count}",
                labels.policy, labels.endpoint, labels.verdict, labels.mutated
            );
        }
        out.push_str("# HELP podguard_http_rejected_requests_total Requests refused before evaluation, by HTTP status.\n");
        out.push_str("# TYPE podguard_http_rejected_requests_total counter\n");
        for (status, count) in self
            .rejected_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "podguard_http_rejected_requests_total{{status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP podguard_admission_duration_seconds Time from request arrival to answer.\n",
        );
        out.push_str("# TYPE podguard_admission_duration_seconds histogram\n");
        self.request_duration
            .render(&mut out, "podguard_admission_duration_seconds", "");
        out.push_str("# HELP podguard_evaluation_duration_seconds Time spent evaluating in the Wasm module.\n");
        out.push_str("# TYPE podguard_evaluation_duration_seconds histogram\n");
        self.evaluation_duration
            .render(&mut out, "podguard_evaluation_duration_seconds", "");
        out.push_str("# HELP podguard_in_flight_requests Requests being handled.\n");
        out.push_str("# TYPE podguard_in_flight_requests gauge\n");
        let _ = writeln!(
            out,
            "podguard_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP podguard_evaluations_running Evaluations running now, including those whose client has gone.\n");
        out.push_str("# TYPE podguard_evaluations_running gauge\n");
        let _ = writeln!(
            out,
            "podguard_evaluations_running {}",
            self.evaluations_running.load(Ordering::Relaxed)
        );
        let gauges = [
            (
                "podguard_open_connections",
                "Client connections open now.",
                "gauge",
                live.open_connections as u64,
            ),
            (
                "podguard_buffered_body_bytes",
                "Bytes of request bodies held now (bounded by --max-buffered-bytes).",
                "gauge",
                live.buffered_body_bytes as u64,
            ),
            (
                "podguard_idle_connections_closed_total",
                "Connections closed after sitting idle.",
                "counter",
                live.closed_idle,
            ),
            (
                "podguard_stalled_connections_dropped_total",
                "Connections dropped because their client did not read a response within --write-timeout.",
                "counter",
                live.closed_stalled,
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out.push_str("# HELP podguard_wasm_instance_restarts_total Policy instances discarded after a trap, timeout or memory cap.\n");
        out.push_str("# TYPE podguard_wasm_instance_restarts_total counter\n");
        for (policy, count) in restarts {
            let _ = writeln!(
                out,
                "podguard_wasm_instance_restarts_total{{policy=\"{policy}\"}} {count}"
            );
        }
        out.push_str("# HELP podguard_tls_reloads_total Certificate reloads, by result.\n");
        out.push_str("# TYPE podguard_tls_reloads_total counter\n");
        let _ = writeln!(
            out,
            "podguard_tls_reloads_total{{result=\"success\"}} {}",
            self.tls_reloads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "podguard_tls_reloads_total{{result=\"failure\"}} {}",
            self.tls_reload_failures.load(Ordering::Relaxed)
        );
        out
    }
}
