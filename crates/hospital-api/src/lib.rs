//! The hospital chain's interface, shared by the chaincode that serves it and by every
//! client: the functions ([`Function`]), their arguments ([`args`]), their answers
//! (the JSON the chaincode returns and keeps in state), the events, the limits and the
//! identifier rule. With the `client` feature, `HospitalClient` calls each function
//! through the Fabric gateway, so no caller spells a function name or an argument
//! position.
//!
//! Hashes and fingerprints are bytes ([`ContentFingerprint`], `[u8; 32]`) in answers and
//! arguments alike; they become hex only on the ledger and in JSON ([`digest`]).

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

mod answers;
pub mod args;
#[cfg(feature = "client")]
mod client;
pub mod digest;
pub mod events;
mod function;
pub mod ticket;

pub use answers::{
    Actor, AuditEntry, ChainProof, InterchainRequest, KeyService, ProofKind, Record, RecordChange,
    RecordState, Recovery, RecoveryResult, RecoveryState, Role, Tombstone,
};
#[cfg(feature = "client")]
pub use client::{ClientError, Committed, HospitalClient};
pub use digest::{ContentFingerprint, WatermarkFingerprint};
pub use function::Function;

/// Status of a refusal whose writes must still commit (a failed attempt at a
/// password-gated action is recorded): Fabric commits the writes of any response below
/// 400.
pub const STATUS_REFUSED_RECORDED: i32 = 300;
/// The longest accepted argument, in bytes.
pub const MAX_ARG_LEN: usize = 4096;
/// The longest accepted password, in bytes (the key service checks passwords; no
/// password reaches the chain).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The longest identifier (treatment number, record id), in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 128;
/// The identifier rule, as messages state it.
pub const IDENTIFIER_RULE: &str = "1 to 128 of A-Z a-z 0-9 . _ : -";
/// The most digits of a certificate id (a decimal uint256).
pub const MAX_CERTIFICATE_ID_DIGITS: usize = 78;

/// Whether `id` may name a patient or a record: [`IDENTIFIER_RULE`], so that it is safe
/// inside the chaincode's state keys.
pub fn is_identifier(id: &[u8]) -> bool {
    (1..=MAX_IDENTIFIER_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_rule() {
        assert!(is_identifier(b"R-0123.abc_x:y"));
        assert!(is_identifier(&[b'a'; MAX_IDENTIFIER_LEN]));
        assert!(!is_identifier(&[b'a'; MAX_IDENTIFIER_LEN + 1]));
        assert!(!is_identifier(b""));
        assert!(!is_identifier(b"R/1"));
        assert!(!is_identifier(b"a b"));
    }
}
