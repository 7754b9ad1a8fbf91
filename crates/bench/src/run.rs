//! One benchmark run: the figures asked for, their floors, the files and the summary.

use std::path::PathBuf;

use medcert_network::{Hospital, Network};

use crate::config::{BenchArgs, Figure, Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::{Patient, Workspace};
use crate::floors::Floors;
use crate::recovery::{Baseline, Certified, Route, certify, consent};
use crate::relay::InProcessRelay;
use crate::report::{Line, Summary, Target, machine};
use crate::{fig4, fig5, fig7, fig8};

/// Record size of the sustained loads behind Figure 7.
const LOAD_SIZE: u64 = 1_000_000;

/// Runs the figures `args` asks for against `network`, writes their CSV files, PNG plots
/// and summary.md into `args.out`, and returns the summary.
pub async fn run(network: &Network, args: &BenchArgs) -> Result<Summary, BenchError> {
    let plan = Plan::new(args, network.fabric.hospitals.len());
    std::fs::create_dir_all(&plan.out).map_err(BenchError::io(
        "cannot create the results directory",
        &plan.out,
    ))?;
    let workspace = Workspace::new()?;
    let mut floors = Floors::new(workspace.path());
    let mut summary = Summary {
        machine: machine(),
        ..Summary::default()
    };
    let mut fig8_rate = None;

    if plan.wants(Figure::Fig4) {
        let fig = fig4::run(network, &plan, &workspace, &mut floors).await?;
        summary.files.extend(fig.write(&plan.out)?);
        summary.lines.extend(fig.lines);
    }

    let recovery_figures = [Figure::Fig5, Figure::Fig6, Figure::Fig7, Figure::Fig8];
    if recovery_figures.iter().any(|f| plan.wants(*f)) {
        let hospitals: Vec<&Hospital> = network
            .fabric
            .hospitals
            .iter()
            .take(plan.most_hospitals())
            .collect();
        let relay = if args.external_relay {
            Ok(None)
        } else {
            let ids: Vec<String> = hospitals.iter().map(|h| h.id.clone()).collect();
            InProcessRelay::start(network, &ids, &workspace.path().join("relay"))
                .await
                .map(Some)
        };
        match relay {
            Ok(relay) => {
                let outcome = recovery_figures_run(
                    network,
                    &plan,
                    &workspace,
                    &mut floors,
                    &hospitals,
                    &mut summary,
                )
                .await;
                if let Some(relay) = relay {
                    relay.stop().await;
                }
                fig8_rate = outcome?;
            }
            Err(e) => {
                for figure in [Figure::Fig5, Figure::Fig6, Figure::Fig8] {
                    if plan.wants(figure) {
                        summary
                            .skipped
                            .push(format!("{}: the relay did not start ({e})", figure.name()));
                    }
                }
                if plan.wants(Figure::Fig7) {
                    summary.skipped.push(format!(
                        "fig7 under recovery load: the relay did not start ({e}); sampled under a store + certify + retrieve load instead"
                    ));
                    let fig = store_retrieve_load(network, &plan, &workspace, &hospitals).await?;
                    fig7_facts(&mut summary, &fig);
                    summary.files.extend(fig.write(&plan.out, "fig7")?);
                }
            }
        }
    }

    if let Some(fixed) = floors.fixed_if_measured() {
        for (what, stats) in [
            (
                "Fabric commit: peer chaincode invoke --waitForEvent",
                fixed.fabric_commit,
            ),
            ("Fabric read: peer chaincode query", fixed.fabric_query),
            ("anvil transfer round trip", fixed.anvil_tx),
        ] {
            summary.lines.push(Line {
                figure: "floor",
                what: what.into(),
                stats,
                floor_p50_ms: None,
            });
        }
    }
    let floors_csv = plan.out.join("floors.csv");
    floors.csv().write(&floors_csv)?;
    summary.files.push(floors_csv);
    let retried = crate::recovery::conflicts_retried();
    if retried > 0 {
        summary.facts.push(format!(
            "{retried} recovery requests lost a write conflict to another client of the shared network and were asked again (the samples time the attempt that committed)"
        ));
    }
    summary.targets = targets(&summary.lines, &plan, fig8_rate);

    let markdown = plan.out.join("summary.md");
    std::fs::write(&markdown, summary.to_markdown())
        .map_err(BenchError::io("cannot write the summary", &markdown))?;
    summary.files.push(markdown);
    Ok(summary)
}

/// Figures 5–8 with a relay serving `hospitals`; returns Figure 8's rate at the most
/// hospitals, if it ran.
async fn recovery_figures_run(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    floors: &mut Floors,
    hospitals: &[&Hospital],
    summary: &mut Summary,
) -> Result<Option<(usize, f64)>, BenchError> {
    let source = hospitals[0];
    let patient = workspace.patient(network, "recovery", hospitals).await?;
    let needs_baseline = plan.wants(Figure::Fig6) || plan.wants(Figure::Fig8);
    let baseline = if needs_baseline {
        Some(Baseline::new(network, workspace, &patient).await?)
    } else {
        None
    };
    let mut fig8_rate = None;

    if plan.wants(Figure::Fig5) || plan.wants(Figure::Fig6) {
        let mut certified = Vec::new();
        for &size in &plan.recovery_sizes {
            certified.push(certify(network, workspace, source, &patient, size).await?);
        }
        let inputs = fig5::Inputs {
            network,
            plan,
            workspace,
            patient: &patient,
            certified: &certified,
            baseline: baseline.as_ref().filter(|_| plan.wants(Figure::Fig6)),
        };
        let fig = fig5::run(&inputs, floors).await?;
        summary.files.extend(fig.write(
            &plan.out,
            plan.wants(Figure::Fig5),
            plan.wants(Figure::Fig6),
        )?);
        summary.lines.extend(fig.lines());
        for p in &fig.points {
            if let Some(baseline) = p.baseline {
                summary.facts.push(format!(
                    "Figure 6, {} at {} hospitals: cross-chain p50 {:.1} ms vs baseline p50 {:.1} ms, ratio {:.2}",
                    size_label(p.size),
                    p.hospitals,
                    p.recovery.p50_ms,
                    baseline.p50_ms,
                    p.recovery.p50_ms / baseline.p50_ms.max(1e-9)
                ));
            }
        }
    }
    if plan.wants(Figure::Fig8) {
        let certified = certify(network, workspace, source, &patient, plan.throughput_size).await?;
        let fig = fig8::run(
            network,
            plan,
            workspace,
            &patient,
            &certified,
            baseline.as_ref(),
        )
        .await?;
        summary.files.extend(fig.write(&plan.out)?);
        for rate in &fig.rates {
            summary.facts.push(format!(
                "Figure 8, {} at {} hospitals: {:.2} recoveries/s ({} in {:.1} s); baseline {}",
                size_label(fig.size),
                rate.hospitals,
                rate.per_s(),
                rate.recoveries,
                rate.seconds,
                rate.baseline_per_s
                    .map(|b| format!("{b:.2}/s"))
                    .unwrap_or_else(|| "not run".into())
            ));
        }
        fig8_rate = fig.rates.last().map(|r| (r.hospitals, r.per_s()));
    }
    if plan.wants(Figure::Fig7) {
        let certified = certify(network, workspace, source, &patient, LOAD_SIZE).await?;
        let mut loads = vec![(Route::CrossChain, "fig7")];
        if let Some(baseline) = &baseline {
            loads.push((Route::Baseline(baseline), "fig7_baseline"));
        }
        for (route, name) in loads {
            let fig = recovery_load(
                network, plan, workspace, &patient, &certified, hospitals, route,
            )
            .await?;
            fig7_facts(summary, &fig);
            summary.files.extend(fig.write(&plan.out, name)?);
        }
    }
    Ok(fig8_rate)
}

fn fig7_facts(summary: &mut Summary, fig: &fig7::Fig7) {
    summary.facts.push(format!(
        "Figure 7 load: {} for {:.0} s, {} operations ({:.2}/s)",
        fig.load,
        fig.duration.as_secs_f64(),
        fig.completed,
        fig.rate()
    ));
    for (group, usage) in fig.by_group() {
        summary.facts.push(format!(
            "Figure 7 ({}) {group}: CPU mean {:.1}% peak {:.1}% of one core, peak RSS {:.0} MiB",
            fig.load, usage.mean_cpu_percent, usage.peak_cpu_percent, usage.peak_rss_mib
        ));
    }
}

/// Figure 7's load: every hospital recovers the record back to back, the `route` way.
async fn recovery_load(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    patient: &Patient,
    certified: &Certified,
    hospitals: &[&Hospital],
    route: Route<'_>,
) -> Result<fig7::Fig7, BenchError> {
    let load = format!(
        "{} of {} at {} hospitals",
        route.recoveries(),
        size_label(certified.size),
        hospitals.len()
    );
    fig7_load(network, plan, &load, hospitals.len(), |worker| {
        let hospital = hospitals[worker];
        async move {
            let path = consent(network, workspace, patient, hospital, certified).await?;
            route
                .recover_once(network, workspace, patient, hospital, &path)
                .await
        }
    })
    .await
}

/// Figure 7's load when no relay can run: every hospital stores, certifies and retrieves
/// records back to back.
async fn store_retrieve_load(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    hospitals: &[&Hospital],
) -> Result<fig7::Fig7, BenchError> {
    let patient = workspace.patient(network, "fig7", hospitals).await?;
    let mut documents = Vec::new();
    for hospital in hospitals {
        let treatment = patient
            .treatment_number(&hospital.id)
            .expect("registered above");
        documents.push(workspace.document(LOAD_SIZE, treatment, &hospital.id)?);
    }
    let load = format!(
        "store + certify + retrieve of {} records at {} hospitals",
        size_label(LOAD_SIZE),
        hospitals.len()
    );
    let (patient, documents) = (&patient, &documents);
    fig7_load(network, plan, &load, hospitals.len(), |worker| {
        let hospital = hospitals[worker];
        let document: &PathBuf = &documents[worker];
        async move {
            let treatment = patient
                .treatment_number(&hospital.id)
                .expect("registered above");
            fig4::one_round(
                network, workspace, hospital, patient, treatment, document, None,
            )
            .await
        }
    })
    .await
}

/// Runs Figure 7's `load` for the plan's load time: `workers` workers side by side, each
/// repeating `operation(worker)`.
async fn fig7_load<F, Fut>(
    network: &Network,
    plan: &Plan,
    load: &str,
    workers: usize,
    operation: F,
) -> Result<fig7::Fig7, BenchError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), BenchError>>,
{
    tracing::info!(%load, seconds = plan.load.as_secs(), "figure 7");
    fig7::run(&network.run_dir, load, workers, plan.load, operation).await
}

fn find<'a>(lines: &'a [Line], figure: &str, what: &str) -> Option<&'a Line> {
    lines.iter().find(|l| l.figure == figure && l.what == what)
}

/// The targets, checked against what was measured.
fn targets(lines: &[Line], plan: &Plan, fig8_rate: Option<(usize, f64)>) -> Vec<Target> {
    let not_measured = |name: String, goal: &str| Target {
        name,
        goal: goal.into(),
        measured: "not measured in this run".into(),
        met: None,
    };
    let ratio_target = |name: String, goal: &str, line: Option<&Line>, limit: f64| match line
        .and_then(|l| l.ratio().map(|r| (l, r)))
    {
        Some((line, ratio)) => Target {
            name,
            goal: goal.into(),
            measured: format!(
                "p50 {:.1} ms vs floors {:.1} ms: {ratio:.2}x",
                line.stats.p50_ms,
                line.floor_p50_ms.unwrap_or_default()
            ),
            met: Some(ratio <= limit),
        },
        None => not_measured(name, goal),
    };
    let hospitals = plan.most_hospitals();
    let mut targets = vec![ratio_target(
        "store 15 MB".into(),
        "store of 15 MB <= 1.25x its floors",
        find(lines, "fig4", "store 15 MB"),
        1.25,
    )];

    let name = format!("recovery 1 MB at {hospitals} hospitals");
    let goal = "p50 <= 250 ms and p99 <= 500 ms";
    targets.push(
        match find(lines, "fig5", &fig5::recovery_label(1_000_000, hospitals)) {
            Some(line) => Target {
                name,
                goal: goal.into(),
                measured: format!(
                    "p50 {:.1} ms, p99 {:.1} ms",
                    line.stats.p50_ms, line.stats.p99_ms
                ),
                met: Some(line.stats.p50_ms <= 250.0 && line.stats.p99_ms <= 500.0),
            },
            None => not_measured(name, goal),
        },
    );
    targets.push(ratio_target(
        "recovery 1 MB end to end, 1 hospital".into(),
        "<= 1.3x the sum of its floors",
        find(lines, "fig5", &fig5::recovery_label(1_000_000, 1)),
        1.3,
    ));
    let name = format!("recovery throughput at {hospitals} hospitals");
    let goal = ">= 100 recoveries/s";
    targets.push(match fig8_rate {
        Some((count, rate)) => Target {
            name: format!("recovery throughput at {count} hospitals"),
            goal: goal.into(),
            measured: format!(
                "{rate:.2} recoveries/s of {} records",
                size_label(plan.throughput_size)
            ),
            met: Some(rate >= 100.0),
        },
        None => not_measured(name, goal),
    });
    targets
}
