//! What one waPC call costs whatever the policy does: a request for a kind podguard does
//! not judge, answered at once, through the Wasm module (and natively for comparison).
//! Run under callgrind to count instructions per call:
//!
//! ```sh
//! cargo build --release -p podguard-bench --example call_cost
//! valgrind --tool=callgrind target/release/examples/call_cost wasm 0
//! valgrind --tool=callgrind target/release/examples/call_cost wasm 1000
//! ```

use podguard_host::{HostConfig, Runtime};

const PAYLOAD: &[u8] = br#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"ConfigMap"},"operation":"CREATE","object":{}},"settings":{}}"#;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let build = args.next().unwrap_or_else(|| "wasm".to_owned());
    let iterations: u32 = args.next().map_or(Ok(1000), |n| n.parse())?;
    match build.as_str() {
        "native" => {
            for _ in 0..=iterations {
                std::hint::black_box(podguard_policy::validate_payload(PAYLOAD));
            }
        }
        _ => {
            let path = podguard_conformance::policy_module();
            let runtime = Runtime::new(HostConfig::default())?;
            let module = runtime.load("podguard", &std::fs::read(path)?)?;
            if std::env::var_os("PODGUARD_PERF_MAP").is_some() {
                eprintln!("wrote {}", module.write_perf_map()?.display());
            }
            for _ in 0..=iterations {
                std::hint::black_box(module.call("validate", PAYLOAD)?);
            }
        }
    }
    Ok(())
}
