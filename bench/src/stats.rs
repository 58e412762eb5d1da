//! Latency summaries from every recorded sample (no histogram buckets, no sampling).

use serde::{Deserialize, Serialize};

/// Percentiles of a set of latencies, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Fastest.
    pub min_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// The nearest-rank percentile `p` (0-100) of sorted `samples`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The small slack keeps 99.9% of 1000 at rank 999 despite binary floating point.
    let rank = (p * sorted.len() as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises latencies given in nanoseconds (sorts them).
pub fn summarize(samples_ns: &mut [u64]) -> Latency {
    samples_ns.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let mean = if samples_ns.is_empty() {
        0.0
    } else {
        samples_ns.iter().map(|&n| n as f64).sum::<f64>() / samples_ns.len() as f64 / 1000.0
    };
    Latency {
        min_us: us(samples_ns.first().copied().unwrap_or(0)),
        p50_us: us(percentile(samples_ns, 50.0)),
        p90_us: us(percentile(samples_ns, 90.0)),
        p99_us: us(percentile(samples_ns, 99.0)),
        p999_us: us(percentile(samples_ns, 99.9)),
        max_us: us(samples_ns.last().copied().unwrap_or(0)),
        mean_us: mean,
    }
}

/// The median of `values` (sorts them); 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        samples.reverse();
        let summary = summarize(&mut samples);
        assert_eq!(summary.min_us, 1.0);
        assert_eq!(summary.p50_us, 500.0);
        assert_eq!(summary.p99_us, 990.0);
        assert_eq!(summary.p999_us, 999.0);
        assert_eq!(summary.max_us, 1000.0);
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
