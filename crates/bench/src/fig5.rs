//! Figures 5 and 6: recovery time as the number of hospitals grows, for three sizes,
//! beside the non-cross-chain baseline.
//!
//! A point (size, N) runs N recoveries at once, one at each of the first N hospitals,
//! every round: the latency of each is a sample, so a point has N × rounds samples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medcert_network::{Hospital, Network};

use crate::config::{Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::{Patient, Workspace};
use crate::floors::Floors;
use crate::plot::{LineChart, Series, XAxis};
use crate::recovery::{Baseline, Certified, consent, recover_once};
use crate::report::{Csv, Line};
use crate::stats::{Samples, Stats};
use crate::sums;

/// What a point measured.
#[derive(Default)]
struct PointSamples {
    end_to_end: Samples,
    request: Samples,
    relay_wait: Samples,
    ipfs_get: Samples,
    patient_release: Samples,
    release_key: Samples,
    decrypt: Samples,
    verify: Samples,
    store_again: Samples,
    baseline: Samples,
    baseline_grant: Samples,
    baseline_read: Samples,
}

/// One point's result.
pub struct Point {
    /// The record size, in bytes.
    pub size: u64,
    /// How many hospitals recovered at once.
    pub hospitals: usize,
    /// End-to-end recovery time.
    pub recovery: Stats,
    /// p50 of the sum of the recovery's floors.
    pub floor_p50_ms: f64,
    /// The non-cross-chain baseline's recovery time; `None` when not measured.
    pub baseline: Option<Stats>,
}

/// Figures 5 and 6's measurements.
pub struct Fig56 {
    /// One per (size, hospital count).
    pub points: Vec<Point>,
    csv: Csv,
}

/// What Figures 5 and 6 measure with.
pub struct Inputs<'a> {
    /// The network description.
    pub network: &'a Network,
    /// The points to measure.
    pub plan: &'a Plan,
    /// The run's scratch space for wallets and documents.
    pub workspace: &'a Workspace,
    /// The patient whose certificates are recovered.
    pub patient: &'a Patient,
    /// The certificates to recover, one per record size.
    pub certified: &'a [Certified],
    /// The baseline to measure beside (Figure 6); `None` skips it.
    pub baseline: Option<&'a Baseline>,
}

/// Measures Figures 5 and 6: every size at every hospital count of the plan.
pub async fn run(inputs: &Inputs<'_>, floors: &mut Floors) -> Result<Fig56, BenchError> {
    let Inputs {
        network,
        plan,
        workspace,
        ..
    } = *inputs;
    let fixed = floors.fixed(network, plan).await?;
    let mut csv = Csv::timings(&["operation", "size_bytes", "size", "hospitals"]);
    let mut points = Vec::new();
    for certified in inputs.certified {
        let size = certified.size;
        let size_floors = floors
            .for_new_document(network, plan, workspace, size)
            .await?;
        let floor_of = |operation: &str| sums::sum(sums::of_step(operation), &fixed, &size_floors);
        let floor = floor_of("recovery").map_or(0.0, |s| s.wall_p50_ms);
        for &count in &plan.hospital_counts {
            let hospitals: Vec<&Hospital> = network.fabric.hospitals.iter().take(count).collect();
            tracing::info!(size = %size_label(size), hospitals = count, "figures 5 and 6");
            let mut samples = PointSamples::default();
            for round in 0..plan.warmup + plan.rounds {
                let measured = round >= plan.warmup;
                one_round(
                    inputs,
                    certified,
                    &hospitals,
                    measured.then_some(&mut samples),
                )
                .await?;
            }
            let Some(recovery) = samples.end_to_end.stats() else {
                continue;
            };
            let rows: [(&str, &Samples); 12] = [
                ("recovery", &samples.end_to_end),
                ("recovery.request", &samples.request),
                ("recovery.relay_wait", &samples.relay_wait),
                ("recovery.ipfs_get", &samples.ipfs_get),
                ("recovery.patient_release", &samples.patient_release),
                ("recovery.release_key", &samples.release_key),
                ("recovery.decrypt", &samples.decrypt),
                ("recovery.verify", &samples.verify),
                ("recovery.store_again", &samples.store_again),
                ("baseline", &samples.baseline),
                ("baseline.grant", &samples.baseline_grant),
                ("baseline.read_certificate", &samples.baseline_read),
            ];
            for (operation, s) in rows {
                if let Some(stats) = s.stats() {
                    let floor = floor_of(operation).map(|s| s.wall_p50_ms);
                    let point = vec![
                        operation.into(),
                        size.to_string(),
                        size_label(size),
                        count.to_string(),
                    ];
                    csv.push_timing(point, &stats, floor);
                }
            }
            points.push(Point {
                size,
                hospitals: count,
                recovery,
                floor_p50_ms: floor,
                baseline: samples.baseline.stats(),
            });
        }
    }
    Ok(Fig56 { points, csv })
}

/// N recoveries at once (and then N baseline recoveries at once), one per hospital.
async fn one_round(
    inputs: &Inputs<'_>,
    certified: &Certified,
    hospitals: &[&Hospital],
    samples: Option<&mut PointSamples>,
) -> Result<(), BenchError> {
    let Inputs {
        network,
        workspace,
        patient,
        ..
    } = *inputs;
    let mut consents = Vec::new();
    for hospital in hospitals {
        consents.push(consent(network, workspace, patient, hospital, certified).await?);
    }
    let recoveries = futures_util::future::join_all(
        hospitals
            .iter()
            .zip(&consents)
            .map(|(hospital, path)| recover_once(network, workspace, patient, hospital, path)),
    )
    .await;
    let mut baselines = Vec::new();
    if let Some(baseline) = inputs.baseline {
        let mut consents = Vec::new();
        for hospital in hospitals {
            consents.push(consent(network, workspace, patient, hospital, certified).await?);
        }
        baselines = futures_util::future::join_all(
            hospitals
                .iter()
                .zip(&consents)
                .map(|(hospital, path)| baseline.recover_once(network, workspace, hospital, path)),
        )
        .await;
    }
    let Some(s) = samples else {
        for outcome in recoveries {
            outcome?;
        }
        for outcome in baselines {
            outcome?;
        }
        return Ok(());
    };
    for outcome in recoveries {
        let t = outcome?;
        s.end_to_end.push_ms(t.end_to_end);
        s.request.push_ms(t.request);
        s.relay_wait.push_ms(t.relay_wait);
        s.ipfs_get.push_ms(t.ipfs_get);
        s.patient_release.push_ms(t.patient_release);
        s.release_key.push_ms(t.release_key);
        s.decrypt.push_ms(t.decrypt);
        s.verify.push_ms(t.verify);
        s.store_again.push_ms(t.store_again);
    }
    for outcome in baselines {
        let t = outcome?;
        s.baseline.push_ms(t.end_to_end);
        s.baseline_grant.push_ms(t.grant);
        s.baseline_read.push_ms(t.read_certificate);
    }
    Ok(())
}

impl Fig56 {
    /// The summary's lines: each point's recovery (against its floors) and baseline.
    pub fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        for p in &self.points {
            lines.push(Line {
                figure: "fig5",
                what: recovery_label(p.size, p.hospitals),
                stats: p.recovery,
                floor_p50_ms: Some(p.floor_p50_ms),
            });
            if let Some(baseline) = p.baseline {
                lines.push(Line {
                    figure: "fig6",
                    what: format!(
                        "baseline {} at {} hospitals",
                        size_label(p.size),
                        p.hospitals
                    ),
                    stats: baseline,
                    floor_p50_ms: None,
                });
            }
        }
        lines
    }

    /// fig5.csv/png always; fig6.csv/png when the baseline ran.
    pub fn write(&self, out: &Path, fig5: bool, fig6: bool) -> Result<Vec<PathBuf>, BenchError> {
        let mut files = Vec::new();
        let by_size = |value: &dyn Fn(&Point) -> Option<f64>, prefix: &str| {
            let mut series: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
            for p in &self.points {
                if let Some(v) = value(p) {
                    series
                        .entry(p.size)
                        .or_default()
                        .push((p.hospitals as f64, v));
                }
            }
            series
                .into_iter()
                .map(|(size, points)| Series {
                    name: format!("{prefix}{}", size_label(size)),
                    points,
                })
                .collect::<Vec<_>>()
        };
        if fig5 {
            let csv = out.join("fig5.csv");
            let png = out.join("fig5.png");
            self.csv.write(&csv)?;
            let mut series = by_size(&|p| Some(p.recovery.mean_ms), "recovery (mean) ");
            series.extend(by_size(&|p| Some(p.recovery.p99_ms), "recovery (p99) "));
            LineChart {
                title: "Figure 5: end-to-end recovery time by number of hospitals".into(),
                x_desc: "hospitals recovering at once".into(),
                y_desc: "time (ms)".into(),
                x_axis: XAxis::Numeric,
                series,
            }
            .draw(&png)?;
            files.extend([csv, png]);
        }
        if fig6 {
            let csv_path = out.join("fig6.csv");
            let png = out.join("fig6.png");
            let mut csv = Csv::new(&[
                "size_bytes",
                "size",
                "hospitals",
                "medcert_p50_ms",
                "baseline_p50_ms",
                "medcert_mean_ms",
                "baseline_mean_ms",
                "ratio_p50",
            ]);
            for p in &self.points {
                if let Some(b) = p.baseline {
                    csv.push(vec![
                        p.size.to_string(),
                        size_label(p.size),
                        p.hospitals.to_string(),
                        format!("{:.3}", p.recovery.p50_ms),
                        format!("{:.3}", b.p50_ms),
                        format!("{:.3}", p.recovery.mean_ms),
                        format!("{:.3}", b.mean_ms),
                        format!("{:.3}", p.recovery.p50_ms / b.p50_ms.max(1e-9)),
                    ]);
                }
            }
            csv.write(&csv_path)?;
            let mut series = by_size(&|p| Some(p.recovery.mean_ms), "medcert cross-chain ");
            series.extend(by_size(
                &|p| p.baseline.map(|b| b.mean_ms),
                "baseline (no cross-chain) ",
            ));
            LineChart {
                title: "Figure 6: recovery latency, cross-chain vs non-cross-chain".into(),
                x_desc: "hospitals recovering at once".into(),
                y_desc: "mean time (ms)".into(),
                x_axis: XAxis::Numeric,
                series,
            }
            .draw(&png)?;
            files.extend([csv_path, png]);
        }
        Ok(files)
    }
}

/// The summary's name of a recovery point.
pub fn recovery_label(size: u64, hospitals: usize) -> String {
    format!("recovery {} at {hospitals} hospitals", size_label(size))
}
