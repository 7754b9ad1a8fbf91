//! Summary statistics of one benchmark point.

use std::time::Duration;

/// Mean, median and 99th percentile of a set of timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many timings the statistics are over.
    pub rounds: usize,
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Median (p50), in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

impl Stats {
    /// `None` for an empty set: a point that was not measured has no statistics.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        Self::of_ms(samples.iter().map(|d| d.as_secs_f64() * 1e3).collect())
    }

    /// As [`Stats::of`], for timings already in milliseconds.
    pub fn of_ms(mut ms: Vec<f64>) -> Option<Self> {
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        Some(Self {
            rounds: ms.len(),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            p50_ms: percentile(&ms, 50.0),
            p99_ms: percentile(&ms, 99.0),
        })
    }

    /// The CSV columns [`Stats::fields`] fills.
    pub const COLUMNS: [&'static str; 4] = ["rounds", "mean_ms", "p50_ms", "p99_ms"];

    /// Rounds, mean, p50 and p99 as the CSV files write them (milliseconds, three decimals).
    pub fn fields(&self) -> [String; 4] {
        [
            self.rounds.to_string(),
            format!("{:.3}", self.mean_ms),
            format!("{:.3}", self.p50_ms),
            format!("{:.3}", self.p99_ms),
        ]
    }

    /// p50 over the floor's p50; `None` without a floor above zero.
    pub fn ratio(&self, floor_p50_ms: Option<f64>) -> Option<f64> {
        floor_p50_ms.filter(|f| *f > 0.0).map(|f| self.p50_ms / f)
    }
}

/// Nearest-rank percentile of sorted values: with 10 rounds, p50 is the 5th value and
/// p99 the slowest.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Timings in milliseconds, collected round by round.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds one round's time.
    pub fn push(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_secs_f64() * 1e3);
    }

    /// Adds one round's time, already in milliseconds.
    pub fn push_ms(&mut self, ms: f64) {
        self.0.push(ms);
    }

    /// The statistics of the rounds so far; `None` when there are none.
    pub fn stats(&self) -> Option<Stats> {
        Stats::of_ms(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_rounds() {
        let samples: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        let stats = Stats::of(&samples).unwrap();
        assert_eq!(stats.rounds, 10);
        assert!((stats.mean_ms - 5.5).abs() < 1e-9);
        assert_eq!(stats.p50_ms, 5.0);
        assert_eq!(stats.p99_ms, 10.0);
    }

    #[test]
    fn one_round_is_every_percentile() {
        let stats = Stats::of_ms(vec![7.0]).unwrap();
        assert_eq!((stats.p50_ms, stats.p99_ms, stats.mean_ms), (7.0, 7.0, 7.0));
    }

    #[test]
    fn nothing_measured_has_no_stats() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(Samples::default().stats(), None);
    }

    #[test]
    fn p99_of_two_hundred_is_the_198th() {
        let stats = Stats::of_ms((1..=200).map(f64::from).collect()).unwrap();
        assert_eq!(stats.p99_ms, 198.0);
        assert_eq!(stats.p50_ms, 100.0);
    }
}
