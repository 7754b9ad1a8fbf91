//! The contract's state machine against the in-memory ledger.

use super::*;
use crate::ledger::memory::MemoryLedger;
use medcert_eip712::PatientSigner;
use medcert_fabric_protos::msp::SerializedIdentity;
use medcert_hospital_api::{
    AuditEntry, InterchainRequest, MAX_ARG_LEN, MAX_PASSWORD_LEN, PASSWORD_KEY, Record,
    RecordChange, RecordState, Recovery, RecoveryState, Role, STATUS_REFUSED_RECORDED, events,
};
use prost::Message;

const DOCTOR1: &[u8] = include_bytes!("../testdata/doctor1.pem");
const DOCTOR1B: &[u8] = include_bytes!("../testdata/doctor1b.pem");
const ADMIN1: &[u8] = include_bytes!("../testdata/admin1.pem");
const DOCTOR2: &[u8] = include_bytes!("../testdata/doctor2.pem");
const RELAY: &[u8] = include_bytes!("../testdata/relay.pem");
const HASH: &str = "11111111111111111111111111111111111111111111111111111111111111aa";

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

struct Chain {
    ledger: MemoryLedger,
    contract: Contract,
    clock: i64,
    patient: PatientSigner,
}

impl Chain {
    fn new() -> Self {
        Self {
            ledger: MemoryLedger::default(),
            contract: Contract::new(Config {
                relay_msp_id: "RelayMSP".into(),
                max_password_failures: 3,
            }),
            clock: 1_700_000_000_000,
            patient: PatientSigner::from_seed(&[7; 32]),
        }
    }

    /// Runs a transaction and commits its writes when Fabric would (status < 400).
    async fn tx(
        &mut self,
        creator: Vec<u8>,
        function: &str,
        args: &[&str],
        password: Option<&str>,
    ) -> Outcome {
        self.clock += 1000;
        let tx_id = format!("tx{}", self.clock);
        let ctx = TxContext {
            channel: "hospital1".into(),
            tx_id: tx_id.clone(),
            timestamp_ms: self.clock,
            creator,
            function: function.into(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            transient: password
                .map(|p| (PASSWORD_KEY.to_owned(), p.as_bytes().to_vec()))
                .into_iter()
                .collect(),
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

    async fn register(&mut self, treatment_number: &str) -> Outcome {
        let address = format!("0x{}", hex::encode(self.patient.address()));
        self.tx(
            doctor1(),
            "RegisterPatient",
            &[treatment_number, HASH, &address, HASH],
            Some("s3cret"),
        )
        .await
    }

    async fn create(&mut self, treatment_number: &str, record_id: &str, pw: &str) -> Outcome {
        self.tx(
            doctor1(),
            "CreateRecord",
            &[treatment_number, record_id, HASH, "1234", HASH, HASH],
            Some(pw),
        )
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
    let mut chain = Chain::new();
    let registered = chain.register("T-1").await;
    ok(&registered);
    assert_eq!(registered.event.unwrap().name, events::PATIENT_REGISTERED);
    refused(&chain.register("T-1").await, 409, "already exists");

    let created = chain.create("T-1", "R-1", "s3cret").await;
    ok(&created);
    assert_eq!(created.event.unwrap().name, events::RECORD_CREATED);
    let record: Record = serde_json::from_slice(&created.payload).unwrap();
    assert_eq!(record.created_by.name, "User1@hospital1.medcert.local");
    assert_eq!(record.created_by.role, Role::Client);

    let queried = chain
        .tx(doctor1(), "QueryRecord", &["T-1", "R-1"], Some("s3cret"))
        .await;
    ok(&queried);
    assert_eq!(
        serde_json::from_slice::<Record>(&queried.payload).unwrap(),
        record
    );
    assert_eq!(queried.event.unwrap().name, events::RECORD_QUERIED);

    let audit = chain
        .tx(doctor1(), "GetAudit", &["record", "R-1"], None)
        .await;
    ok(&audit);
    let entries: Vec<AuditEntry> = serde_json::from_slice(&audit.payload).unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["CreateRecord", "QueryRecord"]);

    let state = chain.state_text();
    assert!(!state.contains("s3cret"), "password in state: {state}");
}

#[tokio::test]
async fn wrong_password_is_recorded_and_locks_out() {
    let mut chain = Chain::new();
    ok(&chain.register("T-1").await);
    for attempt in 1..=2 {
        let outcome = chain.create("T-1", "R-1", "wrong").await;
        refused(
            &outcome,
            STATUS_REFUSED_RECORDED,
            &format!("attempt {attempt} of 3"),
        );
        assert_eq!(outcome.event.unwrap().name, events::PASSWORD_REJECTED);
    }
    // A right password clears the count.
    ok(&chain.create("T-1", "R-1", "s3cret").await);
    for _ in 1..=3 {
        chain.create("T-1", "R-2", "wrong").await;
    }
    refused(&chain.create("T-1", "R-2", "s3cret").await, 403, "locked");
    assert!(!chain.ledger.committed().contains_key(&keys::record("R-2")));
    // Only a hospital admin unlocks.
    refused(
        &chain.tx(doctor1(), "UnlockPatient", &["T-1"], None).await,
        403,
        "admin",
    );
    ok(&chain
        .tx(
            creator("Hospital1MSP", ADMIN1),
            "UnlockPatient",
            &["T-1"],
            None,
        )
        .await);
    ok(&chain.create("T-1", "R-2", "s3cret").await);
    let audit = chain
        .tx(doctor1(), "GetAudit", &["patient", "T-1"], None)
        .await;
    let entries: Vec<AuditEntry> = serde_json::from_slice(&audit.payload).unwrap();
    let rejected = entries
        .iter()
        .filter(|e| e.action == "PasswordRejected")
        .count();
    assert_eq!(rejected, 5);
}

#[tokio::test]
async fn access_control_by_msp_and_role() {
    let mut chain = Chain::new();
    ok(&chain.register("T-1").await);
    ok(&chain.create("T-1", "R-1", "s3cret").await);
    let other_hospital = chain
        .tx(
            creator("Hospital2MSP", DOCTOR2),
            "QueryRecord",
            &["T-1", "R-1"],
            Some("s3cret"),
        )
        .await;
    refused(&other_hospital, 403, "not a member of Hospital1MSP");
    let admin = chain
        .tx(
            creator("Hospital1MSP", ADMIN1),
            "CreateRecord",
            &["T-1", "R-9", HASH, "1", HASH, HASH],
            Some("s3cret"),
        )
        .await;
    refused(&admin, 403, "not a doctor");
    let relay_reads = chain
        .tx(creator("RelayMSP", RELAY), "GetRecord", &["R-1"], None)
        .await;
    refused(&relay_reads, 403, "access denied");
    // Another doctor of the same hospital may read.
    ok(&chain
        .tx(
            creator("Hospital1MSP", DOCTOR1B),
            "GetRecord",
            &["R-1"],
            None,
        )
        .await);
}

#[tokio::test]
async fn deletion_needs_the_patients_signature_and_a_fresh_nonce() {
    let mut chain = Chain::new();
    ok(&chain.register("T-1").await);
    ok(&chain.create("T-1", "R-1", "s3cret").await);

    let stranger = PatientSigner::from_seed(&[9; 32]);
    let forged = hex::encode(stranger.sign_deletion("hospital1", "R-1", 1));
    refused(
        &chain
            .tx(doctor1(), "DeleteRecord", &["R-1", "1", &forged], None)
            .await,
        403,
        "not signed by its patient",
    );
    // Signed for another channel: recovers to another address.
    let wrong_channel = hex::encode(chain.patient.sign_deletion("hospital2", "R-1", 1));
    refused(
        &chain
            .tx(
                doctor1(),
                "DeleteRecord",
                &["R-1", "1", &wrong_channel],
                None,
            )
            .await,
        403,
        "not signed by its patient",
    );

    let signature = hex::encode(chain.patient.sign_deletion("hospital1", "R-1", 1));
    let deleted = chain
        .tx(doctor1(), "DeleteRecord", &["R-1", "1", &signature], None)
        .await;
    ok(&deleted);
    let event = deleted.event.unwrap();
    assert_eq!(event.name, events::RECORD_DELETED);
    assert!(String::from_utf8(event.payload).unwrap().contains(HASH));

    let state = chain.state_text();
    assert!(!state.contains("record/R-1="), "{state}");
    let tombstone = &chain.ledger.committed()[&keys::tombstone("R-1")];
    assert!(!String::from_utf8_lossy(tombstone).contains(HASH));

    refused(
        &chain
            .tx(doctor1(), "DeleteRecord", &["R-1", "1", &signature], None)
            .await,
        409,
        "already used",
    );
    let got = chain.tx(doctor1(), "GetRecord", &["R-1"], None).await;
    ok(&got);
    assert!(matches!(
        serde_json::from_slice(&got.payload).unwrap(),
        RecordState::Deleted { .. }
    ));
    refused(
        &chain
            .tx(doctor1(), "QueryRecord", &["T-1", "R-1"], Some("s3cret"))
            .await,
        404,
        "was deleted",
    );
    let history = chain
        .tx(doctor1(), "GetRecordHistory", &["R-1"], None)
        .await;
    let changes: Vec<RecordChange> = serde_json::from_slice(&history.payload).unwrap();
    let deleted: Vec<_> = changes.iter().map(|c| c.deleted).collect();
    assert_eq!(deleted, [true, false]);
}

#[tokio::test]
async fn recovery_indexes_are_gapless_and_resolution_is_idempotent() {
    let mut chain = Chain::new();
    ok(&chain.register("T-1").await);
    refused(
        &chain
            .tx(
                doctor1(),
                "RequestRecovery",
                &["T-1", "R-1", "42", "0xc0ffee"],
                Some("wrong"),
            )
            .await,
        STATUS_REFUSED_RECORDED,
        "wrong password",
    );
    for expected in 1..=2u64 {
        let outcome = chain
            .tx(
                doctor1(),
                "RequestRecovery",
                &["T-1", "R-1", "42", "0xc0ffee"],
                Some("s3cret"),
            )
            .await;
        ok(&outcome);
        let event = outcome.event.unwrap();
        assert_eq!(event.name, events::INTERCHAIN_REQUEST);
        let request: InterchainRequest = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(request.index, expected);
        assert_eq!(request.channel, "hospital1");
        assert_eq!(request.consent, "c0ffee");
        assert_eq!(request.doctor.msp_id, "Hospital1MSP");
    }
    let relay = || creator("RelayMSP", RELAY);
    refused(
        &chain
            .tx(doctor1(), "CompleteRecovery", &["1", "ok"], None)
            .await,
        403,
        "reserved to the relay",
    );
    let done = chain
        .tx(relay(), "CompleteRecovery", &["1", "hashI=abc"], None)
        .await;
    ok(&done);
    assert_eq!(done.event.unwrap().name, events::RECOVERY_COMPLETED);
    let again = chain
        .tx(relay(), "FailRecovery", &["1", "late"], None)
        .await;
    ok(&again);
    assert!(again.event.is_none());
    assert!(!chain.ledger.has_pending_writes());
    assert_eq!(again.payload, done.payload);
    ok(&chain
        .tx(relay(), "FailRecovery", &["2", "consent expired"], None)
        .await);
    let status = chain.tx(relay(), "GetRecoveryStatus", &["2"], None).await;
    let recovery: Recovery = serde_json::from_slice(&status.payload).unwrap();
    assert!(
        matches!(recovery.outcome, RecoveryState::Failed { ref reason, .. } if reason == "consent expired")
    );
    refused(
        &chain
            .tx(relay(), "CompleteRecovery", &["3", "x"], None)
            .await,
        404,
        "unknown recovery index 3",
    );
}

#[tokio::test]
async fn bad_input_is_refused_without_writes() {
    let mut chain = Chain::new();
    ok(&chain.register("T-1").await);
    let before = chain.state_text();
    let big = "a".repeat(MAX_ARG_LEN + 1);
    // (function, args, password, expected status, expected message part)
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a str>, i32, &'a str);
    let cases: Vec<Case> = vec![
        ("Nope", vec![], None, 400, "unknown function"),
        (
            "CreateRecord",
            vec!["T-1"],
            Some("s3cret"),
            400,
            "takes 6 argument",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R-1", "xyz", "1", HASH, HASH],
            Some("s3cret"),
            400,
            "hashC is malformed",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R/1", HASH, "1", HASH, HASH],
            Some("s3cret"),
            400,
            "recordId is malformed",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R-1", HASH, "-1", HASH, HASH],
            Some("s3cret"),
            400,
            "size is malformed",
        ),
        (
            "CreateRecord",
            vec!["T-1", "R-1", HASH, "1", HASH, HASH],
            None,
            400,
            "password",
        ),
        ("GetRecord", vec![big.as_str()], None, 413, "over the limit"),
        (
            "CreateRecord",
            vec!["T-404", "R-1", HASH, "1", HASH, HASH],
            Some("s3cret"),
            404,
            "unknown patient",
        ),
        ("GetRecord", vec!["R-404"], None, 404, "unknown record"),
        (
            "DeleteRecord",
            vec!["R-1", "1", "00"],
            None,
            400,
            "patientSignature",
        ),
        (
            "GetRecoveryStatus",
            vec!["x"],
            None,
            400,
            "index is malformed",
        ),
    ];
    for (function, args, password, status, needle) in cases {
        let outcome = chain.tx(doctor1(), function, &args, password).await;
        refused(&outcome, status, needle);
    }
    assert_eq!(chain.state_text(), before);
}

/// The messages clients and operators read, word for word: they are part of the interface.
#[tokio::test]
async fn refusal_messages_are_stable() {
    let mut chain = Chain::new();
    let unknown = chain.tx(doctor1(), "Nope", &[], None).await;
    assert_eq!(
        unknown.message,
        "unknown function \"Nope\"; the contract has Version, RegisterPatient, UnlockPatient, \
         CreateRecord, QueryRecord, GetRecord, GetRecordHistory, DeleteRecord, RequestRecovery, \
         CompleteRecovery, FailRecovery, GetRecoveryStatus, GetAudit"
    );
    let count = chain.tx(doctor1(), "GetAudit", &["record"], None).await;
    assert_eq!(
        count.message,
        "GetAudit takes 2 argument(s) (kind (record or patient), id), got 1"
    );
    let big = "a".repeat(MAX_ARG_LEN + 1);
    let oversized = chain.tx(doctor1(), "GetRecord", &[&big], None).await;
    assert_eq!(
        (oversized.status, oversized.message.as_str()),
        (
            413,
            "argument argument is 4097 bytes, over the limit of 4096"
        )
    );
    let long_password = "p".repeat(MAX_PASSWORD_LEN + 1);
    let password = chain
        .tx(
            doctor1(),
            "QueryRecord",
            &["T-1", "R-1"],
            Some(&long_password),
        )
        .await;
    assert_eq!(
        (password.status, password.message.as_str()),
        (
            413,
            "argument password is 1025 bytes, over the limit of 1024"
        )
    );
    let kind = chain.tx(doctor1(), "GetAudit", &["x", "R-1"], None).await;
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
