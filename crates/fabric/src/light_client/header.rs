//! A block header's hash and a block's data hash, as Fabric computes them.

use medcert_fabric_protos::common::{BlockData, BlockHeader};
use sha2::{Digest, Sha256};

/// SHA-256 of the header's ASN.1 DER encoding, `SEQUENCE { number INTEGER, previous_hash
/// OCTET STRING, data_hash OCTET STRING }`: the hash the next block's `previous_hash`
/// names.
pub fn block_hash(header: &BlockHeader) -> [u8; 32] {
    Sha256::digest(header_bytes(header)).into()
}

/// SHA-256 of the block's transactions concatenated: what its header's `data_hash` must be.
pub fn data_hash(data: &BlockData) -> [u8; 32] {
    let mut hash = Sha256::new();
    for envelope in &data.data {
        hash.update(envelope);
    }
    hash.finalize().into()
}

/// The header's DER encoding, which the orderers' signatures cover.
pub(crate) fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    let mut content = der(0x02, &integer(header.number));
    content.extend(der(0x04, &header.previous_hash));
    content.extend(der(0x04, &header.data_hash));
    der(0x30, &content)
}

/// The content octets of a non-negative DER INTEGER: minimal big-endian, with a leading
/// zero when the top bit is set (else it would read as negative).
fn integer(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut content = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[first..]);
    content
}

/// One DER tag-length-value.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_non_negative() {
        assert_eq!(integer(0), [0]);
        assert_eq!(integer(5), [5]);
        assert_eq!(integer(0x7f), [0x7f]);
        assert_eq!(integer(0x80), [0, 0x80]);
        assert_eq!(integer(0x0100), [1, 0]);
        assert_eq!(
            integer(u64::MAX),
            [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn header_encoding_is_der() {
        let header = BlockHeader {
            number: 1,
            previous_hash: vec![0xaa; 32],
            data_hash: vec![],
        };
        let mut expected = vec![0x30, 3 + 34 + 2, 0x02, 1, 1, 0x04, 32];
        expected.extend([0xaa; 32]);
        expected.extend([0x04, 0]);
        assert_eq!(header_bytes(&header), expected);
        assert_eq!(der(0x04, &[7; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der(0x04, &[7; 300])[..4], [0x04, 0x82, 1, 44]);
    }
}
