//! Small statistics used by every section: percentiles of sorted samples, medians over
//! rounds, and one latency summary type, so that every table computes them alike.

use std::time::Duration;

/// The `p`-quantile (0..=1) of sorted samples, nearest rank; NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The median of the values (NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Latency percentiles of one run, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
}

impl Latency {
    /// No latency measured (printed as a dash).
    pub(crate) const NONE: Latency = Latency {
        p50: f64::NAN,
        p99: f64::NAN,
        p999: f64::NAN,
    };

    /// Summarises durations (any order).
    pub(crate) fn of(samples: &mut [Duration]) -> Latency {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&us, 0.5),
            p99: percentile(&us, 0.99),
            p999: percentile(&us, 0.999),
        }
    }

    /// The median of each percentile over rounds.
    pub(crate) fn median_of(rounds: &[Latency]) -> Latency {
        Latency {
            p50: median(rounds.iter().map(|l| l.p50).collect()),
            p99: median(rounds.iter().map(|l| l.p99).collect()),
            p999: median(rounds.iter().map(|l| l.p999).collect()),
        }
    }
}

/// One system's result in one round of a throughput cell.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    /// Events per second.
    pub(crate) rate: f64,
    /// Per-event latency (what it means is the section's: time to acknowledge, or from
    /// acknowledgement to delivery).
    pub(crate) latency: Latency,
}

/// Medians over the rounds of one system in one cell.
pub(crate) fn summarise(rounds: &[Sample]) -> Sample {
    Sample {
        rate: median(rounds.iter().map(|s| s.rate).collect()),
        latency: Latency::median_of(&rounds.iter().map(|s| s.latency).collect::<Vec<_>>()),
    }
}
