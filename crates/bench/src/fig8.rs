//! Figure 8: recoveries per second as hospitals grow (15 MB records), cross-chain and
//! baseline. Each of N hospitals runs its recoveries back to back, with consents signed
//! beforehand; the rate is the recoveries completed over the wall time of the batch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_network::{Hospital, Network};

use crate::config::{Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::{Patient, Workspace};
use crate::plot::{LineChart, Series, XAxis};
use crate::recovery::{Baseline, Certified, Route, consent};
use crate::report::Csv;

/// Figure 8's result at one hospital count.
pub struct Rate {
    /// How many hospitals recovered at once.
    pub hospitals: usize,
    /// Cross-chain recoveries completed.
    pub recoveries: usize,
    /// Wall time of the batch, in seconds.
    pub seconds: f64,
    /// The baseline's recoveries per second; `None` when not measured.
    pub baseline_per_s: Option<f64>,
}

impl Rate {
    /// Cross-chain recoveries per second.
    pub fn per_s(&self) -> f64 {
        self.recoveries as f64 / self.seconds.max(1e-9)
    }
}

/// Figure 8's measurements.
pub struct Fig8 {
    /// The record size, in bytes.
    pub size: u64,
    /// One per hospital count of the plan.
    pub rates: Vec<Rate>,
    /// The sustained rate of small records at the most hospitals: (size, rate), cross-chain
    /// only.
    pub small: Option<(u64, Rate)>,
}

/// Measures Figure 8: at each hospital count of the plan, the plan's rounds of recoveries
/// back to back at every hospital, cross-chain and then (with `baseline`) the baseline;
/// then, with `small` (a record of the plan's small size), the plan's small-record
/// recoveries back to back at the most hospitals, none started after its time limit.
pub async fn run(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    patient: &Patient,
    certified: &Certified,
    baseline: Option<&Baseline>,
    small: Option<&Certified>,
) -> Result<Fig8, BenchError> {
    let per_hospital = plan.rounds;
    let mut rates = Vec::new();
    for &count in &plan.hospital_counts {
        let hospitals: Vec<&Hospital> = network.fabric.hospitals.iter().take(count).collect();
        tracing::info!(hospitals = count, per_hospital, "figure 8");
        let batch_by = |route| {
            batch(
                route,
                network,
                workspace,
                patient,
                certified,
                &hospitals,
                per_hospital,
                None,
            )
        };
        let (recoveries, seconds) = batch_by(Route::CrossChain).await?;
        let baseline_per_s = match baseline {
            None => None,
            Some(baseline) => {
                let (count, seconds) = batch_by(Route::Baseline(baseline)).await?;
                Some(count as f64 / seconds.max(1e-9))
            }
        };
        rates.push(Rate {
            hospitals: count,
            recoveries,
            seconds,
            baseline_per_s,
        });
    }
    let small = match small {
        None => None,
        Some(small) => {
            let hospitals: Vec<&Hospital> = network
                .fabric
                .hospitals
                .iter()
                .take(plan.most_hospitals())
                .collect();
            tracing::info!(
                hospitals = hospitals.len(),
                size = %size_label(small.size),
                "figure 8: small records"
            );
            let (recoveries, seconds) = batch(
                Route::CrossChain,
                network,
                workspace,
                patient,
                small,
                &hospitals,
                plan.small_per_hospital,
                Some(Instant::now() + plan.small_time_limit),
            )
            .await?;
            Some((
                small.size,
                Rate {
                    hospitals: hospitals.len(),
                    recoveries,
                    seconds,
                    baseline_per_s: None,
                },
            ))
        }
    };
    Ok(Fig8 {
        size: certified.size,
        rates,
        small,
    })
}

/// One batch of a point: `each` recoveries the `route` way back to back at every hospital,
/// all hospitals at once, with consents signed beforehand, none started after `until`;
/// returns the recoveries completed and the batch's wall time in seconds.
#[allow(clippy::too_many_arguments)] // one batch's whole setting, each from its caller
async fn batch(
    route: Route<'_>,
    network: &Network,
    workspace: &Workspace,
    patient: &Patient,
    certified: &Certified,
    hospitals: &[&Hospital],
    each: usize,
    until: Option<Instant>,
) -> Result<(usize, f64), BenchError> {
    let mut signed = Vec::new();
    for hospital in hospitals {
        let mut paths = Vec::new();
        for _ in 0..each {
            paths.push(consent(network, workspace, patient, hospital, certified).await?);
        }
        signed.push(paths);
    }
    let started = Instant::now();
    let done = futures_util::future::join_all(hospitals.iter().zip(signed).map(
        |(hospital, paths)| async move {
            let mut done = 0;
            for path in &paths {
                if until.is_some_and(|until| Instant::now() >= until) {
                    std::fs::remove_file(path)
                        .map_err(BenchError::io("cannot remove a consent file", path))?;
                    continue;
                }
                route
                    .recover_once(network, workspace, patient, hospital, path)
                    .await?;
                done += 1;
            }
            Ok::<_, BenchError>(done)
        },
    ))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut recoveries = 0;
    for outcome in done {
        recoveries += outcome?;
    }
    Ok((recoveries, seconds))
}

impl Fig8 {
    /// fig8.csv and fig8.png in `out`.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let csv_path = out.join("fig8.csv");
        let png = out.join("fig8.png");
        let mut csv = Csv::new(&[
            "size_bytes",
            "hospitals",
            "recoveries",
            "seconds",
            "recoveries_per_s",
            "baseline_per_s",
        ]);
        for r in &self.rates {
            csv.push(vec![
                self.size.to_string(),
                r.hospitals.to_string(),
                r.recoveries.to_string(),
                format!("{:.3}", r.seconds),
                format!("{:.3}", r.per_s()),
                r.baseline_per_s
                    .map(|b| format!("{b:.3}"))
                    .unwrap_or_default(),
            ]);
        }
        if let Some((size, r)) = &self.small {
            csv.push(vec![
                size.to_string(),
                r.hospitals.to_string(),
                r.recoveries.to_string(),
                format!("{:.3}", r.seconds),
                format!("{:.3}", r.per_s()),
                String::new(),
            ]);
        }
        csv.write(&csv_path)?;
        let mut series = vec![Series {
            name: "medcert cross-chain".into(),
            points: self
                .rates
                .iter()
                .map(|r| (r.hospitals as f64, r.per_s()))
                .collect(),
        }];
        let baseline: Vec<(f64, f64)> = self
            .rates
            .iter()
            .filter_map(|r| r.baseline_per_s.map(|b| (r.hospitals as f64, b)))
            .collect();
        if !baseline.is_empty() {
            series.push(Series {
                name: "baseline (no cross-chain)".into(),
                points: baseline,
            });
        }
        LineChart {
            title: format!(
                "Figure 8: recoveries per second, {} records",
                size_label(self.size)
            ),
            x_desc: "hospitals".into(),
            y_desc: "recoveries / s".into(),
            x_axis: XAxis::Numeric,
            series,
        }
        .draw(&png)?;
        Ok(vec![csv_path, png])
    }
}
