//! Figure 4: store (upload) and retrieve (download) time by record size.
//!
//! Store is the CLI's `ehr store --certify`: watermark → encrypt → CSP put → HB
//! `CreateRecord` → IPFS add of the envelope → MCB `issueCertificate`. Retrieve is the
//! CLI's `doctor query --out`: the audited HB `QueryRecord` → CSP get → decrypt →
//! watermark and anchored-fingerprint check. Each round stores a new record; its CSP
//! object, key and IPFS pin are removed after the round so the run leaves no bulk behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_flows::{QueryRequest, Quiet, StoreFlowRequest, query_record, store as store_flow};
use medcert_network::{Hospital, Network};

use crate::config::{Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::{Patient, Workspace, first_hospital};
use crate::floors::Floors;
use crate::plot::{LineChart, Series, XAxis};
use crate::report::{Csv, Line};
use crate::stats::{Samples, Stats};
use crate::sums;

/// The timings of one size, total and per step.
#[derive(Default)]
pub(crate) struct SizeSamples {
    store: Samples,
    watermark: Samples,
    encrypt: Samples,
    csp_put: Samples,
    create_record: Samples,
    ipfs_add: Samples,
    issue: Samples,
    retrieve: Samples,
    query: Samples,
    csp_get: Samples,
    decrypt: Samples,
    verify: Samples,
}

/// Figure 4's measurements.
pub struct Fig4 {
    /// store and retrieve totals, by size, for the summary.
    pub lines: Vec<Line>,
    /// (size, operation, stats, floor p50) of the totals, for the chart.
    totals: Vec<(u64, &'static str, Stats, Option<f64>)>,
    csv: Csv,
}

impl Fig4 {
    /// fig4.csv (every step) and fig4.png (totals beside their floors) in `out`.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let csv = out.join("fig4.csv");
        let png = out.join("fig4.png");
        self.csv.write(&csv)?;
        let mut sizes: Vec<u64> = self.totals.iter().map(|t| t.0).collect();
        sizes.dedup();
        let index = |size: u64| sizes.iter().position(|&s| s == size).unwrap_or(0) as f64;
        let mut series = Vec::new();
        for operation in ["store", "retrieve"] {
            let of = |pick: &dyn Fn(&Stats, Option<f64>) -> Option<f64>| {
                self.totals
                    .iter()
                    .filter(|t| t.1 == operation)
                    .filter_map(|t| pick(&t.2, t.3).map(|v| (index(t.0), v)))
                    .collect::<Vec<_>>()
            };
            series.push(Series {
                name: format!("{operation} (mean)"),
                points: of(&|s, _| Some(s.mean_ms)),
            });
            series.push(Series {
                name: format!("{operation}: sum of floors (p50)"),
                points: of(&|_, floor| floor),
            });
        }
        LineChart {
            title: "Figure 4: store (upload) and retrieve (download) time by EHR size".into(),
            x_desc: "C-CDA document size".into(),
            y_desc: "time (ms)".into(),
            x_axis: XAxis::Categories(sizes.iter().map(|&s| size_label(s)).collect()),
            series,
        }
        .draw(&png)?;
        Ok(vec![csv, png])
    }
}

/// Measures Figure 4: store and retrieve at each of the plan's sizes, at the first hospital.
pub async fn run(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    floors: &mut Floors,
) -> Result<Fig4, BenchError> {
    let hospital = first_hospital(network)?;
    let patient = workspace.patient(network, "fig4", &[hospital]).await?;
    let treatment = patient
        .treatment_number(&hospital.id)
        .expect("registered above")
        .to_string();
    let mut lines = Vec::new();
    let mut totals = Vec::new();
    let mut csv = Csv::timings(&["operation", "size_bytes", "size"]);
    for &size in &plan.store_sizes {
        let document = workspace.document(size, &treatment, &hospital.id)?;
        let plaintext = std::fs::read(&document)
            .map_err(BenchError::io("cannot read a document", &document))?;
        let size_floors = floors.for_size(network, plan, size, &plaintext).await?;
        let fixed = floors.fixed(network, plan).await?;
        tracing::info!(size = %size_label(size), "figure 4: store and retrieve");

        let mut samples = SizeSamples::default();
        for round in 0..plan.warmup + plan.rounds {
            let measured = round >= plan.warmup;
            one_round(
                network,
                workspace,
                hospital,
                &patient,
                &treatment,
                &document,
                measured.then_some(&mut samples),
            )
            .await?;
        }
        std::fs::remove_file(&document)
            .map_err(BenchError::io("cannot remove a document", &document))?;

        let rows: [(&str, &Samples); 12] = [
            ("store", &samples.store),
            ("store.watermark", &samples.watermark),
            ("store.encrypt", &samples.encrypt),
            ("store.csp_put", &samples.csp_put),
            ("store.create_record", &samples.create_record),
            ("store.ipfs_add", &samples.ipfs_add),
            ("store.issue_certificate", &samples.issue),
            ("retrieve", &samples.retrieve),
            ("retrieve.query_record", &samples.query),
            ("retrieve.csp_get", &samples.csp_get),
            ("retrieve.decrypt", &samples.decrypt),
            ("retrieve.verify", &samples.verify),
        ];
        for (operation, samples) in rows {
            let Some(stats) = samples.stats() else {
                continue;
            };
            let floor =
                sums::sum(sums::of_step(operation), &fixed, &size_floors).map(|s| s.wall_p50_ms);
            let line = Line {
                figure: "fig4",
                what: format!("{operation} {}", size_label(size)),
                stats,
                floor_p50_ms: floor,
            };
            csv.push_timing(
                vec![operation.into(), size.to_string(), size_label(size)],
                &stats,
                floor,
            );
            // The summary table keeps the totals; the steps are in the CSV.
            if !operation.contains('.') {
                totals.push((size, operation, stats, floor));
                lines.push(line);
            }
        }
    }
    Ok(Fig4 { lines, totals, csv })
}

pub(crate) async fn one_round(
    network: &Network,
    workspace: &Workspace,
    hospital: &Hospital,
    patient: &Patient,
    treatment: &str,
    document: &Path,
    samples: Option<&mut SizeSamples>,
) -> Result<(), BenchError> {
    let started = Instant::now();
    let stored = store_flow(
        network,
        &workspace.patients_dir(),
        &StoreFlowRequest {
            hospital: &hospital.id,
            doctor: 0,
            treatment_number: treatment,
            record_id: None,
            source: document,
            password: &patient.password,
            certify_for: Some(&patient.name),
        },
        &Quiet,
    )
    .await?;
    let store_elapsed = started.elapsed();
    let record_id = stored.stored.record_id.clone();
    let certificate = stored
        .certificate
        .as_ref()
        .ok_or_else(|| BenchError::Unexpected {
            what: "the store flow",
            detail: "stored without the certificate it was asked for".into(),
        })?;

    let out = workspace.path().join(format!("{record_id}.xml"));
    let started = Instant::now();
    let queried = query_record(
        network,
        &QueryRequest {
            hospital: &hospital.id,
            doctor: 0,
            treatment_number: treatment,
            record_id: &record_id,
            password: &patient.password,
            out: Some(&out),
        },
        &Quiet,
    )
    .await?;
    let retrieve_elapsed = started.elapsed();
    let retrieved = queried
        .retrieved
        .as_ref()
        .ok_or_else(|| BenchError::Unexpected {
            what: "the query flow",
            detail: "no document retrieved although one was asked for".into(),
        })?;
    if !retrieved.authentic() {
        return Err(BenchError::NotAuthentic {
            record_id,
            detail: format!(
                "verdict {:?}, anchored fingerprint matches: {}",
                retrieved.verification.verdict, retrieved.fingerprint_matches
            ),
        });
    }

    if let Some(s) = samples {
        let timings = &stored.stored.timings_ms;
        s.store.push(store_elapsed);
        s.watermark.push_ms(timings.watermark);
        s.encrypt.push_ms(timings.encrypt);
        s.csp_put.push_ms(timings.csp_put);
        s.create_record.push_ms(timings.create_record);
        s.ipfs_add.push_ms(certificate.ipfs_add_ms);
        s.issue.push_ms(certificate.issue_ms);
        s.retrieve.push(retrieve_elapsed);
        s.query.push_ms(queried.query_ms);
        s.csp_get.push_ms(retrieved.csp_get_ms);
        s.decrypt.push_ms(retrieved.decrypt_ms);
        s.verify.push_ms(retrieved.verify_ms);
    }

    // Leave no bulk behind: the object, the hospital's key and the envelope's pin.
    std::fs::remove_file(&out).map_err(BenchError::io("cannot remove a retrieved record", &out))?;
    medcert_flows::connect::csp(network)?
        .delete(stored.stored.hash_c.as_bytes())
        .await?;
    // The record's key stays in the hospital's key service, which releases it only for an
    // audited access; without its chain record (the CSP object is gone) it opens nothing.
    medcert_flows::connect::ipfs(network)?
        .unpin(&certificate.cid)
        .await?;
    Ok(())
}
