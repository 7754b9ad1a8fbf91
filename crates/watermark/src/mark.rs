//! The signed payload and its framing into bits.
//!
//! Frame: a 32-bit header (magic `0x6D57`, body length in bytes, number of copies) written
//! three times, at bits 0, 400 and 800 of the frame, and `copies` identical copies of the
//! body (the payload followed by its CRC-32) in the bits around them. The decoder takes
//! the bitwise majority of the three headers and of the copies, and if the majority body
//! fails its CRC it tries each copy alone. Spacing the headers means a run of damage
//! shorter than 368 bits reaches at most one of them.
//!
//! Error correction by repetition with majority vote plus a CRC was chosen over a
//! Reed–Solomon code because damage to the carrier comes in runs (a tool that rewrites
//! some tags rewrites every bit in them): a run confined to one copy is outvoted, and
//! any copy that survives whole is found by its CRC. The CRC also tells a document that
//! merely has odd tag syntax ("absent") from one whose mark decodes but whose signature
//! fails ("forged").

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha3::{Digest, Sha3_256};

use crate::WatermarkError;

const MAGIC: u16 = 0x6D57;
const HEADER_BITS: usize = 32;
const HEADER_COPIES: usize = 3;
const HEADER_STRIDE: usize = 400;
/// Bits read before all three headers are in.
const HEADERS_END: usize = HEADER_STRIDE * (HEADER_COPIES - 1) + HEADER_BITS;
/// More copies only cost carrier; five outvote two damaged ones.
pub(crate) const MAX_COPIES: usize = 5;
pub(crate) const MAX_ID_LEN: usize = 64;
const VERSION: u8 = 1;
const SIGNING_CONTEXT: &[u8] = b"medcert-watermark/v1\0";

/// Everything the watermark says: who marked which record when, over which content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The payload format's version; 1.
    pub version: u8,
    /// The marking hospital's id.
    pub hospital_id: String,
    /// The record's id.
    pub record_id: String,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    /// SHA3-256 of the canonical content when the mark was embedded.
    pub content_fingerprint: [u8; 32],
    /// The hospital's Ed25519 signature over the other fields, under a domain
    /// separation context.
    pub signature: [u8; 64],
}

/// A payload's fields before the hospital signs them: what [`crate::prepare`] yields and
/// what the hospital's signer ([`sign_payload`]) signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedPayload {
    hospital_id: String,
    record_id: String,
    issued_at: u64,
    content_fingerprint: [u8; 32],
}

impl UnsignedPayload {
    /// The fields of a mark of `record_id` by `hospital_id` (each 1 to 64 bytes), issued at
    /// `issued_at` (seconds since the Unix epoch), over content with `content_fingerprint`.
    pub fn new(
        hospital_id: &str,
        record_id: &str,
        issued_at: u64,
        content_fingerprint: [u8; 32],
    ) -> Result<Self, WatermarkError> {
        check_ids(hospital_id, record_id)?;
        Ok(Self {
            hospital_id: hospital_id.to_owned(),
            record_id: record_id.to_owned(),
            issued_at,
            content_fingerprint,
        })
    }

    /// The marking hospital's id.
    pub fn hospital_id(&self) -> &str {
        &self.hospital_id
    }

    /// The record's id.
    pub fn record_id(&self) -> &str {
        &self.record_id
    }

    /// Seconds since the Unix epoch.
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// SHA3-256 of the canonical content.
    pub fn content_fingerprint(&self) -> [u8; 32] {
        self.content_fingerprint
    }

    /// The payload with the hospital's signature over these fields.
    pub(crate) fn with_signature(self, signature: [u8; 64]) -> Payload {
        Payload {
            version: VERSION,
            hospital_id: self.hospital_id,
            record_id: self.record_id,
            issued_at: self.issued_at,
            content_fingerprint: self.content_fingerprint,
            signature,
        }
    }
}

/// The hospital's Ed25519 signature over `unsigned`, under the watermark's domain
/// separation context: what [`crate::Prepared::embed`] writes into the document.
pub fn sign_payload(unsigned: &UnsignedPayload, key: &SigningKey) -> [u8; 64] {
    let message = signed_message(
        VERSION,
        &unsigned.hospital_id,
        &unsigned.record_id,
        unsigned.issued_at,
        &unsigned.content_fingerprint,
    );
    key.sign(&message).to_bytes()
}

/// Both ids must be 1 to [`MAX_ID_LEN`] bytes: the encoding gives each a one-byte length.
pub(crate) fn check_ids(hospital_id: &str, record_id: &str) -> Result<(), WatermarkError> {
    let fits = |id: &str| (1..=MAX_ID_LEN).contains(&id.len());
    if !fits(hospital_id) {
        return Err(WatermarkError::InvalidId {
            field: "hospital id",
        });
    }
    if !fits(record_id) {
        return Err(WatermarkError::InvalidId { field: "record id" });
    }
    Ok(())
}

fn signed_message(
    version: u8,
    hospital_id: &str,
    record_id: &str,
    issued_at: u64,
    content_fingerprint: &[u8; 32],
) -> Vec<u8> {
    let mut message = SIGNING_CONTEXT.to_vec();
    encode_fields(
        &mut message,
        version,
        hospital_id,
        record_id,
        issued_at,
        content_fingerprint,
    );
    message
}

fn encode_fields(
    out: &mut Vec<u8>,
    version: u8,
    hospital_id: &str,
    record_id: &str,
    issued_at: u64,
    content_fingerprint: &[u8; 32],
) {
    out.push(version);
    out.push(hospital_id.len() as u8);
    out.extend_from_slice(hospital_id.as_bytes());
    out.push(record_id.len() as u8);
    out.extend_from_slice(record_id.as_bytes());
    out.extend_from_slice(&issued_at.to_be_bytes());
    out.extend_from_slice(content_fingerprint);
}

impl Payload {
    fn signed_message(&self) -> Vec<u8> {
        signed_message(
            self.version,
            &self.hospital_id,
            &self.record_id,
            self.issued_at,
            &self.content_fingerprint,
        )
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        encode_fields(
            &mut out,
            self.version,
            &self.hospital_id,
            &self.record_id,
            self.issued_at,
            &self.content_fingerprint,
        );
        out.extend_from_slice(&self.signature);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let version = take(1)?[0];
        let hospital_len = take(1)?[0] as usize;
        let hospital_id = String::from_utf8(take(hospital_len)?.to_vec()).ok()?;
        let record_len = take(1)?[0] as usize;
        let record_id = String::from_utf8(take(record_len)?.to_vec()).ok()?;
        let issued_at = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let content_fingerprint = take(32)?.try_into().ok()?;
        let signature = take(64)?.try_into().ok()?;
        (version == VERSION && rest.is_empty()).then_some(Self {
            version,
            hospital_id,
            record_id,
            issued_at,
            content_fingerprint,
            signature,
        })
    }

    /// Whether the signature is the claimed hospital's, given its key.
    pub(crate) fn signed_by(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(
            &self.signed_message(),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }

    /// The watermark fingerprint: SHA3-256 of the encoded, signed payload. Anchored on
    /// the certificate chain beside the content fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha3_256::digest(self.encode()).into()
    }
}

/// Bits a frame needs for a payload of `payload_len` bytes with `copies` copies.
pub(crate) fn frame_bits(payload_len: usize, copies: usize) -> u64 {
    (HEADER_BITS * HEADER_COPIES + copies * (payload_len + 4) * 8) as u64
}

/// The frame as bits (one per byte, most significant first), with as many copies (up to
/// [`MAX_COPIES`]) as `available_bits` allows, and the number of copies; `None` if not
/// even one fits.
pub(crate) fn frame(payload: &Payload, available_bits: u64) -> Option<(Vec<u8>, usize)> {
    let mut body = payload.encode();
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    let body_bits = (body.len() * 8) as u64;
    let room = available_bits.checked_sub((HEADER_BITS * HEADER_COPIES) as u64)?;
    let copies = (room / body_bits).min(MAX_COPIES as u64) as usize;
    if copies == 0 {
        return None;
    }
    let mut header_bytes = MAGIC.to_be_bytes().to_vec();
    header_bytes.push(body.len() as u8);
    header_bytes.push(copies as u8);
    let mut header = Vec::with_capacity(HEADER_BITS);
    push_bits(&mut header, &header_bytes);
    let mut bodies = Vec::with_capacity(copies * body.len() * 8);
    for _ in 0..copies {
        push_bits(&mut bodies, &body);
    }
    let total = HEADER_BITS * HEADER_COPIES + bodies.len();
    let mut bodies = bodies.into_iter();
    let bits = (0..total)
        .map(|at| match header_bit(at) {
            Some(i) => header[i],
            None => bodies
                .next()
                .expect("the frame has room for every body bit"),
        })
        .collect();
    Some((bits, copies))
}

/// Which header bit sits at frame position `at`, if any.
fn header_bit(at: usize) -> Option<usize> {
    let (copy, offset) = (at / HEADER_STRIDE, at % HEADER_STRIDE);
    (copy < HEADER_COPIES && offset < HEADER_BITS).then_some(offset)
}

fn push_bits(bits: &mut Vec<u8>, bytes: &[u8]) {
    for byte in bytes {
        bits.extend((0..8).rev().map(|i| (byte >> i) & 1));
    }
}

fn bytes_of(bits: &[u8]) -> Vec<u8> {
    bits.chunks(8)
        .map(|byte| byte.iter().fold(0, |acc, bit| (acc << 1) | bit))
        .collect()
}

/// Bitwise majority of `copies` equal-length runs laid end to end in `bits`; a tie goes
/// to the first copy.
fn majority(bits: &[u8], copies: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let ones = (0..copies).filter(|c| bits[c * len + i] == 1).count();
            match (ones * 2).cmp(&copies) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => bits[i],
            }
        })
        .collect()
}

/// Collects carrier bits while a document is read, just as many as the frame announces.
pub(crate) struct FrameReader {
    bits: Vec<u8>,
    limit: usize,
    /// Body length in bytes and copies, once the headers are read and valid.
    layout: Option<(usize, usize)>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            bits: Vec::new(),
            limit: HEADERS_END,
            layout: None,
        }
    }
}

impl FrameReader {
    pub(crate) fn push(&mut self, value: u8, width: u32) {
        for i in (0..width).rev() {
            if self.bits.len() == self.limit {
                return;
            }
            self.bits.push((value >> i) & 1);
            if self.bits.len() == HEADERS_END {
                self.read_header();
            }
        }
    }

    fn read_header(&mut self) {
        let headers: Vec<u8> = (0..HEADER_COPIES)
            .flat_map(|copy| &self.bits[copy * HEADER_STRIDE..][..HEADER_BITS])
            .copied()
            .collect();
        let header = bytes_of(&majority(&headers, HEADER_COPIES, HEADER_BITS));
        let body_len = header[2] as usize;
        let copies = header[3] as usize;
        // Version, two id lengths, time, fingerprint, signature, CRC, and the ids.
        let fixed = 3 + 8 + 32 + 64 + 4;
        let valid = u16::from_be_bytes([header[0], header[1]]) == MAGIC
            && (fixed + 2..=fixed + 2 * MAX_ID_LEN).contains(&body_len)
            && (1..=MAX_COPIES).contains(&copies);
        if valid {
            self.layout = Some((body_len, copies));
            self.limit = HEADER_BITS * HEADER_COPIES + body_len * 8 * copies;
        }
    }

    /// The payload, if a whole frame was read and some copy of it passes its CRC.
    pub(crate) fn finish(self) -> Option<Payload> {
        let (body_len, copies) = self.layout?;
        let bodies: Vec<u8> = (self.bits.iter().enumerate())
            .filter(|(at, _)| header_bit(*at).is_none())
            .map(|(_, bit)| *bit)
            .collect();
        let body_bits = body_len * 8;
        if bodies.len() < body_bits * copies {
            return None;
        }
        let voted = majority(&bodies, copies, body_bits);
        std::iter::once(voted.as_slice())
            .chain(bodies.chunks(body_bits))
            .find_map(|candidate| {
                let body = bytes_of(candidate);
                let (payload, crc) = body.split_at(body_len - 4);
                (crc32fast::hash(payload).to_be_bytes() == crc)
                    .then(|| Payload::decode(payload))
                    .flatten()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        let key = SigningKey::from_bytes(&[7; 32]);
        let unsigned =
            UnsignedPayload::new("hospital1", "record-42", 1_700_000_000, [9; 32]).unwrap();
        let signature = sign_payload(&unsigned, &key);
        unsigned.with_signature(signature)
    }

    fn read(bits: &[u8]) -> Option<Payload> {
        let mut reader = FrameReader::default();
        for &bit in bits {
            reader.push(bit, 1);
        }
        reader.finish()
    }

    #[test]
    fn payload_round_trips_through_its_encoding() {
        let payload = payload();
        assert_eq!(Payload::decode(&payload.encode()), Some(payload.clone()));
        assert!(payload.signed_by(&SigningKey::from_bytes(&[7; 32]).verifying_key()));
        assert!(!payload.signed_by(&SigningKey::from_bytes(&[8; 32]).verifying_key()));
    }

    #[test]
    fn frame_survives_damage_to_a_header_and_to_two_copies() {
        let payload = payload();
        let (mut bits, copies) = frame(&payload, 100_000).unwrap();
        assert_eq!(copies, MAX_COPIES);
        let body_bits = (payload.encode().len() + 4) * 8;
        // A short run over the first header, and a long one after the last header over
        // parts of three copies but never more than two at the same place.
        for bit in &mut bits[..20] {
            *bit ^= 1;
        }
        for bit in &mut bits[HEADERS_END..HEADERS_END + 2 * body_bits - 100] {
            *bit ^= 1;
        }
        assert_eq!(read(&bits), Some(payload));
    }

    #[test]
    fn a_single_copy_with_one_wrong_bit_is_absent() {
        let payload = payload();
        let needed = frame_bits(payload.encode().len(), 1);
        let (mut bits, _) = frame(&payload, needed).unwrap();
        assert_eq!(bits.len() as u64, needed);
        assert_eq!(frame(&payload, needed - 1), None);
        let last = bits.len() - 1;
        bits[last] ^= 1;
        assert_eq!(read(&bits), None);
    }

    #[test]
    fn constant_bits_are_no_frame() {
        assert_eq!(read(&[0; 4000]), None);
        assert_eq!(read(&[1; 4000]), None);
    }
}
