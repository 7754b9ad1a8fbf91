//! The contract's state machine against the in-memory ledger: this file holds the test
//! chain and the functions' behaviour; [`tickets`] the password tickets' redemption.

mod tickets;

use super::*;
use crate::identity::actor_from_creator;
use crate::ledger::memory::MemoryLedger;
use medcert_eip712::PatientSigner;
use medcert_fabric_protos::msp::SerializedIdentity;
use medcert_hospital_api::ticket::{NONCE_LEN, SigningKey, Ticket, Verdict};
use medcert_hospital_api::{
    AuditEntry, InterchainRequest, MAX_ARG_LEN, Record, RecordChange, RecordState, Recovery,
    RecoveryState, Role, events,
};
use prost::Message;

const DOCTOR1: &[u8] = include_bytes!("../../testdata/doctor1.pem");
const DOCTOR1B: &[u8] = include_bytes!("../../testdata/doctor1b.pem");
const ADMIN1: &[u8] = include_bytes!("../../testdata/admin1.pem");
const DOCTOR2: &[u8] = include_bytes!("../../testdata/doctor2.pem");
const RELAY: &[u8] = include_bytes!("../../testdata/relay.pem");
const HASH: &str = "11111111111111111111111111111111111111111111111111111111111111aa";
/// The key service's ticket key in these tests.
const TICKET_SEED: [u8; 32] = [5; 32];

fn creator(msp: &str, pem: &[u8]) -> Vec<u8> {
    SerializedIdentity {
        mspid: msp.into(),
        id_bytes: pem.to_vec(),
    }
    .encode_to_vec()
}

fn doctor1() -> Vec<u8> {
    creator("Hospital1MSP", DOCTOR1)
}

fn admin1() -> Vec<u8> {
    creator("Hospital1MSP", ADMIN1)
}

/// The certificate id a ticket names its doctor by.
fn cert_id(creator: &[u8]) -> [u8; 32] {
    let actor = actor_from_creator(creator).unwrap();
    hex::decode(actor.cert_id).unwrap().try_into().unwrap()
}

struct Chain {
    ledger: MemoryLedger,
    contract: Contract,
    clock: i64,
    patient: PatientSigner,
    nonces: u64,
}

impl Chain {
    /// A chain whose hospital admin has registered the test key service.
    async fn new() -> Self {
        let mut chain = Self::without_key_service();
        let key = hex::encode(
            SigningKey::from_bytes(&TICKET_SEED)
                .verifying_key()
                .as_bytes(),
        );
        ok(&chain.tx(admin1(), "SetKeyService", &[&key]).await);
        chain
    }

    fn without_key_service() -> Self {
        Self {
            ledger: MemoryLedger::default(),
            contract: Contract::new(Config {
                relay_msp_id: "RelayMSP".into(),
            }),
            clock: 1_700_000_000_000,
            patient: PatientSigner::from_seed(&[7; 32]),
            nonces: 0,
        }
    }

    /// Runs a transaction and commits its writes when Fabric would (status < 400).
    async fn tx(&mut self, creator: Vec<u8>, function: &str, args: &[&str]) -> Outcome {
        self.clock += 1000;
        let tx_id = format!("tx{}", self.clock);
        let ctx = TxContext {
            channel: "hospital1".into(),
            tx_id: tx_id.clone(),
            timestamp_ms: self.clock,
            creator,
            function: function.into(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        };
        let outcome = self.contract.invoke(&ctx, &mut self.ledger).await;
        if outcome.status < 400 {
            self.ledger.commit(&tx_id, self.clock);
        } else {
            assert!(outcome.event.is_none());
            self.ledger.rollback();
        }
        outcome
    }

    /// A fresh ticket from the key service for doctor 1 on this channel, issued now.
    fn ticket(&mut self, function: Function, record_id: &str, verdict: Verdict) -> Ticket {
        self.nonces += 1;
        let mut nonce = [0; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.nonces.to_be_bytes());
        Ticket {
            channel: "hospital1".into(),
            function,
            treatment_number: "T-1".into(),
            record_id: record_id.into(),
            doctor_cert_id: cert_id(&doctor1()),
            nonce,
            issued_at_ms: self.clock,
            verdict,
        }
    }

    /// A fresh ticket saying the password was wrong, `attempt` of 5 in a row.
    fn rejected(&mut self, function: Function, record_id: &str, attempt: u32) -> Ticket {
        let verdict = Verdict::Rejected { attempt, limit: 5 };
        self.ticket(function, record_id, verdict)
    }

    /// An accepted ticket of the test key service, as the argument carries it.
    fn accepted(&mut self, function: Function, record_id: &str) -> String {
        signed(self.ticket(function, record_id, Verdict::Accepted))
    }

    async fn register(&mut self, treatment_number: &str) -> Outcome {
        let address = format!("0x{}", hex::encode(self.patient.address()));
        self.tx(
            doctor1(),
            "RegisterPatient",
            &[treatment_number, HASH, &address, HASH],
        )
        .await
    }

    /// Doctor 1 creates record `record_id` of patient T-1 with `ticket`.
    async fn create(&mut self, record_id: &str, ticket: &str) -> Outcome {
        self.tx(
            doctor1(),
            "CreateRecord",
            &["T-1", record_id, HASH, "1234", HASH, HASH, ticket],
        )
        .await
    }

    /// Doctor 1 creates record `record_id` of patient T-1 with an accepted ticket.
    async fn create_accepted(&mut self, record_id: &str) -> Outcome {
        let ticket = self.accepted(Function::CreateRecord, record_id);
        self.create(record_id, &ticket).await
    }

    async fn query(&mut self, record_id: &str, ticket: &str) -> Outcome {
        self.tx(doctor1(), "QueryRecord", &["T-1", record_id, ticket])
            .await
    }

    /// Doctor 1 asks to recover record R-1 of patient T-1 with `ticket`.
    async fn request_recovery(&mut self, ticket: &str) -> Outcome {
        self.tx(
            doctor1(),
            "RequestRecovery",
            &["T-1", "R-1", "42", "0xc0ffee", "1700000600", ticket],
        )
        .await
    }

    async fn audit(&mut self, kind: &str, id: &str) -> Vec<AuditEntry> {
        let audit = self.tx(doctor1(), "GetAudit", &[kind, id]).await;
        ok(&audit);
        serde_json::from_slice(&audit.payload).unwrap()
    }

    /// The actions of a record's or a patient's audit trail, oldest first.
    async fn audited_actions(&mut self, kind: &str, id: &str) -> Vec<String> {
        let entries = self.audit(kind, id).await;
        entries.into_iter().map(|e| e.action).collect()
    }

    /// Doctor 1 deletes record R-1 with the patient's request of nonce 1, `signature`.
    async fn delete(&mut self, signature: &str) -> Outcome {
        self.tx(doctor1(), "DeleteRecord", &["R-1", "1", signature])
            .await
    }

    fn state_text(&self) -> String {
        self.ledger
            .committed()
            .iter()
            .map(|(k, v)| format!("{k}={}\n", String::from_utf8_lossy(v)))
            .collect()
    }
}

/// `ticket` signed by the test key service, hex.
fn signed(ticket: Ticket) -> String {
    hex::encode(ticket.sign(&SigningKey::from_bytes(&TICKET_SEED)).encode())
}

fn ok(outcome: &Outcome) {
    assert_eq!(outcome.status, 200, "{}", outcome.message);
}

fn refused(outcome: &Outcome, status: i32, needle: &str) {
    assert_eq!(outcome.status, status, "{}", outcome.message);
    assert!(
        outcome.message.contains(needle),
        "{:?} lacks {needle:?}",
        outcome.message
    );
}

#[tokio::test]
async fn register_create_query_and_audit() {
    let mut chain = Chain::new().await;
    let registered = chain.register("T-1").await;
    ok(&registered);
    assert_eq!(registered.payload, b"T-1");
    assert_eq!(registered.event.unwrap().name, events::PATIENT_REGISTERED);
    refused(&chain.register("T-1").await, 409, "already exists");

    let created = chain.create_accepted("R-1").await;
    ok(&created);
    assert_eq!(created.event.unwrap().name, events::RECORD_CREATED);
    let record: Record = serde_json::from_slice(&created.payload).unwrap();
    assert_eq!(record.created_by.name, "User1@hospital1.medcert.local");
    assert_eq!(record.created_by.role, Role::Client);

    let ticket = chain.accepted(Function::QueryRecord, "R-1");
    let queried = chain.query("R-1", &ticket).await;
    ok(&queried);
    assert_eq!(
        serde_json::from_slice::<Record>(&queried.payload).unwrap(),
        record
    );
    assert_eq!(queried.event.unwrap().name, events::RECORD_QUERIED);

    assert_eq!(
        chain.audited_actions("record", "R-1").await,
        ["CreateRecord", "QueryRecord"]
    );
    assert_eq!(
        chain.audited_actions("patient", "T-1").await,
        ["RegisterPatient", "CreateRecord", "QueryRecord"]
    );
}

#[tokio::test]
async fn access_control_by_msp_and_role() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);
    let ticket = chain.accepted(Function::QueryRecord, "R-1");
    let other_hospital = chain
        .tx(
            creator("Hospital2MSP", DOCTOR2),
            "QueryRecord",
            &["T-1", "R-1", &ticket],
        )
        .await;
    refused(&other_hospital, 403, "not a member of Hospital1MSP");
    let ticket = chain.accepted(Function::CreateRecord, "R-9");
    let admin = chain
        .tx(
            admin1(),
            "CreateRecord",
            &["T-1", "R-9", HASH, "1", HASH, HASH, &ticket],
        )
        .await;
    refused(&admin, 403, "not a doctor");
    let relay_reads = chain
        .tx(creator("RelayMSP", RELAY), "GetRecord", &["R-1"])
        .await;
    refused(&relay_reads, 403, "access denied");
    // Another doctor of the same hospital may read.
    ok(&chain
        .tx(creator("Hospital1MSP", DOCTOR1B), "GetRecord", &["R-1"])
        .await);
}

#[tokio::test]
async fn deletion_needs_the_patients_signature_and_a_fresh_nonce() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);

    let stranger = PatientSigner::from_seed(&[9; 32]);
    let forged = hex::encode(stranger.sign_deletion("hospital1", "R-1", 1));
    refused(
        &chain.delete(&forged).await,
        403,
        "not signed by its patient",
    );
    // Signed for another channel: recovers to another address.
    let wrong_channel = hex::encode(chain.patient.sign_deletion("hospital2", "R-1", 1));
    refused(
        &chain.delete(&wrong_channel).await,
        403,
        "not signed by its patient",
    );

    let signature = hex::encode(chain.patient.sign_deletion("hospital1", "R-1", 1));
    let deleted = chain.delete(&signature).await;
    ok(&deleted);
    let event = deleted.event.unwrap();
    assert_eq!(event.name, events::RECORD_DELETED);
    assert!(String::from_utf8(event.payload).unwrap().contains(HASH));

    let state = chain.state_text();
    assert!(!state.contains("record/R-1="), "{state}");
    let tombstone = &chain.ledger.committed()[&keys::tombstone("R-1")];
    assert!(!String::from_utf8_lossy(tombstone).contains(HASH));

    refused(&chain.delete(&signature).await, 409, "already used");
    let got = chain.tx(doctor1(), "GetRecord", &["R-1"]).await;
    ok(&got);
    assert!(matches!(
        serde_json::from_slice(&got.payload).unwrap(),
        RecordState::Deleted { .. }
    ));
    let ticket = chain.accepted(Function::QueryRecord, "R-1");
    refused(&chain.query("R-1", &ticket).await, 404, "was deleted");
    let history = chain.tx(doctor1(), "GetRecordHistory", &["R-1"]).await;
    let changes: Vec<RecordChange> = serde_json::from_slice(&history.payload).unwrap();
    let deleted: Vec<_> = changes.iter().map(|c| c.deleted).collect();
    assert_eq!(deleted, [true, false]);
}

/// A deletion request signed by another wallet: ethers.js signed medcert's typed-data JSON
/// (`tests/ethers-js/deletion-signed.json`; medcert-ethereum's `typed_data` test checks
/// ethers.js still signs exactly that).
#[tokio::test]
async fn deletion_signed_by_a_standard_wallet_is_accepted() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../tests/ethers-js/deletion-signed.json"
    ))
    .unwrap();
    let message = &fixture["typedData"]["message"];
    assert_eq!(
        (&message["channel"], &message["recordId"], &message["nonce"]),
        (&"hospital1".into(), &"R-1".into(), &"1".into()),
        "Chain::delete submits record R-1 of channel hospital1 with nonce 1"
    );
    let secret = hex::decode(&fixture["privateKey"].as_str().unwrap()[2..]).unwrap();
    let mut chain = Chain::new().await;
    chain.patient = PatientSigner::from_bytes(&secret.try_into().unwrap()).unwrap();
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);

    ok(&chain.delete(fixture["signature"].as_str().unwrap()).await);
    let tombstone: serde_json::Value =
        serde_json::from_slice(&chain.ledger.committed()[&keys::tombstone("R-1")]).unwrap();
    assert_eq!(
        tombstone["deleted_by"].as_str().unwrap(),
        fixture["signer"].as_str().unwrap().to_lowercase()
    );
}

#[tokio::test]
async fn a_deleted_records_id_is_never_reused() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);
    let signature = hex::encode(chain.patient.sign_deletion("hospital1", "R-1", 1));
    ok(&chain.delete(&signature).await);
    let before = chain.state_text();
    let again = chain.create_accepted("R-1").await;
    assert_eq!(
        (again.status, again.message.as_str()),
        (
            409,
            "record id \"R-1\" belongs to a deleted record; a deleted record's id is never reused"
        )
    );
    // A plain refusal: no attempt was made, the ticket is not spent.
    assert_eq!(chain.state_text(), before);
    assert!(matches!(
        serde_json::from_slice(&chain.tx(doctor1(), "GetRecord", &["R-1"]).await.payload).unwrap(),
        RecordState::Deleted { .. }
    ));
}

#[tokio::test]
async fn recovery_indexes_are_gapless_and_resolution_is_idempotent() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    let rejected = signed(chain.rejected(Function::RequestRecovery, "R-1", 1));
    refused(
        &chain.request_recovery(&rejected).await,
        STATUS_REFUSED_RECORDED,
        "wrong password",
    );
    for expected in 1..=2u64 {
        let ticket = chain.accepted(Function::RequestRecovery, "R-1");
        let outcome = chain.request_recovery(&ticket).await;
        ok(&outcome);
        let event = outcome.event.unwrap();
        assert_eq!(event.name, events::INTERCHAIN_REQUEST);
        let request: InterchainRequest = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(request.index, expected);
        assert_eq!(request.channel, "hospital1");
        assert_eq!(request.consent, "c0ffee");
        assert_eq!(request.doctor.msp_id, "Hospital1MSP");
        assert_eq!(request.deadline, 1_700_000_600);
    }
    let relay = || creator("RelayMSP", RELAY);
    let proof = serde_json::json!({"kind": "receipt", "chain_id": 31337, "block_number": 9,
        "block_hash": format!("0x{}", "ab".repeat(32)), "block_time": 1_700_000_000u64,
        "digest": "cd".repeat(32)})
    .to_string();
    let proof = proof.as_str();
    refused(
        &chain
            .tx(doctor1(), "CompleteRecovery", &["1", "ok", proof])
            .await,
        403,
        "reserved to the relay",
    );
    let done = chain
        .tx(relay(), "CompleteRecovery", &["1", "hashI=abc", proof])
        .await;
    ok(&done);
    assert_eq!(done.event.unwrap().name, events::RECOVERY_COMPLETED);
    let again = chain.tx(relay(), "FailRecovery", &["1", "late", ""]).await;
    ok(&again);
    assert!(again.event.is_none());
    assert!(!chain.ledger.has_pending_writes());
    assert_eq!(again.payload, done.payload);
    ok(&chain
        .tx(relay(), "FailRecovery", &["2", "consent expired", ""])
        .await);
    let status = chain.tx(relay(), "GetRecoveryStatus", &["2"]).await;
    let recovery: Recovery = serde_json::from_slice(&status.payload).unwrap();
    assert!(
        matches!(recovery.outcome, RecoveryState::Failed { ref reason, .. } if reason == "consent expired")
    );
    assert_eq!(recovery.deadline, 1_700_000_600);
    assert_eq!(recovery.proof, None);
    // The completion records what the relay proved.
    let status = chain.tx(relay(), "GetRecoveryStatus", &["1"]).await;
    let recovery: Recovery = serde_json::from_slice(&status.payload).unwrap();
    assert_eq!(recovery.proof.map(|p| p.block_number), Some(9));
    refused(
        &chain
            .tx(relay(), "CompleteRecovery", &["3", "x", proof])
            .await,
        404,
        "unknown recovery index 3",
    );
}

#[tokio::test]
async fn bad_input_is_refused_without_writes() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    let before = chain.state_text();
    let big = "a".repeat(MAX_ARG_LEN + 1);
    let ticket = chain.accepted(Function::CreateRecord, "R-1");
    let t = ticket.as_str();
    // (function, args, expected status, expected message part)
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        ("Nope", vec![], 400, "unknown function"),
        ("CreateRecord", vec!["T-1"], 400, "takes 7 argument"),
        (
            "CreateRecord",
            vec!["T-1", "R-1", "xyz", "1", HASH, HASH, t],
            400,
            "hashC is malformed",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R/1", HASH, "1", HASH, HASH, t],
            400,
            "recordId is malformed",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R-1", HASH, "-1", HASH, HASH, t],
            400,
            "size is malformed",
        ),
        // A ticket that is not even hex is an argument error: nothing to record.
        (
            "CreateRecord",
            vec!["T-1", "R-1", HASH, "1", HASH, HASH, "not hex"],
            400,
            "ticket is malformed",
        ),
        ("GetRecord", vec![big.as_str()], 413, "over the limit"),
        (
            "CreateRecord",
            vec!["T-404", "R-1", HASH, "1", HASH, HASH, t],
            404,
            "unknown patient",
        ),
        ("GetRecord", vec!["R-404"], 404, "unknown record"),
        (
            "DeleteRecord",
            vec!["R-1", "1", "00"],
            400,
            "patientSignature",
        ),
        ("GetRecoveryStatus", vec!["x"], 400, "index is malformed"),
    ];
    for (function, args, status, needle) in cases {
        let outcome = chain.tx(doctor1(), function, &args).await;
        refused(&outcome, status, needle);
    }
    assert_eq!(chain.state_text(), before);
}

/// The messages clients and operators read, word for word: they are part of the interface.
#[tokio::test]
async fn refusal_messages_are_stable() {
    let mut chain = Chain::new().await;
    let unknown = chain.tx(doctor1(), "Nope", &[]).await;
    assert_eq!(
        unknown.message,
        "unknown function \"Nope\"; the contract has Version, SetKeyService, GetKeyService, \
         RegisterPatient, CreateRecord, QueryRecord, GetRecord, GetRecordHistory, DeleteRecord, \
         RequestRecovery, CompleteRecovery, FailRecovery, GetRecoveryStatus, GetAudit"
    );
    let count = chain.tx(doctor1(), "GetAudit", &["record"]).await;
    assert_eq!(
        count.message,
        "GetAudit takes 2 argument(s) (kind, id), got 1"
    );
    let big = "a".repeat(MAX_ARG_LEN + 1);
    let oversized = chain.tx(doctor1(), "GetRecord", &[&big]).await;
    assert_eq!(
        (oversized.status, oversized.message.as_str()),
        (
            413,
            "argument recordId is 4097 bytes, over the limit of 4096"
        )
    );
    let kind = chain.tx(doctor1(), "GetAudit", &["x", "R-1"]).await;
    assert_eq!(
        (kind.status, kind.message.as_str()),
        (
            400,
            "argument kind is malformed: must be \"record\" or \"patient\""
        )
    );
    ok(&chain.register("T-1").await);
    let again = chain.register("T-1").await;
    assert_eq!(
        (again.status, again.message.as_str()),
        (409, "patient \"T-1\" already exists")
    );
}

#[tokio::test]
async fn patients_keep_nothing_password_derived() {
    const PASSWORD: &str = "correct horse battery staple";
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);
    let rejected = signed(chain.rejected(Function::QueryRecord, "R-1", 1));
    refused(
        &chain.query("R-1", &rejected).await,
        STATUS_REFUSED_RECORDED,
        "wrong password",
    );
    let patient: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&chain.ledger.committed()[&keys::patient("T-1")]).unwrap();
    let mut fields: Vec<_> = patient.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "eth_address",
            "id_hash",
            "registered_at_ms",
            "registered_by",
            "treatment_number",
            "x25519_public"
        ]
    );
    let state = chain.state_text().to_lowercase();
    for needle in ["argon2", "verifier", "salt", "failed", "locked", PASSWORD] {
        assert!(!state.contains(needle), "{needle:?} in state: {state}");
    }
}
