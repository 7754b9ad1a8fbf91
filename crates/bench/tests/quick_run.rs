//! `--quick` against the shared network (its relay started in-process): every figure's
//! files are written, with the right columns, and the PNGs are PNGs.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use medcert_bench::{BenchArgs, Figure};
use medcert_network::Network;

fn header(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn rows(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[tokio::test]
async fn quick_run_writes_every_file() {
    let network = Network::load().expect("network description not found: run deploy/up");
    let out = tempfile::tempdir().unwrap();
    let args = BenchArgs {
        quick: true,
        figures: Figure::ALL.to_vec(),
        load_secs: 3,
        out: out.path().to_owned(),
        ..BenchArgs::default()
    };
    let summary = medcert_bench::run(&network, &args).await.unwrap();

    let dir = out.path();
    // Every CSV file's header, and its rows where the quick plan fixes how many.
    let csvs: [(&str, &str, Option<usize>); 9] = [
        (
            "fig4.csv",
            "operation,size_bytes,size,rounds,mean_ms,p50_ms,p99_ms,floor_p50_ms,ratio_p50",
            // 2 sizes x 12 operations (totals and steps).
            Some(24),
        ),
        (
            "floors.csv",
            "floor,size_bytes,size,rounds,mean_ms,p50_ms,p99_ms,cpu_ms_per_op",
            // The 5 fixed floors, then 9 per size: 10 KB, 100 KB (figure 4) and 1 MB
            // (figures 5, 7 and 8).
            Some(5 + 3 * 9),
        ),
        (
            "stock_tools.csv",
            "tool,size_bytes,size,rounds,mean_ms,p50_ms,p99_ms",
            // peer invoke and query, then ipfs add and cat per size.
            Some(2 + 3 * 2),
        ),
        (
            "fig7.csv",
            "load,process,mean_cpu_percent,peak_cpu_percent,peak_rss_mib",
            None,
        ),
        (
            "fig7_samples.csv",
            "load,t_s,process,cpu_percent,rss_mib",
            None,
        ),
        (
            "fig5.csv",
            "operation,size_bytes,size,hospitals,rounds,mean_ms,p50_ms,p99_ms,floor_p50_ms,ratio_p50",
            // 1 size x 2 hospital counts x 12 operations (recovery, baseline and their steps).
            Some(24),
        ),
        (
            "fig6.csv",
            "size_bytes,size,hospitals,medcert_p50_ms,baseline_p50_ms,medcert_mean_ms,baseline_mean_ms,ratio_p50",
            Some(2),
        ),
        (
            "fig8.csv",
            "size_bytes,hospitals,recoveries,seconds,recoveries_per_s,baseline_per_s",
            // 2 hospital counts, then the small records at the most hospitals.
            Some(3),
        ),
        (
            "fig7_baseline.csv",
            "load,process,mean_cpu_percent,peak_cpu_percent,peak_rss_mib",
            None,
        ),
    ];
    for (file, columns, count) in csvs {
        assert_eq!(header(&dir.join(file)), columns, "{file}");
        if let Some(count) = count {
            assert_eq!(rows(&dir.join(file)), count, "{file}");
        }
    }
    // Every step of medcert's store, retrieve and recovery has its floor and ratio.
    for file in ["fig4.csv", "fig5.csv"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for row in text.lines().skip(1).filter(|r| !r.starts_with("baseline")) {
            let fields: Vec<&str> = row.split(',').collect();
            let [.., floor, ratio] = fields[..] else {
                panic!("{file}: {row}");
            };
            assert!(
                floor.parse::<f64>().is_ok_and(|f| f > 0.0) && ratio.parse::<f64>().is_ok(),
                "{file}: no floor in {row}"
            );
        }
    }
    let fig7 = std::fs::read_to_string(dir.join("fig7.csv")).unwrap();
    for process in ["peer", "orderer", "anvil", "medcert (bench + CLI flows)"] {
        assert!(fig7.contains(process), "no {process} in fig7.csv:\n{fig7}");
    }
    assert!(fig7.contains("medcert relay (in-process)"), "{fig7}");
    for png in [
        "fig4.png",
        "fig5.png",
        "fig6.png",
        "fig7_cpu.png",
        "fig7_rss.png",
        "fig7_baseline_cpu.png",
        "fig8.png",
    ] {
        assert!(is_png(&dir.join(png)), "{png} is not a PNG");
    }
    let markdown = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        markdown.contains("| fig4 | store 10 KB | 2 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| fig5 | recovery 1 MB at 2 hospitals | 4 |"),
        "{markdown}"
    );
    // The floors, the stock tools apart from them, what each floor sum is made of.
    for section in [
        "## Floors (one persistent connection each",
        "| Fabric commit (Gateway submit of Version, one connection) |  |  | 2 |",
        "| key-service round trip (SignWatermark, one connection) |",
        "| Kubo RPC cat (one client) | 1000000 | 1 MB | 2 |",
        "| watermark check with content fingerprint (in memory) | 100000 | 100 KB | 2 |",
        "## What the stock tools cost",
        "| peer chaincode invoke --waitForEvent (Version) |  |  | 2 |",
        "| ipfs cat (CLI) | 10000 | 10 KB | 2 |",
        "## What each sum of floors is made of",
        "- recovery (Figures 5 and 6: request to verified plaintext, without storing it again) = password check",
        "the patient agent's releaseKey [anvil tx]",
        "## Targets",
    ] {
        assert!(markdown.contains(section), "no {section:?} in:\n{markdown}");
    }
    let floors_section =
        &markdown[markdown.find("## Floors").unwrap()..markdown.find("## What the stock").unwrap()];
    assert!(
        !floors_section.contains("peer chaincode"),
        "{floors_section}"
    );
    // Every target is shown; those the quick plan measures have a verdict.
    for (name, verdict) in [
        ("recovery 1 MB, 1 hospital", true),
        ("recovery 1 MB at 2 hospitals at once", true),
        ("recovery 15 MB, 1 hospital", false),
        ("store 15 MB", false),
        ("100 KB recoveries/s across 2 hospitals", true),
        ("1 MB recoveries/s vs the machine's ceiling", true),
        ("CPU per recovery of 1 MB (Figure 7)", true),
    ] {
        let target = summary
            .targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no target {name}: {:?}", summary.targets));
        assert_eq!(target.met.is_some(), verdict, "{target:?}");
        let row = format!(
            "| {name} | {} | {} | {} |",
            target.goal,
            target.measured,
            target.verdict()
        );
        assert!(markdown.contains(&row), "no {row:?} in:\n{markdown}");
    }
    assert!(markdown.contains(
        "| store 15 MB | p50 <= 1.25x its floors | not measured in this run | NOT MEASURED |"
    ));
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    assert_eq!(
        summary.lines.iter().filter(|l| l.figure == "fig4").count(),
        4
    );
    assert_eq!(
        summary.lines.iter().filter(|l| l.figure == "fig5").count(),
        2
    );
    assert!(summary.files.iter().all(|f| f.exists()));
}
