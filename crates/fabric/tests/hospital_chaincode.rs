//! The hospital chaincode through the gateway client, against the real network from
//! `deploy/up` (needs at least two hospitals).

use futures_util::StreamExt;
use medcert_eip712::PatientSigner;
use medcert_fabric::{Checkpoint, Contract, Error, Gateway, Identity, block};
use medcert_network::Network;

fn network() -> Network {
    Network::load().expect("network description not found: run deploy/up")
}

async fn connect(network: &Network, hospital: usize, who: &medcert_network::Identity) -> Contract {
    let h = &network.fabric.hospitals[hospital];
    let identity = Identity::from_files(&who.msp_id, &who.cert, &who.key).unwrap();
    let ca = std::fs::read(&h.peer.tls_ca).unwrap();
    Gateway::connect(&h.peer.endpoint, &h.peer.host, &ca, identity)
        .await
        .unwrap()
        .network(&h.channel)
        .contract(&network.fabric.chaincode_name)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

fn fresh_seed() -> [u8; 32] {
    let mut seed = [7u8; 32];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    seed[16..].copy_from_slice(&nanos.to_le_bytes());
    seed
}

const HASH: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const PASSWORD: &str = "integration-secret-pw-7f3a";

#[tokio::test]
async fn every_function_and_refusal_on_the_real_network() {
    let net = network();
    let h1 = &net.fabric.hospitals[0];
    let doctor = connect(&net, 0, &h1.doctors[0]).await;
    assert_eq!(doctor.evaluate("Version", &[]).await.unwrap(), b"0.1.0");

    // A fresh patient per run: deletion nonces are spent for good on the ledger, so a
    // fixed key would make a second run against the same network fail.
    let patient = PatientSigner::from_seed(&fresh_seed());
    let address = format!("0x{}", hex::encode(patient.address()));
    let treatment = unique("T");
    let record = unique("R");
    let with_password = |function: &str, args: Vec<String>| {
        doctor
            .new_proposal(function)
            .args(args)
            .transient("password", PASSWORD.as_bytes().to_vec())
    };
    with_password(
        "RegisterPatient",
        vec![treatment.clone(), HASH.into(), address.clone(), HASH.into()],
    )
    .submit()
    .await
    .unwrap();
    let args = vec![
        treatment.clone(),
        record.clone(),
        HASH.into(),
        "10".into(),
        HASH.into(),
        HASH.into(),
    ];
    let created = with_password("CreateRecord", args).submit().await.unwrap();
    assert!(created.block_number > 0);

    // A wrong password commits its refusal.
    let wrong = doctor
        .new_proposal("QueryRecord")
        .args([treatment.as_str(), record.as_str()])
        .transient("password", b"wrong".to_vec())
        .submit()
        .await;
    assert!(
        matches!(wrong, Err(Error::Refused { status: 300, .. })),
        "{wrong:?}"
    );

    // A doctor of hospital 1 on hospital 2's channel.
    let h2 = &net.fabric.hospitals[1];
    let identity = Identity::from_files(
        &h1.doctors[0].msp_id,
        &h1.doctors[0].cert,
        &h1.doctors[0].key,
    )
    .unwrap();
    let ca = std::fs::read(&h2.peer.tls_ca).unwrap();
    let foreign = Gateway::connect(&h2.peer.endpoint, &h2.peer.host, &ca, identity)
        .await
        .unwrap()
        .network(&h2.channel)
        .contract(&net.fabric.chaincode_name);
    assert!(foreign.evaluate("GetRecord", &[&record]).await.is_err());

    // Deletion signed by someone else, then by the patient, then replayed.
    let stranger = PatientSigner::from_seed(&[4; 32]);
    let forged = hex::encode(stranger.sign_deletion(&h1.channel, &record, 1));
    let refused = doctor
        .submit("DeleteRecord", &[&record, "1", &forged])
        .await;
    assert!(
        format!("{refused:?}").contains("not signed by its patient"),
        "{refused:?}"
    );
    let signature = hex::encode(patient.sign_deletion(&h1.channel, &record, 1));
    doctor
        .submit("DeleteRecord", &[&record, "1", &signature])
        .await
        .unwrap();
    let replay = doctor
        .submit("DeleteRecord", &[&record, "1", &signature])
        .await;
    assert!(format!("{replay:?}").contains("already used"), "{replay:?}");
    let state = doctor.evaluate("GetRecord", &[&record]).await.unwrap();
    assert!(String::from_utf8_lossy(&state).contains("\"state\":\"deleted\""));

    // Recovery: request, relay-only completion, idempotence, and the event stream.
    let requested = with_password(
        "RequestRecovery",
        vec![
            treatment.clone(),
            record.clone(),
            "7".into(),
            "0xabcdef".into(),
        ],
    )
    .submit()
    .await
    .unwrap();
    let recovery: serde_json::Value = serde_json::from_slice(&requested.result).unwrap();
    let index = recovery["index"].as_u64().unwrap().to_string();
    let not_relay = doctor.submit("CompleteRecovery", &[&index, "ok"]).await;
    assert!(
        format!("{not_relay:?}").contains("reserved to the relay"),
        "{not_relay:?}"
    );
    let relay = connect(&net, 0, &net.fabric.relay).await;
    let done = relay
        .submit("CompleteRecovery", &[&index, "ok"])
        .await
        .unwrap();
    let again = relay
        .submit("FailRecovery", &[&index, "late"])
        .await
        .unwrap();
    assert_eq!(done.result, again.result);

    let events = relay_events(&net, requested.block_number).await;
    assert!(
        events
            .iter()
            .any(|(name, tx)| name == "InterchainRequest" && *tx == requested.tx_id)
    );

    // No block holds the password or any transient value.
    let gateway_network = {
        let identity =
            Identity::from_files(&h1.admin.msp_id, &h1.admin.cert, &h1.admin.key).unwrap();
        let ca = std::fs::read(&h1.peer.tls_ca).unwrap();
        Gateway::connect(&h1.peer.endpoint, &h1.peer.host, &ca, identity)
            .await
            .unwrap()
            .network(&h1.channel)
    };
    let blocks = gateway_network.blocks(0).await.unwrap();
    assert!(blocks.len() as u64 > created.block_number);
    for b in &blocks {
        let bytes = prost::Message::encode_to_vec(b);
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes())
        );
        for tx in block::transactions(b).unwrap() {
            assert!(
                !tx.endorsements.is_empty()
                    || tx.validation_code != medcert_fabric_protos::protos::TxValidationCode::Valid
            );
        }
    }
}

async fn relay_events(net: &Network, from_block: u64) -> Vec<(String, String)> {
    let h1 = &net.fabric.hospitals[0];
    let relay = &net.fabric.relay;
    let identity = Identity::from_files(&relay.msp_id, &relay.cert, &relay.key).unwrap();
    let ca = std::fs::read(&h1.peer.tls_ca).unwrap();
    let network = Gateway::connect(&h1.peer.endpoint, &h1.peer.host, &ca, identity)
        .await
        .unwrap()
        .network(&h1.channel);
    let start = Checkpoint {
        block_number: from_block,
        after_tx_id: None,
    };
    let stream = network
        .chaincode_events(&net.fabric.chaincode_name, start)
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    let mut events = Vec::new();
    if let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_secs(30), stream.next()).await
    {
        let event = event.unwrap();
        events.push((event.name, event.tx_id));
    }
    events
}
