//! `--quick` against the shared network: every file of the figures asked for is written,
//! with the right columns, and the PNGs are PNGs.

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
        figures: vec![Figure::Fig4, Figure::Fig7],
        load_secs: 3,
        out: out.path().to_owned(),
        ..BenchArgs::default()
    };
    let summary = medcert_bench::run(&network, &args).await.unwrap();

    let dir = out.path();
    assert_eq!(
        header(&dir.join("fig4.csv")),
        "operation,size_bytes,size,rounds,mean_ms,p50_ms,p99_ms,floor_p50_ms,ratio_p50"
    );
    // 2 sizes x 12 operations (totals and steps).
    assert_eq!(rows(&dir.join("fig4.csv")), 24);
    assert_eq!(
        header(&dir.join("floors.csv")),
        "floor,size_bytes,size,rounds,mean_ms,p50_ms,p99_ms"
    );
    assert_eq!(rows(&dir.join("floors.csv")), 3 + 2 * 6);
    assert_eq!(
        header(&dir.join("fig7.csv")),
        "load,process,mean_cpu_percent,peak_cpu_percent,peak_rss_mib"
    );
    assert_eq!(
        header(&dir.join("fig7_samples.csv")),
        "load,t_s,process,cpu_percent,rss_mib"
    );
    let fig7 = std::fs::read_to_string(dir.join("fig7.csv")).unwrap();
    for process in ["peer", "orderer", "anvil", "medcert (bench + CLI flows)"] {
        assert!(fig7.contains(process), "no {process} in fig7.csv:\n{fig7}");
    }
    for png in ["fig4.png", "fig7_cpu.png", "fig7_rss.png"] {
        assert!(is_png(&dir.join(png)), "{png} is not a PNG");
    }
    let markdown = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(markdown.contains("| fig4 | store 10 KB | 2 |"), "{markdown}");
    assert!(markdown.contains("store 15 MB"), "the target line is always shown");
    assert_eq!(summary.lines.iter().filter(|l| l.figure == "fig4").count(), 4);
    assert!(summary.files.iter().all(|f| f.exists()));
}
