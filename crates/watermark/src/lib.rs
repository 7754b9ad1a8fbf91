//! A hospital's signed watermark, hidden in the syntax of an XML record that parsers
//! ignore, so the record's meaning is untouched.
//!
//! # Carrier
//! Bits live in the tags, in document order:
//! - the whitespace before each attribute, 2 bits: `" "`, `"\n"`, `"\t"`, `"  "`;
//! - the whitespace around each attribute's `=`, 2 bits: `=`, ` =`, `= `, ` = `;
//! - the quotes around each attribute value that contains no quote, 1 bit: `"` or `'`;
//! - the whitespace before a start tag's `>` or an empty tag's `/>`, 2 bits: none, `" "`,
//!   `"\n"`, `"\t"`;
//! - for an element with no content at all, 1 bit: `<a></a>` (0) or `<a/>` (1);
//! - the whitespace before an end tag's `>`, 2 bits, as before a start tag's `>`.
//!
//! Whitespace of another shape reads as 0. Since writing `<a/>` for `<a></a>` removes an
//! end tag and its 2 bits, the capacity counted for a document leaves out the end tags
//! of elements without content; the mark then fits whatever form they take.
//!
//! Text, including whitespace-only text, is content and is never touched, nor is anything
//! outside the tags that carry the mark: embedding changes only carrier syntax, in the
//! first tags of the document, and copies every other byte as it was. Another XML writer
//! writes all tags its own uniform way, which erases the mark ([`Verdict::Absent`]).
//!
//! # Payload
//! Version, hospital id, record id, time and the content fingerprint (SHA3-256 of the
//! canonical content, see [`content_fingerprint`]), signed with the hospital's Ed25519
//! watermark key; framed with repetition, majority vote and a CRC (see `mark.rs` for
//! why). One copy needs 1,000 to 2,000 bits depending on the ids' lengths; a typical
//! C-CDA element with four attributes carries 23. Up to five copies are written, in the
//! first tags of the document.
//!
//! # What each verdict covers
//! Any change to text or to an attribute value changes the content fingerprint, so a
//! decodable mark reads as tampered. An edit that adds or removes tags or attributes
//! inside the marked tags shifts the carrier and may make the mark read as absent
//! instead; the anchored content fingerprint still tells that the content changed.
//!
//! # Streaming
//! [`embed`] makes two passes over a seekable source: the first ([`prepare`]) checks the
//! document, hashes its content and counts its capacity; the second
//! ([`Prepared::embed`]) writes the marked copy. Between them the payload is signed, by
//! [`sign_payload`] with a key at hand or by a signer that holds it elsewhere. Since
//! the first pass reads everything before a byte is written, a malformed or too small
//! document writes nothing. [`verify`] makes one pass. Memory is bounded by the reader's
//! buffer plus the largest single tag, whatever the size of the document or of any of
//! its text nodes: text comes in pieces of at most the reader's buffer.
//! A UTF-8 byte order mark is not carried over to the output.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

mod canonical;
mod embed;
mod mark;
mod scan;

use std::io::{self, BufRead};

use medcert_ccda::xml::{Tag, Token};

use canonical::ContentHasher;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use embed::{Prepared, TooSmall, embed, prepare};
use mark::FrameReader;
pub use mark::{Payload, UnsignedPayload, sign_payload};
use scan::{Visitor, scan};

/// Why a document could not be marked or checked.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    /// The document is not well-formed XML.
    #[error("malformed XML at line {line}, column {column}: {reason}")]
    Malformed {
        /// The 1-based line of the fault.
        line: u64,
        /// The 1-based byte column of the fault.
        column: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The input ends before the document is complete.
    #[error(
        "truncated XML: the document ends at line {line}, column {column} before it is complete; \
         send the whole file"
    )]
    Truncated {
        /// The 1-based line where the input ends.
        line: u64,
        /// The 1-based byte column where the input ends.
        column: u64,
    },
    /// The document's tags cannot hold one copy of the mark ([`embed`] only).
    #[error(
        "the document has room for {available_bits} watermark bits but the mark needs \
         {needed_bits}; rely on the anchored content fingerprint instead"
    )]
    InsufficientCapacity {
        /// Carrier bits one copy of the mark needs ([`Mark::needed_bits`]).
        needed_bits: u64,
        /// Carrier bits the document offers.
        available_bits: u64,
    },
    /// A hospital or record id is empty or longer than 64 bytes.
    #[error("the {field} must be 1 to 64 bytes long")]
    InvalidId {
        /// Which id: `hospital id` or `record id`.
        field: &'static str,
    },
    /// The mark names a hospital whose verifying key the caller does not know.
    #[error(
        "the watermark names hospital {hospital_id}, whose watermark key is not known; \
         register the hospital's key before verifying"
    )]
    UnknownHospital {
        /// The hospital id the decoded mark names.
        hospital_id: String,
    },
    /// Reading the source or writing the output failed.
    #[error("reading or writing the document failed")]
    Io(#[from] io::Error),
}

/// What a hospital writes into a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark<'a> {
    /// The marking hospital's id, 1 to 64 bytes; names the key that verifies the mark.
    pub hospital_id: &'a str,
    /// The record's id, 1 to 64 bytes.
    pub record_id: &'a str,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
}

impl Mark<'_> {
    /// Carrier bits a document needs to hold this mark once.
    pub fn needed_bits(&self) -> u64 {
        let payload_len = 1 + 1 + self.hospital_id.len() + 1 + self.record_id.len() + 8 + 32 + 64;
        mark::frame_bits(payload_len, 1)
    }

    fn check(&self) -> Result<(), WatermarkError> {
        mark::check_ids(self.hospital_id, self.record_id)
    }
}

/// What [`embed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// SHA3-256 of the canonical content; the same before and after embedding.
    pub content_fingerprint: [u8; 32],
    /// SHA3-256 of the signed payload.
    pub watermark_fingerprint: [u8; 32],
    /// How many copies of the payload were written; 0 when the document was too small
    /// and written unchanged ([`TooSmall::WriteUnchanged`]).
    pub copies: usize,
    /// Carrier bits the document offers.
    pub available_bits: u64,
    /// Carrier bits the frame took; 0 when the document was written unchanged.
    pub used_bits: u64,
}

/// The answer of [`verify`]. With the feature `serde` it serialises tagged by `verdict`
/// (`"authentic"`, `"tampered"`, `"forged"`, `"absent"`), without the signer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "verdict", rename_all = "snake_case")
)]
pub enum Verdict {
    /// The mark is the named hospital's and the content is as it was marked.
    Authentic {
        /// The hospital that marked the record.
        hospital_id: String,
        /// The record the mark names.
        record_id: String,
        /// When the record was marked, in seconds since the Unix epoch.
        issued_at: u64,
        /// The key the signature verified with.
        #[cfg_attr(feature = "serde", serde(skip))]
        signer: VerifyingKey,
    },
    /// The mark is the named hospital's, but the content changed after it was marked.
    Tampered {
        /// The hospital that marked the record.
        hospital_id: String,
        /// The record the mark names.
        record_id: String,
        /// When the record was marked, in seconds since the Unix epoch.
        issued_at: u64,
    },
    /// A mark decodes but its signature is not the claimed hospital's (a caller also
    /// reads a mark naming a hospital it has no key for as forged).
    Forged {
        /// The hospital id the mark claims.
        claimed_hospital_id: String,
    },
    /// No mark decodes, for instance because the document was written anew by another tool.
    Absent,
}

/// A verdict with the fingerprints computed on the way, so that a caller can also check
/// them against the ones anchored on chain without reading the document again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// What the mark and the content say.
    pub verdict: Verdict,
    /// SHA3-256 of the document's canonical content, as read.
    pub content_fingerprint: [u8; 32],
    /// Of the decoded payload, whatever the verdict; `None` when absent.
    pub watermark_fingerprint: Option<[u8; 32]>,
}

/// Reads the document and decides whether it carries an authentic mark. `keys` gives the
/// watermark verifying key of a hospital id.
pub fn verify<R: BufRead>(
    source: R,
    keys: impl Fn(&str) -> Option<VerifyingKey>,
) -> Result<Verification, WatermarkError> {
    let analysis = analyse(source)?;
    let content_fingerprint = analysis.hasher.finish();
    let Some(payload) = analysis.frame.finish() else {
        return Ok(Verification {
            verdict: Verdict::Absent,
            content_fingerprint,
            watermark_fingerprint: None,
        });
    };
    let key = keys(&payload.hospital_id).ok_or_else(|| WatermarkError::UnknownHospital {
        hospital_id: payload.hospital_id.clone(),
    })?;
    let watermark_fingerprint = Some(payload.fingerprint());
    let verdict = if !payload.signed_by(&key) {
        Verdict::Forged {
            claimed_hospital_id: payload.hospital_id,
        }
    } else if payload.content_fingerprint != content_fingerprint {
        Verdict::Tampered {
            hospital_id: payload.hospital_id,
            record_id: payload.record_id,
            issued_at: payload.issued_at,
        }
    } else {
        Verdict::Authentic {
            hospital_id: payload.hospital_id,
            record_id: payload.record_id,
            issued_at: payload.issued_at,
            signer: key,
        }
    };
    Ok(Verification {
        verdict,
        content_fingerprint,
        watermark_fingerprint,
    })
}

/// The decoded mark, if any, without checking its signature or the content.
pub fn extract<R: BufRead>(source: R) -> Result<Option<Payload>, WatermarkError> {
    Ok(analyse(source)?.frame.finish())
}

/// The content fingerprint: SHA3-256 of the document's canonical content, which leaves
/// out exactly the syntax a parser ignores. Equal for a document with and without its
/// watermark, and after it was written anew by another XML tool.
pub fn content_fingerprint<R: BufRead>(source: R) -> Result<[u8; 32], WatermarkError> {
    Ok(analyse(source)?.hasher.finish())
}

/// Whether the document's content is the one whose fingerprint was anchored on chain;
/// works whether or not the document still carries its mark.
pub fn matches_anchored_fingerprint<R: BufRead>(
    source: R,
    anchored: &[u8; 32],
) -> Result<bool, WatermarkError> {
    Ok(content_fingerprint(source)? == *anchored)
}

/// Carrier bits the document offers.
pub fn capacity<R: BufRead>(source: R) -> Result<u64, WatermarkError> {
    Ok(analyse(source)?.available_bits)
}

const SEPARATORS: [&[u8]; 4] = [b" ", b"\n", b"\t", b"  "];
const EQUALS: [&[u8]; 4] = [b"=", b" =", b"= ", b" = "];
const TAILS: [&[u8]; 4] = [b"", b" ", b"\n", b"\t"];

/// The 2-bit value of a piece of whitespace; unknown shapes read as 0.
fn whitespace_bits(table: &[&[u8]; 4], whitespace: &[u8]) -> u8 {
    table.iter().position(|w| *w == whitespace).unwrap_or(0) as u8
}

fn quote_carries_bit(tag: &Tag<'_>, value: &std::ops::Range<usize>) -> bool {
    memchr::memchr2(b'"', b'\'', &tag.content[value.clone()]).is_none()
}

fn analyse<R: BufRead>(source: R) -> Result<Analysis, WatermarkError> {
    let mut analysis = Analysis::default();
    scan(source, &mut analysis)?;
    Ok(analysis)
}

/// The first pass, and the only pass of verification: content hash, capacity, and the
/// bits of the frame.
#[derive(Default)]
struct Analysis {
    hasher: ContentHasher,
    frame: FrameReader,
    available_bits: u64,
}

impl Analysis {
    fn carrier(&mut self, value: u8, width: u32) {
        self.frame.push(value, width);
        self.available_bits += u64::from(width);
    }
}

impl Visitor for Analysis {
    fn tag(&mut self, tag: &Tag<'_>, empty: bool) -> io::Result<()> {
        self.hasher.tag(tag, empty)?;
        for attribute in tag.attributes {
            let separator = &tag.content[attribute.separator.clone()];
            self.carrier(whitespace_bits(&SEPARATORS, separator), 2);
            let equals = &tag.content[attribute.equals.clone()];
            self.carrier(whitespace_bits(&EQUALS, equals), 2);
            if quote_carries_bit(tag, &attribute.value) {
                self.carrier(u8::from(attribute.quote == b'\''), 1);
            }
        }
        self.carrier(whitespace_bits(&TAILS, &tag.content[tag.tail.clone()]), 2);
        if empty {
            self.carrier(1, 1);
        }
        Ok(())
    }

    fn end(&mut self, name: &[u8], raw: &[u8], right_after_start: bool) -> io::Result<()> {
        self.hasher.end(name, raw, right_after_start)?;
        let tail = whitespace_bits(&TAILS, &raw[name.len()..]);
        if right_after_start {
            self.carrier(0, 1);
            // Not counted as capacity: writing `<a/>` removes this end tag.
            self.frame.push(tail, 2);
        } else {
            self.carrier(tail, 2);
        }
        Ok(())
    }

    fn other(&mut self, token: &Token<'_>, depth: usize) -> io::Result<()> {
        self.hasher.other(token, depth)
    }
}
