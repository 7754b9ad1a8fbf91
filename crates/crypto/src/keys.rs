//! Record keys (DEKs), X25519 key pairs and HPKE key wrapping.
//!
//! A DEK is wrapped with HPKE (RFC 9180, base mode) using DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and AES-256-GCM. The HPKE `info` string binds the wrapped key to the record id
//! and the purpose of the copy, so a key wrapped for one record or purpose does not unwrap as
//! another.

use std::fmt;

use hkdf::Hkdf;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type HpkePublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

const KEY_LEN: usize = 32;
const ENCAPPED_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// HKDF `info` label separating the patient's X25519 key from anything else derived from the
/// same seed (`medcert-eip712` derives the secp256k1 key under `medcert/patient/secp256k1/v1`).
const SEED_LABEL: &[u8] = b"medcert/patient/x25519/v1";
const WRAP_INFO_LABEL: &[u8] = b"medcert/dek-wrap/v1";

pub(crate) fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    // The OS generator failing leaves no safe way to make a key; every RustCrypto RNG panics too.
    getrandom::fill(bytes.as_mut()).expect("operating system random number generator failed");
    bytes
}

/// A record's data encryption key: 256 random bits, fresh per record.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dek([u8; KEY_LEN]);

impl Dek {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        Dek(*random_bytes::<KEY_LEN>())
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Constant-time: comparing keys (a service checking that a key it is given again is the
/// one it holds) must not leak where they differ.
impl PartialEq for Dek {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

impl Eq for Dek {}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

/// An X25519 public key that wrapped keys are addressed to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key whose X25519 encoding is `bytes`.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    /// The key's 32-byte X25519 encoding.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    fn to_hpke(self) -> Result<HpkePublicKey, CryptoError> {
        HpkePublicKey::from_bytes(&self.0).map_err(|_| CryptoError::Malformed {
            what: "X25519 public key",
            reason: "not 32 bytes",
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

/// An X25519 key pair of a hospital or a patient. The secret half is zeroized on drop and never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HpkeKeyPair {
    secret: [u8; KEY_LEN],
    #[zeroize(skip)]
    public: PublicKey,
}

impl HpkeKeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        let (secret, public) = Kem::gen_keypair();
        Self::from_hpke(&secret, &public)
    }

    /// The key pair derived from a 32-byte seed: HKDF-SHA256 expands the seed under a medcert
    /// label, then HPKE's `DeriveKeyPair` turns that into an X25519 key. The same seed also
    /// yields the patient's secp256k1 key under a different label, so one backup restores both.
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        let mut ikm = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, seed)
            .expand(SEED_LABEL, ikm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let (secret, public) = Kem::derive_keypair(ikm.as_ref());
        Self::from_hpke(&secret, &public)
    }

    /// The key pair whose secret key is `secret` (as saved by [`HpkeKeyPair::secret_bytes`]).
    pub fn from_secret_bytes(secret: &[u8; KEY_LEN]) -> Self {
        let secret = PrivateKey::from_bytes(secret).expect("any 32 bytes are an X25519 secret key");
        let public = Kem::sk_to_pk(&secret);
        Self::from_hpke(&secret, &public)
    }

    /// The secret key, for saving it (the key store writes it to a 0600 file).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret)
    }

    /// The public half, which keys are wrapped to.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    fn from_hpke(secret: &PrivateKey, public: &HpkePublicKey) -> Self {
        let mut secret_bytes = secret.to_bytes();
        let mut pair = HpkeKeyPair {
            secret: [0; KEY_LEN],
            public: PublicKey(public.to_bytes().into()),
        };
        pair.secret.copy_from_slice(&secret_bytes);
        secret_bytes.as_mut_slice().zeroize();
        pair
    }

    fn hpke_secret(&self) -> PrivateKey {
        PrivateKey::from_bytes(&self.secret).expect("any 32 bytes are an X25519 secret key")
    }
}

impl fmt::Debug for HpkeKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HpkeKeyPair")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a wrapped copy of a DEK exists; part of what the wrapping is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapPurpose {
    /// The hospital's own copy, kept in its key store until the record is deleted.
    HospitalKeyStore,
    /// The patient's copy inside the envelope stored on IPFS.
    PatientEnvelope,
    /// A copy the patient re-wraps for a hospital that recovers the record.
    Recovery,
    /// A copy the hospital's key service releases to a doctor's one-time key for one
    /// audited access.
    Release,
}

impl WrapPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            WrapPurpose::HospitalKeyStore => b"hospital-key-store",
            WrapPurpose::PatientEnvelope => b"patient-envelope",
            WrapPurpose::Recovery => b"recovery",
            WrapPurpose::Release => b"key-release",
        }
    }
}

/// What a wrapped key is bound to: the record it opens and the purpose of this copy.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding<'a> {
    /// The record whose DEK is wrapped.
    pub record_id: &'a str,
    /// Whose copy this is.
    pub purpose: WrapPurpose,
}

impl KeyBinding<'_> {
    fn info(&self) -> Vec<u8> {
        let purpose = self.purpose.label();
        let mut info =
            Vec::with_capacity(WRAP_INFO_LABEL.len() + 8 + purpose.len() + self.record_id.len());
        info.extend_from_slice(WRAP_INFO_LABEL);
        for part in [purpose, self.record_id.as_bytes()] {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        info
    }
}

/// A DEK wrapped to one X25519 public key: the HPKE encapsulated key followed by the sealed DEK.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey([u8; WrappedKey::LEN]);

impl WrappedKey {
    /// Length of the serialised form.
    pub const LEN: usize = ENCAPPED_LEN + KEY_LEN + TAG_LEN;

    /// Reads the serialised form; anything but [`WrappedKey::LEN`] bytes is malformed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bytes: [u8; Self::LEN] = bytes.try_into().map_err(|_| CryptoError::Malformed {
            what: "wrapped key",
            reason: "wrong length (expected 80 bytes)",
        })?;
        Ok(WrappedKey(bytes))
    }

    /// The serialised form, [`WrappedKey::LEN`] bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({})", hex::encode(self.0))
    }
}

/// Wraps `dek` to `recipient`, bound to `binding`.
pub fn wrap_key(
    dek: &Dek,
    recipient: &PublicKey,
    binding: &KeyBinding<'_>,
) -> Result<WrappedKey, CryptoError> {
    let (encapped, sealed) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &recipient.to_hpke()?,
        &binding.info(),
        dek.bytes(),
        &[],
    )
    // Sealing only fails for a degenerate (all-zero shared secret) public key.
    .map_err(|_| CryptoError::Malformed {
        what: "X25519 public key",
        reason: "a low-order point that no key pair has",
    })?;
    let mut wrapped = [0u8; WrappedKey::LEN];
    wrapped[..ENCAPPED_LEN].copy_from_slice(&encapped.to_bytes());
    wrapped[ENCAPPED_LEN..].copy_from_slice(&sealed);
    Ok(WrappedKey(wrapped))
}

/// Opens a wrapped key with the recipient's key pair. Fails with [`CryptoError::WrongKey`] when
/// the key was wrapped to someone else, for another record or purpose, or was altered.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    recipient: &HpkeKeyPair,
    binding: &KeyBinding<'_>,
) -> Result<Dek, CryptoError> {
    const NOT_OURS: &str = "the wrapped key is not addressed to this key pair for this record and \
                            purpose, or it was altered";
    let encapped = EncappedKey::from_bytes(&wrapped.0[..ENCAPPED_LEN])
        .map_err(|_| CryptoError::WrongKey(NOT_OURS))?;
    let opened = Zeroizing::new(
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &recipient.hpke_secret(),
            &encapped,
            &binding.info(),
            &wrapped.0[ENCAPPED_LEN..],
            &[],
        )
        .map_err(|_| CryptoError::WrongKey(NOT_OURS))?,
    );
    let mut dek = Dek([0; KEY_LEN]);
    dek.0.copy_from_slice(&opened);
    Ok(dek)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINDING: KeyBinding<'static> = KeyBinding {
        record_id: "rec-1",
        purpose: WrapPurpose::PatientEnvelope,
    };

    #[test]
    fn wrap_then_unwrap_returns_the_same_key() {
        let dek = Dek::generate();
        let patient = HpkeKeyPair::generate();
        let wrapped = wrap_key(&dek, &patient.public_key(), &BINDING).unwrap();
        let back = unwrap_key(&wrapped, &patient, &BINDING).unwrap();
        assert_eq!(back.bytes(), dek.bytes());
        let reparsed = WrappedKey::from_bytes(wrapped.as_bytes()).unwrap();
        assert_eq!(reparsed, wrapped);
    }

    #[test]
    fn another_recipient_record_or_purpose_cannot_unwrap() {
        let dek = Dek::generate();
        let patient = HpkeKeyPair::generate();
        let wrapped = wrap_key(&dek, &patient.public_key(), &BINDING).unwrap();

        let other = HpkeKeyPair::generate();
        assert!(matches!(
            unwrap_key(&wrapped, &other, &BINDING),
            Err(CryptoError::WrongKey(_))
        ));
        let other_record = KeyBinding {
            record_id: "rec-2",
            ..BINDING
        };
        assert!(matches!(
            unwrap_key(&wrapped, &patient, &other_record),
            Err(CryptoError::WrongKey(_))
        ));
        let other_purpose = KeyBinding {
            purpose: WrapPurpose::HospitalKeyStore,
            ..BINDING
        };
        assert!(matches!(
            unwrap_key(&wrapped, &patient, &other_purpose),
            Err(CryptoError::WrongKey(_))
        ));
        let mut altered = wrapped.as_bytes().to_vec();
        altered[40] ^= 1;
        let altered = WrappedKey::from_bytes(&altered).unwrap();
        assert!(matches!(
            unwrap_key(&altered, &patient, &BINDING),
            Err(CryptoError::WrongKey(_))
        ));
    }

    #[test]
    fn keys_compare_equal_only_to_themselves() {
        let dek = Dek::generate();
        assert_eq!(dek.clone(), dek);
        assert_ne!(Dek::generate(), dek);
        let mut one_bit = dek.clone();
        one_bit.0[31] ^= 1;
        assert_ne!(one_bit, dek);
    }

    #[test]
    fn wrapped_key_of_wrong_length_is_rejected() {
        let err = WrappedKey::from_bytes(&[0; 79]).unwrap_err();
        assert!(err.to_string().contains("wrapped key"), "{err}");
    }

    #[test]
    fn seed_derivation_is_deterministic_and_seed_specific() {
        let a = HpkeKeyPair::from_seed(&[7; 32]);
        assert_eq!(
            a.public_key(),
            HpkeKeyPair::from_seed(&[7; 32]).public_key()
        );
        assert_ne!(
            a.public_key(),
            HpkeKeyPair::from_seed(&[8; 32]).public_key()
        );
        // The seed is expanded under a label, not used as the key directly.
        assert_ne!(a.secret_bytes().as_ref(), &[7u8; 32]);
        let dek = Dek::generate();
        let wrapped = wrap_key(&dek, &a.public_key(), &BINDING).unwrap();
        let restored = HpkeKeyPair::from_secret_bytes(&a.secret_bytes());
        assert_eq!(restored.public_key(), a.public_key());
        assert_eq!(
            unwrap_key(&wrapped, &restored, &BINDING).unwrap().bytes(),
            dek.bytes()
        );
    }

    #[test]
    fn debug_output_never_shows_secret_bytes() {
        let dek = Dek::generate();
        let shown = format!("{dek:?}");
        assert!(!shown.contains(&hex::encode(dek.bytes())), "{shown}");
        assert!(!shown.contains(&format!("{:?}", dek.bytes())), "{shown}");

        let pair = HpkeKeyPair::generate();
        let shown = format!("{pair:?}");
        assert!(
            !shown.contains(&hex::encode(pair.secret_bytes())),
            "{shown}"
        );
        assert!(!shown.contains(&format!("{:?}", pair.secret_bytes().as_ref())));
        assert!(shown.contains(&hex::encode(pair.public_key().to_bytes())));
    }

    #[test]
    fn keys_are_zeroized() {
        fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
        zeroize_on_drop::<Dek>();
        zeroize_on_drop::<HpkeKeyPair>();

        let mut dek = Dek::generate();
        dek.zeroize();
        assert_eq!(dek.bytes(), &[0u8; 32]);
        let mut pair = HpkeKeyPair::generate();
        pair.zeroize();
        assert_eq!(pair.secret_bytes().as_ref(), &[0u8; 32]);
    }
}
