//! The block checks on hand-built transactions, endorsed by certificates of a test MSP.

use std::time::SystemTime;

use medcert_fabric::Identity;
use medcert_fabric::block::{BlockTransaction, Endorsement, PbChaincodeEvent};
use medcert_fabric_protos::protos::{ChaincodeAction, ProposalResponsePayload, TxValidationCode};
use medcert_hospital_api::events::{
    RECORD_CREATED, RECORD_DELETED, RECORD_QUERIED, RECOVERY_COMPLETED, RecordDeleted,
};
use medcert_hospital_api::{
    Actor, AuditEntry, Function, Recovery, RecoveryState, Role as ActorRole, Tombstone,
};
use prost::Message;
use serde::Serialize;
use sha3::Digest;

use super::*;
use crate::test_pki::{Member, Msp};

const CHANNEL: &str = "hospital1";
const CHAINCODE: &str = "medcert";
const TX: &str = "tx-1";

struct Fixture {
    msp: Msp,
    peer: Identity,
    doctor: Member,
    trust: MspTrust,
}

fn fixture() -> Fixture {
    let msp = Msp::new("Hospital1MSP", "hospital1.medcert.local");
    let trust = MspTrust::from_pem("Hospital1MSP", msp.ca_pem.as_bytes()).unwrap();
    Fixture {
        peer: msp
            .member("peer0.hospital1.medcert.local", "peer")
            .identity(),
        doctor: msp.member("User1@hospital1.medcert.local", "client"),
        trust,
        msp,
    }
}

fn caller(member: &Member) -> Caller {
    Caller {
        cert_id: sha3::Sha3_256::digest(&member.cert_der).into(),
        name: "User1".to_owned(),
    }
}

fn actor(member: &Member) -> Actor {
    Actor {
        msp_id: "Hospital1MSP".into(),
        name: "User1@hospital1.medcert.local".into(),
        role: ActorRole::Client,
        cert_id: caller(member).cert_id_hex(),
    }
}

/// A committed transaction emitting `name` with `payload`, endorsed by `endorsers`.
fn transaction(name: &str, payload: &impl Serialize, endorsers: &[&Identity]) -> BlockTransaction {
    let event = PbChaincodeEvent {
        chaincode_id: CHAINCODE.into(),
        tx_id: TX.into(),
        event_name: name.into(),
        payload: serde_json::to_vec(payload).unwrap(),
    };
    let prp = ProposalResponsePayload {
        proposal_hash: vec![1; 32],
        extension: ChaincodeAction {
            events: event.encode_to_vec(),
            ..Default::default()
        }
        .encode_to_vec(),
    }
    .encode_to_vec();
    let endorsements = endorsers
        .iter()
        .map(|identity| {
            let endorser = identity.serialized();
            Endorsement {
                signature: identity.sign(&[prp.as_slice(), &endorser].concat()),
                endorser,
            }
        })
        .collect();
    BlockTransaction {
        tx_id: TX.into(),
        channel: CHANNEL.into(),
        validation_code: TxValidationCode::Valid,
        creator: Vec::new(),
        proposal_response_payload: prp,
        endorsements,
        response: Default::default(),
        event: Some(event),
    }
}

fn query_entry(doctor: &Member) -> AuditEntry {
    AuditEntry {
        action: "QueryRecord".into(),
        actor: actor(doctor),
        record_id: Some("R-1".into()),
        treatment_number: Some("T-1".into()),
        tx_id: TX.into(),
        timestamp_ms: 1,
        ticket: Some("ab".repeat(16)),
    }
}

fn check(f: &Fixture, tx: &BlockTransaction) -> Result<CommittedEvent, ServiceError> {
    check_transaction(tx, &f.trust, CHANNEL, CHAINCODE, SystemTime::now())
}

fn denial(result: Result<impl std::fmt::Debug, ServiceError>) -> String {
    match result {
        Err(ServiceError::Denied(reason)) => reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn an_audited_query_names_its_record_patient_and_ticket() {
    let f = fixture();
    let tx = transaction(RECORD_QUERIED, &query_entry(&f.doctor), &[&f.peer]);
    let event = check(&f, &tx).unwrap();
    let access = audited_access(&event, Function::QueryRecord, &caller(&f.doctor)).unwrap();
    assert_eq!(
        access,
        AuditedAccess {
            record_id: "R-1".into(),
            treatment_number: "T-1".into(),
            ticket: "ab".repeat(16),
        }
    );
    let ticket = IssuedTicket {
        function: "QueryRecord".into(),
        treatment_number: "T-1".into(),
        record_id: "R-1".into(),
        doctor_cert_id: caller(&f.doctor).cert_id_hex(),
        issued_at_ms: 1,
        accepted: true,
        redeemed: false,
    };
    ticket_fits(&ticket, Function::QueryRecord, &access, &caller(&f.doctor)).unwrap();
    // A rejected ticket, one for another record, function or doctor releases nothing.
    let other_doctor = f.msp.member("User2@hospital1.medcert.local", "client");
    for unfit in [
        IssuedTicket {
            accepted: false,
            ..ticket.clone()
        },
        IssuedTicket {
            record_id: "R-2".into(),
            ..ticket.clone()
        },
        IssuedTicket {
            function: "CreateRecord".into(),
            ..ticket.clone()
        },
        IssuedTicket {
            doctor_cert_id: caller(&other_doctor).cert_id_hex(),
            ..ticket.clone()
        },
    ] {
        let reason = denial(ticket_fits(
            &unfit,
            Function::QueryRecord,
            &access,
            &caller(&f.doctor),
        ));
        assert!(reason.contains("was not issued to the caller"), "{reason}");
    }
}

#[test]
fn only_a_valid_transaction_endorsed_by_the_hospitals_peers_counts() {
    let f = fixture();
    let entry = query_entry(&f.doctor);

    let mut invalid = transaction(RECORD_QUERIED, &entry, &[&f.peer]);
    invalid.validation_code = TxValidationCode::MvccReadConflict;
    assert!(denial(check(&f, &invalid)).contains("MVCC_READ_CONFLICT, not VALID"));

    let mut elsewhere = transaction(RECORD_QUERIED, &entry, &[&f.peer]);
    elsewhere.channel = "hospital2".into();
    assert!(denial(check(&f, &elsewhere)).contains("on channel hospital2"));

    let unendorsed = transaction(RECORD_QUERIED, &entry, &[]);
    assert!(denial(check(&f, &unendorsed)).contains("no endorsement"));

    // A doctor's signature is no endorsement.
    let by_client = transaction(RECORD_QUERIED, &entry, &[&f.doctor.identity()]);
    assert!(denial(check(&f, &by_client)).contains("not a peer"));

    // A peer of another CA claiming the hospital's MSP.
    let other = Msp::new("Hospital1MSP", "intruder.example");
    let intruder = other.member("peer0.intruder.example", "peer").identity();
    let forged = transaction(RECORD_QUERIED, &entry, &[&f.peer, &intruder]);
    assert!(denial(check(&f, &forged)).contains("issued by"));

    // The event changed after the peer signed.
    let mut altered = transaction(RECORD_QUERIED, &entry, &[&f.peer]);
    altered.proposal_response_payload[0] ^= 1;
    assert!(denial(check(&f, &altered)).contains("does not verify"));

    let mut other_chaincode = transaction(RECORD_QUERIED, &entry, &[&f.peer]);
    if let Some(event) = other_chaincode.event.as_mut() {
        event.chaincode_id = "other".into();
    }
    assert!(denial(check(&f, &other_chaincode)).contains("chaincode other"));
}

#[test]
fn an_access_by_another_doctor_or_of_another_kind_is_denied() {
    let f = fixture();
    let other = f.msp.member("User2@hospital1.medcert.local", "client");
    let tx = transaction(RECORD_QUERIED, &query_entry(&other), &[&f.peer]);
    let event = check(&f, &tx).unwrap();
    let reason = denial(audited_access(
        &event,
        Function::QueryRecord,
        &caller(&f.doctor),
    ));
    assert!(reason.contains("not by the caller"), "{reason}");

    let tx = transaction(RECORD_QUERIED, &query_entry(&f.doctor), &[&f.peer]);
    let event = check(&f, &tx).unwrap();
    let reason = denial(audited_access(
        &event,
        Function::CreateRecord,
        &caller(&f.doctor),
    ));
    assert!(reason.contains(&format!("emitted {RECORD_QUERIED}, not {RECORD_CREATED}")));

    let without_ticket = AuditEntry {
        ticket: None,
        ..query_entry(&f.doctor)
    };
    let tx = transaction(RECORD_QUERIED, &without_ticket, &[&f.peer]);
    let event = check(&f, &tx).unwrap();
    let reason = denial(audited_access(
        &event,
        Function::QueryRecord,
        &caller(&f.doctor),
    ));
    assert!(
        reason.contains("no record, patient or password ticket"),
        "{reason}"
    );
}

fn recovery(doctor: &Member, outcome: RecoveryState) -> Recovery {
    Recovery {
        index: 1,
        treatment_number: "T-1".into(),
        record_id: "R-9".into(),
        certificate_id: "7".into(),
        consent: "00".into(),
        requesting_hospital: CHANNEL.into(),
        doctor: actor(doctor),
        requested_at_ms: 1,
        requested_tx: "tx-0".into(),
        deadline: 4_000_000_000,
        outcome,
        proof: None,
    }
}

#[test]
fn only_the_requesting_doctors_completed_recovery_releases() {
    let f = fixture();
    let completed = RecoveryState::Completed {
        result: "{}".into(),
        at_ms: 2,
        tx: TX.into(),
    };
    let tx = transaction(
        RECOVERY_COMPLETED,
        &recovery(&f.doctor, completed.clone()),
        &[&f.peer],
    );
    let event = check(&f, &tx).unwrap();
    let found = completed_recovery(&event, &caller(&f.doctor), CHANNEL).unwrap();
    assert_eq!(found.record_id, "R-9");

    let other = f.msp.member("User2@hospital1.medcert.local", "client");
    let reason = denial(completed_recovery(&event, &caller(&other), CHANNEL));
    assert!(reason.contains("not by the caller"), "{reason}");

    let tx = transaction(
        RECOVERY_COMPLETED,
        &recovery(&f.doctor, RecoveryState::Pending),
        &[&f.peer],
    );
    let event = check(&f, &tx).unwrap();
    let reason = denial(completed_recovery(&event, &caller(&f.doctor), CHANNEL));
    assert!(reason.contains("does not complete"), "{reason}");
}

#[test]
fn a_deletion_names_its_record() {
    let f = fixture();
    let deleted = RecordDeleted {
        tombstone: Tombstone {
            record_id: "R-1".into(),
            treatment_number: "T-1".into(),
            deleted_by: format!("0x{}", "11".repeat(20)),
            submitted_by: actor(&f.doctor),
            nonce: 1,
            deleted_at_ms: 3,
            deleted_tx: TX.into(),
        },
        hash_c: [0xcc; 32],
    };
    let tx = transaction(RECORD_DELETED, &deleted, &[&f.peer]);
    let event = check(&f, &tx).unwrap();
    deleted_record(&event, "R-1").unwrap();
    let reason = denial(deleted_record(&event, "R-2"));
    assert!(reason.contains("deletes record R-1, not R-2"), "{reason}");
}

#[test]
fn the_chaincodes_status_is_read_from_a_gateway_refusal() {
    let refusal = medcert_fabric::Error::Gateway {
        operation: "evaluation",
        code: tonic::Code::Unknown,
        message: "evaluate call to endorser returned error: see attached details".into(),
        details: vec!["Hospital1MSP peer0:7051: chaincode response 404, unknown record R-1".into()],
    };
    assert_eq!(chaincode_status(&refusal), Some(404));
    let unreachable = medcert_fabric::Error::Gateway {
        operation: "evaluation",
        code: tonic::Code::Unavailable,
        message: "connection refused".into(),
        details: vec![],
    };
    assert_eq!(chaincode_status(&unreachable), None);
}
