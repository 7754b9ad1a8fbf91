//! The hospital key service as the chain knows it: the ticket key a hospital admin
//! registered, and the redemption of the service's password tickets by the gated doctor
//! actions (create, query, request recovery).

use medcert_hospital_api::ticket::{SignedTicket, Ticket, TicketError, Verdict, VerifyingKey};
use medcert_hospital_api::{Actor, Function, KeyService, args, events};

use super::{ContractError, Reply, Tx, keys};
use crate::ledger::Ledger;

/// The action a ticket must be for.
pub(super) struct Gate<'a> {
    pub function: Function,
    pub treatment_number: &'a str,
    pub record_id: &'a str,
    pub doctor: &'a Actor,
}

/// What redeeming a ticket allows.
pub(super) enum Redeemed {
    /// The key service accepted the password: the action runs, audited with the ticket.
    Accepted {
        /// The ticket's nonce, hex.
        nonce: String,
    },
    /// A failed attempt: the recorded refusal to answer.
    Refused(Reply),
}

/// Why a gated action's ticket does not let it run: each is a failed attempt, recorded.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0} needs the hospital key service's password ticket, and the call carries none")]
    Missing(Function),
    #[error(
        "no key service is registered on channel {0}: a hospital admin must call SetKeyService"
    )]
    NoKeyService(String),
    #[error(transparent)]
    Invalid(TicketError),
    #[error("the password ticket is for channel {ticket:?}, not {called:?}")]
    Channel { ticket: String, called: String },
    #[error("the password ticket is for {ticket}, not {called}")]
    Function { ticket: Function, called: Function },
    #[error("the password ticket is for patient {ticket:?}, not {called:?}")]
    Patient { ticket: String, called: String },
    #[error("the password ticket is for record {ticket:?}, not {called:?}")]
    Record { ticket: String, called: String },
    #[error("the password ticket was issued to another doctor than {0}")]
    Doctor(String),
    #[error(
        "the password ticket issued at {issued_at_ms} ms is not valid at the transaction's time, {now_ms} ms"
    )]
    Expired { issued_at_ms: i64, now_ms: i64 },
    #[error("the password ticket {0} was already used")]
    Replayed(String),
}

impl Gate<'_> {
    /// What in a correctly signed ticket is not for this action, now, on `channel`.
    fn mismatch(&self, ticket: &Ticket, channel: &str, now_ms: i64) -> Option<Refusal> {
        let differs = |ticket: &str, called: &str| {
            (ticket != called).then(|| (ticket.to_owned(), called.to_owned()))
        };
        if let Some((ticket, called)) = differs(&ticket.channel, channel) {
            Some(Refusal::Channel { ticket, called })
        } else if ticket.function != self.function {
            Some(Refusal::Function {
                ticket: ticket.function,
                called: self.function,
            })
        } else if let Some((ticket, called)) =
            differs(&ticket.treatment_number, self.treatment_number)
        {
            Some(Refusal::Patient { ticket, called })
        } else if let Some((ticket, called)) = differs(&ticket.record_id, self.record_id) {
            Some(Refusal::Record { ticket, called })
        } else if hex::encode(ticket.doctor_cert_id) != self.doctor.cert_id {
            Some(Refusal::Doctor(self.doctor.name.clone()))
        } else if !ticket.is_current(now_ms) {
            Some(Refusal::Expired {
                issued_at_ms: ticket.issued_at_ms,
                now_ms,
            })
        } else {
            None
        }
    }
}

/// The signed ticket in `bytes`, if `key` signed it.
fn verified(
    function: Function,
    bytes: &[u8],
    key: Option<&VerifyingKey>,
    channel: &str,
) -> Result<Ticket, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Missing(function));
    }
    let signed = SignedTicket::decode(bytes).map_err(Refusal::Invalid)?;
    let key = key.ok_or_else(|| Refusal::NoKeyService(channel.to_owned()))?;
    signed.verify(key).map_err(Refusal::Invalid)?;
    Ok(signed.ticket)
}

impl<L: Ledger> Tx<'_, L> {
    /// `SetKeyService`: a hospital admin registers, or replaces, the key service's
    /// ticket key.
    pub(super) async fn set_key_service(
        &mut self,
        args: args::SetKeyService,
    ) -> Result<Reply, ContractError> {
        let admin = self.hospital_admin()?;
        VerifyingKey::from_bytes(&args.ticket_key).map_err(|e| ContractError::Malformed {
            name: "ticketKey",
            reason: format!("not an Ed25519 public key: {e}"),
        })?;
        let service = KeyService {
            ticket_key: hex::encode(args.ticket_key),
            set_by: admin,
            set_at_ms: self.ctx.timestamp_ms,
            set_tx: self.ctx.tx_id.clone(),
        };
        self.put_json(keys::KEY_SERVICE, &service).await?;
        Ok(Reply::json(&service).with_event(events::KEY_SERVICE_SET, &service))
    }

    /// `GetKeyService`: the registration, or JSON `null` before the first.
    pub(super) async fn get_key_service(&mut self) -> Result<Reply, ContractError> {
        self.hospital_member()?;
        let service: Option<KeyService> = self.get_json(keys::KEY_SERVICE).await?;
        Ok(Reply::json(&service))
    }

    /// The registered ticket key, if any.
    async fn ticket_key(&mut self) -> Result<Option<VerifyingKey>, ContractError> {
        let Some(service) = self.get_json::<KeyService>(keys::KEY_SERVICE).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| ContractError::Corrupt {
            key: keys::KEY_SERVICE.to_owned(),
            reason,
        };
        let bytes: [u8; 32] = hex::decode(&service.ticket_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("the ticket key is not 32 hex bytes".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    /// Redeems the ticket of a gated action. A ticket that is correctly signed, for this
    /// very action and unused is consumed, whatever its verdict: accepted, the action
    /// may run; rejected, the failed password is recorded and refused. Anything else is
    /// recorded and refused as an access without a valid ticket.
    pub(super) async fn redeem_ticket(
        &mut self,
        gate: &Gate<'_>,
        bytes: &[u8],
    ) -> Result<Redeemed, ContractError> {
        let key = self.ticket_key().await?;
        let ticket = match verified(gate.function, bytes, key.as_ref(), &self.ctx.channel) {
            Ok(ticket) => ticket,
            Err(refusal) => return self.refuse(gate, refusal, None).await,
        };
        let nonce = hex::encode(ticket.nonce);
        let nonce_key = keys::ticket_nonce(&nonce);
        let refusal = match gate.mismatch(&ticket, &self.ctx.channel, self.ctx.timestamp_ms) {
            None if self.ledger.get(&nonce_key).await?.is_some() => {
                Some(Refusal::Replayed(nonce.clone()))
            }
            refusal => refusal,
        };
        if let Some(refusal) = refusal {
            return self.refuse(gate, refusal, Some(nonce)).await;
        }
        self.ledger
            .put(&nonce_key, self.ctx.tx_id.as_bytes().to_vec())
            .await?;
        let Verdict::Rejected { attempt, limit } = ticket.verdict else {
            return Ok(Redeemed::Accepted { nonce });
        };
        let entry = self
            .audit(
                events::PASSWORD_REJECTED,
                gate.doctor,
                Some(gate.record_id),
                Some(gate.treatment_number),
                Some(nonce),
            )
            .await?;
        let mut message = format!(
            "wrong password for patient {:?}: attempt {attempt} of {limit}",
            gate.treatment_number
        );
        if attempt >= limit {
            message.push_str(", the patient is now locked");
        }
        Ok(Redeemed::Refused(Reply::refused_recorded(
            message,
            events::PASSWORD_REJECTED,
            &entry,
        )))
    }

    /// Records a gated action refused for its ticket, naming the ticket's nonce if the
    /// key service signed it.
    async fn refuse(
        &mut self,
        gate: &Gate<'_>,
        refusal: Refusal,
        nonce: Option<String>,
    ) -> Result<Redeemed, ContractError> {
        let entry = self
            .audit(
                events::ACCESS_REFUSED,
                gate.doctor,
                Some(gate.record_id),
                Some(gate.treatment_number),
                nonce,
            )
            .await?;
        Ok(Redeemed::Refused(Reply::refused_recorded(
            format!("access refused: {refusal}"),
            events::ACCESS_REFUSED,
            &entry,
        )))
    }
}
