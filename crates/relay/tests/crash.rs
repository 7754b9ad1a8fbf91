//! The relay binary killed (SIGKILL) at each step and restarted: every recovery
//! completes exactly once (one RecoveryServed event, one answer on the channel).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medcert_relay::store::{Outcome, Status, Store, message_key};
use support::{Patient, assert_completed_once, network, served_logs};

const WAIT: Duration = Duration::from_secs(120);

/// A relay process, killed when dropped (also when a test fails half-way).
struct RelayProcess(Child);

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

/// Starts the binary for one hospital, its stderr going to `log`.
fn spawn(dir: &Path, hospital: &str, pause_at: Option<&str>, log: &Path) -> RelayProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medcert-relay"));
    command
        .args([
            "--state-dir",
            dir.to_str().unwrap(),
            "run",
            "--hospitals",
            hospital,
        ])
        .env("RUST_LOG", "medcert_relay=info")
        .env_remove("MEDCERT_RELAY_PAUSE_AT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(step) = pause_at {
        command.env("MEDCERT_RELAY_PAUSE_AT", step);
    }
    RelayProcess(command.spawn().unwrap())
}

/// Waits until `log` has a line containing `needle`.
async fn wait_for(log: &Path, needle: &str, relay: &mut RelayProcess) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        if let Some(status) = relay.0.try_wait().unwrap() {
            panic!("relay exited ({status}) before {needle:?}:\n{text}");
        }
        assert!(
            start.elapsed() < WAIT,
            "no {needle:?} in the relay's log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn crash_at(step: &str, hospital_index: usize) {
    let net = network();
    let hospital = &net.fabric.hospitals[hospital_index];
    let patient = Patient::new(&net, hospital).await;
    let dir = tempfile::tempdir().unwrap();
    let first_log = dir.path().join("first.log");
    let mut relay = spawn(dir.path(), &hospital.id, Some(step), &first_log);
    wait_for(&first_log, "relay started", &mut relay).await;

    let index = patient
        .request_recovery(patient.consent(2, patient.now + 3600))
        .await;
    wait_for(
        &first_log,
        &format!("paused at {step} index={index}"),
        &mut relay,
    )
    .await;
    drop(relay);

    // Other relays on the shared network (the CLI's, other tests') may act on this
    // request too; what must hold whoever acts is checked, plus what this step implies.
    let id = medcert_relay::request_id(&hospital.channel, index);
    let served = served_logs(&net, id).await.len();
    let state = patient.outcome_now(index).await["state"].clone();
    assert!(served <= 1, "{served} RecoveryServed events");
    match step {
        // A sent transaction may not be mined yet when the relay dies.
        "read_event" | "eth_sent" | "eth_broadcast" => {}
        "eth_receipt" => assert_eq!(served, 1),
        "fabric_submitted" => assert_eq!((served, state.as_str()), (1, Some("completed"))),
        _ => unreachable!(),
    }

    let second_log = dir.path().join("second.log");
    let mut relay = spawn(dir.path(), &hospital.id, None, &second_log);
    let key = message_key(&hospital.channel, index);
    wait_for(&second_log, &format!("answered request={key}"), &mut relay).await;
    drop(relay);

    let outcome = patient.outcome(index, WAIT).await;
    assert_completed_once(&net, &patient, index, &outcome).await;
    // The store agrees with the channel: answered once, by the transaction it holds.
    let store = Store::open(dir.path()).unwrap();
    match store.message(&key).unwrap().unwrap().status {
        Status::Answered {
            outcome: Outcome::Completed { result, proof },
            fabric_tx,
            ..
        } => {
            assert_eq!(result, outcome["result"].as_str().unwrap());
            // The channel records what the relay proved: the receipt's block.
            assert_eq!(proof.kind, medcert_hospital_api::ProofKind::Receipt);
            let served: serde_json::Value = serde_json::from_str(&result).unwrap();
            assert_eq!(served["eth_block"], proof.block_number);
            assert_eq!(fabric_tx, outcome["tx"].as_str().unwrap());
        }
        other => panic!("message {key} is {other:?}"),
    }
}

#[tokio::test]
async fn killed_after_reading_the_event() {
    crash_at("read_event", 2).await;
}

#[tokio::test]
async fn killed_after_sending_the_ethereum_transaction() {
    crash_at("eth_sent", 3).await;
}

#[tokio::test]
async fn killed_between_sending_the_ethereum_transaction_and_its_mining() {
    crash_at("eth_broadcast", 7).await;
}

#[tokio::test]
async fn killed_after_the_receipt() {
    crash_at("eth_receipt", 4).await;
}

#[tokio::test]
async fn killed_after_the_fabric_submit() {
    crash_at("fabric_submitted", 5).await;
}
