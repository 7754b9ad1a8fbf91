//! What the chain says, as the service checks it itself: a transaction in a block it
//! fetched from its own hospital's peer, VALID, on its channel, endorsed by peers of its
//! MSP, carrying the chaincode's event; and what that event must say for each kind of
//! key release.

use std::time::SystemTime;

use medcert_fabric::block::{self, BlockTransaction};
use medcert_fabric::msp::{MspTrust, Role};
use medcert_fabric::{Gateway, Identity, PeerEndpoint};
use medcert_fabric_protos::protos::TxValidationCode;
use medcert_hospital_api::events::{
    RECORD_CREATED, RECORD_DELETED, RECORD_QUERIED, RECOVERY_COMPLETED, RecordDeleted,
};
use medcert_hospital_api::{
    AuditEntry, ClientError, Function, HospitalClient, RecordState, Recovery, RecoveryState, args,
};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::auth::{Caller, error_chain};
use crate::error::ServiceError;
use crate::store::IssuedTicket;

/// The hospital's peers, reached with the service's own identity.
pub(crate) struct Peers {
    pub(crate) peers: Vec<PeerEndpoint>,
    pub(crate) identity: Identity,
}

/// The service's channel as the service sees it.
pub(crate) struct Chain {
    channel: String,
    chaincode: String,
    trust: MspTrust,
    peers: Peers,
    /// Connected on first use, so the service starts while the peer is down.
    gateway: OnceCell<Gateway>,
}

/// A chaincode event of a checked, committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedEvent {
    pub(crate) tx_id: String,
    pub(crate) name: String,
    pub(crate) payload: Vec<u8>,
}

impl Chain {
    pub(crate) fn new(channel: &str, chaincode: &str, trust: MspTrust, peers: Peers) -> Self {
        Self {
            channel: channel.to_owned(),
            chaincode: chaincode.to_owned(),
            trust,
            peers,
            gateway: OnceCell::new(),
        }
    }

    async fn gateway(&self) -> Result<&Gateway, ServiceError> {
        self.gateway
            .get_or_try_init(|| {
                Gateway::connect_any(&self.peers.peers, self.peers.identity.clone())
            })
            .await
            .map_err(|e| ServiceError::Peer(error_chain("connecting to the peer", &e)))
    }

    /// The event of committed transaction `tx_id`, checked ([`check_transaction`]).
    pub(crate) async fn committed_event(
        &self,
        tx_id: &str,
    ) -> Result<CommittedEvent, ServiceError> {
        let network = self.gateway().await?.network(&self.channel);
        let block = match network.block_by_tx_id(tx_id).await {
            Ok(block) => block,
            // The ledger answered, with no block holding the transaction.
            Err(e) if chaincode_status(&e).is_some() => {
                return Err(ServiceError::NotCommitted {
                    tx_id: tx_id.to_owned(),
                    channel: self.channel.clone(),
                });
            }
            Err(e) => return Err(ServiceError::Peer(error_chain("reading the block", &e))),
        };
        let transactions = block::transactions(&block)
            .map_err(|e| ServiceError::Peer(error_chain("the peer's block", &e)))?;
        let transaction = transactions
            .iter()
            .find(|t| t.tx_id == tx_id)
            .ok_or_else(|| ServiceError::NotCommitted {
                tx_id: tx_id.to_owned(),
                channel: self.channel.clone(),
            })?;
        check_transaction(
            transaction,
            &self.trust,
            &self.channel,
            &self.chaincode,
            SystemTime::now(),
        )
    }

    /// Whether the channel holds `record_id` as an active record (a deleted one is not).
    pub(crate) async fn record_is_active(&self, record_id: &str) -> Result<bool, ServiceError> {
        let contract = self
            .gateway()
            .await?
            .network(&self.channel)
            .contract(&self.chaincode);
        let args = args::GetRecord {
            record_id: record_id.to_owned(),
        };
        match HospitalClient::new(contract).get_record(&args).await {
            Ok(RecordState::Active { .. }) => Ok(true),
            Ok(RecordState::Deleted { .. }) => Ok(false),
            // The chaincode's "unknown record".
            Err(ClientError::Fabric { source, .. }) if chaincode_status(&source) == Some(404) => {
                Ok(false)
            }
            Err(e) => Err(ServiceError::Peer(error_chain("reading the record", &e))),
        }
    }
}

/// The status of a chaincode's error answer, if the error is one: returned as is by an
/// evaluation, or as the gateway reports it ("chaincode response 404, …").
fn chaincode_status(error: &medcert_fabric::Error) -> Option<i32> {
    const MARK: &str = "chaincode response ";
    match error {
        medcert_fabric::Error::Chaincode { status, .. } => Some(*status),
        medcert_fabric::Error::Gateway {
            message, details, ..
        } => std::iter::once(message).chain(details).find_map(|text| {
            let at = text.find(MARK)? + MARK.len();
            let digits: String = text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        }),
        _ => None,
    }
}

/// Checks a committed transaction: VALID, on `channel`, endorsed only by peers of
/// `trust`'s MSP (at least one) whose signatures verify at `now`, with an event of
/// `chaincode`. Answers the event, which the endorsers signed with the rest of the
/// chaincode's action.
pub(crate) fn check_transaction(
    transaction: &BlockTransaction,
    trust: &MspTrust,
    channel: &str,
    chaincode: &str,
    now: SystemTime,
) -> Result<CommittedEvent, ServiceError> {
    let tx_id = &transaction.tx_id;
    let deny = |reason: String| {
        Err(ServiceError::Denied(format!(
            "transaction {tx_id} {reason}"
        )))
    };
    if transaction.validation_code != TxValidationCode::Valid {
        return deny(format!(
            "is {}, not VALID",
            transaction.validation_code.as_str_name()
        ));
    }
    if transaction.channel != channel {
        return deny(format!(
            "is on channel {}, not {channel}",
            transaction.channel
        ));
    }
    if transaction.endorsements.is_empty() {
        return deny("carries no endorsement".to_owned());
    }
    for (index, endorsement) in transaction.endorsements.iter().enumerate() {
        let endorser = trust
            .verify_endorsement(
                &transaction.proposal_response_payload,
                &endorsement.endorser,
                &endorsement.signature,
                now,
            )
            .map_err(|e| {
                ServiceError::Denied(error_chain(
                    &format!("transaction {tx_id}: endorsement {index}"),
                    &e,
                ))
            })?;
        if endorser.role != Role::Peer {
            return deny(format!(
                "is endorsed by {}, who is not a peer",
                endorser.name
            ));
        }
    }
    let Some(event) = &transaction.event else {
        return deny("carries no chaincode event".to_owned());
    };
    if event.chaincode_id != chaincode {
        return deny(format!(
            "is an event of chaincode {}, not {chaincode}",
            event.chaincode_id
        ));
    }
    if event.tx_id != *tx_id {
        return deny("carries another transaction's event".to_owned());
    }
    Ok(CommittedEvent {
        tx_id: tx_id.clone(),
        name: event.event_name.clone(),
        payload: event.payload.clone(),
    })
}

fn payload<T: DeserializeOwned>(event: &CommittedEvent, expected: &str) -> Result<T, ServiceError> {
    let tx_id = &event.tx_id;
    if event.name != expected {
        return Err(ServiceError::Denied(format!(
            "transaction {tx_id} emitted {}, not {expected}",
            event.name
        )));
    }
    serde_json::from_slice(&event.payload).map_err(|e| {
        ServiceError::Denied(format!(
            "transaction {tx_id}: the {expected} event is malformed ({e})"
        ))
    })
}

/// The audit entry of a committed `function` (QueryRecord or CreateRecord) by `caller`
/// with a password ticket: its record, patient and ticket nonce (hex).
pub(crate) fn audited_access(
    event: &CommittedEvent,
    function: Function,
    caller: &Caller,
) -> Result<AuditedAccess, ServiceError> {
    let name = match function {
        Function::CreateRecord => RECORD_CREATED,
        _ => RECORD_QUERIED,
    };
    let entry: AuditEntry = payload(event, name)?;
    let tx_id = &event.tx_id;
    let deny = |reason: &str| {
        Err(ServiceError::Denied(format!(
            "transaction {tx_id} {reason}"
        )))
    };
    if entry.action != function.name() || entry.tx_id != *tx_id {
        return deny(&format!("audits {} of {}", entry.action, entry.tx_id));
    }
    if entry.actor.cert_id != caller.cert_id_hex() {
        return deny(&format!(
            "was submitted by {}, not by the caller",
            entry.actor.name
        ));
    }
    let (Some(record_id), Some(treatment_number), Some(ticket)) =
        (entry.record_id, entry.treatment_number, entry.ticket)
    else {
        return deny("audits no record, patient or password ticket");
    };
    Ok(AuditedAccess {
        record_id,
        treatment_number,
        ticket,
    })
}

/// What an audited access names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditedAccess {
    pub(crate) record_id: String,
    pub(crate) treatment_number: String,
    /// The ticket's nonce, hex.
    pub(crate) ticket: String,
}

/// Whether `ticket` is the accepted one this service issued to `caller` for `function`
/// on the access's record and patient (redemption is checked by the store).
pub(crate) fn ticket_fits(
    ticket: &IssuedTicket,
    function: Function,
    access: &AuditedAccess,
    caller: &Caller,
) -> Result<(), ServiceError> {
    let fits = ticket.accepted
        && ticket.function == function.name()
        && ticket.record_id == access.record_id
        && ticket.treatment_number == access.treatment_number
        && ticket.doctor_cert_id == caller.cert_id_hex();
    if fits {
        Ok(())
    } else {
        Err(ServiceError::Denied(format!(
            "ticket {} was not issued to the caller for {function} of record {}",
            access.ticket, access.record_id
        )))
    }
}

/// The completed recovery `caller` asked for on `channel`.
pub(crate) fn completed_recovery(
    event: &CommittedEvent,
    caller: &Caller,
    channel: &str,
) -> Result<Recovery, ServiceError> {
    let recovery: Recovery = payload(event, RECOVERY_COMPLETED)?;
    let tx_id = &event.tx_id;
    let deny = |reason: String| {
        Err(ServiceError::Denied(format!(
            "transaction {tx_id} {reason}"
        )))
    };
    if recovery.doctor.cert_id != caller.cert_id_hex() {
        return deny(format!(
            "completes a recovery asked for by {}, not by the caller",
            recovery.doctor.name
        ));
    }
    if recovery.requesting_hospital != channel {
        return deny(format!(
            "completes a recovery for {}, not {channel}",
            recovery.requesting_hospital
        ));
    }
    if !matches!(recovery.outcome, RecoveryState::Completed { .. }) {
        return deny("does not complete the recovery".to_owned());
    }
    Ok(recovery)
}

/// Checks that the event deletes `record_id`.
pub(crate) fn deleted_record(event: &CommittedEvent, record_id: &str) -> Result<(), ServiceError> {
    let deleted: RecordDeleted = payload(event, RECORD_DELETED)?;
    if deleted.tombstone.record_id != record_id {
        return Err(ServiceError::Denied(format!(
            "transaction {} deletes record {}, not {record_id}",
            event.tx_id, deleted.tombstone.record_id
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
