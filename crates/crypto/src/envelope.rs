//! The envelope stored on IPFS: {DEK wrapped to the patient, E'}.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `MCEV` |
//! | 1 | version (1) |
//! | 2 + n | record id, big-endian length then UTF-8 |
//! | 2 + n | hospital id, big-endian length then UTF-8 |
//! | 80 | the DEK wrapped to the patient ([`WrapPurpose::PatientEnvelope`]) |
//! | … | E' exactly as stored at the CSP (see [`crate::encrypt_stream`]) |
//!
//! The header needs no tag of its own: the ids are E's associated data and the wrapped key is
//! bound to the record id, so an altered header fails when the record is opened. Because E'
//! follows unchanged, the envelope can be built by writing [`EnvelopeHeader::encode`] and then
//! copying the CSP object, and read by [`EnvelopeHeader::read`] followed by
//! [`crate::decrypt_stream`] on the same reader.

use std::io::{self, Read};

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::stream::check_opening;
use crate::{CryptoError, Dek, HpkeKeyPair, KeyBinding, RecordAad, WrapPurpose, WrappedKey};

const MAGIC: &[u8; 4] = b"MCEV";
const VERSION: u8 = 1;
/// Longest record id or hospital id accepted, which also bounds what a reader allocates.
pub const MAX_ID_LEN: usize = 1024;
const WHAT: &str = "envelope";

/// The envelope's header; E' follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The record E' belongs to; at most [`MAX_ID_LEN`] bytes.
    pub record_id: String,
    /// The hospital that sealed E'; at most [`MAX_ID_LEN`] bytes.
    pub hospital_id: String,
    /// The DEK wrapped to the patient's X25519 key.
    pub wrapped_key: WrappedKey,
}

impl EnvelopeHeader {
    /// The longest a header can be: a reader that needs only the header fetches at most
    /// this many bytes.
    pub const MAX_LEN: usize = MAGIC.len() + 1 + 2 * (2 + MAX_ID_LEN) + WrappedKey::LEN;

    /// The header for `record_id` of `hospital_id`, with the DEK already wrapped to the
    /// patient for [`WrapPurpose::PatientEnvelope`] of that record (by whoever holds the
    /// DEK: the hospital's key service), so sealing needs no DEK.
    pub fn seal(aad: &RecordAad<'_>, wrapped_key: WrappedKey) -> Self {
        EnvelopeHeader {
            record_id: aad.record_id.to_owned(),
            hospital_id: aad.hospital_id.to_owned(),
            wrapped_key,
        }
    }

    /// What E' in this envelope is bound to.
    pub fn aad(&self) -> RecordAad<'_> {
        RecordAad {
            record_id: &self.record_id,
            hospital_id: &self.hospital_id,
        }
    }

    /// The DEK, opened with the patient's key pair.
    pub fn unwrap_dek(&self, patient: &HpkeKeyPair) -> Result<Dek, CryptoError> {
        let binding = KeyBinding {
            record_id: &self.record_id,
            purpose: WrapPurpose::PatientEnvelope,
        };
        crate::unwrap_key(&self.wrapped_key, patient, &binding)
    }

    /// The header's bytes, to be followed by E'.
    pub fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(
            MAGIC.len() + 5 + self.record_id.len() + self.hospital_id.len() + WrappedKey::LEN,
        );
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        for (what, id) in [
            ("record id", &self.record_id),
            ("hospital id", &self.hospital_id),
        ] {
            if id.len() > MAX_ID_LEN {
                return Err(CryptoError::TooLong {
                    what,
                    len: id.len(),
                    max: MAX_ID_LEN,
                });
            }
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(self.wrapped_key.as_bytes());
        Ok(out)
    }

    /// Reads the header and leaves `reader` at the start of E'.
    pub fn read(reader: &mut impl Read) -> Result<Self, CryptoError> {
        let mut fixed = [0u8; 5];
        exact(reader.read_exact(&mut fixed))?;
        check_opening(WHAT, MAGIC, VERSION, &fixed)?;
        let record_id = read_id(reader)?;
        let hospital_id = read_id(reader)?;
        let mut wrapped = [0u8; WrappedKey::LEN];
        exact(reader.read_exact(&mut wrapped))?;
        Ok(EnvelopeHeader {
            record_id,
            hospital_id,
            wrapped_key: WrappedKey::from_bytes(&wrapped)?,
        })
    }

    /// [`EnvelopeHeader::read`] over tokio I/O.
    pub async fn read_async(reader: &mut (impl AsyncRead + Unpin)) -> Result<Self, CryptoError> {
        let mut fixed = [0u8; 5];
        exact(reader.read_exact(&mut fixed).await)?;
        check_opening(WHAT, MAGIC, VERSION, &fixed)?;
        let mut ids = Vec::with_capacity(2);
        for _ in 0..2 {
            let mut len = [0u8; 2];
            exact(reader.read_exact(&mut len).await)?;
            let mut id = vec![0u8; id_len(len)?];
            exact(reader.read_exact(&mut id).await)?;
            ids.push(utf8(id)?);
        }
        let mut wrapped = [0u8; WrappedKey::LEN];
        exact(reader.read_exact(&mut wrapped).await)?;
        let hospital_id = ids.pop().expect("two ids read");
        let record_id = ids.pop().expect("two ids read");
        Ok(EnvelopeHeader {
            record_id,
            hospital_id,
            wrapped_key: WrappedKey::from_bytes(&wrapped)?,
        })
    }
}

fn exact<T>(read: io::Result<T>) -> Result<T, CryptoError> {
    read.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => CryptoError::Truncated,
        _ => CryptoError::Io(e),
    })
}

fn id_len(len: [u8; 2]) -> Result<usize, CryptoError> {
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_ID_LEN {
        return Err(CryptoError::Malformed {
            what: WHAT,
            reason: "id longer than allowed",
        });
    }
    Ok(len)
}

fn utf8(id: Vec<u8>) -> Result<String, CryptoError> {
    String::from_utf8(id).map_err(|_| CryptoError::Malformed {
        what: WHAT,
        reason: "id is not UTF-8",
    })
}

fn read_id(reader: &mut impl Read) -> Result<String, CryptoError> {
    let mut len = [0u8; 2];
    exact(reader.read_exact(&mut len))?;
    let mut id = vec![0u8; id_len(len)?];
    exact(reader.read_exact(&mut id))?;
    utf8(id)
}
