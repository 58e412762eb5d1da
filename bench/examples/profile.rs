//! Runs one benchmark request many times, natively or through the Wasm module, for a
//! profiler: instruction counts under callgrind do not depend on how busy the machine is,
//! which makes them the way to compare two builds on a shared machine.
//!
//! ```sh
//! cargo build --release -p podguard-bench --example profile
//! valgrind --tool=callgrind target/release/examples/profile native deployment 200
//! valgrind --tool=callgrind target/release/examples/profile wasm deployment 200
//! ```

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use podguard_bench::requests::Workload;
use podguard_host::{HostConfig, Runtime};

#[derive(Clone, Copy, ValueEnum)]
enum Build {
    /// `podguard_policy::validate_payload`, the rlib.
    Native,
    /// The release module in podguard's host, `validate` on a reused instance.
    Wasm,
}

#[derive(Parser)]
struct Args {
    build: Build,
    workload: Workload,
    /// Calls after one warm-up call.
    #[arg(default_value_t = 200)]
    iterations: u32,
    /// The module; default: the release build under target/.
    #[arg(long, env = "PODGUARD_BENCH_MODULE")]
    module: Option<PathBuf>,
    /// Write `/tmp/perf-<pid>.map` so `perf report` names the guest's functions.
    #[arg(long)]
    perf_map: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let payload = args.workload.validate_payload("{}");
    match args.build {
        Build::Native => {
            for _ in 0..=args.iterations {
                std::hint::black_box(podguard_policy::validate_payload(&payload));
            }
        }
        Build::Wasm => {
            let path = args
                .module
                .unwrap_or_else(|| podguard_conformance::policy_module().to_owned());
            let runtime = Runtime::new(HostConfig::default())?;
            let module = runtime.load("podguard", &std::fs::read(&path)?)?;
            if args.perf_map {
                eprintln!("wrote {}", module.write_perf_map()?.display());
            }
            for _ in 0..=args.iterations {
                std::hint::black_box(module.call("validate", &payload)?);
            }
        }
    }
    Ok(())
}
