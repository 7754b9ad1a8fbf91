//! A request's fields, checked: each answers the value or why the request is malformed.

use medcert_crypto::{PublicKey, WrappedKey};
use medcert_hospital_api::{MAX_PASSWORD_LEN, is_identifier};
use zeroize::Zeroizing;

use crate::error::ServiceError;

pub(crate) fn identifier(what: &str, value: String) -> Result<String, ServiceError> {
    if is_identifier(value.as_bytes()) {
        Ok(value)
    } else {
        Err(ServiceError::Malformed(format!(
            "the {what} must be {}",
            medcert_hospital_api::IDENTIFIER_RULE
        )))
    }
}

pub(crate) fn password(password: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let password = Zeroizing::new(password);
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(ServiceError::Malformed(format!(
            "the password must be 1 to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(password)
}

/// A Fabric transaction id: 64 lowercase hex digits.
pub(crate) fn tx_id(tx_id: &str) -> Result<String, ServiceError> {
    if tx_id.len() == 64
        && tx_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(tx_id.to_owned())
    } else {
        Err(ServiceError::Malformed(
            "a transaction id is 64 lowercase hex digits".to_owned(),
        ))
    }
}

pub(crate) fn public_key(what: &str, bytes: &[u8]) -> Result<PublicKey, ServiceError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ServiceError::Malformed(format!("the {what} is not 32 bytes")))?;
    Ok(PublicKey::from_bytes(bytes))
}

pub(crate) fn wrapped_key(bytes: &[u8]) -> Result<WrappedKey, ServiceError> {
    WrappedKey::from_bytes(bytes).map_err(|e| ServiceError::Malformed(e.to_string()))
}
