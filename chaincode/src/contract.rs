//! The hospital contract: its functions, access control and world state.
//!
//! Access control (the peer has already authenticated the creator):
//! - *doctor*: a `client` identity of the MSP that owns the channel (channel
//!   `hospital<i>` is owned by `Hospital<i>MSP`, see [`hospital_msp`]);
//! - *hospital member*: any identity of that MSP (doctor or admin);
//! - *hospital admin*: an `admin` identity of that MSP;
//! - *relay*: any identity of [`Config::relay_msp_id`];
//! - *patient*: a secp256k1 EIP-712 signature by the patient's registered address
//!   (deletion only).
//!
//! Passwords arrive only in the transient map (key `password`), so they never reach a
//! block; state holds an Argon2id verifier ([`crate::password`]). A wrong password is
//! answered with status [`STATUS_REFUSED_RECORDED`] (300): Fabric only commits the writes
//! of a response below 400, and the failed attempt must be committed to be counted.
//!
//! Each function returns at most one chaincode event (Fabric's limit per transaction);
//! every doctor action also leaves an audit entry in state, read back by `GetAudit`.

use crate::identity::{Actor, Role, hospital_msp};
use crate::ledger::{Ledger, LedgerError};
use crate::password;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Status of a refusal whose record must still commit (a wrong password).
pub const STATUS_REFUSED_RECORDED: i32 = 300;
/// The longest accepted argument, in bytes.
pub const MAX_ARG_LEN: usize = 4096;
/// The longest accepted password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The transient-map key of the patient's password.
pub const PASSWORD_KEY: &str = "password";

/// Settings of one chaincode process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MSP whose identities may complete or fail recoveries.
    pub relay_msp_id: String,
    /// Consecutive wrong passwords after which a patient is locked out.
    pub max_password_failures: u32,
}

/// What the contract sees of one transaction.
pub struct TxContext {
    pub channel: String,
    pub tx_id: String,
    pub timestamp_ms: i64,
    /// The creator's serialized identity (`msp.SerializedIdentity`).
    pub creator: Vec<u8>,
    pub function: String,
    pub args: Vec<Vec<u8>>,
    pub transient: HashMap<String, Vec<u8>>,
}

/// A chaincode event: Fabric carries at most one per transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub payload: Vec<u8>,
}

/// The result of a transaction as returned to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: i32,
    pub message: String,
    pub payload: Vec<u8>,
    pub event: Option<Event>,
}

/// Why a transaction was refused. Refusals write nothing.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "unknown function {0:?}; the contract has Version, RegisterPatient, UnlockPatient, CreateRecord, QueryRecord, GetRecord, GetRecordHistory, DeleteRecord, RequestRecovery, CompleteRecovery, FailRecovery, GetRecoveryStatus, GetAudit"
    )]
    UnknownFunction(String),
    #[error("{function} takes {expected} argument(s) ({names}), got {got}")]
    ArgumentCount {
        function: &'static str,
        expected: usize,
        names: &'static str,
        got: usize,
    },
    #[error("argument {name} is {len} bytes, over the limit of {max}")]
    Oversized {
        name: &'static str,
        len: usize,
        max: usize,
    },
    #[error("argument {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
    #[error("the transient map must carry the patient's password under {PASSWORD_KEY:?}")]
    MissingPassword,
    #[error("the creator's identity is unusable: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("access denied: {0}")]
    Forbidden(String),
    #[error("unknown patient {0:?}")]
    UnknownPatient(String),
    #[error("unknown record {0:?}")]
    UnknownRecord(String),
    #[error("record {0:?} was deleted")]
    RecordDeleted(String),
    #[error("unknown recovery index {0}")]
    UnknownRecovery(u64),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("deletion nonce {nonce} of patient {patient} was already used")]
    ReplayedNonce { patient: String, nonce: u64 },
    #[error(
        "patient {0:?} is locked after too many wrong passwords; a hospital admin must call UnlockPatient"
    )]
    Locked(String),
    #[error("ledger failure: {0}")]
    Ledger(#[from] LedgerError),
    #[error("stored state under {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

impl ContractError {
    /// The Fabric response status: 4xx for the caller's mistakes, 500 for ours.
    pub fn status(&self) -> i32 {
        match self {
            Self::UnknownFunction(_)
            | Self::ArgumentCount { .. }
            | Self::Malformed { .. }
            | Self::MissingPassword
            | Self::Identity(_) => 400,
            Self::Forbidden(_) | Self::Locked(_) => 403,
            Self::UnknownPatient(_)
            | Self::UnknownRecord(_)
            | Self::RecordDeleted(_)
            | Self::UnknownRecovery(_) => 404,
            Self::AlreadyExists(_) | Self::ReplayedNonce { .. } => 409,
            Self::Oversized { .. } => 413,
            Self::Ledger(_) | Self::Corrupt { .. } => 500,
        }
    }
}

/// A registered patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub treatment_number: String,
    /// SHA3-256 of the patient's ID number, hex (computed by the hospital application).
    pub id_hash: String,
    pub password_verifier: String,
    /// The patient's Ethereum address (`0x` + 40 lowercase hex): signs deletions.
    pub eth_address: String,
    /// The patient's X25519 public key, hex: receives wrapped record keys.
    pub x25519_public: String,
    pub failed_attempts: u32,
    pub locked: bool,
    pub registered_by: Actor,
    pub registered_at_ms: i64,
}

/// An EHR's entry on the hospital chain: hashes and fingerprints, never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub record_id: String,
    pub treatment_number: String,
    /// SHA3-256 of the encrypted record, hex: its key in the CSP.
    pub hash_c: String,
    pub size: u64,
    pub content_fingerprint: String,
    pub watermark_fingerprint: String,
    pub created_by: Actor,
    pub created_at_ms: i64,
    pub created_tx: String,
}

/// What is left of a deleted record: what, when, by whom, and nothing of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub record_id: String,
    pub treatment_number: String,
    /// The patient address whose signature authorised the deletion.
    pub deleted_by: String,
    pub submitted_by: Actor,
    pub nonce: u64,
    pub deleted_at_ms: i64,
    pub deleted_tx: String,
}

/// `GetRecord`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RecordState {
    Active { record: Record },
    Deleted { tombstone: Tombstone },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RecoveryState {
    Pending,
    Completed {
        result: String,
        at_ms: i64,
        tx: String,
    },
    Failed {
        reason: String,
        at_ms: i64,
        tx: String,
    },
}

/// A cross-chain recovery request and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub index: u64,
    /// The patient, registered at the requesting hospital, the record is recovered for.
    pub treatment_number: String,
    pub record_id: String,
    pub certificate_id: String,
    /// The patient's consent (EIP-712 message and signature), hex, opaque to the chaincode.
    pub consent: String,
    pub requesting_hospital: String,
    pub doctor: Actor,
    pub requested_at_ms: i64,
    pub requested_tx: String,
    pub outcome: RecoveryState,
}

/// Payload of the `InterchainRequest` event (JSON), consumed by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchainRequest {
    pub channel: String,
    /// Gapless per channel, from 1.
    pub index: u64,
    pub record_id: String,
    pub certificate_id: String,
    pub consent: String,
    pub requesting_hospital: String,
    pub doctor: Actor,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: String,
    pub actor: Actor,
    pub record_id: Option<String>,
    pub treatment_number: Option<String>,
    pub tx_id: String,
    pub timestamp_ms: i64,
}

/// One past write of a record's key (`GetRecordHistory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub tx_id: String,
    pub timestamp_ms: i64,
    pub deleted: bool,
}

/// Event names.
pub mod events {
    pub const PATIENT_REGISTERED: &str = "PatientRegistered";
    pub const PATIENT_UNLOCKED: &str = "PatientUnlocked";
    pub const PASSWORD_REJECTED: &str = "PasswordRejected";
    pub const RECORD_CREATED: &str = "RecordCreated";
    pub const RECORD_QUERIED: &str = "RecordQueried";
    pub const RECORD_DELETED: &str = "RecordDeleted";
    pub const INTERCHAIN_REQUEST: &str = "InterchainRequest";
    pub const RECOVERY_COMPLETED: &str = "RecoveryCompleted";
    pub const RECOVERY_FAILED: &str = "RecoveryFailed";
}

mod keys {
    pub fn patient(treatment_number: &str) -> String {
        format!("patient/{treatment_number}")
    }
    pub fn record(record_id: &str) -> String {
        format!("record/{record_id}")
    }
    pub fn tombstone(record_id: &str) -> String {
        format!("tombstone/{record_id}")
    }
    pub fn deletion_nonce(address: &str, nonce: u64) -> String {
        format!("deletion-nonce/{address}/{nonce:020}")
    }
    pub const RECOVERY_COUNTER: &str = "recovery-counter";
    pub fn recovery(index: u64) -> String {
        format!("recovery/{index:020}")
    }
    /// Audit entries of one subject (`record` or `patient` and its id), in time order.
    pub fn audit_prefix(kind: &str, id: &str) -> String {
        format!("audit/{kind}/{id}/")
    }
    pub fn audit(kind: &str, id: &str, timestamp_ms: i64, tx_id: &str) -> String {
        format!("{}{timestamp_ms:020}/{tx_id}", audit_prefix(kind, id))
    }
    /// Above every character an identifier, a number or a tx id may hold.
    pub const RANGE_END: &str = "~";
}

/// A successful reply before it becomes an [`Outcome`].
struct Reply {
    status: i32,
    message: String,
    payload: Vec<u8>,
    event: Option<Event>,
}

impl Reply {
    fn ok(payload: Vec<u8>) -> Self {
        Self {
            status: 200,
            message: String::new(),
            payload,
            event: None,
        }
    }

    fn json(value: &impl Serialize) -> Self {
        Self::ok(to_json(value))
    }

    fn with_event(mut self, name: &str, payload: &impl Serialize) -> Self {
        self.event = Some(Event {
            name: name.to_owned(),
            payload: to_json(payload),
        });
        self
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("contract types serialise to JSON")
}

pub struct Contract {
    config: Config,
}

impl Contract {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Runs one transaction. A refusal comes back as a status of 400 or more, which makes
    /// Fabric discard the transaction's writes.
    pub async fn invoke<L: Ledger>(&self, ctx: &TxContext, ledger: &mut L) -> Outcome {
        let mut tx = Tx {
            ctx,
            ledger,
            config: &self.config,
        };
        match tx.dispatch().await {
            Ok(reply) => Outcome {
                status: reply.status,
                message: reply.message,
                payload: reply.payload,
                event: reply.event,
            },
            Err(error) => Outcome {
                status: error.status(),
                message: error.to_string(),
                payload: Vec::new(),
                event: None,
            },
        }
    }
}

/// One transaction in progress.
struct Tx<'a, L> {
    ctx: &'a TxContext,
    ledger: &'a mut L,
    config: &'a Config,
}

impl<'a, L: Ledger> Tx<'a, L> {
    async fn dispatch(&mut self) -> Result<Reply, ContractError> {
        match self.ctx.function.as_str() {
            "Version" => {
                self.args::<0>("Version", "")?;
                Ok(Reply::ok(env!("CARGO_PKG_VERSION").as_bytes().to_vec()))
            }
            "RegisterPatient" => self.register_patient().await,
            "UnlockPatient" => self.unlock_patient().await,
            "CreateRecord" => self.create_record().await,
            "QueryRecord" => self.query_record().await,
            "GetRecord" => self.get_record().await,
            "GetRecordHistory" => self.get_record_history().await,
            "DeleteRecord" => self.delete_record().await,
            "RequestRecovery" => self.request_recovery().await,
            "CompleteRecovery" => self.resolve_recovery(true).await,
            "FailRecovery" => self.resolve_recovery(false).await,
            "GetRecoveryStatus" => self.get_recovery_status().await,
            "GetAudit" => self.get_audit().await,
            other => Err(ContractError::UnknownFunction(truncate(other))),
        }
    }

    // ---- functions ----

    async fn register_patient(&mut self) -> Result<Reply, ContractError> {
        let [treatment_number, id_hash, eth_address, x25519_public] = self.args(
            "RegisterPatient",
            "treatmentNumber, idHash, ethAddress, x25519PublicKey",
        )?;
        let treatment_number = identifier("treatmentNumber", treatment_number)?;
        let id_hash = hex32("idHash", id_hash)?;
        let eth_address = eth_address_arg(eth_address)?;
        let x25519_public = hex32("x25519PublicKey", x25519_public)?;
        let doctor = self.doctor()?;
        let password = self.password()?;
        let key = keys::patient(&treatment_number);
        if self.ledger.get(&key).await?.is_some() {
            return Err(ContractError::AlreadyExists(format!(
                "patient {treatment_number:?}"
            )));
        }
        let patient = Patient {
            password_verifier: password::verifier(&self.ctx.channel, &treatment_number, &password),
            treatment_number: treatment_number.clone(),
            id_hash,
            eth_address,
            x25519_public,
            failed_attempts: 0,
            locked: false,
            registered_by: doctor.clone(),
            registered_at_ms: self.ctx.timestamp_ms,
        };
        self.put_json(&key, &patient).await?;
        let entry = self
            .audit("RegisterPatient", &doctor, None, Some(&treatment_number))
            .await?;
        Ok(Reply::ok(treatment_number.into_bytes()).with_event(events::PATIENT_REGISTERED, &entry))
    }

    async fn unlock_patient(&mut self) -> Result<Reply, ContractError> {
        let [treatment_number] = self.args("UnlockPatient", "treatmentNumber")?;
        let treatment_number = identifier("treatmentNumber", treatment_number)?;
        let admin = self.hospital_member()?;
        if admin.role != Role::Admin {
            return Err(ContractError::Forbidden(
                "only a hospital admin may unlock a patient".into(),
            ));
        }
        let mut patient = self.patient(&treatment_number).await?;
        patient.failed_attempts = 0;
        patient.locked = false;
        self.put_json(&keys::patient(&treatment_number), &patient)
            .await?;
        let entry = self
            .audit("UnlockPatient", &admin, None, Some(&treatment_number))
            .await?;
        Ok(Reply::ok(Vec::new()).with_event(events::PATIENT_UNLOCKED, &entry))
    }

    async fn create_record(&mut self) -> Result<Reply, ContractError> {
        let [
            treatment_number,
            record_id,
            hash_c,
            size,
            content_fingerprint,
            watermark_fingerprint,
        ] = self.args(
            "CreateRecord",
            "treatmentNumber, recordId, hashC, size, contentFingerprint, watermarkFingerprint",
        )?;
        let treatment_number = identifier("treatmentNumber", treatment_number)?;
        let record_id = identifier("recordId", record_id)?;
        let hash_c = hex32("hashC", hash_c)?;
        let size = number("size", size)?;
        let content_fingerprint = hex32("contentFingerprint", content_fingerprint)?;
        let watermark_fingerprint = hex32("watermarkFingerprint", watermark_fingerprint)?;
        let doctor = self.doctor()?;
        let password = self.password()?;
        let key = keys::record(&record_id);
        if self.ledger.get(&key).await?.is_some() {
            return Err(ContractError::AlreadyExists(format!(
                "record {record_id:?}"
            )));
        }
        if let Some(refusal) = self
            .check_password(&treatment_number, &password, &doctor, Some(&record_id))
            .await?
        {
            return Ok(refusal);
        }
        let record = Record {
            record_id: record_id.clone(),
            treatment_number: treatment_number.clone(),
            hash_c,
            size,
            content_fingerprint,
            watermark_fingerprint,
            created_by: doctor.clone(),
            created_at_ms: self.ctx.timestamp_ms,
            created_tx: self.ctx.tx_id.clone(),
        };
        self.put_json(&key, &record).await?;
        let entry = self
            .audit(
                "CreateRecord",
                &doctor,
                Some(&record_id),
                Some(&treatment_number),
            )
            .await?;
        Ok(Reply::json(&record).with_event(events::RECORD_CREATED, &entry))
    }

    async fn query_record(&mut self) -> Result<Reply, ContractError> {
        let [treatment_number, record_id] =
            self.args("QueryRecord", "treatmentNumber, recordId")?;
        let treatment_number = identifier("treatmentNumber", treatment_number)?;
        let record_id = identifier("recordId", record_id)?;
        let doctor = self.doctor()?;
        let password = self.password()?;
        if let Some(refusal) = self
            .check_password(&treatment_number, &password, &doctor, Some(&record_id))
            .await?
        {
            return Ok(refusal);
        }
        let record = match self.record_state(&record_id).await? {
            RecordState::Active { record } if record.treatment_number == treatment_number => record,
            RecordState::Active { .. } => return Err(ContractError::UnknownRecord(record_id)),
            RecordState::Deleted { .. } => return Err(ContractError::RecordDeleted(record_id)),
        };
        let entry = self
            .audit(
                "QueryRecord",
                &doctor,
                Some(&record_id),
                Some(&treatment_number),
            )
            .await?;
        Ok(Reply::json(&record).with_event(events::RECORD_QUERIED, &entry))
    }

    async fn get_record(&mut self) -> Result<Reply, ContractError> {
        let [record_id] = self.args("GetRecord", "recordId")?;
        let record_id = identifier("recordId", record_id)?;
        self.hospital_member()?;
        Ok(Reply::json(&self.record_state(&record_id).await?))
    }

    async fn get_record_history(&mut self) -> Result<Reply, ContractError> {
        let [record_id] = self.args("GetRecordHistory", "recordId")?;
        let record_id = identifier("recordId", record_id)?;
        self.hospital_member()?;
        let history: Vec<RecordChange> = self
            .ledger
            .history(&keys::record(&record_id))
            .await?
            .into_iter()
            .map(|m| RecordChange {
                tx_id: m.tx_id,
                timestamp_ms: m.timestamp_ms,
                deleted: m.value.is_none(),
            })
            .collect();
        if history.is_empty() {
            return Err(ContractError::UnknownRecord(record_id));
        }
        Ok(Reply::json(&history))
    }

    async fn delete_record(&mut self) -> Result<Reply, ContractError> {
        let [record_id, nonce, signature] =
            self.args("DeleteRecord", "recordId, nonce, patientSignature")?;
        let record_id = identifier("recordId", record_id)?;
        let nonce = number("nonce", nonce)?;
        let signature = hex_bytes("patientSignature", signature)?;
        let submitter = self.hospital_member()?;
        let digest = medcert_eip712::deletion_digest(&self.ctx.channel, &record_id, nonce);
        let signer = medcert_eip712::recover_signer(&digest, &signature)
            .map(|address| format!("0x{}", hex::encode(address)))
            .map_err(|e| ContractError::Malformed {
                name: "patientSignature",
                reason: e.to_string(),
            })?;
        let nonce_key = keys::deletion_nonce(&signer, nonce);
        let record = match self.record_state(&record_id).await? {
            RecordState::Active { record } => Some(record),
            RecordState::Deleted { .. } => None,
        };
        if self.ledger.get(&nonce_key).await?.is_some() {
            return Err(ContractError::ReplayedNonce {
                patient: signer,
                nonce,
            });
        }
        let Some(record) = record else {
            return Err(ContractError::RecordDeleted(record_id));
        };
        let patient = self.patient(&record.treatment_number).await?;
        if patient.eth_address != signer {
            return Err(ContractError::Forbidden(format!(
                "the deletion request for record {record_id:?} is not signed by its patient"
            )));
        }
        let tombstone = Tombstone {
            record_id: record_id.clone(),
            treatment_number: record.treatment_number.clone(),
            deleted_by: signer,
            submitted_by: submitter.clone(),
            nonce,
            deleted_at_ms: self.ctx.timestamp_ms,
            deleted_tx: self.ctx.tx_id.clone(),
        };
        self.ledger.delete(&keys::record(&record_id)).await?;
        self.put_json(&keys::tombstone(&record_id), &tombstone)
            .await?;
        self.ledger
            .put(&nonce_key, self.ctx.tx_id.as_bytes().to_vec())
            .await?;
        self.audit(
            "DeleteRecord",
            &submitter,
            Some(&record_id),
            Some(&record.treatment_number),
        )
        .await?;
        // The hospital needs Hash C to delete the CSP object; Hash C is no content.
        #[derive(Serialize)]
        struct Deleted<'a> {
            tombstone: &'a Tombstone,
            hash_c: &'a str,
        }
        let event = Deleted {
            tombstone: &tombstone,
            hash_c: &record.hash_c,
        };
        Ok(Reply::json(&tombstone).with_event(events::RECORD_DELETED, &event))
    }

    async fn request_recovery(&mut self) -> Result<Reply, ContractError> {
        let [treatment_number, record_id, certificate_id, consent] = self.args(
            "RequestRecovery",
            "treatmentNumber, recordId, certificateId, consent",
        )?;
        let treatment_number = identifier("treatmentNumber", treatment_number)?;
        let record_id = identifier("recordId", record_id)?;
        let certificate_id = decimal("certificateId", certificate_id)?;
        let consent = hex::encode(hex_bytes("consent", consent)?);
        let doctor = self.doctor()?;
        // A doctor acts for a patient registered here, proven by the patient's password,
        // before anything crosses chains on the patient's behalf.
        let password = self.password()?;
        if let Some(refusal) = self
            .check_password(&treatment_number, &password, &doctor, Some(&record_id))
            .await?
        {
            return Ok(refusal);
        }
        let index = match self.ledger.get(keys::RECOVERY_COUNTER).await? {
            Some(bytes) => {
                let last: u64 = parse_json(keys::RECOVERY_COUNTER, &bytes)?;
                last + 1
            }
            None => 1,
        };
        let recovery = Recovery {
            index,
            treatment_number: treatment_number.clone(),
            record_id: record_id.clone(),
            certificate_id: certificate_id.clone(),
            consent: consent.clone(),
            requesting_hospital: self.ctx.channel.clone(),
            doctor: doctor.clone(),
            requested_at_ms: self.ctx.timestamp_ms,
            requested_tx: self.ctx.tx_id.clone(),
            outcome: RecoveryState::Pending,
        };
        self.put_json(keys::RECOVERY_COUNTER, &index).await?;
        self.put_json(&keys::recovery(index), &recovery).await?;
        self.audit(
            "RequestRecovery",
            &doctor,
            Some(&record_id),
            Some(&treatment_number),
        )
        .await?;
        let request = InterchainRequest {
            channel: self.ctx.channel.clone(),
            index,
            record_id,
            certificate_id,
            consent,
            requesting_hospital: self.ctx.channel.clone(),
            doctor,
        };
        Ok(Reply::json(&recovery).with_event(events::INTERCHAIN_REQUEST, &request))
    }

    async fn resolve_recovery(&mut self, completed: bool) -> Result<Reply, ContractError> {
        let (function, names) = if completed {
            ("CompleteRecovery", "index, result")
        } else {
            ("FailRecovery", "index, reason")
        };
        let [index, detail] = self.args(function, names)?;
        let index = number("index", index)?;
        let detail = text(if completed { "result" } else { "reason" }, detail)?;
        let relay = self.actor()?;
        if relay.msp_id != self.config.relay_msp_id {
            return Err(ContractError::Forbidden(format!(
                "{function} is reserved to the relay ({})",
                self.config.relay_msp_id
            )));
        }
        let key = keys::recovery(index);
        let mut recovery: Recovery = self
            .get_json(&key)
            .await?
            .ok_or(ContractError::UnknownRecovery(index))?;
        if recovery.outcome != RecoveryState::Pending {
            // Idempotent by index: a repeated call reports what was recorded, writes nothing.
            return Ok(Reply::json(&recovery));
        }
        let (at_ms, tx) = (self.ctx.timestamp_ms, self.ctx.tx_id.clone());
        recovery.outcome = if completed {
            RecoveryState::Completed {
                result: detail,
                at_ms,
                tx,
            }
        } else {
            RecoveryState::Failed {
                reason: detail,
                at_ms,
                tx,
            }
        };
        self.put_json(&key, &recovery).await?;
        let name = if completed {
            events::RECOVERY_COMPLETED
        } else {
            events::RECOVERY_FAILED
        };
        Ok(Reply::json(&recovery).with_event(name, &recovery))
    }

    async fn get_recovery_status(&mut self) -> Result<Reply, ContractError> {
        let [index] = self.args("GetRecoveryStatus", "index")?;
        let index = number("index", index)?;
        let key = keys::recovery(index);
        let recovery: Recovery = self
            .get_json(&key)
            .await?
            .ok_or(ContractError::UnknownRecovery(index))?;
        let actor = self.actor()?;
        if actor.msp_id != self.config.relay_msp_id {
            self.hospital_member()?;
        }
        Ok(Reply::json(&recovery))
    }

    async fn get_audit(&mut self) -> Result<Reply, ContractError> {
        let [kind, id] = self.args("GetAudit", "kind (record or patient), id")?;
        let kind = match kind {
            b"record" => "record",
            b"patient" => "patient",
            _ => {
                return Err(ContractError::Malformed {
                    name: "kind",
                    reason: "must be \"record\" or \"patient\"".into(),
                });
            }
        };
        let id = identifier("id", id)?;
        self.hospital_member()?;
        let start = keys::audit_prefix(kind, &id);
        let end = format!("{start}{}", keys::RANGE_END);
        let entries = self
            .ledger
            .range(&start, &end)
            .await?
            .into_iter()
            .map(|(key, value)| parse_json::<AuditEntry>(&key, &value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reply::json(&entries))
    }

    // ---- helpers ----

    /// The arguments of `function`, exactly `N` of them, each within [`MAX_ARG_LEN`].
    fn args<const N: usize>(
        &self,
        function: &'static str,
        names: &'static str,
    ) -> Result<[&'a [u8]; N], ContractError> {
        let args: &'a [Vec<u8>] = &self.ctx.args;
        if args.len() != N {
            return Err(ContractError::ArgumentCount {
                function,
                expected: N,
                names,
                got: args.len(),
            });
        }
        if let Some(arg) = args.iter().find(|a| a.len() > MAX_ARG_LEN) {
            return Err(ContractError::Oversized {
                name: "argument",
                len: arg.len(),
                max: MAX_ARG_LEN,
            });
        }
        Ok(std::array::from_fn(|i| args[i].as_slice()))
    }

    fn password(&self) -> Result<Zeroizing<Vec<u8>>, ContractError> {
        let password = self
            .ctx
            .transient
            .get(PASSWORD_KEY)
            .filter(|p| !p.is_empty())
            .ok_or(ContractError::MissingPassword)?;
        if password.len() > MAX_PASSWORD_LEN {
            return Err(ContractError::Oversized {
                name: "password",
                len: password.len(),
                max: MAX_PASSWORD_LEN,
            });
        }
        Ok(Zeroizing::new(password.clone()))
    }

    fn actor(&self) -> Result<Actor, ContractError> {
        Ok(Actor::from_creator(&self.ctx.creator)?)
    }

    /// The creator, if it belongs to the MSP that owns this channel.
    fn hospital_member(&self) -> Result<Actor, ContractError> {
        let actor = self.actor()?;
        match hospital_msp(&self.ctx.channel) {
            Some(msp) if msp == actor.msp_id => Ok(actor),
            Some(msp) => Err(ContractError::Forbidden(format!(
                "{} of {} is not a member of {msp}, which owns channel {}",
                actor.name, actor.msp_id, self.ctx.channel
            ))),
            None => Err(ContractError::Forbidden(format!(
                "channel {} is not a hospital channel",
                self.ctx.channel
            ))),
        }
    }

    /// The creator, if it is a doctor (a client) of this channel's hospital.
    fn doctor(&self) -> Result<Actor, ContractError> {
        let actor = self.hospital_member()?;
        if actor.role != Role::Client {
            return Err(ContractError::Forbidden(format!(
                "{} is not a doctor (NodeOU client) of {}",
                actor.name, actor.msp_id
            )));
        }
        Ok(actor)
    }

    async fn patient(&mut self, treatment_number: &str) -> Result<Patient, ContractError> {
        self.get_json(&keys::patient(treatment_number))
            .await?
            .ok_or_else(|| ContractError::UnknownPatient(treatment_number.to_owned()))
    }

    /// Checks the patient's password. On a wrong one, records the failure (locking the
    /// patient at the limit) and returns the refusal to commit; on the right one, clears
    /// earlier failures and returns `None`.
    async fn check_password(
        &mut self,
        treatment_number: &str,
        password: &[u8],
        doctor: &Actor,
        record_id: Option<&str>,
    ) -> Result<Option<Reply>, ContractError> {
        let mut patient = self.patient(treatment_number).await?;
        if patient.locked {
            return Err(ContractError::Locked(treatment_number.to_owned()));
        }
        let key = keys::patient(treatment_number);
        if password::matches(&patient.password_verifier, password) {
            if patient.failed_attempts > 0 {
                patient.failed_attempts = 0;
                self.put_json(&key, &patient).await?;
            }
            return Ok(None);
        }
        patient.failed_attempts += 1;
        patient.locked = patient.failed_attempts >= self.config.max_password_failures;
        self.put_json(&key, &patient).await?;
        let entry = self
            .audit(
                "PasswordRejected",
                doctor,
                record_id,
                Some(treatment_number),
            )
            .await?;
        let message = if patient.locked {
            format!(
                "wrong password for patient {treatment_number:?}: attempt {} of {}, the patient is now locked",
                patient.failed_attempts, self.config.max_password_failures
            )
        } else {
            format!(
                "wrong password for patient {treatment_number:?}: attempt {} of {}",
                patient.failed_attempts, self.config.max_password_failures
            )
        };
        Ok(Some(
            Reply {
                status: STATUS_REFUSED_RECORDED,
                message,
                payload: Vec::new(),
                event: None,
            }
            .with_event(events::PASSWORD_REJECTED, &entry),
        ))
    }

    async fn record_state(&mut self, record_id: &str) -> Result<RecordState, ContractError> {
        if let Some(record) = self.get_json(&keys::record(record_id)).await? {
            return Ok(RecordState::Active { record });
        }
        match self.get_json(&keys::tombstone(record_id)).await? {
            Some(tombstone) => Ok(RecordState::Deleted { tombstone }),
            None => Err(ContractError::UnknownRecord(record_id.to_owned())),
        }
    }

    async fn audit(
        &mut self,
        action: &str,
        actor: &Actor,
        record_id: Option<&str>,
        treatment_number: Option<&str>,
    ) -> Result<AuditEntry, ContractError> {
        let entry = AuditEntry {
            action: action.to_owned(),
            actor: actor.clone(),
            record_id: record_id.map(str::to_owned),
            treatment_number: treatment_number.map(str::to_owned),
            tx_id: self.ctx.tx_id.clone(),
            timestamp_ms: self.ctx.timestamp_ms,
        };
        let subjects = [("record", record_id), ("patient", treatment_number)];
        for (kind, id) in subjects {
            if let Some(id) = id {
                let key = keys::audit(kind, id, self.ctx.timestamp_ms, &self.ctx.tx_id);
                self.put_json(&key, &entry).await?;
            }
        }
        Ok(entry)
    }

    async fn get_json<T: DeserializeOwned>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, ContractError> {
        match self.ledger.get(key).await? {
            Some(bytes) => parse_json(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn put_json(&mut self, key: &str, value: &impl Serialize) -> Result<(), ContractError> {
        Ok(self.ledger.put(key, to_json(value)).await?)
    }
}

fn parse_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ContractError> {
    serde_json::from_slice(bytes).map_err(|e| ContractError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn text(name: &'static str, arg: &[u8]) -> Result<String, ContractError> {
    String::from_utf8(arg.to_vec()).map_err(|_| ContractError::Malformed {
        name,
        reason: "not UTF-8".into(),
    })
}

/// An identifier (treatment number, record id): 1 to 128 of `A-Z a-z 0-9 . _ : -`, so
/// it is safe inside state keys.
fn identifier(name: &'static str, arg: &[u8]) -> Result<String, ContractError> {
    let ok = (1..=128).contains(&arg.len())
        && arg
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b));
    if !ok {
        return Err(ContractError::Malformed {
            name,
            reason: "must be 1 to 128 of A-Z a-z 0-9 . _ : -".into(),
        });
    }
    text(name, arg)
}

fn number(name: &'static str, arg: &[u8]) -> Result<u64, ContractError> {
    text(name, arg)?
        .parse()
        .map_err(|e: std::num::ParseIntError| ContractError::Malformed {
            name,
            reason: format!("not a non-negative integer: {e}"),
        })
}

/// A decimal uint256 (e.g. an MCB certificate id).
fn decimal(name: &'static str, arg: &[u8]) -> Result<String, ContractError> {
    if arg.is_empty() || arg.len() > 78 || !arg.iter().all(u8::is_ascii_digit) {
        return Err(ContractError::Malformed {
            name,
            reason: "must be a decimal number of at most 78 digits".into(),
        });
    }
    text(name, arg)
}

/// Hex bytes, with or without `0x`.
fn hex_bytes(name: &'static str, arg: &[u8]) -> Result<Vec<u8>, ContractError> {
    let arg = arg.strip_prefix(b"0x").unwrap_or(arg);
    hex::decode(arg).map_err(|e| ContractError::Malformed {
        name,
        reason: format!("not hex: {e}"),
    })
}

/// 32 bytes as 64 lowercase hex digits.
fn hex32(name: &'static str, arg: &[u8]) -> Result<String, ContractError> {
    let bytes = hex_bytes(name, arg)?;
    if bytes.len() != 32 {
        return Err(ContractError::Malformed {
            name,
            reason: format!("must be 32 bytes, got {}", bytes.len()),
        });
    }
    Ok(hex::encode(bytes))
}

fn eth_address_arg(arg: &[u8]) -> Result<String, ContractError> {
    let bytes = hex_bytes("ethAddress", arg)?;
    if bytes.len() != 20 {
        return Err(ContractError::Malformed {
            name: "ethAddress",
            reason: format!("must be 20 bytes, got {}", bytes.len()),
        });
    }
    Ok(format!("0x{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    //! The contract's state machine against the in-memory ledger.

    use super::*;
    use crate::ledger::memory::MemoryLedger;
    use medcert_eip712::PatientSigner;
    use medcert_fabric_protos::msp::SerializedIdentity;
    use prost::Message;

    const DOCTOR1: &[u8] = include_bytes!("testdata/doctor1.pem");
    const DOCTOR1B: &[u8] = include_bytes!("testdata/doctor1b.pem");
    const ADMIN1: &[u8] = include_bytes!("testdata/admin1.pem");
    const DOCTOR2: &[u8] = include_bytes!("testdata/doctor2.pem");
    const RELAY: &[u8] = include_bytes!("testdata/relay.pem");
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
}
