//! Watermark embed and verify throughput on a generated 50 MB C-CDA document, in memory.
//! Run with `cargo bench -p medcert-watermark --bench throughput`; set
//! `WATERMARK_BENCH_MB` to change the size. Target: at least 200 MB/s.

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::io::Cursor;
use std::time::{Duration, Instant};

use medcert_ccda::{GeneratorConfig, generate};
use medcert_watermark::{Mark, SigningKey, Verdict, embed, verify};

const ROUNDS: usize = 5;

fn main() {
    let megabytes: u64 = std::env::var("WATERMARK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let config = GeneratorConfig {
        seed: 2024,
        target_size: megabytes * 1_000_000,
        patient_id: "MTN-000123".into(),
        hospital: "Riverside General Hospital".into(),
    };
    let mut document = Vec::new();
    generate(&config, &mut document).expect("generating into memory");
    let size = document.len();
    let key = SigningKey::from_bytes(&[42; 32]);
    let verifying_key = key.verifying_key();
    let mark = Mark {
        hospital_id: "hospital1",
        record_id: "3f1c9a2e-77b4-4c1e-9d0a-5b6e8f2a1c3d",
        issued_at: 1_760_000_000,
    };

    let mut marked = Vec::with_capacity(size + 4096);
    let mut embed_times = Vec::new();
    let mut verify_times = Vec::new();
    for _ in 0..ROUNDS {
        marked.clear();
        let started = Instant::now();
        embed(&mut Cursor::new(&document), &mut marked, &mark, &key).expect("embedding");
        embed_times.push(started.elapsed());

        let started = Instant::now();
        let verification = verify(&marked[..], |_| Some(verifying_key)).expect("verifying");
        verify_times.push(started.elapsed());
        assert!(matches!(verification.verdict, Verdict::Authentic { .. }));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let embed_time = median(&mut embed_times);
    let verify_time = median(&mut verify_times);
    let rate = |time: Duration| size as f64 / 1e6 / time.as_secs_f64();
    println!(
        "document: {:.1} MB (generated C-CDA, seed 2024)",
        size as f64 / 1e6
    );
    println!(
        "embed  (2 passes): {:>8.1} ms  {:>7.1} MB/s  (median of {ROUNDS})",
        embed_time.as_secs_f64() * 1e3,
        rate(embed_time)
    );
    println!(
        "verify (1 pass):   {:>8.1} ms  {:>7.1} MB/s",
        verify_time.as_secs_f64() * 1e3,
        rate(verify_time)
    );
    println!(
        "embed + verify:    {:>8.1} ms  {:>7.1} MB/s  (target >= 200 MB/s)",
        (embed_time + verify_time).as_secs_f64() * 1e3,
        rate(embed_time + verify_time)
    );
}
