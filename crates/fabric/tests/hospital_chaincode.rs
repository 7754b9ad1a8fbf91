//! The hospital chaincode through the gateway client (by way of its typed client),
//! against the real network from `deploy/up` (needs at least two hospitals).
#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use futures_util::StreamExt;
use medcert_eip712::PatientSigner;
use medcert_fabric::{Checkpoint, Error, Gateway, Identity, block};
use medcert_hospital_api::ticket::{SignedTicket, SigningKey, Ticket, Verdict};
use medcert_hospital_api::{ClientError, Function, HospitalClient, RecordState, args, events};
use medcert_network::Network;

fn network() -> Network {
    Network::load().expect("network description not found: run deploy/up")
}

async fn connect(
    network: &Network,
    hospital: usize,
    who: &medcert_network::Identity,
) -> HospitalClient {
    let h = &network.fabric.hospitals[hospital];
    let identity = Identity::from_files(&who.msp_id, &who.cert, &who.key).unwrap();
    let ca = std::fs::read(&h.peer().tls_ca).unwrap();
    let gateway = Gateway::connect(&h.peer().endpoint, &h.peer().host, &ca, identity)
        .await
        .unwrap();
    HospitalClient::new(
        gateway
            .network(&h.channel)
            .contract(&network.fabric.chaincode_name),
    )
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

const HASH: [u8; 32] = [0x22; 32];

/// Plays the hospital key service: signs password tickets with a key this test registers.
struct TicketSigner {
    key: SigningKey,
    channel: String,
    treatment_number: String,
    doctor_cert_id: [u8; 32],
}

impl TicketSigner {
    /// A fresh ticket for `function` on `record_id`, issued now.
    fn ticket(&self, function: Function, record_id: &str, verdict: Verdict) -> SignedTicket {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        Ticket {
            channel: self.channel.clone(),
            function,
            treatment_number: self.treatment_number.clone(),
            record_id: record_id.to_owned(),
            doctor_cert_id: self.doctor_cert_id,
            nonce: rand::random(),
            issued_at_ms: i64::try_from(now.as_millis()).unwrap(),
            verdict,
        }
        .sign(&self.key)
    }
}

fn recorded_refusal(result: &Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(
        result,
        Err(ClientError::Fabric {
            source: Error::Refused { status: 300, .. },
            ..
        })
    )
}

#[tokio::test]
async fn every_function_and_refusal_on_the_real_network() {
    let net = network();
    let h1 = &net.fabric.hospitals[0];
    let doctor = connect(&net, 0, &h1.doctors[0]).await;
    assert_eq!(doctor.version().await.unwrap(), "0.1.0");

    // A fresh patient per run: deletion nonces are spent for good on the ledger, so a
    // fixed key would make a second run against the same network fail.
    let patient = PatientSigner::from_seed(&fresh_seed());
    let treatment = unique("T");
    let record = unique("R");
    let registration = args::RegisterPatient {
        treatment_number: treatment.clone(),
        id_hash: HASH,
        eth_address: patient.address(),
        x25519_public: HASH,
    };
    doctor.register_patient(&registration).await.unwrap();
    // The doctor's certificate id, as the chain names it, for the tickets.
    let trail = args::GetAudit {
        kind: args::AuditKind::Patient,
        id: treatment.clone(),
    };
    let registered = doctor.get_audit(&trail).await.unwrap();
    let doctor_cert_id: [u8; 32] = hex::decode(&registered[0].actor.cert_id)
        .unwrap()
        .try_into()
        .unwrap();

    // This test plays the key service: the admin registers its key, and puts back the
    // one registered before at the end.
    let admin = connect(&net, 0, &h1.admin).await;
    let previous = admin.get_key_service().await.unwrap();
    let signer = TicketSigner {
        key: SigningKey::from_bytes(&fresh_seed()),
        channel: h1.channel.clone(),
        treatment_number: treatment.clone(),
        doctor_cert_id,
    };
    let registration = args::SetKeyService {
        ticket_key: signer.key.verifying_key().to_bytes(),
    };
    assert!(doctor.set_key_service(&registration).await.is_err());
    admin.set_key_service(&registration).await.unwrap();
    let registered = admin.get_key_service().await.unwrap().unwrap();
    assert_eq!(registered.ticket_key, hex::encode(registration.ticket_key));

    let ticket = signer.ticket(Function::CreateRecord, &record, Verdict::Accepted);
    let creation = args::CreateRecord {
        treatment_number: treatment.clone(),
        record_id: record.clone(),
        hash_c: HASH,
        size: 10,
        content_fingerprint: HASH,
        watermark_fingerprint: HASH,
        ticket: ticket.encode(),
    };
    let created = doctor.create_record(&creation).await.unwrap();
    assert!(created.block_number > 0);
    assert_eq!(created.answer.hash_c, HASH);
    let trail = args::GetAudit {
        kind: args::AuditKind::Record,
        id: record.clone(),
    };
    let entries = doctor.get_audit(&trail).await.unwrap();
    assert_eq!(entries[0].action, "CreateRecord");
    assert_eq!(entries[0].ticket, Some(hex::encode(ticket.ticket.nonce)));

    // A wrong password, a missing ticket and a replayed one commit their refusals.
    let query = |ticket: Option<SignedTicket>| args::QueryRecord {
        treatment_number: treatment.clone(),
        record_id: record.clone(),
        ticket: ticket.map(|t| t.encode()).unwrap_or_default(),
    };
    let wrong = query(Some(signer.ticket(
        Function::QueryRecord,
        &record,
        Verdict::Rejected {
            attempt: 1,
            limit: 5,
        },
    )));
    let refused = doctor.query_record(&wrong).await;
    assert!(recorded_refusal(&refused), "{refused:?}");
    let refused = doctor.query_record(&query(None)).await;
    assert!(recorded_refusal(&refused), "{refused:?}");
    let accepted = query(Some(signer.ticket(
        Function::QueryRecord,
        &record,
        Verdict::Accepted,
    )));
    doctor.query_record(&accepted).await.unwrap();
    let replayed = doctor.query_record(&accepted).await;
    assert!(recorded_refusal(&replayed), "{replayed:?}");
    let actions: Vec<_> = doctor
        .get_audit(&trail)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "CreateRecord",
            events::PASSWORD_REJECTED,
            events::ACCESS_REFUSED,
            "QueryRecord",
            events::ACCESS_REFUSED
        ]
    );

    // A doctor of hospital 1 on hospital 2's channel.
    let h2 = &net.fabric.hospitals[1];
    let identity = Identity::from_files(
        &h1.doctors[0].msp_id,
        &h1.doctors[0].cert,
        &h1.doctors[0].key,
    )
    .unwrap();
    let ca = std::fs::read(&h2.peer().tls_ca).unwrap();
    let foreign = HospitalClient::new(
        Gateway::connect(&h2.peer().endpoint, &h2.peer().host, &ca, identity)
            .await
            .unwrap()
            .network(&h2.channel)
            .contract(&net.fabric.chaincode_name),
    );
    let get_record = args::GetRecord {
        record_id: record.clone(),
    };
    assert!(foreign.get_record(&get_record).await.is_err());

    // Deletion signed by someone else, then by the patient, then replayed.
    let stranger = PatientSigner::from_seed(&[4; 32]);
    let deletion = |signature: [u8; 65]| args::DeleteRecord {
        record_id: record.clone(),
        nonce: 1,
        patient_signature: signature.to_vec(),
    };
    let forged = deletion(stranger.sign_deletion(&h1.channel, &record, 1));
    let refused = doctor.delete_record(&forged).await;
    assert!(
        format!("{refused:?}").contains("not signed by its patient"),
        "{refused:?}"
    );
    let signed = deletion(patient.sign_deletion(&h1.channel, &record, 1));
    doctor.delete_record(&signed).await.unwrap();
    let replay = doctor.delete_record(&signed).await;
    assert!(format!("{replay:?}").contains("already used"), "{replay:?}");
    let state = doctor.get_record(&get_record).await.unwrap();
    assert!(matches!(state, RecordState::Deleted { .. }), "{state:?}");

    // Recovery: request, relay-only completion, idempotence, and the event stream.
    let request = args::RequestRecovery {
        treatment_number: treatment.clone(),
        record_id: record.clone(),
        certificate_id: "7".into(),
        consent: vec![0xab, 0xcd, 0xef],
        deadline: 4_000_000_000,
        ticket: signer
            .ticket(Function::RequestRecovery, &record, Verdict::Accepted)
            .encode(),
    };
    let requested = doctor.request_recovery(&request).await.unwrap();
    let index = requested.answer.index;
    let completion = args::CompleteRecovery {
        index,
        result: "ok".into(),
        proof: medcert_hospital_api::ChainProof {
            kind: medcert_hospital_api::ProofKind::Receipt,
            chain_id: 31337,
            block_number: 5,
            block_hash: [0xab; 32],
            block_time: 1_700_000_000,
            digest: [0xcd; 32],
        },
    };
    let not_relay = doctor.complete_recovery(&completion).await;
    assert!(
        format!("{not_relay:?}").contains("reserved to the relay"),
        "{not_relay:?}"
    );
    let relay = connect(&net, 0, &net.fabric.relay).await;
    let done = relay.complete_recovery(&completion).await.unwrap();
    let failure = args::FailRecovery {
        index,
        reason: "late".into(),
        proof: None,
    };
    let again = relay.fail_recovery(&failure).await.unwrap();
    assert_eq!(done.answer, again.answer);

    let events = relay_events(&net, requested.block_number).await;
    assert!(
        events
            .iter()
            .any(|(name, tx)| name == events::INTERCHAIN_REQUEST && *tx == requested.tx_id)
    );

    // No block holds a password verifier.
    let gateway_network = {
        let identity =
            Identity::from_files(&h1.admin.msp_id, &h1.admin.cert, &h1.admin.key).unwrap();
        let ca = std::fs::read(&h1.peer().tls_ca).unwrap();
        Gateway::connect(&h1.peer().endpoint, &h1.peer().host, &ca, identity)
            .await
            .unwrap()
            .network(&h1.channel)
    };
    let blocks = gateway_network.blocks(0).await.unwrap();
    assert!(blocks.len() as u64 > created.block_number);
    for b in &blocks {
        let bytes = prost::Message::encode_to_vec(b);
        assert!(!bytes.windows(b"$argon2".len()).any(|w| w == b"$argon2"));
        for tx in block::transactions(b).unwrap() {
            assert!(
                !tx.endorsements.is_empty()
                    || tx.validation_code != medcert_fabric_protos::protos::TxValidationCode::Valid
            );
        }
    }

    if let Some(previous) = previous {
        let ticket_key = hex::decode(&previous.ticket_key)
            .unwrap()
            .try_into()
            .unwrap();
        admin
            .set_key_service(&args::SetKeyService { ticket_key })
            .await
            .unwrap();
    }
}

async fn relay_events(net: &Network, from_block: u64) -> Vec<(String, String)> {
    let h1 = &net.fabric.hospitals[0];
    let relay = &net.fabric.relay;
    let identity = Identity::from_files(&relay.msp_id, &relay.cert, &relay.key).unwrap();
    let ca = std::fs::read(&h1.peer().tls_ca).unwrap();
    let network = Gateway::connect(&h1.peer().endpoint, &h1.peer().host, &ca, identity)
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
