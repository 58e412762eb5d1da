//! Policy evaluation, native against Wasm, for each benchmark request:
//!
//! - `native`: `podguard_policy::validate_payload` (the rlib, the speed floor);
//! - `wasm`: the release `wasm32-wasip1` module in podguard's host,
//!   `PolicyModule::call("validate", payload)` with the same payload bytes (a pooled,
//!   reused instance, as the server runs it);
//! - `review`: the whole AdmissionReview layer the server runs per request
//!   (`admission::review`: envelope checks, the Wasm call, the response document).
//!
//! `cargo bench -p podguard-bench --bench evaluation` measures; add `-- --quick` or set
//! `PODGUARD_BENCH_QUICK=1` for a short run (CI), or run `cargo test -p podguard-bench
//! --benches` to execute every benchmark once. The module is built on demand (as the
//! conformance tests do), or taken from `PODGUARD_BENCH_MODULE`. At the end the Wasm /
//! native ratio of each request is printed from criterion's estimates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use podguard_bench::requests::Workload;
use podguard_host::admission::{self, Endpoint, FailureMode};
use podguard_host::{HostConfig, PolicyModule, Runtime};
use serde_json::Value;

const SETTINGS: &str = "{}";

fn quick() -> bool {
    std::env::var_os("PODGUARD_BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
}

fn config() -> Criterion {
    let criterion = Criterion::default().noise_threshold(0.03);
    if quick() {
        criterion
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10)
    } else {
        criterion
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5))
            .sample_size(50)
    }
}

fn load_module() -> PolicyModule {
    let path = std::env::var_os("PODGUARD_BENCH_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| podguard_conformance::policy_module().to_owned());
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read the policy module {}: {e}", path.display()));
    let runtime = Runtime::new(HostConfig::default()).expect("the Wasm engine starts");
    let module = runtime
        .load("podguard", &bytes)
        .expect("the policy module loads");
    module
        .validate_settings(SETTINGS.as_bytes())
        .expect("the module accepts its default settings");
    module
}

/// The native and the Wasm answers must be the same document before their speed is compared.
fn check_same_answer(module: &PolicyModule, workload: Workload, payload: &[u8]) {
    let native = serde_json::to_value(podguard_policy::validate_payload(payload))
        .expect("a response serialises");
    let wasm: Value = serde_json::from_slice(
        &module
            .call("validate", payload)
            .expect("the module answers validate"),
    )
    .expect("the module answers JSON");
    assert_eq!(
        native,
        wasm,
        "{}: native and Wasm answers differ",
        workload.name()
    );
    assert_eq!(
        native["accepted"],
        true,
        "{}: the benchmark requests are meant to be allowed",
        workload.name()
    );
}

fn evaluation(c: &mut Criterion, module: &PolicyModule) {
    let mut group = c.benchmark_group("evaluation");
    for workload in Workload::ALL {
        let payload = workload.validate_payload(SETTINGS);
        let body = workload.body();
        check_same_answer(module, workload, &payload);
        group.bench_with_input(
            BenchmarkId::new("native", workload.name()),
            &payload,
            |b, payload| b.iter(|| podguard_policy::validate_payload(payload)),
        );
        group.bench_with_input(
            BenchmarkId::new("wasm", workload.name()),
            &payload,
            |b, payload| {
                b.iter(|| {
                    module
                        .call("validate", payload)
                        .expect("the module answers")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("review", workload.name()),
            &body,
            |b, body| {
                b.iter(|| {
                    admission::review(
                        module,
                        SETTINGS,
                        body,
                        Endpoint::Validate,
                        FailureMode::Deny,
                    )
                    .expect("a well-formed review")
                })
            },
        );
    }
    group.finish();
}

fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("criterion")
}

fn median_ns(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path.join("new/estimates.json")).ok()?;
    let estimates: Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn print_ratios() {
    let home = criterion_home().join("evaluation");
    for workload in Workload::ALL {
        let native = median_ns(&home.join("native").join(workload.name()));
        let wasm = median_ns(&home.join("wasm").join(workload.name()));
        if let (Some(native), Some(wasm)) = (native, wasm) {
            println!(
                "{:<11} native {:>9.1} us   wasm {:>9.1} us   wasm/native {:.2}x",
                workload.name(),
                native / 1000.0,
                wasm / 1000.0,
                wasm / native
            );
        }
    }
}

fn main() {
    let mut criterion = config().configure_from_args();
    let module = load_module();
    evaluation(&mut criterion, &module);
    criterion.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs every routine once and
    // writes no estimates.
    if std::env::args().any(|a| a == "--bench") {
        print_ratios();
    }
}
