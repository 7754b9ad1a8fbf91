//! Peak memory while encrypting a 1 GiB stream: the record comes from a generator (never held
//! in memory), goes through `encrypt_stream` and into a sink; VmHWM is read from /proc.
//!
//! `cargo bench -p medcert-crypto --bench encrypt_1gb`

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::fs;
use std::io::{self, Read};
use std::time::Instant;

use medcert_crypto::{Dek, RecordAad, encrypt_stream};
use rand::RngCore;

const STREAM_LEN: u64 = 1 << 30;

/// Yields `remaining` bytes by repeating one random 64 KiB block.
struct Generator {
    block: Vec<u8>,
    offset: usize,
    remaining: u64,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.block.len() - self.offset)
            .min(self.remaining.try_into().unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.block[self.offset..self.offset + n]);
        self.offset = (self.offset + n) % self.block.len();
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn main() {
    let mut block = vec![0u8; 64 * 1024];
    rand::thread_rng().fill_bytes(&mut block);
    let source = Generator {
        block,
        offset: 0,
        remaining: STREAM_LEN,
    };
    let before = vm_hwm_kib();
    let aad = RecordAad {
        record_id: "bench-1gb",
        hospital_id: "hospital1",
    };
    let start = Instant::now();
    let hash_c = encrypt_stream(&Dek::generate(), &aad, source, io::sink()).unwrap();
    let elapsed = start.elapsed();
    let peak = vm_hwm_kib();
    println!(
        "encrypted 1 GiB in {elapsed:.2?} ({:.2} GB/s, with Hash C) -> Hash C {hash_c}",
        STREAM_LEN as f64 / elapsed.as_secs_f64() / 1e9
    );
    println!(
        "peak RSS (VmHWM): {:.1} MiB (before encrypting: {:.1} MiB); target < 64 MB",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}
