//! Who submitted a transaction: the creator's MSP, NodeOU role and certificate.
//!
//! The peer has verified the proposal's signature and that the creator belongs to the
//! channel before the chaincode runs, so the chaincode only reads the identity to decide
//! what the creator may do.

use medcert_fabric_protos::msp::SerializedIdentity;
use prost::Message;
use sha3::{Digest, Sha3_256};
use x509_cert::Certificate;
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::{DecodePem, Encode};

use medcert_hospital_api::{Actor, Role};

const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_ORGANIZATIONAL_UNIT: &str = "2.5.4.11";

/// Why the creator's identity cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The creator bytes are not an `msp.SerializedIdentity`.
    #[error("the creator is not a serialized identity: {0}")]
    NotSerializedIdentity(prost::DecodeError),
    /// Its certificate does not parse.
    #[error("the creator's certificate is not a PEM X.509 certificate: {0}")]
    Certificate(x509_cert::der::Error),
}

/// The creator of a transaction, from its serialized identity.
pub fn actor_from_creator(creator: &[u8]) -> Result<Actor, IdentityError> {
    let identity =
        SerializedIdentity::decode(creator).map_err(IdentityError::NotSerializedIdentity)?;
    let cert = Certificate::from_pem(&identity.id_bytes).map_err(IdentityError::Certificate)?;
    let der = cert.to_der().map_err(IdentityError::Certificate)?;
    let mut name = String::new();
    let mut role = Role::Member;
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for attribute in rdn.0.iter() {
            let oid = attribute.oid.to_string();
            let Some(value) = attribute_text(&attribute.value) else {
                continue;
            };
            if oid == OID_COMMON_NAME {
                name = value;
            } else if oid == OID_ORGANIZATIONAL_UNIT {
                role = match value.as_str() {
                    "client" => Role::Client,
                    "admin" => Role::Admin,
                    "peer" => Role::Peer,
                    "orderer" => Role::Orderer,
                    _ => role,
                };
            }
        }
    }
    Ok(Actor {
        msp_id: identity.mspid,
        name,
        role,
        cert_id: hex::encode(Sha3_256::digest(&der)),
    })
}

fn attribute_text(value: &x509_cert::der::Any) -> Option<String> {
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Utf8StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

/// The MSP that owns a hospital channel, by the network's naming convention:
/// channel `hospital<i>` belongs to `Hospital<i>MSP`.
pub fn hospital_msp(channel: &str) -> Option<String> {
    let number = channel.strip_prefix("hospital")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("Hospital{number}MSP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_map_to_their_hospital_msp() {
        assert_eq!(hospital_msp("hospital2").as_deref(), Some("Hospital2MSP"));
        assert_eq!(hospital_msp("hospital"), None);
        assert_eq!(hospital_msp("hospitalX"), None);
        assert_eq!(hospital_msp("relay"), None);
    }

    #[test]
    fn garbage_creator_is_refused() {
        assert!(matches!(
            actor_from_creator(b"\xff\xff"),
            Err(IdentityError::NotSerializedIdentity(_))
        ));
        let identity = SerializedIdentity {
            mspid: "Hospital1MSP".into(),
            id_bytes: b"not a certificate".to_vec(),
        };
        assert!(matches!(
            actor_from_creator(&identity.encode_to_vec()),
            Err(IdentityError::Certificate(_))
        ));
    }
}
