//! The hospital chaincode's JSON answers, as the flows read them, and the relay's
//! `CompleteRecovery` result (the cross-helper contract).

use serde::{Deserialize, Serialize};

use crate::digest::{ContentFingerprint, WatermarkFingerprint, parse_hex32};
use crate::error::FlowError;

// The chaincode's own answer types: one definition of the ledger's JSON for both sides.
pub use medcert_chaincode::contract::{Record, RecordState, Recovery, RecoveryState, Tombstone};
pub use medcert_chaincode::identity::Actor;

/// The relay's `CompleteRecovery` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayResult {
    pub certificate_id: u64,
    pub cid: String,
    pub content_fingerprint: ContentFingerprint,
    pub watermark_fingerprint: WatermarkFingerprint,
    pub eth_tx: String,
    pub eth_block: u64,
    pub request_id: String,
}

/// Parses a chaincode or relay JSON answer.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    source_name: &str,
    bytes: &[u8],
) -> Result<T, FlowError> {
    serde_json::from_slice(bytes).map_err(|source| FlowError::MalformedJson {
        what,
        from: source_name.to_owned(),
        source,
    })
}

/// 32 bytes from 64 hex digits (an optional `0x` prefix).
pub(crate) fn hex32(
    what: &'static str,
    source_name: &str,
    text: &str,
) -> Result<[u8; 32], FlowError> {
    parse_hex32(text).map_err(|source| FlowError::MalformedHex {
        what,
        from: source_name.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_chaincode_record_states() {
        let active = br#"{"state":"active","record":{"record_id":"R-1","treatment_number":"T-1",
            "hash_c":"aa","size":3,"content_fingerprint":"bb","watermark_fingerprint":"cc",
            "created_by":{"msp_id":"Hospital1MSP","name":"User1","role":"client","cert_id":"dd"},
            "created_at_ms":5,"created_tx":"tx1"}}"#;
        let state: RecordState = parse("record", "test", active).unwrap();
        assert!(matches!(state, RecordState::Active { record } if record.size == 3));
        let deleted = br#"{"state":"deleted","tombstone":{"record_id":"R-1","treatment_number":"T-1",
            "deleted_by":"0xab","submitted_by":{"msp_id":"M","name":"N","role":"admin","cert_id":"e"},
            "nonce":7,"deleted_at_ms":9,"deleted_tx":"tx2"}}"#;
        let state: RecordState = parse("record", "test", deleted).unwrap();
        assert!(matches!(state, RecordState::Deleted { tombstone } if tombstone.nonce == 7));
    }

    #[test]
    fn reads_recovery_outcomes_and_the_relay_result() {
        let completed = br#"{"index":4,"treatment_number":"T","record_id":"R","certificate_id":"9",
            "consent":"00","requesting_hospital":"hospital2","doctor":{"msp_id":"M","name":"N",
            "role":"client","cert_id":"c"},"requested_at_ms":1,"requested_tx":"t",
            "outcome":{"state":"completed","result":"{}","at_ms":2,"tx":"u"}}"#;
        let recovery: Recovery = parse("recovery", "test", completed).unwrap();
        assert_eq!(recovery.index, 4);
        assert!(matches!(recovery.outcome, RecoveryState::Completed { .. }));
        let result = format!(
            r#"{{"certificate_id":9,"cid":"bafy","content_fingerprint":"{}",
            "watermark_fingerprint":"{}","eth_tx":"0x1","eth_block":12,"request_id":"0x2"}}"#,
            "aa".repeat(32),
            "bb".repeat(32)
        );
        let result: RelayResult = parse("result", "test", result.as_bytes()).unwrap();
        assert_eq!(result.content_fingerprint, ContentFingerprint([0xaa; 32]));
        assert_eq!(result.eth_block, 12);
        let error = parse::<RelayResult>("relay result", "recovery 4", b"{}").unwrap_err();
        assert!(
            error.to_string().contains("relay result from recovery 4"),
            "{error}"
        );
    }

    #[test]
    fn hex32_takes_an_optional_prefix() {
        assert_eq!(hex32("x", "t", &"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert_eq!(
            hex32("x", "t", &format!("0x{}", "01".repeat(32))).unwrap(),
            [1; 32]
        );
        assert!(hex32("x", "t", "abc").is_err());
    }
}
