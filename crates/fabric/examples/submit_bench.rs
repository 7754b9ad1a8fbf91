//! Submit latency and throughput of the gateway client against the running network,
//! side by side with Fabric's own `peer chaincode invoke --waitForEvent` of the same
//! function. A benchmark that prints figures, not a test.
//!
//!   cargo run --release -p medcert-fabric --example submit_bench [-- ROUNDS]
//!
//! Every transaction calls `Version`, which writes nothing, so the figures are those of
//! endorsement, ordering (the channel's batch timeout) and commit, not of the contract.
#![allow(unused_crate_dependencies)] // an example links every dependency of its package

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use medcert_fabric::{Contract, Gateway, Identity};
use medcert_network::Network;

/// Transactions kept in flight per channel in the throughput runs.
const IN_FLIGHT: usize = 32;
/// Upper bound on each throughput run, whatever the count.
const RUN_LIMIT: Duration = Duration::from_secs(30);

async fn contract(network: &Network, hospital: usize) -> Contract {
    let h = &network.fabric.hospitals[hospital];
    let doctor = &h.doctors[0];
    let identity = Identity::from_files(&doctor.msp_id, &doctor.cert, &doctor.key)
        .expect("doctor identity readable");
    let ca = std::fs::read(&h.peer().tls_ca).expect("peer TLS CA readable");
    Gateway::connect(&h.peer().endpoint, &h.peer().host, &ca, identity)
        .await
        .expect("gateway reachable")
        .network(&h.channel)
        .contract(&network.fabric.chaincode_name)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 50.0);
    println!(
        "{name:<44} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} rounds)",
        p50.as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.len()
    );
    p50
}

/// One `peer chaincode invoke --waitForEvent` as the hospital's doctor: the environment
/// the peer CLI needs, built from the network description as deploy/ does.
fn peer_invoke(network: &Network, hospital: usize) -> Duration {
    let h = &network.fabric.hospitals[hospital];
    let msp_dir = h.doctors[0]
        .cert
        .parent()
        .and_then(Path::parent)
        .expect("identity cert lives in <msp>/signcerts");
    let started = Instant::now();
    let out = Command::new(network.bin_dir.join("peer"))
        .args(["chaincode", "invoke", "--waitForEvent", "--tls"])
        .args(["-o", &network.fabric.orderer().endpoint])
        .args([
            "--ordererTLSHostnameOverride",
            &network.fabric.orderer().host,
        ])
        .arg("--cafile")
        .arg(&network.fabric.orderer().tls_ca)
        .args(["-C", &h.channel, "-n", &network.fabric.chaincode_name])
        .args(["--peerAddresses", &h.peer().endpoint])
        .arg("--tlsRootCertFiles")
        .arg(&h.peer().tls_ca)
        .args(["-c", r#"{"Args":["Version"]}"#])
        .env("FABRIC_CFG_PATH", network.run_dir.join("fabric/config"))
        .env("CORE_PEER_LOCALMSPID", &h.msp_id)
        .env("CORE_PEER_MSPCONFIGPATH", msp_dir)
        .env("CORE_PEER_TLS_ENABLED", "true")
        .env("CORE_PEER_TLS_ROOTCERT_FILE", &h.peer().tls_ca)
        .env("CORE_PEER_ADDRESS", &h.peer().endpoint)
        .env("CORE_PEER_TLS_SERVERHOSTOVERRIDE", &h.peer().host)
        .output()
        .expect("peer CLI runs");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "peer chaincode invoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    elapsed
}

/// Submits `per_channel` transactions on each contract, `IN_FLIGHT` at a time per
/// channel; returns committed transactions per second.
async fn throughput(contracts: &[Contract], per_channel: usize) -> f64 {
    let started = Instant::now();
    let mut channels = Vec::new();
    for contract in contracts {
        let contract = contract.clone();
        channels.push(tokio::spawn(async move {
            let mut committed = 0usize;
            let mut pending = tokio::task::JoinSet::new();
            let mut issued = 0;
            while committed < per_channel && started.elapsed() < RUN_LIMIT {
                while issued < per_channel && pending.len() < IN_FLIGHT {
                    let c = contract.clone();
                    pending.spawn(async move { c.submit("Version", &[]).await });
                    issued += 1;
                }
                match pending.join_next().await {
                    Some(result) => {
                        result.expect("task").expect("submit commits");
                        committed += 1;
                    }
                    None => break,
                }
            }
            committed
        }));
    }
    let mut total = 0;
    for channel in channels {
        total += channel.await.expect("channel task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("ROUNDS is a number"))
        .unwrap_or(50);
    let network = Network::load().expect("network description: run deploy/up");
    let hospitals = network.fabric.hospitals.len();
    println!("submit benchmark: {hospitals} channels, {rounds} rounds per latency point");

    let one = contract(&network, 0).await;
    one.submit("Version", &[]).await.expect("warm-up submit");
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        one.submit("Version", &[]).await.expect("submit commits");
        samples.push(started.elapsed());
    }
    let ours = summary("medcert-fabric submit → commit, 1 channel", samples);

    peer_invoke(&network, 0);
    let cli_rounds = rounds.min(20);
    let samples = (0..cli_rounds).map(|_| peer_invoke(&network, 0)).collect();
    let theirs = summary("peer chaincode invoke --waitForEvent", samples);
    println!(
        "ratio medcert / peer CLI (p50): {:.2}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );

    let per_channel = rounds * 4;
    let tps_one = throughput(std::slice::from_ref(&one), per_channel).await;
    println!("throughput, 1 channel, {IN_FLIGHT} in flight: {tps_one:.0} tx/s");
    let mut all = Vec::with_capacity(hospitals);
    for h in 0..hospitals {
        all.push(contract(&network, h).await);
    }
    let tps_all = throughput(&all, per_channel).await;
    println!("throughput, {hospitals} channels, {IN_FLIGHT} in flight each: {tps_all:.0} tx/s");
}
