//! The 32-byte digests the hospital chain keeps: bytes in the code, hex only on the
//! ledger and in JSON — bare lowercase hex for the hospital's own digests, `0x` hex for
//! the certificate chain's hashes, as each chain writes them. Either form is read back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 32 bytes from 64 hex digits, with or without a `0x` prefix.
pub fn parse_hex32(text: &str) -> Result<[u8; 32], hex::FromHexError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)?;
    Ok(out)
}

fn read_hex32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_hex32(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(with = "hex32")]`: 32 bytes as bare lowercase hex.
pub mod hex32 {
    use super::*;

    /// Writes bare lowercase hex.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    /// Reads hex, with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        read_hex32(deserializer)
    }
}

/// `#[serde(with = "prefixed_hex32")]`: 32 bytes as `0x` hex, as the certificate chain
/// writes its hashes.
pub mod prefixed_hex32 {
    use super::*;

    /// Writes `0x` and lowercase hex.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    /// Reads hex, with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        read_hex32(deserializer)
    }
}

macro_rules! fingerprint {
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
                hex32::serialize(&self.0, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                hex32::deserialize(deserializer).map($name)
            }
        }
    };
}

fingerprint!(
    /// SHA3-256 of a record's canonical content, anchored on both chains.
    ContentFingerprint
);
fingerprint!(
    /// The fingerprint of a record's embedded watermark, anchored on both chains.
    WatermarkFingerprint
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Hashes {
        #[serde(with = "hex32")]
        bare: [u8; 32],
        #[serde(with = "prefixed_hex32")]
        prefixed: [u8; 32],
    }

    #[test]
    fn fingerprints_serialise_as_bare_lowercase_hex_and_read_back() {
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

    #[test]
    fn each_hash_keeps_its_chains_form() {
        let hashes = Hashes {
            bare: [0xcd; 32],
            prefixed: [0x0e; 32],
        };
        let json = serde_json::to_value(&hashes).unwrap();
        assert_eq!(json["bare"], "cd".repeat(32));
        assert_eq!(json["prefixed"], format!("0x{}", "0e".repeat(32)));
        assert_eq!(serde_json::from_value::<Hashes>(json).unwrap(), hashes);
    }
}
