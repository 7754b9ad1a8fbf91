//! Time to create and to check an Argon2id password verifier with the default parameters.
//!
//! `cargo bench -p medcert-crypto --bench argon2_verify`

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::time::{Duration, Instant};

use medcert_crypto::{PasswordParams, PasswordVerifier};

const ROUNDS: usize = 10;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let params = PasswordParams::default();
    println!(
        "Argon2id m={} KiB, t={}, p={}; {ROUNDS} rounds each",
        params.memory_kib, params.iterations, params.parallelism
    );
    let hash_times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            PasswordVerifier::hash(b"correct horse battery staple", &params).unwrap();
            start.elapsed()
        })
        .collect();
    let verifier = PasswordVerifier::hash(b"correct horse battery staple", &params).unwrap();
    let time_verify = |password: &[u8], expect_ok: bool| -> Vec<Duration> {
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(verifier.verify(password).is_ok(), expect_ok);
                start.elapsed()
            })
            .collect()
    };
    let right = time_verify(b"correct horse battery staple", true);
    let wrong = time_verify(b"correct horse battery stapler", false);
    println!("hash:                  median {:.1?}", median(hash_times));
    println!("verify right password: median {:.1?}", median(right));
    println!("verify wrong password: median {:.1?}", median(wrong));
}
