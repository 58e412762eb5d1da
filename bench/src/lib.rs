//! podguard's benchmark suite.
//!
//! - `benches/evaluation.rs` (criterion): the policy natively (`validate_payload`) against
//!   the same policy as a Wasm module in podguard's host, for each of the three
//!   [`requests`].
//! - `loadgen`: drives an HTTPS server with HTTP/1.1 or HTTP/2 at a fixed concurrency and
//!   records every latency.
//! - `floor`: the transport floor, hyper + rustls with podguard's TLS settings answering a
//!   canned AdmissionReview response without evaluating anything.
//! - `startup`: time from process start to `/readyz` answering 200.
//! - `report`: rewrites the tables in BENCHMARKS.md from the results.
//!
//! `bash scripts/bench` runs all of it.

pub mod client;
pub mod requests;
pub mod results;
pub mod stats;
pub mod tls;

use std::net::SocketAddr;

/// Benchmarks send traffic to this machine only: refuses any address that is not loopback.
pub fn ensure_loopback(address: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        address.ip().is_loopback(),
        "{address} is not a loopback address: the benchmarks only drive servers on this machine (127.0.0.1 or ::1)"
    );
    Ok(())
}

/// Parses `250ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 250ms, 2s or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?} has an unknown unit; use ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a usable duration"))
}

/// Reads a `kB` field (`VmHWM`, `VmRSS`) of `/proc/<pid>/status`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resets the peak-RSS mark (`VmHWM`) of `pid` to its current RSS (`clear_refs` value 5).
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(ensure_loopback("127.0.0.1:8443".parse().unwrap()).is_ok());
        assert!(ensure_loopback("[::1]:8443".parse().unwrap()).is_ok());
        assert!(ensure_loopback("10.0.0.1:8443".parse().unwrap()).is_err());
        assert!(ensure_loopback("0.0.0.0:8443".parse().unwrap()).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert_eq!(parse_duration("2"), Ok(std::time::Duration::from_secs(2)));
        assert!(parse_duration("2h").is_err());
    }

    #[test]
    fn reads_own_peak_rss() {
        let pid = std::process::id();
        assert!(proc_status_kib(pid, "VmHWM").unwrap() > 0);
        assert!(proc_status_kib(pid, "VmNope").is_none());
    }
}
