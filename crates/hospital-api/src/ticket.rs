//! Password tickets: the hospital key service's signed word that it checked a patient's
//! password for exactly one action of one doctor.
//!
//! The password never reaches a proposal or a block. The doctor's client asks the key
//! service to check it for an action (a function, a patient, a record); the service
//! answers with a [`SignedTicket`], accepted or rejected, signed by its Ed25519 ticket
//! key, whose public half the hospital's admin registers on the channel. The chaincode
//! takes a password-gated action only with an accepted ticket for that very action,
//! doctor and channel, unexpired and unused; a rejected, foreign or missing ticket is
//! recorded as a failed attempt and refused. The key service releases a record key only
//! for a committed transaction whose audit entry names a ticket it issued.

use ed25519_dalek::{Signature, Signer, Verifier};
/// The keys tickets are signed and verified with, re-exported so that the key service,
/// the chaincode and the tests name the very types this module takes.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::Function;

/// What every signed ticket starts with, so no other signed message reads as one.
const DOMAIN: &[u8] = b"medcert password ticket v1\0";
/// The length of a ticket's nonce.
pub const NONCE_LEN: usize = 16;
/// How long a ticket stays usable after it was issued.
pub const TICKET_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// Why bytes are not a well-formed, correctly signed ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The bytes end early, carry an unknown field value or trail extra bytes.
    #[error("malformed password ticket: {0}")]
    Malformed(&'static str),
    /// The signature is not the registered key's over these fields.
    #[error("the password ticket is not signed by the registered key service")]
    BadSignature,
}

/// The service's verdict on the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password was right: the action may proceed.
    Accepted,
    /// The password was wrong; the chain records the failed attempt.
    Rejected {
        /// How many wrong passwords in a row, this one included.
        attempt: u32,
        /// How many lock the patient.
        limit: u32,
    },
}

/// The fields the key service signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The hospital's channel.
    pub channel: String,
    /// The gated function: `CreateRecord`, `QueryRecord` or `RequestRecovery`.
    pub function: Function,
    /// The patient.
    pub treatment_number: String,
    /// The record acted on.
    pub record_id: String,
    /// SHA3-256 of the doctor's DER enrollment certificate, as [`crate::Actor::cert_id`]
    /// names it.
    pub doctor_cert_id: [u8; 32],
    /// Unique per ticket: the chaincode accepts each once.
    pub nonce: [u8; NONCE_LEN],
    /// When the service issued it, in milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
    /// The verdict.
    pub verdict: Verdict,
}

/// A ticket with the key service's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTicket {
    /// The signed fields.
    pub ticket: Ticket,
    signature: [u8; 64],
}

impl Ticket {
    /// Whether the ticket may still be used at `now_ms` (a transaction's time).
    pub fn is_current(&self, now_ms: i64) -> bool {
        // A little leeway before issue: the service's and the peers' clocks differ.
        now_ms >= self.issued_at_ms - 60_000 && now_ms <= self.issued_at_ms + TICKET_LIFETIME_MS
    }

    /// Signs the ticket with the service's ticket key.
    pub fn sign(self, key: &SigningKey) -> SignedTicket {
        let signature = key.sign(&self.to_bytes()).to_bytes();
        SignedTicket {
            ticket: self,
            signature,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(DOMAIN);
        for text in [
            self.channel.as_str(),
            self.function.name(),
            &self.treatment_number,
            &self.record_id,
        ] {
            put_text(&mut out, text);
        }
        out.extend_from_slice(&self.doctor_cert_id);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        match self.verdict {
            Verdict::Accepted => out.push(1),
            Verdict::Rejected { attempt, limit } => {
                out.push(0);
                out.extend_from_slice(&attempt.to_be_bytes());
                out.extend_from_slice(&limit.to_be_bytes());
            }
        }
        out
    }
}

impl SignedTicket {
    /// The ticket as a chaincode argument carries it: the signed fields, then the
    /// signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.ticket.to_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads a ticket, without checking its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, TicketError> {
        let mut reader = Reader(bytes);
        if reader.take(DOMAIN.len())? != DOMAIN {
            return Err(TicketError::Malformed("not a password ticket"));
        }
        let channel = reader.text()?;
        let function = Function::from_name(&reader.text()?)
            .ok_or(TicketError::Malformed("unknown function"))?;
        let treatment_number = reader.text()?;
        let record_id = reader.text()?;
        let doctor_cert_id = reader.array::<32>()?;
        let nonce = reader.array::<NONCE_LEN>()?;
        let issued_at_ms = i64::from_be_bytes(reader.array::<8>()?);
        let verdict = match reader.array::<1>()? {
            [1] => Verdict::Accepted,
            [0] => Verdict::Rejected {
                attempt: u32::from_be_bytes(reader.array::<4>()?),
                limit: u32::from_be_bytes(reader.array::<4>()?),
            },
            _ => return Err(TicketError::Malformed("unknown verdict")),
        };
        let signature = reader.array::<64>()?;
        if !reader.0.is_empty() {
            return Err(TicketError::Malformed("bytes after the signature"));
        }
        Ok(Self {
            ticket: Ticket {
                channel,
                function,
                treatment_number,
                record_id,
                doctor_cert_id,
                nonce,
                issued_at_ms,
                verdict,
            },
            signature,
        })
    }

    /// The ticket, if `key` signed it.
    pub fn verify(&self, key: &VerifyingKey) -> Result<&Ticket, TicketError> {
        key.verify(
            &self.ticket.to_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| TicketError::BadSignature)?;
        Ok(&self.ticket)
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    // Every text is an identifier or a channel name, far below 64 KiB.
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TicketError> {
        if self.0.len() < n {
            return Err(TicketError::Malformed("ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TicketError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn text(&mut self) -> Result<String, TicketError> {
        let len = u16::from_be_bytes(self.array::<2>()?);
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| TicketError::Malformed("text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(verdict: Verdict) -> Ticket {
        Ticket {
            channel: "hospital1".into(),
            function: Function::QueryRecord,
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            doctor_cert_id: [7; 32],
            nonce: [9; NONCE_LEN],
            issued_at_ms: 1_700_000_000_000,
            verdict,
        }
    }

    #[test]
    fn a_signed_ticket_survives_encoding_and_verifies() {
        let key = SigningKey::from_bytes(&[3; 32]);
        for verdict in [
            Verdict::Accepted,
            Verdict::Rejected {
                attempt: 2,
                limit: 5,
            },
        ] {
            let signed = ticket(verdict).sign(&key);
            let decoded = SignedTicket::decode(&signed.encode()).unwrap();
            assert_eq!(decoded, signed);
            assert_eq!(
                decoded.verify(&key.verifying_key()).unwrap(),
                &ticket(verdict)
            );
        }
    }

    #[test]
    fn another_key_or_a_changed_field_fails_verification() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let other = SigningKey::from_bytes(&[4; 32]);
        let signed = ticket(Verdict::Accepted).sign(&key);
        assert_eq!(
            signed.verify(&other.verifying_key()),
            Err(TicketError::BadSignature)
        );
        let mut bytes = signed.encode();
        // The record id's last byte: "R-1" becomes "R-2".
        let at = bytes.windows(3).position(|w| w == b"R-1").unwrap() + 2;
        bytes[at] = b'2';
        let changed = SignedTicket::decode(&bytes).unwrap();
        assert_eq!(changed.ticket.record_id, "R-2");
        assert_eq!(
            changed.verify(&key.verifying_key()),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn truncated_or_padded_bytes_are_malformed() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let bytes = ticket(Verdict::Accepted).sign(&key).encode();
        for cut in [0, 10, bytes.len() - 1] {
            assert!(matches!(
                SignedTicket::decode(&bytes[..cut]),
                Err(TicketError::Malformed(_))
            ));
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(
            SignedTicket::decode(&padded),
            Err(TicketError::Malformed("bytes after the signature"))
        );
    }

    #[test]
    fn a_ticket_expires() {
        let t = ticket(Verdict::Accepted);
        assert!(t.is_current(t.issued_at_ms));
        assert!(t.is_current(t.issued_at_ms + TICKET_LIFETIME_MS));
        assert!(!t.is_current(t.issued_at_ms + TICKET_LIFETIME_MS + 1));
        assert!(!t.is_current(t.issued_at_ms - 120_000));
    }
}
