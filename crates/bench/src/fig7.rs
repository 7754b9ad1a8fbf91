//! Figure 7: CPU and memory of every process of the system while a sustained load runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::plot::{LineChart, Series, XAxis};
use crate::report::Csv;
use crate::sampler::{MACHINE, Sample, Sampler};

/// How often /proc is read during the load.
const INTERVAL: Duration = Duration::from_millis(500);

/// This process's own group name (threads not in another group).
pub const SELF_GROUP: &str = "medcert (bench + CLI flows)";
/// The in-process relay's group: (thread-name prefix, group name).
pub const RELAY_THREADS: (&str, &str) = ("relay", "medcert relay (in-process)");

/// Figure 7's measurements: one load and what every process used meanwhile.
pub struct Fig7 {
    /// The load's name.
    pub load: String,
    /// Units of load completed.
    pub completed: usize,
    /// How long the load ran.
    pub duration: Duration,
    /// Every sample taken during the load.
    pub samples: Vec<Sample>,
}

/// Runs `workers` copies of `operation` back to back until `duration` has passed,
/// sampling every process meanwhile. `operation(worker)` is one unit of load.
pub async fn run<F, Fut>(
    run_dir: &Path,
    load: &str,
    workers: usize,
    duration: Duration,
    operation: F,
) -> Result<Fig7, BenchError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), BenchError>>,
{
    let sampler = Sampler::start(run_dir, SELF_GROUP, &[RELAY_THREADS], INTERVAL);
    let started = Instant::now();
    let deadline = started + duration;
    let operation = &operation;
    let outcomes = futures_util::future::join_all((0..workers.max(1)).map(|worker| async move {
        let mut done = 0usize;
        while Instant::now() < deadline {
            operation(worker).await?;
            done += 1;
        }
        Ok::<_, BenchError>(done)
    }))
    .await;
    let elapsed = started.elapsed();
    let samples = sampler.stop();
    let mut completed = 0;
    for outcome in outcomes {
        completed += outcome?;
    }
    Ok(Fig7 {
        load: load.to_string(),
        completed,
        duration: elapsed,
        samples,
    })
}

/// Per group: mean and peak CPU, peak RSS.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupUsage {
    /// Mean CPU over the samples, in percent of one core.
    pub mean_cpu_percent: f64,
    /// Peak CPU, in percent of one core.
    pub peak_cpu_percent: f64,
    /// Peak resident memory, in MiB.
    pub peak_rss_mib: f64,
}

impl Fig7 {
    /// Usage per group, over all samples.
    pub fn by_group(&self) -> BTreeMap<String, GroupUsage> {
        let mut sums: BTreeMap<String, (f64, usize, GroupUsage)> = BTreeMap::new();
        for s in &self.samples {
            let entry = sums.entry(s.group.clone()).or_default();
            entry.0 += s.cpu_percent;
            entry.1 += 1;
            entry.2.peak_cpu_percent = entry.2.peak_cpu_percent.max(s.cpu_percent);
            entry.2.peak_rss_mib = entry.2.peak_rss_mib.max(s.rss_mib);
        }
        sums.into_iter()
            .map(|(group, (sum, n, mut usage))| {
                usage.mean_cpu_percent = sum / n.max(1) as f64;
                (group, usage)
            })
            .collect()
    }

    /// Core-milliseconds per unit of load: the CPU of every group (the whole machine's
    /// line left out) over the load, divided by the units completed.
    pub fn core_ms_per_operation(&self) -> f64 {
        let cpu_percent: f64 = self
            .by_group()
            .iter()
            .filter(|(group, _)| group.as_str() != MACHINE)
            .map(|(_, usage)| usage.mean_cpu_percent)
            .sum();
        cpu_percent * 10.0 * self.duration.as_secs_f64() / self.completed.max(1) as f64
    }

    /// Units of load completed per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// `<stem>_samples.csv`, `<stem>.csv`, `<stem>_cpu.png` and `<stem>_rss.png` in `out`.
    pub fn write(&self, out: &Path, stem: &str) -> Result<Vec<PathBuf>, BenchError> {
        let mut samples = Csv::new(&["load", "t_s", "process", "cpu_percent", "rss_mib"]);
        for s in &self.samples {
            samples.push(vec![
                self.load.clone(),
                format!("{:.2}", s.at_s),
                s.group.clone(),
                format!("{:.1}", s.cpu_percent),
                format!("{:.1}", s.rss_mib),
            ]);
        }
        let mut summary = Csv::new(&[
            "load",
            "process",
            "mean_cpu_percent",
            "peak_cpu_percent",
            "peak_rss_mib",
        ]);
        for (group, usage) in self.by_group() {
            summary.push(vec![
                self.load.clone(),
                group,
                format!("{:.1}", usage.mean_cpu_percent),
                format!("{:.1}", usage.peak_cpu_percent),
                format!("{:.1}", usage.peak_rss_mib),
            ]);
        }
        let files = [
            out.join(format!("{stem}_samples.csv")),
            out.join(format!("{stem}.csv")),
            out.join(format!("{stem}_cpu.png")),
            out.join(format!("{stem}_rss.png")),
        ];
        samples.write(&files[0])?;
        summary.write(&files[1])?;
        self.chart("CPU (% of one core)", |s| Some(s.cpu_percent))
            .draw(&files[2])?;
        // The machine line and thread groups carry no memory of their own.
        self.chart("resident memory (MiB)", |s| {
            (s.group != MACHINE && s.rss_mib > 0.0).then_some(s.rss_mib)
        })
        .draw(&files[3])?;
        Ok(files.to_vec())
    }

    fn chart(&self, y_desc: &str, value: impl Fn(&Sample) -> Option<f64>) -> LineChart {
        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for s in &self.samples {
            if let Some(v) = value(s) {
                series.entry(&s.group).or_default().push((s.at_s, v));
            }
        }
        LineChart {
            title: format!("Figure 7: {} during {}", y_desc, self.load),
            x_desc: "time (s)".into(),
            y_desc: y_desc.into(),
            x_axis: XAxis::Numeric,
            series: series
                .into_iter()
                .map(|(name, points)| Series {
                    name: name.to_string(),
                    points,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_short_load_is_sampled_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let fig = run(
            dir.path(),
            "spin",
            2,
            Duration::from_millis(1200),
            |_| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            },
        )
        .await
        .unwrap();
        assert!(fig.completed >= 2 * 10, "{}", fig.completed);
        assert!(fig.by_group().contains_key(SELF_GROUP));
        let files = fig.write(dir.path(), "fig7").unwrap();
        let summary = std::fs::read_to_string(&files[1]).unwrap();
        assert!(
            summary.starts_with("load,process,mean_cpu_percent,peak_cpu_percent,peak_rss_mib\n")
        );
        assert!(files[2].exists() && files[3].exists());
    }

    #[tokio::test]
    async fn a_failing_operation_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(dir.path(), "fail", 1, Duration::from_secs(5), |_| async {
            Err(BenchError::Unavailable("down".into()))
        })
        .await;
        assert!(matches!(outcome, Err(BenchError::Unavailable(_))));
    }
}
