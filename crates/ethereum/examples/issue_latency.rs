//! Issue latency on the running anvil: the time from sending `issueCertificate` (gas
//! estimation, signing, submission) to its receipt with the configured confirmations (1),
//! over sequential issues. Prints p50/p90/p99/max.
//!     cargo run --release -p medcert-ethereum --example issue_latency -- [COUNT] [POLL_MS]
//! COUNT defaults to 50 and is capped at 1000; POLL_MS (receipt polling interval) to 20.

#![allow(unused_crate_dependencies)] // an example links every dependency of its package

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::Fixture;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .map_or(50, |a| a.parse().expect("COUNT is a number"));
    let count = count.clamp(1, 1000);
    let poll_ms: u64 = args
        .next()
        .map_or(20, |a| a.parse().expect("POLL_MS is a number"));

    let mut config = support::chain_config();
    config.poll_interval = Duration::from_millis(poll_ms);
    let f = Fixture::deploy(config).await;
    let hospital = &f.hospital;
    let patient = f.patient.address().into();

    let mut samples = Vec::with_capacity(count as usize);
    for record in 1..=count {
        let (authorization, signature) = f.authorization(record, record);
        let started = Instant::now();
        hospital
            .issue_certificate(&authorization, patient, &signature)
            .await
            .expect("issue a certificate");
        samples.push(started.elapsed());
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "issue latency on anvil ({} issues, {} confirmation, {} ms receipt polling): \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
        samples.len(),
        f.config.confirmations,
        poll_ms,
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(*samples.last().unwrap()),
        ms(mean),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
