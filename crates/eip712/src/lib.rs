//! EIP-712 typed data signed by a medcert patient, and the patient's secp256k1 signer.
//!
//! Three messages exist:
//! - [`CertificateAuthorization`]: lets a hospital issue a certificate on the
//!   `MedicalCertificate` contract;
//! - [`Consent`]: lets the relay serve one recovery of one certificate to one hospital;
//! - the deletion request ([`deletion_digest`]), checked by the Fabric chaincode. Fabric
//!   has no verifying contract or chain id, so it has its own domain, `MedcertDeletion`.
//!
//! The crate needs no Ethereum client, so the chaincode can verify deletion requests with
//! exactly the hashing the patient signed. The type strings below must stay identical to
//! the ones in `contracts/MedicalCertificate.sol`; `medcert-ethereum`'s tests compare the
//! digests with the contract's own.

#![warn(missing_docs)]

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

/// A 20-byte Ethereum address.
pub type Address = [u8; 20];

const DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const CERTIFICATE_DOMAIN_NAME: &str = "MedicalCertificate";
const DOMAIN_VERSION: &str = "1";
const AUTHORIZATION_TYPE: &str = "CertificateAuthorization(bytes32 hospital,bytes32 recordId,string cid,bytes32 contentFingerprint,bytes32 watermarkFingerprint,uint256 nonce)";
const CONSENT_TYPE: &str =
    "Consent(bytes32 hospital,uint256 certificateId,uint64 expiry,uint256 nonce)";
const DELETION_DOMAIN_TYPE: &str = "EIP712Domain(string name,string version)";
const DELETION_DOMAIN_NAME: &str = "MedcertDeletion";
const DELETION_TYPE: &str = "Deletion(string channel,string recordId,uint64 nonce)";
// Mixed into seed derivation so a patient seed used elsewhere never yields this key.
const SEED_LABEL: &[u8] = b"medcert/patient/secp256k1/v1";

/// Why no signer could be recovered from a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not 65 bytes long; holds its length.
    #[error("a signature is 65 bytes (r, s, v), got {0}")]
    Length(usize),
    /// The last byte is not a recovery id (27, 28, 0 or 1); holds it.
    #[error("signature recovery byte v must be 27 or 28 (or 0 or 1), got {0}")]
    RecoveryByte(u8),
    /// r or s is out of range, or s is in the high half.
    #[error("signature is malformed or not in canonical low-s form")]
    Malformed,
    /// The signature is well-formed but no key signed this digest with it.
    #[error("no public key recovers from this signature and digest")]
    Unrecoverable,
}

/// Why a patient key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are zero or not below the curve order.
    #[error("not a valid secp256k1 private key")]
    InvalidPrivateKey,
}

/// The `MedicalCertificate` contract's EIP-712 domain (name "MedicalCertificate", version "1").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateDomain {
    /// The certificate chain's EIP-155 chain id.
    pub chain_id: u64,
    /// The deployed `MedicalCertificate` contract.
    pub verifying_contract: Address,
}

impl CertificateDomain {
    /// The EIP-712 domain separator: the hash of the domain struct.
    pub fn separator(&self) -> [u8; 32] {
        keccak(&[
            &keccak(&[DOMAIN_TYPE.as_bytes()]),
            &keccak(&[CERTIFICATE_DOMAIN_NAME.as_bytes()]),
            &keccak(&[DOMAIN_VERSION.as_bytes()]),
            &uint(self.chain_id),
            &address_word(&self.verifying_contract),
        ])
    }
}

/// The patient's permission for `hospital` to certify one record on the certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthorization {
    /// The issuing hospital's id (see [`hospital_id`]).
    pub hospital: [u8; 32],
    /// The record's id as left-aligned, zero-padded bytes32, like [`hospital_id`].
    pub record_id: [u8; 32],
    /// IPFS CID of the record's envelope (Hash I).
    pub cid: String,
    /// SHA3-256 of the record's canonical content.
    pub content_fingerprint: [u8; 32],
    /// SHA3-256 of the record's signed watermark payload.
    pub watermark_fingerprint: [u8; 32],
    /// Makes the authorisation single-use; shares the patient's nonce space with consents.
    pub nonce: u64,
}

impl CertificateAuthorization {
    /// The EIP-712 digest the patient signs, in `domain`.
    pub fn digest(&self, domain: &CertificateDomain) -> [u8; 32] {
        let struct_hash = keccak(&[
            &keccak(&[AUTHORIZATION_TYPE.as_bytes()]),
            &self.hospital,
            &self.record_id,
            &keccak(&[self.cid.as_bytes()]),
            &self.content_fingerprint,
            &self.watermark_fingerprint,
            &uint(self.nonce),
        ]);
        typed_data_hash(&domain.separator(), &struct_hash)
    }
}

/// The patient's consent to serve certificate `certificate_id` to `hospital` once, until
/// `expiry` (unix seconds). The nonce makes it single-use and lets the patient revoke it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// The recovering hospital's id (see [`hospital_id`]).
    pub hospital: [u8; 32],
    /// The certificate's id on the `MedicalCertificate` contract.
    pub certificate_id: u64,
    /// The last moment the consent holds, in Unix seconds.
    pub expiry: u64,
    /// Makes the consent single-use and revocable; shares the patient's nonce space with
    /// authorisations.
    pub nonce: u64,
}

impl Consent {
    /// The EIP-712 digest the patient signs, in `domain`.
    pub fn digest(&self, domain: &CertificateDomain) -> [u8; 32] {
        let struct_hash = keccak(&[
            &keccak(&[CONSENT_TYPE.as_bytes()]),
            &self.hospital,
            &uint(self.certificate_id),
            &uint(self.expiry),
            &uint(self.nonce),
        ]);
        typed_data_hash(&domain.separator(), &struct_hash)
    }
}

/// A consent with the patient's signature, as it travels from the patient to the
/// hospital, through the hospital's `RequestRecovery`, to the relay: fixed-width bytes
/// hospital (32) ‖ certificate id ‖ expiry ‖ nonce (u64 big-endian each) ‖ signature (65).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedConsent {
    /// What the patient consented to.
    pub consent: Consent,
    /// The patient's signature of the consent's digest, r ‖ s ‖ v.
    pub signature: [u8; 65],
}

impl SignedConsent {
    /// Length of the encoded form.
    pub const LEN: usize = 32 + 8 + 8 + 8 + 65;

    /// The fixed-width encoding described above.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.consent.hospital);
        out[32..40].copy_from_slice(&self.consent.certificate_id.to_be_bytes());
        out[40..48].copy_from_slice(&self.consent.expiry.to_be_bytes());
        out[48..56].copy_from_slice(&self.consent.nonce.to_be_bytes());
        out[56..].copy_from_slice(&self.signature);
        out
    }

    /// Reads the fixed-width encoding; anything but [`SignedConsent::LEN`] bytes is refused.
    /// The signature is not checked here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConsentEncodingError> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| ConsentEncodingError(bytes.len()))?;
        let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let mut hospital = [0u8; 32];
        hospital.copy_from_slice(&bytes[..32]);
        let mut signature = [0u8; 65];
        signature.copy_from_slice(&bytes[56..]);
        Ok(Self {
            consent: Consent {
                hospital,
                certificate_id: word(32),
                expiry: word(40),
                nonce: word(48),
            },
            signature,
        })
    }
}

/// A signed consent of the wrong length; holds the length given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signed consent is {len} bytes, got {0}", len = SignedConsent::LEN)]
pub struct ConsentEncodingError(pub usize);

/// Digest of a patient's request to delete record `record_id` from hospital channel
/// `channel`: EIP-712 `Deletion(string channel,string recordId,uint64 nonce)` in the domain
/// `EIP712Domain(string name,string version)` = ("MedcertDeletion", "1").
pub fn deletion_digest(channel: &str, record_id: &str, nonce: u64) -> [u8; 32] {
    let domain = keccak(&[
        &keccak(&[DELETION_DOMAIN_TYPE.as_bytes()]),
        &keccak(&[DELETION_DOMAIN_NAME.as_bytes()]),
        &keccak(&[DOMAIN_VERSION.as_bytes()]),
    ]);
    let struct_hash = keccak(&[
        &keccak(&[DELETION_TYPE.as_bytes()]),
        &keccak(&[channel.as_bytes()]),
        &keccak(&[record_id.as_bytes()]),
        &uint(nonce),
    ]);
    typed_data_hash(&domain, &struct_hash)
}

/// A hospital's on-chain id: its name (e.g. "hospital1") as left-aligned, zero-padded
/// bytes32, so ids stay readable in events. Returns `None` for an empty name, one longer
/// than 32 bytes, or one holding a NUL byte (it would be ambiguous with the padding).
pub fn hospital_id(name: &str) -> Option<[u8; 32]> {
    if name.is_empty() || name.len() > 32 || name.contains('\0') {
        return None;
    }
    let mut id = [0u8; 32];
    id[..name.len()].copy_from_slice(name.as_bytes());
    Some(id)
}

/// The Ethereum address that signed `digest`, from a 65-byte (r, s, v) signature.
/// Refuses high-s signatures, as the contract does, so each signature has one form.
pub fn recover_signer(digest: &[u8; 32], signature: &[u8]) -> Result<Address, SignatureError> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let v = match bytes[64] {
        v @ (27 | 28) => v - 27,
        v @ (0 | 1) => v,
        v => return Err(SignatureError::RecoveryByte(v)),
    };
    let sig = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Malformed)?;
    if sig.normalize_s().is_some() {
        return Err(SignatureError::Malformed);
    }
    let recovery_id = RecoveryId::from_byte(v).ok_or(SignatureError::RecoveryByte(bytes[64]))?;
    let key = VerifyingKey::recover_from_prehash(digest, &sig, recovery_id)
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of(&key))
}

/// A patient's secp256k1 key: signs certificate authorisations, consents and deletion
/// requests. The key is zeroized when dropped.
#[derive(Clone)]
pub struct PatientSigner {
    key: SigningKey,
    address: Address,
}

impl PatientSigner {
    /// Derives the key from a 32-byte patient seed (keccak256 of a domain label, the seed
    /// and a counter, retried in the negligible case the hash is not a valid scalar).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        for counter in 0u8..=u8::MAX {
            let candidate = Zeroizing::new(keccak(&[SEED_LABEL, seed, &[counter]]));
            if let Ok(signer) = Self::from_bytes(&candidate) {
                return signer;
            }
        }
        unreachable!("256 consecutive keccak outputs were all invalid secp256k1 scalars")
    }

    /// The signer whose secret key is `secret`, a big-endian scalar.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, KeyError> {
        let key = SigningKey::from_bytes(secret.into()).map_err(|_| KeyError::InvalidPrivateKey)?;
        let address = address_of(key.verifying_key());
        Ok(Self { key, address })
    }

    /// The patient's Ethereum address, which the contract recovers from signatures.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The underlying key, e.g. to build a wallet that sends the patient's transactions.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a 32-byte digest: 65 bytes r ‖ s ‖ v, low s, v in {27, 28}.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 65] {
        let (sig, recovery_id) = self
            .key
            .sign_prehash_recoverable(digest)
            .expect("signing a 32-byte prehash with a valid key cannot fail");
        // k256 already returns low s; normalising again keeps the guarantee explicit.
        let (sig, recovery_id) = match sig.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced()),
            ),
            None => (sig, recovery_id),
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recovery_id.to_byte();
        out
    }

    /// Signs `authorization` in `domain`.
    pub fn sign_certificate_authorization(
        &self,
        authorization: &CertificateAuthorization,
        domain: &CertificateDomain,
    ) -> [u8; 65] {
        self.sign_digest(&authorization.digest(domain))
    }

    /// Signs `consent` in `domain`.
    pub fn sign_consent(&self, consent: &Consent, domain: &CertificateDomain) -> [u8; 65] {
        self.sign_digest(&consent.digest(domain))
    }

    /// Signs the request to delete `record_id` from `channel` (see [`deletion_digest`]).
    pub fn sign_deletion(&self, channel: &str, record_id: &str, nonce: u64) -> [u8; 65] {
        self.sign_digest(&deletion_digest(channel, record_id, nonce))
    }
}

// Shows the address only: the key never reaches a log.
impl std::fmt::Debug for PatientSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientSigner")
            .field("address", &format_args!("0x{}", to_hex(&self.address)))
            .finish_non_exhaustive()
    }
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn typed_data_hash(domain_separator: &[u8; 32], struct_hash: &[u8; 32]) -> [u8; 32] {
    keccak(&[b"\x19\x01", domain_separator, struct_hash])
}

/// An unsigned integer as its 32-byte big-endian ABI word.
fn uint(value: u64) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[24..].copy_from_slice(&value.to_be_bytes());
    word
}

fn address_word(address: &Address) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(address);
    word
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak(&[&point.as_bytes()[1..]]);
    hash[12..].try_into().expect("20 bytes")
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // anvil's (public, well-known) account 0.
    const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ANVIL_ADDRESS_0: &str = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    fn anvil_signer() -> PatientSigner {
        let secret: [u8; 32] = hex::decode(ANVIL_KEY_0).unwrap().try_into().unwrap();
        PatientSigner::from_bytes(&secret).unwrap()
    }

    fn domain() -> CertificateDomain {
        CertificateDomain {
            chain_id: 31337,
            verifying_contract: [0x5f; 20],
        }
    }

    #[test]
    fn signed_consent_round_trips_and_rejects_wrong_lengths() {
        let signed = SignedConsent {
            consent: consent(),
            signature: anvil_signer().sign_consent(&consent(), &domain()),
        };
        let bytes = signed.to_bytes();
        assert_eq!(SignedConsent::from_bytes(&bytes), Ok(signed));
        assert_eq!(
            SignedConsent::from_bytes(&bytes[1..]),
            Err(ConsentEncodingError(SignedConsent::LEN - 1))
        );
        let signer = recover_signer(&signed.consent.digest(&domain()), &signed.signature);
        assert_eq!(signer, Ok(anvil_signer().address()));
    }

    fn consent() -> Consent {
        Consent {
            hospital: hospital_id("hospital2").unwrap(),
            certificate_id: 7,
            expiry: 1_900_000_000,
            nonce: 42,
        }
    }

    #[test]
    fn address_of_a_known_key_matches_ethereum() {
        assert_eq!(hex::encode(anvil_signer().address()), ANVIL_ADDRESS_0);
    }

    #[test]
    fn consent_signature_recovers_the_patient() {
        let signer = PatientSigner::from_seed(&[9; 32]);
        let signature = signer.sign_consent(&consent(), &domain());
        let digest = consent().digest(&domain());
        assert_eq!(recover_signer(&digest, &signature), Ok(signer.address()));
    }

    #[test]
    fn changing_any_consent_field_changes_the_recovered_signer() {
        let signer = PatientSigner::from_seed(&[9; 32]);
        let signature = signer.sign_consent(&consent(), &domain());
        let altered = [
            Consent {
                certificate_id: 8,
                ..consent()
            },
            Consent {
                expiry: 1_900_000_001,
                ..consent()
            },
            Consent {
                nonce: 43,
                ..consent()
            },
            Consent {
                hospital: hospital_id("hospital3").unwrap(),
                ..consent()
            },
        ];
        for consent in altered {
            let recovered = recover_signer(&consent.digest(&domain()), &signature);
            assert_ne!(recovered, Ok(signer.address()), "{consent:?}");
        }
        let other_chain = CertificateDomain {
            chain_id: 1,
            ..domain()
        };
        let recovered = recover_signer(&consent().digest(&other_chain), &signature);
        assert_ne!(recovered, Ok(signer.address()));
    }

    #[test]
    fn deletion_signature_recovers_the_patient_and_binds_every_field() {
        let signer = anvil_signer();
        let signature = signer.sign_deletion("hospital1", "record-1", 5);
        let recovered = recover_signer(&deletion_digest("hospital1", "record-1", 5), &signature);
        assert_eq!(recovered, Ok(signer.address()));
        for digest in [
            deletion_digest("hospital2", "record-1", 5),
            deletion_digest("hospital1", "record-2", 5),
            deletion_digest("hospital1", "record-1", 6),
        ] {
            assert_ne!(recover_signer(&digest, &signature), Ok(signer.address()));
        }
    }

    #[test]
    fn high_s_twin_of_a_valid_signature_is_refused() {
        let signer = anvil_signer();
        let digest = deletion_digest("hospital1", "record-1", 1);
        let signature = signer.sign_digest(&digest);
        let sig = Signature::from_slice(&signature[..64]).unwrap();
        // (r, n - s) with the other recovery bit is the malleable twin.
        let high = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        let mut twin = [0u8; 65];
        twin[..64].copy_from_slice(&high.to_bytes());
        twin[64] = if signature[64] == 27 { 28 } else { 27 };
        assert_eq!(
            recover_signer(&digest, &twin),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn malformed_signatures_are_refused_with_the_reason() {
        let digest = [1u8; 32];
        assert_eq!(
            recover_signer(&digest, &[0u8; 64]),
            Err(SignatureError::Length(64))
        );
        let mut signature = anvil_signer().sign_digest(&digest);
        signature[64] = 29;
        assert_eq!(
            recover_signer(&digest, &signature),
            Err(SignatureError::RecoveryByte(29))
        );
        assert_eq!(
            recover_signer(
                &digest,
                &[0u8; 65][..64]
                    .iter()
                    .chain(&[27])
                    .copied()
                    .collect::<Vec<_>>()
            ),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn seeds_derive_distinct_stable_keys() {
        let a = PatientSigner::from_seed(&[1; 32]);
        assert_eq!(a.address(), PatientSigner::from_seed(&[1; 32]).address());
        assert_ne!(a.address(), PatientSigner::from_seed(&[2; 32]).address());
    }

    #[test]
    fn debug_shows_the_address_and_not_the_key() {
        let text = format!("{:?}", anvil_signer());
        assert!(text.contains(ANVIL_ADDRESS_0), "{text}");
        assert!(!text.contains(ANVIL_KEY_0), "{text}");
    }

    #[test]
    fn hospital_ids_are_readable_padded_names() {
        let id = hospital_id("hospital1").unwrap();
        assert_eq!(&id[..9], b"hospital1");
        assert!(id[9..].iter().all(|&b| b == 0));
        assert_eq!(hospital_id(""), None);
        assert!(hospital_id(&"h".repeat(32)).is_some());
        assert_eq!(hospital_id(&"h".repeat(33)), None);
        assert_eq!(hospital_id("hospital1\0"), None);
    }
}
