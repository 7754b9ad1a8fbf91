//! The password gate (DESIGN.md, "Trust"): the hospital's key service checks the
//! patient's password for one action and answers a signed ticket, accepted or rejected,
//! which the action carries to the chain. A rejected ticket is submitted all the same, so
//! the chain records the failed attempt; the flow then fails with [`WrongPassword`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medcert_hospital_api::ticket::{SignedTicket, TICKET_LIFETIME_MS, Verdict};
use medcert_hospital_api::{ClientError, Committed};

/// How long before its expiry a ticket is no longer submitted: a transaction's time is
/// set when it is proposed, and ordering takes a few seconds.
const EXPIRY_MARGIN_MS: i64 = 60_000;

/// The patient's password was wrong, and the hospital chain recorded the failed attempt.
#[derive(Debug, thiserror::Error)]
#[error(
    "wrong password for patient {treatment_number:?}: attempt {attempt} of {limit}{}; the \
     attempt is recorded on the hospital chain in transaction {tx_id}",
    if self.locked() { ", the patient is now locked" } else { "" }
)]
pub struct WrongPassword {
    /// The patient's treatment number.
    pub treatment_number: String,
    /// How many wrong passwords in a row, this one included.
    pub attempt: u32,
    /// How many in a row lock the patient.
    pub limit: u32,
    /// The transaction that recorded the refusal.
    pub tx_id: String,
}

impl WrongPassword {
    /// Whether this attempt locked the patient (until the hospital's admin unlocks).
    pub fn locked(&self) -> bool {
        self.attempt >= self.limit
    }
}

/// Why a password-gated call did not run.
#[derive(Debug)]
pub(crate) enum GateError {
    /// The ticket was rejected; the chain recorded it.
    WrongPassword(WrongPassword),
    /// The chain refused or failed the call.
    Chain(ClientError),
}

impl GateError {
    /// The flow's error, for a call on `channel`.
    pub(crate) fn on(self, channel: &str) -> crate::FlowError {
        match self {
            GateError::WrongPassword(wrong) => wrong.into(),
            GateError::Chain(source) => crate::FlowError::chain(channel, source),
        }
    }
}

/// What a password-gated call that carried `ticket` came to, from the chain's
/// `outcome`: for an accepted ticket, that outcome; for a rejected one, [`WrongPassword`]
/// once the chain has recorded the refusal.
pub(crate) fn gated<T>(
    ticket: &SignedTicket,
    outcome: Result<Committed<T>, ClientError>,
) -> Result<Committed<T>, GateError> {
    match ticket.ticket.verdict {
        Verdict::Accepted => outcome.map_err(GateError::Chain),
        Verdict::Rejected { .. } => Err(rejected(ticket, outcome.map(|c| c.tx_id))),
    }
}

/// What the submission of a rejected `ticket` came to, from the chain's `outcome`: the
/// recorded refusal as [`WrongPassword`], or the chain's failure.
pub(crate) fn rejected(ticket: &SignedTicket, outcome: Result<String, ClientError>) -> GateError {
    let (attempt, limit) = match ticket.ticket.verdict {
        Verdict::Rejected { attempt, limit } => (attempt, limit),
        Verdict::Accepted => (0, 0),
    };
    let tx_id = match outcome {
        Err(ClientError::Fabric {
            source: medcert_fabric::Error::Refused { tx_id, .. },
            ..
        }) => tx_id,
        // A chain that ran the action anyway still saw a wrong password; the key service
        // releases nothing for a rejected ticket.
        Ok(tx_id) => tx_id,
        Err(other) => return GateError::Chain(other),
    };
    GateError::WrongPassword(WrongPassword {
        treatment_number: ticket.ticket.treatment_number.clone(),
        attempt,
        limit,
        tx_id,
    })
}

/// Whether `ticket` would be too old to submit now.
pub(crate) fn expires_soon(ticket: &SignedTicket) -> bool {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
    now_ms.saturating_add(EXPIRY_MARGIN_MS)
        > ticket
            .ticket
            .issued_at_ms
            .saturating_add(TICKET_LIFETIME_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medcert_hospital_api::Function;
    use medcert_hospital_api::ticket::{SigningKey, Ticket};

    fn ticket(verdict: Verdict, issued_at_ms: i64) -> SignedTicket {
        Ticket {
            channel: "hospital1".into(),
            function: Function::QueryRecord,
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            doctor_cert_id: [7; 32],
            nonce: [1; 16],
            issued_at_ms,
            verdict,
        }
        .sign(&SigningKey::from_bytes(&[9; 32]))
    }

    fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    fn refused(tx_id: &str) -> ClientError {
        ClientError::Fabric {
            function: Function::QueryRecord,
            source: medcert_fabric::Error::Refused {
                tx_id: tx_id.into(),
                status: 300,
                message: "wrong password".into(),
            },
        }
    }

    #[test]
    fn a_rejected_ticket_is_told_as_the_wrong_password_the_chain_recorded() {
        let rejected = ticket(
            Verdict::Rejected {
                attempt: 5,
                limit: 5,
            },
            now_ms(),
        );
        let outcome: Result<Committed<()>, _> = gated(&rejected, Err(refused("tx-9")));
        let Err(GateError::WrongPassword(wrong)) = outcome else {
            panic!("expected a wrong password, got {outcome:?}");
        };
        assert_eq!(wrong.tx_id, "tx-9");
        assert!(wrong.locked());
        let message = wrong.to_string();
        assert!(message.contains("attempt 5 of 5"), "{message}");
        assert!(message.contains("now locked"), "{message}");
        assert!(message.contains("tx-9"), "{message}");
        // Not recorded (the chain failed otherwise): the chain's failure, not a verdict.
        let unreachable = ClientError::Fabric {
            function: Function::QueryRecord,
            source: medcert_fabric::Error::Incomplete("no answer"),
        };
        let outcome: Result<Committed<()>, _> = gated(&rejected, Err(unreachable));
        assert!(matches!(outcome, Err(GateError::Chain(_))), "{outcome:?}");
    }

    #[test]
    fn an_accepted_ticket_gives_the_chains_answer() {
        let accepted = ticket(Verdict::Accepted, now_ms());
        let committed = Committed {
            tx_id: "tx-1".into(),
            block_number: 3,
            answer: 42,
        };
        assert_eq!(gated(&accepted, Ok(committed)).unwrap().answer, 42);
        let outcome: Result<Committed<()>, _> = gated(&accepted, Err(refused("tx-2")));
        assert!(matches!(outcome, Err(GateError::Chain(_))), "{outcome:?}");
    }

    #[test]
    fn a_wrong_password_that_does_not_lock_says_so() {
        let wrong = WrongPassword {
            treatment_number: "T-1".into(),
            attempt: 2,
            limit: 5,
            tx_id: "tx".into(),
        };
        assert!(!wrong.locked());
        assert!(!wrong.to_string().contains("locked"), "{wrong}");
    }

    #[test]
    fn tickets_near_their_expiry_are_renewed() {
        assert!(!expires_soon(&ticket(Verdict::Accepted, now_ms())));
        let old = now_ms() - TICKET_LIFETIME_MS + EXPIRY_MARGIN_MS / 2;
        assert!(expires_soon(&ticket(Verdict::Accepted, old)));
    }
}
