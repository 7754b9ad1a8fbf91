//! Record cryptography for medcert.
//!
//! - [`encrypt_stream`] / [`decrypt_stream`] (and `_async` forms over tokio I/O): E' =
//!   AES-256-GCM in the STREAM construction, bound to the record id and hospital id, returning
//!   Hash C = SHA3-256(E') from the same pass. [`decrypt_to_file`] writes all or nothing.
//! - [`wrap_key`] / [`unwrap_key`]: a [`Dek`] wrapped with HPKE (X25519, HKDF-SHA256,
//!   AES-256-GCM) to an [`HpkeKeyPair`]'s public key, bound to a record id and a
//!   [`WrapPurpose`].
//! - [`EnvelopeHeader`]: the versioned header of the IPFS envelope {DEK wrapped to the patient,
//!   E'}.
//! - [`PasswordVerifier`]: Argon2id PHC verifiers.
//! - [`KeyStore`]: a hospital's wrapped record keys on disk; delete is a crypto-shred.
//!
//! Keys are zeroized on drop and print as `<redacted>`; chunk buffers that held plaintext are
//! zeroized when freed.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

mod envelope;
mod error;
mod keys;
mod keystore;
mod password;
mod stream;

pub use envelope::{EnvelopeHeader, MAX_ID_LEN};
pub use error::CryptoError;
pub use keys::{
    Dek, HpkeKeyPair, KeyBinding, PublicKey, WrapPurpose, WrappedKey, unwrap_key, wrap_key,
};
pub use keystore::KeyStore;
pub use password::{PasswordParams, PasswordVerifier};
pub use stream::{
    DEFAULT_CHUNK_SIZE, HashC, RecordAad, decrypt_stream, decrypt_stream_async, decrypt_to_file,
    decrypt_to_file_async, encrypt_stream, encrypt_stream_async, encrypt_stream_with_chunk_size,
};
