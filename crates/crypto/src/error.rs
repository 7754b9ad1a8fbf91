use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate. Messages name what was wrong and what to do;
/// they never contain key bytes, passwords or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// An AEAD tag did not verify. This covers a flipped bit anywhere in the ciphertext or its
    /// header, reordered or spliced chunks, a cut inside a chunk, and a ciphertext sealed for
    /// another record id or hospital id. (A wrong key is reported as [`CryptoError::WrongKey`].)
    #[error(
        "ciphertext failed authentication: it was altered, cut inside a chunk, or sealed for \
         another record or hospital; fetch an intact copy"
    )]
    Tampered,

    /// The stream ends where a chunk boundary should not be last: whole chunks are missing.
    #[error(
        "ciphertext is truncated: the stream ends before its final chunk; fetch the whole object"
    )]
    Truncated,

    /// The key does not open this ciphertext or wrapped key.
    #[error("wrong key: {0}")]
    WrongKey(&'static str),

    /// The bytes are not a medcert ciphertext, envelope or wrapped key at all.
    #[error("not a medcert {what}: {reason}")]
    Malformed {
        /// What was read, e.g. `envelope` or `wrapped key`.
        what: &'static str,
        /// Which part of the format it breaks.
        reason: &'static str,
    },

    /// A newer format than this build understands.
    #[error("unsupported {what} version {version}; upgrade medcert")]
    UnsupportedVersion {
        /// What was read, e.g. `envelope`.
        what: &'static str,
        /// The version byte it carries.
        version: u8,
    },

    /// A chunk size outside what the format allows.
    #[error("invalid chunk size {0}: must be a power of two from 4 KiB to 16 MiB")]
    InvalidChunkSize(usize),

    /// A record id or hospital id too long for the envelope header, or a plaintext with
    /// more chunks than the stream can count.
    #[error("{what} is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// What is too long: `record id`, `hospital id`, or the plaintext in chunks.
        what: &'static str,
        /// Its length, in bytes (in chunks for the plaintext).
        len: usize,
        /// The most allowed, in the same unit.
        max: usize,
    },

    /// The password does not match the verifier.
    #[error("wrong password")]
    WrongPassword,

    /// The stored verifier is not a valid Argon2id PHC string.
    #[error("invalid password verifier: {0}")]
    InvalidVerifier(String),

    /// Argon2 parameters out of range.
    #[error("invalid Argon2 parameters: {0}")]
    InvalidPasswordParams(String),

    /// The key store has no key for this record (never stored, or shredded).
    #[error("no key for record {record_id} in the key store (never stored, or deleted)")]
    UnknownRecord {
        /// The record whose key was asked for.
        record_id: String,
    },

    /// A key store file could not be read or written.
    #[error("key store file {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read or written.
        #[source]
        source: io::Error,
    },

    /// Reading the ciphertext or writing the plaintext (or the reverse) failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
