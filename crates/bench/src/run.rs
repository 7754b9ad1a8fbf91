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
use crate::{fig4, fig5, fig7, fig8, sums};

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
    let mut measured = Measured::default();

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
                measured = outcome?;
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

    for (file, title, note, table) in [
        (
            "floors.csv",
            "Floors (one persistent connection each, measured in this run)",
            "Each the fastest way the component's protocol allows, through one connection kept \
             open across rounds. cpu_ms_per_op is core-milliseconds per operation: a pass over \
             bytes by its thread's CPU clock; a service floor by this process's CPU plus, from \
             /proc, that of the services taking part (Fabric: the hospital's peers, chaincode \
             server and, for a commit, the orderers; anvil; the key service; Kubo; S3), over \
             the measured rounds.",
            floors.csv(),
        ),
        (
            "stock_tools.csv",
            "What the stock tools cost (not floors)",
            "Fabric's peer CLI and Kubo's ipfs CLI: a process start and new connections each \
             time, as a user of those tools pays them.",
            floors.stock_csv(),
        ),
    ] {
        let path = plan.out.join(file);
        table.write(&path)?;
        summary.files.push(path);
        summary
            .tables
            .push((title.to_string(), note.to_string(), table));
    }
    summary.floor_sums = [
        ("store (Figure 4, with --certify)", sums::STORE),
        ("retrieve (Figure 4)", sums::RETRIEVE),
        (
            "recovery (Figures 5 and 6: request to verified plaintext, without storing it again)",
            sums::RECOVERY,
        ),
        (
            "recovery.store_again (in Figures 7 and 8's recoveries, not in Figure 5's time)",
            sums::STORE_AGAIN,
        ),
    ]
    .into_iter()
    .map(|(name, steps)| sums::describe(name, steps))
    .collect();
    let retried = crate::recovery::conflicts_retried();
    if retried > 0 {
        summary.facts.push(format!(
            "{retried} recovery requests lost a write conflict to another client of the shared network and were asked again (the samples time the attempt that committed)"
        ));
    }
    summary.targets = targets(&summary.lines, &plan, &floors, &measured);

    let markdown = plan.out.join("summary.md");
    std::fs::write(&markdown, summary.to_markdown())
        .map_err(BenchError::io("cannot write the summary", &markdown))?;
    summary.files.push(markdown);
    Ok(summary)
}

/// What the targets need beyond the summary's lines.
#[derive(Debug, Default)]
struct Measured {
    /// Figure 8: (hospitals, recoveries/s) at the most hospitals.
    throughput: Option<(usize, f64)>,
    /// Figure 8's small records: (size, hospitals, recoveries, seconds).
    small: Option<(u64, usize, usize, f64)>,
    /// Figure 7's cross-chain load: (core-ms per recovery, recoveries, hospitals).
    cpu_per_recovery: Option<(f64, usize, usize)>,
}

/// Figures 5–8 with a relay serving `hospitals`; returns what the targets need of them.
async fn recovery_figures_run(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
    floors: &mut Floors,
    hospitals: &[&Hospital],
    summary: &mut Summary,
) -> Result<Measured, BenchError> {
    let source = hospitals[0];
    let patient = workspace.patient(network, "recovery", hospitals).await?;
    let needs_baseline = plan.wants(Figure::Fig6) || plan.wants(Figure::Fig8);
    let baseline = if needs_baseline {
        Some(Baseline::new(network, workspace, &patient).await?)
    } else {
        None
    };
    let mut measured = Measured::default();

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
        floors
            .for_new_document(network, plan, workspace, plan.throughput_size)
            .await?;
        let certified = certify(network, workspace, source, &patient, plan.throughput_size).await?;
        let small = certify(network, workspace, source, &patient, plan.small_size).await?;
        let fig = fig8::run(
            network,
            plan,
            workspace,
            &patient,
            &certified,
            baseline.as_ref(),
            Some(&small),
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
        if let Some((size, r)) = &fig.small {
            summary.facts.push(format!(
                "Figure 8, {} at {} hospitals (sustained small records): {:.2} recoveries/s ({} in {:.1} s)",
                size_label(*size),
                r.hospitals,
                r.per_s(),
                r.recoveries,
                r.seconds
            ));
            measured.small = Some((*size, r.hospitals, r.recoveries, r.seconds));
        }
        measured.throughput = fig.rates.last().map(|r| (r.hospitals, r.per_s()));
    }
    if plan.wants(Figure::Fig7) {
        floors
            .for_new_document(network, plan, workspace, LOAD_SIZE)
            .await?;
        floors.fixed(network, plan).await?;
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
            if matches!(route, Route::CrossChain) && fig.completed > 0 {
                measured.cpu_per_recovery =
                    Some((fig.core_ms_per_operation(), fig.completed, hospitals.len()));
            }
            summary.files.extend(fig.write(&plan.out, name)?);
        }
    }
    Ok(measured)
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

/// A target with its verdict, or "not measured in this run" without one.
fn target(name: String, goal: String, verdict: Option<(String, bool)>) -> Target {
    let (measured, met) = match verdict {
        Some((measured, met)) => (measured, Some(met)),
        None => ("not measured in this run".into(), None),
    };
    Target {
        name,
        goal,
        measured,
        met,
    }
}

/// The targets, checked against what was measured.
fn targets(lines: &[Line], plan: &Plan, floors: &Floors, measured: &Measured) -> Vec<Target> {
    const MB: u64 = 1_000_000;
    let most = plan.most_hospitals();
    let ratio_to_floors = |line: Option<&Line>, limit: f64| {
        line.and_then(|l| l.ratio().map(|r| (l, r))).map(|(l, r)| {
            (
                format!(
                    "p50 {:.1} ms vs sum of floors {:.1} ms: {r:.2}x",
                    l.stats.p50_ms,
                    l.floor_p50_ms.unwrap_or_default()
                ),
                r <= limit,
            )
        })
    };
    let one = find(lines, "fig5", &fig5::recovery_label(MB, 1));
    let many = find(lines, "fig5", &fig5::recovery_label(MB, most));
    let mut targets = vec![target(
        "recovery 1 MB, 1 hospital".into(),
        "p50 <= 1.5x the sum of its floors".into(),
        ratio_to_floors(one, 1.5),
    )];
    targets.push(target(
        format!("recovery 1 MB at {most} hospitals at once"),
        "p50 <= 2x and p99 <= 3x the one-hospital p50".into(),
        one.zip(many).filter(|_| most > 1).map(|(one, many)| {
            let base = one.stats.p50_ms.max(1e-9);
            let (p50, p99) = (many.stats.p50_ms / base, many.stats.p99_ms / base);
            (
                format!(
                    "p50 {:.1} ms ({p50:.2}x), p99 {:.1} ms ({p99:.2}x) vs one hospital's p50 {:.1} ms",
                    many.stats.p50_ms, many.stats.p99_ms, one.stats.p50_ms
                ),
                p50 <= 2.0 && p99 <= 3.0,
            )
        }),
    ));
    targets.push(target(
        "recovery 15 MB, 1 hospital".into(),
        "p50 <= 400 ms".into(),
        find(lines, "fig5", &fig5::recovery_label(15 * MB, 1)).map(|l| {
            (
                format!("p50 {:.1} ms", l.stats.p50_ms),
                l.stats.p50_ms <= 400.0,
            )
        }),
    ));
    targets.push(target(
        "store 15 MB".into(),
        "p50 <= 1.25x its floors".into(),
        ratio_to_floors(find(lines, "fig4", "store 15 MB"), 1.25),
    ));
    targets.push(target(
        format!(
            "{} recoveries/s across {most} hospitals",
            size_label(plan.small_size)
        ),
        ">= 50 recoveries/s sustained".into(),
        measured.small.map(|(_, hospitals, count, seconds)| {
            let rate = count as f64 / seconds.max(1e-9);
            (
                format!("{rate:.2}/s ({count} in {seconds:.1} s at {hospitals} hospitals)"),
                rate >= 50.0,
            )
        }),
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let byte_steps = [sums::RECOVERY, sums::STORE_AGAIN].concat();
    targets.push(target(
        format!(
            "{} recoveries/s vs the machine's ceiling",
            size_label(plan.throughput_size)
        ),
        ">= half of cores / (CPU of every pass a recovery makes over the bytes)".into(),
        measured
            .throughput
            .zip(floors.size_if_measured(plan.throughput_size))
            .map(|((hospitals, rate), size)| {
                let passes_ms = sums::byte_passes_cpu_ms(&byte_steps, &size);
                let ceiling = cores as f64 * 1000.0 / passes_ms.max(1e-9);
                (
                    format!(
                        "{rate:.2}/s at {hospitals} hospitals; ceiling {ceiling:.2}/s = {cores} cores / {passes_ms:.1} core-ms of byte passes (decrypt, watermark check, Kubo cat, and the re-store's encrypt, SHA3, S3 put): {:.2} of it",
                        rate / ceiling
                    ),
                    rate >= ceiling / 2.0,
                )
            }),
    ));
    targets.push(target(
        format!("CPU per recovery of {} (Figure 7)", size_label(LOAD_SIZE)),
        "<= 1.5x the sum of its parts' CPU floors".into(),
        measured
            .cpu_per_recovery
            .zip(floors.fixed_if_measured())
            .zip(floors.size_if_measured(LOAD_SIZE))
            .and_then(|(((core_ms, count, hospitals), fixed), size)| {
                let parts = sums::sum(&byte_steps, &fixed, &size)?.cpu_ms;
                let ratio = core_ms / parts.max(1e-9);
                Some((
                    format!(
                        "{core_ms:.1} core-ms per recovery ({count} recoveries at {hospitals} hospitals, with the re-store) vs {parts:.1} core-ms of floors: {ratio:.2}x"
                    ),
                    ratio <= 1.5,
                ))
            }),
    ));
    targets
}
