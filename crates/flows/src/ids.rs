//! Identifiers: fresh treatment numbers and record ids, the checks the chaincode applies
//! (so bad input fails before anything is sent), and record ids as certificate words.

use medcert_hospital_api::{MAX_PASSWORD_LEN, is_identifier};
use zeroize::Zeroizing;

use crate::error::FlowError;

/// The longest record id that fits a certificate's `bytes32 recordId` (and the watermark).
pub const MAX_CERTIFIED_ID_LEN: usize = 32;

/// A fresh identifier such as `R-3f9c0a12d4e5b6c7`: a prefix and 64 random bits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// The chaincode's identifier rule: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
pub fn check_identifier(what: &'static str, id: &str) -> Result<(), FlowError> {
    if is_identifier(id.as_bytes()) {
        Ok(())
    } else {
        Err(FlowError::BadIdentifier {
            what,
            id: id.to_owned(),
        })
    }
}

/// A record id a record can be stored under and certified with.
pub fn check_record_id(id: &str) -> Result<(), FlowError> {
    check_identifier("record id", id)?;
    if id.len() > MAX_CERTIFIED_ID_LEN {
        return Err(FlowError::RecordIdTooLong {
            id: id.to_owned(),
            len: id.len(),
            max: MAX_CERTIFIED_ID_LEN,
        });
    }
    Ok(())
}

/// A password the chaincode accepts: not empty, at most 1024 bytes.
pub fn check_password(password: &Zeroizing<String>) -> Result<(), FlowError> {
    if password.is_empty() {
        return Err(FlowError::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(FlowError::PasswordTooLong {
            max: MAX_PASSWORD_LEN,
        });
    }
    Ok(())
}

/// A record id as the certificate's `bytes32 recordId`: its bytes, left-aligned and
/// zero-padded, the way hospital ids are written, so the chain stays readable.
pub fn certificate_record_id(record_id: &str) -> Result<[u8; 32], FlowError> {
    check_record_id(record_id)?;
    let mut word = [0u8; 32];
    word[..record_id.len()].copy_from_slice(record_id.as_bytes());
    Ok(word)
}

/// The text of a left-aligned, zero-padded `bytes32` (a record or hospital id), or its hex
/// when it is not such text.
pub fn word_text(word: &[u8; 32]) -> String {
    let end = word.iter().position(|&b| b == 0).unwrap_or(32);
    let (text, padding) = word.split_at(end);
    match std::str::from_utf8(text) {
        Ok(text) if !text.is_empty() && padding.iter().all(|&b| b == 0) => text.to_owned(),
        _ => format!("0x{}", hex::encode(word)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_pass_the_checks_and_differ() {
        let a = new_id("R");
        assert!(check_record_id(&a).is_ok());
        assert_ne!(a, new_id("R"));
    }

    #[test]
    fn record_ids_round_trip_through_certificate_words() {
        let word = certificate_record_id("R-0123456789abcdef").unwrap();
        assert_eq!(word_text(&word), "R-0123456789abcdef");
        assert_eq!(
            word_text(&medcert_eip712::hospital_id("hospital3").unwrap()),
            "hospital3"
        );
        let mut odd = [0u8; 32];
        odd[31] = 1;
        assert!(word_text(&odd).starts_with("0x"));
    }

    #[test]
    fn bad_ids_and_passwords_are_refused() {
        assert!(check_record_id(&"r".repeat(33)).is_err());
        assert!(check_record_id("a b").is_err());
        assert!(check_identifier("treatment number", "").is_err());
        assert!(matches!(
            check_password(&Zeroizing::new(String::new())),
            Err(FlowError::EmptyPassword)
        ));
        assert!(check_password(&Zeroizing::new("x".repeat(1025))).is_err());
        assert!(check_password(&Zeroizing::new("fine".into())).is_ok());
    }
}
