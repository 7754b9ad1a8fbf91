//! A record's 32-byte digests as types: they stay bytes inside the flows and become hex
//! (lowercase, no prefix, as the chains store them) only when serialised.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FlowError;

pub use medcert_crypto::HashC;

macro_rules! digest {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; 32]);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                parse_hex32(&text).map($name).map_err(serde::de::Error::custom)
            }
        }
    };
}

digest!(
    /// SHA3-256 of a record's canonical content, anchored on both chains.
    ContentFingerprint
);
digest!(
    /// The fingerprint of a record's embedded watermark, anchored on both chains.
    WatermarkFingerprint
);

/// A record's fingerprints, as anchored on both chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprints {
    /// The hash of the record's content.
    pub content: ContentFingerprint,
    /// The hash of the record's embedded watermark.
    pub watermark: WatermarkFingerprint,
}

/// 32 bytes from 64 hex digits, with or without a `0x` prefix.
pub(crate) fn parse_hex32(text: &str) -> Result<[u8; 32], hex::FromHexError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)?;
    Ok(out)
}

/// 32 bytes from the hex of `what` in an answer from `from`.
pub(crate) fn hex32(what: &'static str, from: &str, text: &str) -> Result<[u8; 32], FlowError> {
    parse_hex32(text).map_err(|source| FlowError::MalformedHex {
        what,
        from: from.to_owned(),
        source,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_serialise_as_bare_lowercase_hex_and_read_back() {
        let fingerprint = ContentFingerprint([0xab; 32]);
        let json = serde_json::to_string(&fingerprint).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(
            serde_json::from_str::<ContentFingerprint>(&json).unwrap(),
            fingerprint
        );
        let prefixed = format!("\"0x{}\"", "01".repeat(32));
        assert_eq!(
            serde_json::from_str::<WatermarkFingerprint>(&prefixed).unwrap(),
            WatermarkFingerprint([1; 32])
        );
        assert!(serde_json::from_str::<ContentFingerprint>("\"abc\"").is_err());
    }
}
