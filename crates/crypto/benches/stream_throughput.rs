//! AES-256-GCM STREAM throughput on one core, 64 KiB vs 1 MiB chunks, over a 64 MiB record held
//! in memory (so only the cipher and hash are measured).
//!
//! `cargo bench -p medcert-crypto --bench stream_throughput`
//!
//! Decryption is AES-256-GCM STREAM alone. Encryption also computes Hash C (SHA3-256 of E') in
//! the same pass, so it is bounded by SHA3; SHA3-256 alone is printed for reference.

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use keccak_asm::Sha3_256;
use medcert_crypto::{Dek, RecordAad, decrypt_stream, encrypt_stream_with_chunk_size};
use rand::RngCore;

const RECORD_LEN: usize = 64 * 1024 * 1024;
const ROUNDS: usize = 7;
const AAD: RecordAad<'static> = RecordAad {
    record_id: "bench-record",
    hospital_id: "hospital1",
};

/// Median and best of `ROUNDS` runs, in GB/s (10^9 bytes per second).
fn measure(mut run: impl FnMut()) -> (f64, f64) {
    run(); // warm up caches and the CPU clock
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    let gbps = |t: Duration| RECORD_LEN as f64 / t.as_secs_f64() / 1e9;
    (gbps(times[ROUNDS / 2]), gbps(times[0]))
}

fn report(what: &str, (median, best): (f64, f64)) {
    println!("{what:<48} median {median:6.2} GB/s   best {best:6.2} GB/s");
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    println!(
        "CPU: aes={} pclmulqdq={} avx2={} (detected at run time)",
        std::arch::is_x86_feature_detected!("aes"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    println!(
        "record: {} MiB, {ROUNDS} rounds, one thread",
        RECORD_LEN >> 20
    );

    let mut record = vec![0u8; RECORD_LEN];
    rand::thread_rng().fill_bytes(&mut record);
    let dek = Dek::generate();

    report(
        "SHA3-256 alone (Hash C cost)",
        measure(|| {
            black_box(Sha3_256::digest(black_box(&record)));
        }),
    );

    for (label, chunk) in [("64 KiB", 64 * 1024), ("1 MiB", 1024 * 1024)] {
        let mut sealed = Vec::with_capacity(RECORD_LEN + RECORD_LEN / chunk * 16 + 4096);
        encrypt_stream_with_chunk_size(&dek, &AAD, chunk, record.as_slice(), &mut sealed).unwrap();
        report(
            &format!("decrypt (AES-256-GCM STREAM), {label} chunks"),
            measure(|| {
                let len = decrypt_stream(&dek, &AAD, sealed.as_slice(), io::sink()).unwrap();
                assert_eq!(len as usize, RECORD_LEN);
            }),
        );
        report(
            &format!("encrypt + Hash C, {label} chunks"),
            measure(|| {
                black_box(
                    encrypt_stream_with_chunk_size(
                        &dek,
                        &AAD,
                        chunk,
                        record.as_slice(),
                        io::sink(),
                    )
                    .unwrap(),
                );
            }),
        );
    }
}
