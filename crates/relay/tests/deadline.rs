//! Deadlines as in IBC, on the live network: a `serveRecovery` held back until the
//! request's deadline passed on the certificate chain. The relay fails the request on the
//! hospital's channel with the proof that it was not served by a verified block past the
//! deadline; the late transaction, mined after all, reverts; both chains agree.
//!
//! It stops anvil's automatic mining for a few seconds, so it lives in a test binary of
//! its own (cargo runs test binaries one after another).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::time::{Duration, Instant};

use medcert_ethereum::ethers::providers::{Http, Middleware, Provider};
use medcert_ethereum::ethers::types::{Bytes, H256};
use medcert_hospital_api::ProofKind;
use medcert_relay::store::{Status, Store, message_key};
use medcert_relay::{Relay, RelayConfig};
use support::{Patient, network, served_logs};

const WAIT: Duration = Duration::from_secs(120);

async fn anvil(provider: &Provider<Http>, method: &str, params: serde_json::Value) {
    let _: serde_json::Value = provider.request(method, params).await.unwrap();
}

#[tokio::test]
async fn a_transaction_held_past_the_deadline_fails_the_request_with_proof_and_reverts() {
    let net = network();
    let hospital = &net.fabric.hospitals[8];
    let mut patient = Patient::new(&net, hospital).await;
    let provider = Provider::<Http>::try_from(net.ethereum.rpc_url.as_str()).unwrap();
    patient.deadline = patient.now + 90;
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(net.clone(), dir.path().to_owned());
    config.only_hospitals = Some(vec![hospital.id.clone()]);
    config.request_timeout = Duration::from_secs(1);

    // The relay's transaction reaches the node but is not mined.
    anvil(&provider, "evm_setAutomine", serde_json::json!([false])).await;
    let relay = Relay::start(config).await.unwrap();
    let index = patient
        .request_recovery(patient.consent(2, patient.now + 3600))
        .await;
    let key = message_key(&hospital.channel, index);
    let started = Instant::now();
    let relay_account = format!("{:#x}", relay_account(&net));
    let tx: H256 = loop {
        assert!(started.elapsed() < WAIT, "serveRecovery was never sent");
        let pool: serde_json::Value = provider
            .request("txpool_content", serde_json::json!([]))
            .await
            .unwrap();
        let pending = pool["pending"].as_object().cloned().unwrap_or_default();
        let sent = pending
            .iter()
            .find(|(from, _)| from.to_lowercase() == relay_account)
            .and_then(|(_, by_nonce)| by_nonce.as_object()?.values().next().cloned());
        if let Some(sent) = sent {
            break serde_json::from_value(sent["hash"].clone()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Held back: the chain's clock passes the deadline (so that the relay cannot send
    // again), the transaction is dropped (its signed bytes kept), a block is mined.
    let held = provider.get_transaction(tx).await.unwrap().unwrap().rlp();
    anvil(&provider, "evm_increaseTime", serde_json::json!([180])).await;
    anvil(&provider, "anvil_dropTransaction", serde_json::json!([tx])).await;
    anvil(&provider, "evm_mine", serde_json::json!([])).await;
    anvil(&provider, "evm_setAutomine", serde_json::json!([true])).await;

    // The channel holds the failure, with the proof of the unserved request.
    let outcome = patient.outcome(index, WAIT).await;
    assert_eq!(outcome["state"], "failed", "{outcome}");
    let recovery = patient
        .doctor
        .get_recovery_status(&medcert_hospital_api::args::GetRecoveryStatus { index })
        .await
        .unwrap();
    let proof = recovery.proof.expect("the failure records its proof");
    assert_eq!(proof.kind, ProofKind::Unserved);
    assert!(proof.block_time > patient.deadline, "{proof:?}");
    relay.shutdown().await;
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.message(&key).unwrap().unwrap().status,
        Status::Answered { .. }
    ));

    // The late transaction is mined after all, and reverts: the chain agrees.
    let late = provider
        .send_raw_transaction(Bytes::from(held.to_vec()))
        .await
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        late.status,
        Some(0u64.into()),
        "the late serveRecovery reverted"
    );
    let id = medcert_relay::request_id(&hospital.channel, index);
    assert!(served_logs(&net, id).await.is_empty());
}

/// The account the relay sends from (accounts[1] of the network description).
fn relay_account(net: &medcert_network::Network) -> medcert_ethereum::ethers::types::Address {
    use medcert_ethereum::ethers::signers::Signer;
    medcert_ethereum::wallet_from_hex(&net.ethereum.accounts[1].private_key)
        .unwrap()
        .address()
}
