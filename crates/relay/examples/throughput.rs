//! Recoveries per second through one relay serving every hospital of the shared network,
//! and the relay's own overhead per recovery.
//!
//! Each hospital gets a patient with a certificate; the relay is started once (fixing
//! its checkpoints at the channels' heights) and stopped; `REQUESTS` recovery requests
//! per hospital are committed meanwhile; then the relay is started again and timed
//! until it has answered all of them.
//!
//! `cargo run --release -p medcert-relay --example throughput [-- REQUESTS [HOSPITALS]]`
//! (defaults: 5 requests, every hospital).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use medcert_relay::{Relay, RelayConfig};
use support::{Patient, network, unix_now};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "medcert_relay=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let per_hospital: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 5,
    };
    let net = network();
    let hospital_count = match std::env::args().nth(2) {
        Some(n) => n.parse()?,
        None => net.fabric.hospitals.len(),
    };
    let hospitals: Vec<_> = net
        .fabric
        .hospitals
        .iter()
        .take(hospital_count)
        .cloned()
        .collect();
    println!(
        "setting up {} hospitals × {per_hospital} requests",
        hospitals.len()
    );
    let patients = join_all(hospitals.iter().map(|h| Patient::new(&net, h))).await;

    let state = tempfile::tempdir()?;
    let mut config = RelayConfig::new(net.clone(), state.path().to_owned());
    config.only_hospitals = Some(hospitals.iter().map(|h| h.id.clone()).collect());
    Relay::start(config.clone()).await?.shutdown().await;

    let expiry = unix_now() + 3600;
    let backlog: Vec<Vec<u64>> = join_all(patients.iter().map(|p| async move {
        let mut indices = Vec::new();
        for n in 0..per_hospital {
            indices.push(p.request_recovery(p.consent(2 + n, expiry)).await);
        }
        indices
    }))
    .await;
    let total = per_hospital * hospitals.len() as u64;

    let started = Instant::now();
    let relay = Relay::start(config).await?;
    let metrics = relay.metrics();
    loop {
        let answered =
            metrics.served.load(Ordering::Relaxed) + metrics.failed.load(Ordering::Relaxed);
        if answered >= total {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {answered} of {total} answered after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    relay.shutdown().await;

    let mut completed = 0;
    for (patient, indices) in patients.iter().zip(&backlog) {
        for &index in indices {
            if patient.outcome_now(index).await["state"] == "completed" {
                completed += 1;
            }
        }
    }
    let (count, mean, max) = metrics.overhead.summary();
    let (_, e2e_mean, e2e_max) = metrics.end_to_end.summary();
    println!(
        "{total} recoveries ({completed} completed) over {} hospitals in {:.2} s: {:.1} recoveries/s",
        hospitals.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "relay overhead per recovery (verification + bookkeeping, no chain waits): mean {:.3} ms, max {:.3} ms over {count}",
        mean.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    println!(
        "admission to committed answer: mean {:.0} ms, max {:.0} ms",
        e2e_mean.as_secs_f64() * 1e3,
        e2e_max.as_secs_f64() * 1e3
    );
    anyhow::ensure!(
        completed == total,
        "{} recoveries did not complete",
        total - completed
    );
    Ok(())
}
