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
//! No password reaches the chain: the hospital's key service checks it and answers with a
//! signed, single-use ticket for one action ([`medcert_hospital_api::ticket`]), verified
//! here with the key a hospital admin registered (`SetKeyService`). A password-gated
//! action without an accepted ticket for exactly that action is refused with status
//! [`STATUS_REFUSED_RECORDED`] (300): Fabric only commits the writes of a response below
//! 400, and every failed attempt must be committed (its audit entry and event) to be seen.
//!
//! Each function returns at most one chaincode event (Fabric's limit per transaction);
//! every doctor action also leaves an audit entry in state, read back by `GetAudit`.
//!
//! The functions' names, arguments and answers are [`medcert_hospital_api`]'s; this module
//! holds what only the chaincode knows: who may call what, and the state's layout.

mod args;
mod audit;
mod dispatch;
mod patients;
mod records;
mod recovery;
#[cfg(test)]
mod tests;
mod tickets;

use crate::identity::hospital_msp;
use crate::ledger::{Ledger, LedgerError};
use medcert_hospital_api::args::ArgumentError;
use medcert_hospital_api::{Function, STATUS_REFUSED_RECORDED};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Settings of one chaincode process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MSP whose identities may complete or fail recoveries.
    pub relay_msp_id: String,
}

/// What the contract sees of one transaction.
pub struct TxContext {
    /// The channel the transaction is on.
    pub channel: String,
    /// The transaction id.
    pub tx_id: String,
    /// The proposal's timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The creator's serialized identity (`msp.SerializedIdentity`).
    pub creator: Vec<u8>,
    /// The function called.
    pub function: String,
    /// Its arguments.
    pub args: Vec<Vec<u8>>,
}

/// A chaincode event: Fabric carries at most one per transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// One of [`medcert_hospital_api::events`].
    pub name: String,
    /// JSON.
    pub payload: Vec<u8>,
}

/// The result of a transaction as returned to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// 200, [`medcert_hospital_api::STATUS_REFUSED_RECORDED`], or the refusal's
    /// [`ContractError::status`].
    pub status: i32,
    /// Why it was refused; empty on success.
    pub message: String,
    /// The answer, JSON for most functions.
    pub payload: Vec<u8>,
    /// The event, if the function emits one.
    pub event: Option<Event>,
}

/// Why a transaction was refused. Refusals write nothing.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// No such function.
    #[error(
        "unknown function {0:?}; the contract has {functions}",
        functions = Function::ALL.map(Function::name).join(", ")
    )]
    UnknownFunction(String),
    /// The arguments are refused.
    #[error(transparent)]
    Argument(#[from] ArgumentError),
    /// An argument is well-formed but unusable (a signature that recovers no signer, a
    /// key that is no curve point).
    #[error("argument {name} is malformed: {reason}")]
    Malformed {
        /// The argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The creator is not a readable identity.
    #[error("the creator's identity is unusable: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// The creator may not call the function.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// No patient has this treatment number.
    #[error("unknown patient {0:?}")]
    UnknownPatient(String),
    /// No record has this id.
    #[error("unknown record {0:?}")]
    UnknownRecord(String),
    /// The record was deleted.
    #[error("record {0:?} was deleted")]
    RecordDeleted(String),
    /// A new record would reuse a deleted record's id.
    #[error("record id {0:?} belongs to a deleted record; a deleted record's id is never reused")]
    RetiredRecordId(String),
    /// No recovery has this index.
    #[error("unknown recovery index {0}")]
    UnknownRecovery(u64),
    /// The patient or record exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The patient's deletion nonce was used before.
    #[error("deletion nonce {nonce} of patient {patient} was already used")]
    ReplayedNonce {
        /// The patient's address.
        patient: String,
        /// The nonce.
        nonce: u64,
    },
    /// The ledger failed.
    #[error("ledger failure: {0}")]
    Ledger(#[from] LedgerError),
    /// State does not parse.
    #[error("stored state under {key} is corrupt: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl ContractError {
    /// The Fabric response status: 4xx for the caller's mistakes, 500 for ours.
    pub fn status(&self) -> i32 {
        match self {
            Self::Argument(ArgumentError::Oversized { .. }) => 413,
            Self::UnknownFunction(_)
            | Self::Argument(_)
            | Self::Malformed { .. }
            | Self::Identity(_) => 400,
            Self::Forbidden(_) => 403,
            Self::UnknownPatient(_)
            | Self::UnknownRecord(_)
            | Self::RecordDeleted(_)
            | Self::UnknownRecovery(_) => 404,
            Self::AlreadyExists(_) | Self::RetiredRecordId(_) | Self::ReplayedNonce { .. } => 409,
            Self::Ledger(_) | Self::Corrupt { .. } => 500,
        }
    }
}

/// The state's layout.
mod keys {
    pub(crate) fn patient(treatment_number: &str) -> String {
        format!("patient/{treatment_number}")
    }
    pub(crate) fn record(record_id: &str) -> String {
        format!("record/{record_id}")
    }
    pub(crate) fn tombstone(record_id: &str) -> String {
        format!("tombstone/{record_id}")
    }
    pub(crate) fn deletion_nonce(address: &str, nonce: u64) -> String {
        format!("deletion-nonce/{address}/{nonce:020}")
    }
    /// The registered key service ([`medcert_hospital_api::KeyService`]).
    pub(crate) const KEY_SERVICE: &str = "keyservice";
    /// A consumed password ticket, by its nonce (hex).
    pub(crate) fn ticket_nonce(nonce_hex: &str) -> String {
        format!("ticket-nonce/{nonce_hex}")
    }
    pub(crate) const RECOVERY_COUNTER: &str = "recovery-counter";
    pub(crate) fn recovery(index: u64) -> String {
        format!("recovery/{index:020}")
    }
    /// Audit entries of one subject (`record` or `patient` and its id), in time order.
    pub(crate) fn audit_prefix(kind: &str, id: &str) -> String {
        format!("audit/{kind}/{id}/")
    }
    pub(crate) fn audit(kind: &str, id: &str, timestamp_ms: i64, tx_id: &str) -> String {
        format!("{}{timestamp_ms:020}/{tx_id}", audit_prefix(kind, id))
    }
    /// Above every character an identifier, a number or a tx id may hold.
    pub(crate) const RANGE_END: &str = "~";
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

    /// A refusal whose writes commit (a recorded failed attempt), with its event.
    fn refused_recorded(message: String, event: &str, payload: &impl Serialize) -> Self {
        Self {
            status: STATUS_REFUSED_RECORDED,
            message,
            payload: Vec::new(),
            event: None,
        }
        .with_event(event, payload)
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

fn parse_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ContractError> {
    serde_json::from_slice(bytes).map_err(|e| ContractError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// The hospital contract, one per chaincode process.
pub struct Contract {
    config: Config,
}

impl Contract {
    /// A contract with `config`.
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

impl<L: Ledger> Tx<'_, L> {
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
