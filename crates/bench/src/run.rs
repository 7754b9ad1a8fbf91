//! One benchmark run: the figures asked for, their floors, the files and the summary.

use std::path::PathBuf;

use medcert_network::Network;

use crate::config::{BenchArgs, Figure, Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::Workspace;
use crate::floors::Floors;
use crate::report::{Line, Summary, Target, machine};
use crate::{fig4, fig7};

/// Record size of the sustained load behind Figure 7.
const LOAD_SIZE: u64 = 100_000;

/// Runs the figures `args` asks for against `network`, writes their CSV files, PNG plots
/// and summary.md into `args.out`, and returns the summary.
pub async fn run(network: &Network, args: &BenchArgs) -> Result<Summary, BenchError> {
    let plan = Plan::new(args, network.fabric.hospitals.len());
    std::fs::create_dir_all(&plan.out)
        .map_err(BenchError::io("cannot create the results directory", &plan.out))?;
    let workspace = Workspace::new()?;
    let mut floors = Floors::new(workspace.path());
    let mut summary = Summary {
        machine: machine(),
        ..Summary::default()
    };

    if plan.wants(Figure::Fig4) {
        let fig = fig4::run(network, &plan, &workspace, &mut floors).await?;
        summary.files.extend(fig.write(&plan.out)?);
        summary.lines.extend(fig.lines);
    }
    for figure in [Figure::Fig5, Figure::Fig6, Figure::Fig8] {
        if plan.wants(figure) {
            summary.skipped.push(format!(
                "{}: needs the cross-chain recovery flow (relay and `medcert` recover), not wired into the benchmark yet",
                figure.name()
            ));
        }
    }
    if plan.wants(Figure::Fig7) {
        let fig = store_retrieve_load(network, &plan, &workspace).await?;
        summary.files.extend(fig.write(&plan.out)?);
        summary.facts.push(format!(
            "Figure 7 load: {} for {:.0} s, {} operations ({:.2}/s)",
            fig.load,
            fig.duration.as_secs_f64(),
            fig.completed,
            fig.rate()
        ));
        for (group, usage) in fig.by_group() {
            summary.facts.push(format!(
                "Figure 7 {group}: CPU mean {:.1}% peak {:.1}% of one core, peak RSS {:.0} MiB",
                usage.mean_cpu_percent, usage.peak_cpu_percent, usage.peak_rss_mib
            ));
        }
    }

    if let Some(fixed) = floors.fixed_if_measured() {
        for (what, stats) in [
            ("Fabric commit: peer chaincode invoke --waitForEvent", fixed.fabric_commit),
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
    summary.targets = targets(&summary.lines, &plan);

    let markdown = plan.out.join("summary.md");
    std::fs::write(&markdown, summary.to_markdown())
        .map_err(BenchError::io("cannot write the summary", &markdown))?;
    summary.files.push(markdown);
    Ok(summary)
}

/// Figure 7's load until the recovery flow is wired in: every hospital of the plan's
/// largest count stores, certifies and retrieves records back to back.
async fn store_retrieve_load(
    network: &Network,
    plan: &Plan,
    workspace: &Workspace,
) -> Result<fig7::Fig7, BenchError> {
    let count = plan.hospital_counts.iter().copied().max().unwrap_or(1);
    let hospitals: Vec<_> = network.fabric.hospitals.iter().take(count).collect();
    let patient = workspace.patient(network, "fig7", &hospitals).await?;
    let mut documents = Vec::new();
    for hospital in &hospitals {
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
    tracing::info!(%load, seconds = plan.load.as_secs(), "figure 7");
    let (patient, documents, hospitals) = (&patient, &documents, &hospitals);
    fig7::run(&network.run_dir, &load, hospitals.len(), plan.load, |worker| {
        let hospital = hospitals[worker];
        let document: &PathBuf = &documents[worker];
        async move {
            let treatment = patient
                .treatment_number(&hospital.id)
                .expect("registered above");
            fig4::one_round(network, workspace, hospital, patient, treatment, document, None)
                .await
        }
    })
    .await
}

fn find<'a>(lines: &'a [Line], figure: &str, what: &str) -> Option<&'a Line> {
    lines.iter().find(|l| l.figure == figure && l.what == what)
}

/// The targets, checked against the lines measured.
fn targets(lines: &[Line], plan: &Plan) -> Vec<Target> {
    let not_measured = |name: &str, goal: &str| Target {
        name: name.into(),
        goal: goal.into(),
        measured: "not measured in this run".into(),
        met: None,
    };
    let mut targets = Vec::new();

    let store_goal = "store of 15 MB <= 1.25x its floors";
    targets.push(match find(lines, "fig4", "store 15 MB") {
        Some(line) => match line.ratio() {
            Some(ratio) => Target {
                name: "store 15 MB".into(),
                goal: store_goal.into(),
                measured: format!(
                    "p50 {:.1} ms vs floors {:.1} ms: {ratio:.2}x",
                    line.stats.p50_ms,
                    line.floor_p50_ms.unwrap_or_default()
                ),
                met: Some(ratio <= 1.25),
            },
            None => not_measured("store 15 MB", store_goal),
        },
        None => not_measured("store 15 MB", store_goal),
    });
    let hospitals = plan.hospital_counts.iter().copied().max().unwrap_or(1);
    targets.push(not_measured(
        &format!("recovery 1 MB at {hospitals} hospitals"),
        "p50 <= 250 ms and p99 <= 500 ms",
    ));
    targets.push(not_measured(
        "recovery end to end",
        "<= 1.3x the sum of its floors",
    ));
    targets.push(not_measured(
        &format!("recovery throughput at {hospitals} hospitals"),
        ">= 100 recoveries/s",
    ));
    targets
}
