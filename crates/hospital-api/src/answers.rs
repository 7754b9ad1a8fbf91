//! What the chaincode answers and keeps in state, as JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::{ContentFingerprint, WatermarkFingerprint, hex32, prefixed_hex32};

/// The NodeOU role in the creator certificate's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A client: at a hospital, a doctor.
    Client,
    /// An MSP admin.
    Admin,
    /// A peer.
    Peer,
    /// An orderer.
    Orderer,
    /// No NodeOU in the certificate.
    Member,
}

/// The creator of a transaction, as recorded in audit entries and events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The creator's MSP.
    pub msp_id: String,
    /// The certificate's subject common name, e.g. `User1@hospital1.medcert.local`.
    pub name: String,
    /// The creator's NodeOU role.
    pub role: Role,
    /// SHA3-256 of the DER certificate, hex: names one certificate exactly.
    pub cert_id: String,
}

/// An EHR's entry on the hospital chain: hashes and fingerprints, never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's id.
    pub record_id: String,
    /// The patient's treatment number at this hospital.
    pub treatment_number: String,
    /// Hash C: SHA3-256 of the encrypted record, its key in the CSP.
    #[serde(with = "hex32")]
    pub hash_c: [u8; 32],
    /// Size of the encrypted record in bytes.
    pub size: u64,
    /// SHA3-256 of the record's canonical content.
    pub content_fingerprint: ContentFingerprint,
    /// Fingerprint of the record's watermark.
    pub watermark_fingerprint: WatermarkFingerprint,
    /// The doctor who created it.
    pub created_by: Actor,
    /// Transaction time of the creation, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The creating transaction.
    pub created_tx: String,
}

/// What is left of a deleted record: what, when, by whom, and nothing of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The deleted record's id.
    pub record_id: String,
    /// The patient's treatment number.
    pub treatment_number: String,
    /// The patient address (`0x` + 40 lowercase hex) whose signature authorised the
    /// deletion.
    pub deleted_by: String,
    /// The hospital member who submitted the deletion.
    pub submitted_by: Actor,
    /// The nonce of the patient's deletion request.
    pub nonce: u64,
    /// Transaction time of the deletion, in milliseconds since the Unix epoch.
    pub deleted_at_ms: i64,
    /// The deleting transaction.
    pub deleted_tx: String,
}

/// `GetRecord`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RecordState {
    /// The record is in world state.
    Active {
        /// The record.
        record: Record,
    },
    /// The record was deleted.
    Deleted {
        /// What is left of it.
        tombstone: Tombstone,
    },
}

/// Where a recovery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RecoveryState {
    /// Requested, not yet answered by the relay.
    Pending,
    /// Served on the certificate chain.
    Completed {
        /// The relay's result, JSON of a [`RecoveryResult`] (opaque to the chaincode).
        result: String,
        /// Transaction time of the answer, in milliseconds since the Unix epoch.
        at_ms: i64,
        /// The answering transaction.
        tx: String,
    },
    /// Not served: refused, or rolled back after a timeout.
    Failed {
        /// Why, in the relay's words.
        reason: String,
        /// Transaction time of the answer, in milliseconds since the Unix epoch.
        at_ms: i64,
        /// The answering transaction.
        tx: String,
    },
}

/// A cross-chain recovery request and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Gapless per channel, from 1.
    pub index: u64,
    /// The patient, registered at the requesting hospital, the record is recovered for.
    pub treatment_number: String,
    /// The record to recover.
    pub record_id: String,
    /// The certificate on the certificate chain, decimal.
    pub certificate_id: String,
    /// The patient's consent (EIP-712 message and signature), hex, opaque to the chaincode.
    pub consent: String,
    /// The channel of the hospital that asked.
    pub requesting_hospital: String,
    /// The doctor who asked.
    pub doctor: Actor,
    /// Transaction time of the request, in milliseconds since the Unix epoch.
    pub requested_at_ms: i64,
    /// The requesting transaction.
    pub requested_tx: String,
    /// Certificate-chain time (Unix seconds) after which the request can no longer be
    /// served; chosen by the hospital.
    #[serde(default)]
    pub deadline: u64,
    /// Where it stands.
    pub outcome: RecoveryState,
    /// What the relay proved on the certificate chain for its answer (none while pending,
    /// and for a request the contract refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ChainProof>,
}

/// What a relay's answer rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofKind {
    /// The receipt of the `serveRecovery` transaction, proven against the block's
    /// `receiptsRoot` (CompleteRecovery).
    Receipt,
    /// The contract's `served` slot of the request, proven 0 against the state root
    /// of a block past the deadline (FailRecovery for a timeout).
    Unserved,
}

/// What the relay proved on the certificate chain: the verified block and the digest of
/// the proof (SHA3-256 of its parts), which `medcert-relay prove` recomputes from the
/// chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProof {
    /// What was proven.
    pub kind: ProofKind,
    /// The certificate chain's id.
    pub chain_id: u64,
    /// The verified block the proof is against.
    pub block_number: u64,
    /// Its hash.
    #[serde(with = "prefixed_hex32")]
    pub block_hash: [u8; 32],
    /// Its time, Unix seconds.
    pub block_time: u64,
    /// SHA3-256 of the proof.
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
}

impl fmt::Display for ChainProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at block {} (0x{}, time {}) of chain {}, digest {}",
            self.kind,
            self.block_number,
            hex::encode(self.block_hash),
            self.block_time,
            self.chain_id,
            hex::encode(self.digest)
        )
    }
}

/// What the relay records with `CompleteRecovery`: the certificate chain's proven
/// `RecoveryServed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryResult {
    /// The served certificate.
    pub certificate_id: u64,
    /// Hash I: the IPFS CID of the patient's envelope.
    pub cid: String,
    /// The certificate's content fingerprint.
    pub content_fingerprint: ContentFingerprint,
    /// The certificate's watermark fingerprint.
    pub watermark_fingerprint: WatermarkFingerprint,
    /// The `serveRecovery` transaction's hash.
    #[serde(with = "prefixed_hex32")]
    pub eth_tx: [u8; 32],
    /// The block that holds it.
    pub eth_block: u64,
    /// The request id `serveRecovery` was called with.
    #[serde(with = "prefixed_hex32")]
    pub request_id: [u8; 32],
}

/// Payload of the `InterchainRequest` event, consumed by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchainRequest {
    /// The requesting hospital's channel.
    pub channel: String,
    /// Gapless per channel, from 1.
    pub index: u64,
    /// The record to recover.
    pub record_id: String,
    /// The certificate on the certificate chain, decimal.
    pub certificate_id: String,
    /// The patient's consent, hex.
    pub consent: String,
    /// The channel of the hospital that asked.
    pub requesting_hospital: String,
    /// The doctor who asked.
    pub doctor: Actor,
    /// Certificate-chain time (Unix seconds) after which the request can no longer be
    /// served.
    #[serde(default)]
    pub deadline: u64,
}

/// The hospital key service as registered on a channel (`SetKeyService`, answered by
/// `GetKeyService`): the key its password tickets are verified with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyService {
    /// The service's Ed25519 ticket key (public), hex.
    pub ticket_key: String,
    /// The hospital admin who registered it.
    pub set_by: Actor,
    /// Transaction time of the registration, in milliseconds since the Unix epoch.
    pub set_at_ms: i64,
    /// The registering transaction.
    pub set_tx: String,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The function, or a recorded refusal:
    /// [`PASSWORD_REJECTED`](crate::events::PASSWORD_REJECTED) or
    /// [`ACCESS_REFUSED`](crate::events::ACCESS_REFUSED).
    pub action: String,
    /// Who acted.
    pub actor: Actor,
    /// The record acted on, if any.
    pub record_id: Option<String>,
    /// The patient acted for, if any.
    pub treatment_number: Option<String>,
    /// The transaction.
    pub tx_id: String,
    /// Transaction time, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The nonce of the key service's password ticket the action carried, hex (set only
    /// for a ticket whose signature checked): the key service releases a record key only
    /// for an entry naming a ticket it issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// One past write of a record's key (`GetRecordHistory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    /// The writing transaction.
    pub tx_id: String,
    /// Its time, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Whether it deleted the record.
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ledgers_json() {
        let active = br#"{"state":"active","record":{"record_id":"R-1","treatment_number":"T-1",
            "hash_c":"HASH","size":3,"content_fingerprint":"CONTENT","watermark_fingerprint":"WATERMARK",
            "created_by":{"msp_id":"Hospital1MSP","name":"User1","role":"client","cert_id":"dd"},
            "created_at_ms":5,"created_tx":"tx1"}}"#;
        let active = String::from_utf8_lossy(active)
            .replace("HASH", &"aa".repeat(32))
            .replace("CONTENT", &"bb".repeat(32))
            .replace("WATERMARK", &"cc".repeat(32));
        let state: RecordState = serde_json::from_str(&active).unwrap();
        let RecordState::Active { record } = state else {
            panic!("not active: {state:?}")
        };
        assert_eq!(record.size, 3);
        assert_eq!(record.hash_c, [0xaa; 32]);
        assert_eq!(
            record.watermark_fingerprint,
            WatermarkFingerprint([0xcc; 32])
        );
        assert!(
            serde_json::from_str::<RecordState>(&active.replace(&"bb".repeat(32), "bb")).is_err()
        );
        let completed = br#"{"index":4,"treatment_number":"T","record_id":"R","certificate_id":"9",
            "consent":"00","requesting_hospital":"hospital2","doctor":{"msp_id":"M","name":"N",
            "role":"client","cert_id":"c"},"requested_at_ms":1,"requested_tx":"t",
            "outcome":{"state":"completed","result":"{}","at_ms":2,"tx":"u"}}"#;
        let recovery: Recovery = serde_json::from_slice(completed).unwrap();
        assert!(matches!(recovery.outcome, RecoveryState::Completed { .. }));
        let pending = serde_json::to_string(&RecoveryState::Pending).unwrap();
        assert_eq!(pending, r#"{"state":"pending"}"#);
    }
}
