//! A record's 32-byte digests as types: they stay bytes inside the flows and become hex
//! (lowercase, no prefix, as the chains store them) only when serialised.

use medcert_hospital_api::digest::parse_hex32;
use serde::{Deserialize, Deserializer, Serializer};

pub use medcert_crypto::HashC;
pub use medcert_hospital_api::{ContentFingerprint, WatermarkFingerprint};

/// A record's fingerprints, as anchored on both chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprints {
    /// The hash of the record's content.
    pub content: ContentFingerprint,
    /// The hash of the record's embedded watermark.
    pub watermark: WatermarkFingerprint,
}

/// Serialises a [`HashC`] as hex, for reports (`#[serde(with = "hash_c_hex")]`).
pub(crate) mod hash_c_hex {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(hash: &HashC, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hash.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HashC, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_hex32(&text)
            .map(HashC::from_bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// [`hash_c_hex`] for an optional Hash C.
pub(crate) mod option_hash_c_hex {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        hash: &Option<HashC>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match hash {
            Some(hash) => serializer.serialize_some(&hash.to_string()),
            None => serializer.serialize_none(),
        }
    }
}
