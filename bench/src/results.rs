//! What the binaries print (one JSON object each) and `report` reads back.

use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// One load-generator run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadResult {
    /// A free-form label for the server (`podguard`, `floor`).
    pub server: String,
    /// The request sent (`small-pod`, `deployment`, `pod-30`, or a file name).
    pub request: String,
    /// Size of the request body.
    pub request_bytes: usize,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// TCP connections they were spread over.
    pub connections: usize,
    /// Client runtime threads.
    pub client_threads: usize,
    /// Length of the measured window (after warm-up), in seconds.
    pub seconds: f64,
    /// Answered with 200 inside the measured window.
    pub requests: u64,
    /// Failed inside the measured window: transport errors, timeouts, non-200 statuses,
    /// or bodies that were not an AdmissionReview response.
    pub errors: u64,
    /// Non-200 statuses seen, by status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// First few error messages, for diagnosis.
    pub error_samples: Vec<String>,
    /// `requests / seconds`.
    pub requests_per_second: f64,
    /// Latencies of successful requests.
    pub latency: Latency,
    /// Size of the last response body.
    pub response_bytes: usize,
    /// The server's peak RSS during the run (`VmHWM` after resetting it), in KiB, when
    /// `--server-pid` was given.
    pub server_peak_rss_kib: Option<u64>,
}

/// Start-up measurements of one configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartupResult {
    /// A label (`cold`, `warm`).
    pub label: String,
    /// Milliseconds from spawning the process to the first `/readyz` 200, per run.
    pub ready_ms: Vec<f64>,
    /// Their median.
    pub median_ms: f64,
    /// The server's peak RSS by the time it was ready, per run, in KiB.
    pub peak_rss_kib: Vec<u64>,
}
