//! `report`: rewrites the generated part of BENCHMARKS.md (between
//! `<!-- bench:begin -->` and `<!-- bench:end -->`, appended when absent) from one run's
//! results: criterion's estimates, the load generator's JSON, the start-up JSON. The rest
//! of the file (the module-size section, the analysis) is left as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use podguard_bench::requests::Workload;
use podguard_bench::results::{LoadResult, StartupResult};
use serde_json::Value;

const BEGIN: &str = "<!-- bench:begin";
const END: &str = "<!-- bench:end -->";

/// Renders the benchmark tables into BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "report")]
struct Args {
    /// The run's results: `load/*.json`, `startup-cold.json`, `startup-warm.json`.
    #[arg(long)]
    results: PathBuf,
    /// criterion's output directory (its `evaluation/` group is read).
    #[arg(long)]
    criterion: PathBuf,
    /// The file to rewrite.
    #[arg(long, default_value = "BENCHMARKS.md")]
    benchmarks: PathBuf,
    /// The command that produced the run, quoted in the file.
    #[arg(long, default_value = "bash scripts/bench")]
    command: String,
    /// The run's date.
    #[arg(long)]
    date: String,
    /// `rustc --version`.
    #[arg(long, default_value = "")]
    rustc: String,
    /// Load-test settings, quoted in the file (duration, warm-up, client threads).
    #[arg(long, default_value = "")]
    load_settings: String,
    /// Print the section instead of writing the file.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let section = render(&args)?;
    if args.dry_run {
        print!("{section}");
        return Ok(());
    }
    let old = std::fs::read_to_string(&args.benchmarks)
        .with_context(|| format!("cannot read {}", args.benchmarks.display()))?;
    let new = splice(&old, &section);
    std::fs::write(&args.benchmarks, new)?;
    eprintln!(
        "report: rewrote the generated section of {}",
        args.benchmarks.display()
    );
    Ok(())
}

/// Replaces the marked section of `document` with `section` (which carries the markers),
/// or appends it.
fn splice(document: &str, section: &str) -> String {
    match (document.find(BEGIN), document.find(END)) {
        (Some(begin), Some(end)) if end > begin => {
            let end = end + END.len();
            let rest = document[end..]
                .strip_prefix('\n')
                .unwrap_or(&document[end..]);
            format!("{}{section}{rest}", &document[..begin])
        }
        _ => format!(
            "{}\n{section}",
            document.trim_end_matches('\n').to_owned() + "\n"
        ),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the expected JSON", path.display()))
}

fn criterion_median_ns(criterion: &Path, function: &str, workload: Workload) -> Option<f64> {
    let path = criterion
        .join("evaluation")
        .join(function)
        .join(workload.name())
        .join("new/estimates.json");
    let estimates: Value = read_json(&path).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn us(ns: f64) -> String {
    format!("{:.1} us", ns / 1000.0)
}

fn fmt_us(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1} ms", value / 1000.0)
    } else {
        format!("{value:.0} us")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn yes(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

struct Load {
    runs: Vec<LoadResult>,
}

impl Load {
    fn find(&self, server: &str, request: &str, http: &str, c: usize) -> Option<&LoadResult> {
        self.runs.iter().find(|r| {
            r.server == server && r.request == request && r.http == http && r.concurrency == c
        })
    }
}

fn render(args: &Args) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    let load_dir = args.results.join("load");
    if load_dir.is_dir() {
        let mut paths: Vec<_> = std::fs::read_dir(&load_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            runs.push(read_json::<LoadResult>(&path)?);
        }
    }
    let load = Load { runs };
    let cold: Option<StartupResult> = read_json(&args.results.join("startup-cold.json")).ok();
    let warm: Option<StartupResult> = read_json(&args.results.join("startup-warm.json")).ok();

    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();

    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "{BEGIN} (written by `{}`; edits between the markers are overwritten) -->",
        args.command
    )?;
    writeln!(
        w,
        "## Latest run: policy evaluation, the webhook server, start-up, memory"
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "Command: `{}` ({}; {} cores by `nproc`, Linux {} by `uname -r`, {}; {}). The server and the load generator share the machine's cores over loopback. {}",
        args.command, args.date, nproc, kernel, cpu, args.rustc, args.load_settings
    )?;
    writeln!(w)?;

    // Evaluation.
    let mut ratios = BTreeMap::new();
    let mut natives = Vec::new();
    writeln!(w, "### Policy evaluation: native against Wasm")?;
    writeln!(w)?;
    writeln!(
        w,
        "criterion medians per call (`cargo bench -p podguard-bench --bench evaluation`). *native*: `podguard_policy::validate_payload`; *Wasm*: the release module through `PolicyModule::call(\"validate\", ...)` (pooled instance, same payload bytes); *review*: the server's whole per-request work outside HTTP (`admission::review`: envelope, Wasm call, response document)."
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "| request | body | native | Wasm | Wasm / native | review |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    for workload in Workload::ALL {
        let native = criterion_median_ns(&args.criterion, "native", workload);
        let wasm = criterion_median_ns(&args.criterion, "wasm", workload);
        let review = criterion_median_ns(&args.criterion, "review", workload);
        let ratio = native.zip(wasm).map(|(n, w)| w / n);
        if let Some(ratio) = ratio {
            ratios.insert(workload.name(), ratio);
        }
        if let Some(native) = native {
            natives.push((workload, native));
        }
        writeln!(
            w,
            "| {} | {} B | {} | {} | {} | {} |",
            workload.description(),
            workload.body().len(),
            native.map_or("-".into(), us),
            wasm.map_or("-".into(), us),
            ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            review.map_or("-".into(), us),
        )?;
    }
    writeln!(w)?;

    // Targets.
    writeln!(w, "### Targets")?;
    writeln!(w)?;
    writeln!(w, "| target | measured | |")?;
    writeln!(w, "|---|---|---|")?;
    for (workload, native_ns) in &natives {
        let target_us = match workload {
            Workload::SmallPod => 5.0,
            Workload::Deployment => 25.0,
            Workload::Pod30 => 100.0,
        };
        writeln!(
            w,
            "| native evaluation at most {target_us:.0} us, {} | {} | {} |",
            workload.name(),
            us(*native_ns),
            yes(native_ns / 1000.0 <= target_us)
        )?;
    }
    if !ratios.is_empty() {
        let worst = ratios.values().copied().fold(0.0, f64::max);
        let list = ratios
            .iter()
            .map(|(name, r)| format!("{name} {r:.2}x"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            w,
            "| Wasm evaluation at most 1.5x native | {list} | {} |",
            yes(worst <= 1.5)
        )?;
    }
    for http in ["HTTP/1.1", "HTTP/2"] {
        if let Some(run) = load.find("podguard", "deployment", http, 1) {
            let p99 = run.latency.p99_us;
            writeln!(
                w,
                "| c=1 p99 under 250 us, Deployment, {http} | {} (p50 {}, floor p99 {}) | {} |",
                fmt_us(p99),
                fmt_us(run.latency.p50_us),
                load.find("floor", "deployment", http, 1)
                    .map_or("-".into(), |f| fmt_us(f.latency.p99_us)),
                yes(p99 < 250.0 && run.errors == 0)
            )?;
        }
    }
    for http in ["HTTP/1.1", "HTTP/2"] {
        if let (Some(run), Some(floor)) = (
            load.find("podguard", "deployment", http, 64),
            load.find("floor", "deployment", http, 64),
        ) {
            let share = run.requests_per_second / floor.requests_per_second;
            writeln!(
                w,
                "| c=64 throughput at least 35% of the floor (60% is where the project is headed), no errors, Deployment, {http} | {:.0} of {:.0} req/s = {:.0}%, {} errors | {} |",
                run.requests_per_second,
                floor.requests_per_second,
                share * 100.0,
                run.errors,
                yes(share >= 0.35 && run.errors == 0)
            )?;
        }
    }
    if let Some(warm) = &warm {
        writeln!(
            w,
            "| ready in under 100 ms from a warm cache | median {:.1} ms | {} |",
            warm.median_ms,
            yes(warm.median_ms < 100.0)
        )?;
    }
    let peak = load
        .runs
        .iter()
        .filter(|r| r.server == "podguard")
        .filter_map(|r| r.server_peak_rss_kib)
        .max();
    if let Some(peak) = peak {
        writeln!(
            w,
            "| peak RSS under 64 MiB under load | {} | {} |",
            mib(peak),
            yes(peak < 64 * 1024)
        )?;
    }
    writeln!(w)?;

    // Load.
    writeln!(w, "### `podguard serve` against the floor server, over TLS")?;
    writeln!(w)?;
    writeln!(
        w,
        "`loadgen` (hyper + tokio-rustls, verifying the CA) sends `POST /validate` with the AdmissionReview body, closed loop: each of *c* workers waits for its answer before sending again; HTTP/1.1 uses *c* connections, HTTP/2 *c* streams on one connection (as kube-apiserver's client does). The floor (`floor`) is hyper + rustls with podguard's TLS and HTTP settings, reading the body and answering podguard's own response for that request, canned. *Peak RSS*: the server's `VmHWM` during that run (reset before it)."
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "| request | HTTP | c | server | req/s | p50 | p99 | p99.9 | max | errors | vs floor | peak RSS |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    let mut keys: Vec<(usize, &str, usize, bool)> = load
        .runs
        .iter()
        .map(|r| {
            let order = Workload::ALL
                .iter()
                .position(|w| w.name() == r.request)
                .unwrap_or(9);
            (
                order,
                r.http.as_str(),
                r.concurrency,
                r.server != "podguard",
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    for (order, http, c, is_floor) in keys {
        let Some(workload) = Workload::ALL.get(order) else {
            continue;
        };
        let server = if is_floor { "floor" } else { "podguard" };
        let Some(run) = load.find(server, workload.name(), http, c) else {
            continue;
        };
        let versus = if is_floor {
            String::new()
        } else {
            load.find("floor", workload.name(), http, c)
                .map_or(String::new(), |f| {
                    format!(
                        "{:.0}%",
                        100.0 * run.requests_per_second / f.requests_per_second
                    )
                })
        };
        writeln!(
            w,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            workload.name(),
            http,
            c,
            server,
            run.requests_per_second,
            fmt_us(run.latency.p50_us),
            fmt_us(run.latency.p99_us),
            fmt_us(run.latency.p999_us),
            fmt_us(run.latency.max_us),
            run.errors,
            versus,
            run.server_peak_rss_kib.map_or("-".into(), mib),
        )?;
    }
    writeln!(w)?;

    // Start-up.
    writeln!(w, "### Start to ready")?;
    writeln!(w)?;
    writeln!(
        w,
        "From spawning `podguard serve` (release build, TLS, the release policy module) to `GET /readyz` answering 200, polled every millisecond over TLS. *cold*: empty `--cache-dir`, the module is compiled; *warm*: the precompiled module is in the cache."
    )?;
    writeln!(w)?;
    writeln!(w, "| start | median | every run | peak RSS at ready |")?;
    writeln!(w, "|---|---|---|---|")?;
    for startup in [&cold, &warm].into_iter().flatten() {
        writeln!(
            w,
            "| {} | {:.1} ms | {} | {} |",
            startup.label,
            startup.median_ms,
            startup
                .ready_ms
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            startup
                .peak_rss_kib
                .iter()
                .max()
                .map_or("-".into(), |k| mib(*k)),
        )?;
    }
    writeln!(w)?;
    writeln!(w, "{END}")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_between_markers_or_appends() {
        let section = "<!-- bench:begin x -->\nnew\n<!-- bench:end -->\n";
        let doc = "# t\n\nkeep\n\n<!-- bench:begin y -->\nold\n<!-- bench:end -->\n\ntail\n";
        assert_eq!(
            splice(doc, section),
            "# t\n\nkeep\n\n<!-- bench:begin x -->\nnew\n<!-- bench:end -->\n\ntail\n"
        );
        assert_eq!(splice("# t\n", section), format!("# t\n\n{section}"));
    }
}
