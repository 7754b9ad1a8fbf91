//! The patient's secp256k1 key, and the checks of a signature: its form (65 bytes, low s,
//! v in {27, 28} or {0, 1}), its signer, and whether that signer is the patient.

use alloy_primitives::{Keccak256, hex, keccak256};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::Address;
use crate::typed::{AgentAuthorization, CertificateAuthorization, CertificateDomain, Consent};

// Mixed into seed derivation so a patient seed used elsewhere never yields this key.
const SEED_LABEL: &[u8] = b"medcert/patient/secp256k1/v1";

/// Why no signer could be recovered from a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature text is not hex (with or without `0x`).
    #[error("a signature is 0x followed by 130 hex digits")]
    NotHex(#[source] hex::FromHexError),
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

/// Why a signature made elsewhere is not the patient's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No signer can be recovered from it.
    #[error("the signature cannot be checked")]
    Signature(#[from] SignatureError),
    /// Another account signed this message (or the signature is of another message).
    #[error(
        "the signature recovers to {}, not to the patient's account {}",
        checksummed(signer),
        checksummed(expected)
    )]
    WrongSigner {
        /// The patient's address.
        expected: Address,
        /// The address recovered from the signature and the message's digest.
        signer: Address,
    },
}

/// Why text is not an Ethereum address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The text is not 40 hex digits (after an optional `0x`).
    #[error("an address is 0x followed by 40 hex digits")]
    NotAddress,
    /// The text mixes upper and lower case, but not as the address's EIP-55 checksum does.
    #[error("the address's mixed-case checksum (EIP-55) does not match it; check for a typo")]
    Checksum,
}

/// Why a patient key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are zero or not below the curve order.
    #[error("not a valid secp256k1 private key")]
    InvalidPrivateKey,
}

/// Reads a 65-byte signature written as hex, as wallets print it (`0x` ‖ r ‖ s ‖ v;
/// surrounding whitespace is ignored). The signature's form is checked by
/// [`recover_signer`].
pub fn parse_signature(text: &str) -> Result<[u8; 65], SignatureError> {
    let bytes = hex::decode(text.trim()).map_err(SignatureError::NotHex)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| SignatureError::Length(bytes.len()))
}

/// Reads an Ethereum address as wallets show it: `0x` and 40 hex digits (surrounding
/// whitespace is ignored). A mixed-case address must carry its EIP-55 checksum, so a
/// mistyped one is caught; an all-lower or all-upper case one has none to check.
pub fn parse_address(text: &str) -> Result<Address, AddressError> {
    let text = text.trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let address: Address = hex::decode(digits)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(AddressError::NotAddress)?;
    let mixed = digits.bytes().any(|b| b.is_ascii_uppercase())
        && digits.bytes().any(|b| b.is_ascii_lowercase());
    if mixed && checksummed(&address)[2..] != *digits {
        return Err(AddressError::Checksum);
    }
    Ok(address)
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

/// Checks that `expected` signed `digest` with `signature` (e.g. one produced by another
/// wallet from the typed-data JSON).
pub fn verify_signer(
    digest: &[u8; 32],
    signature: &[u8],
    expected: &Address,
) -> Result<(), VerifyError> {
    let signer = recover_signer(digest, signature)?;
    if signer == *expected {
        Ok(())
    } else {
        Err(VerifyError::WrongSigner {
            expected: *expected,
            signer,
        })
    }
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
            let mut hasher = Keccak256::new();
            hasher.update(SEED_LABEL);
            hasher.update(seed);
            hasher.update([counter]);
            let mut candidate = Zeroizing::new([0u8; 32]);
            hasher.finalize_into_array(&mut candidate);
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

    /// Signs `authorization` in `domain`.
    pub fn sign_agent_authorization(
        &self,
        authorization: &AgentAuthorization,
        domain: &CertificateDomain,
    ) -> [u8; 65] {
        self.sign_digest(&authorization.digest(domain))
    }

    /// Signs the request to delete `record_id` from `channel` (see [`crate::Deletion`]).
    pub fn sign_deletion(&self, channel: &str, record_id: &str, nonce: u64) -> [u8; 65] {
        self.sign_digest(&crate::deletion_digest(channel, record_id, nonce))
    }
}

// Shows the address only: the key never reaches a log.
impl std::fmt::Debug for PatientSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientSigner")
            .field("address", &checksummed(&self.address))
            .finish_non_exhaustive()
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    keccak256(&point.as_bytes()[1..])[12..]
        .try_into()
        .expect("20 bytes")
}

/// An address as wallets show it: `0x` and mixed-case hex (EIP-55).
fn checksummed(address: &Address) -> String {
    alloy_primitives::Address::from(*address).to_checksum(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Deletion, deletion_digest, hospital_id};

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
        let deletion = Deletion {
            channel: "hospital1".into(),
            record_id: "record-1".into(),
            nonce: 5,
        };
        assert_eq!(signer.sign_digest(&deletion.digest()), signature);
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
        let mut zero = [0u8; 65];
        zero[64] = 27;
        assert_eq!(
            recover_signer(&digest, &zero),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn signatures_written_by_wallets_are_parsed_and_checked_against_the_patient() {
        let signer = anvil_signer();
        let digest = consent().digest(&domain());
        let signature = signer.sign_consent(&consent(), &domain());
        let printed = format!("0x{}\n", hex::encode(signature));
        assert_eq!(parse_signature(&printed), Ok(signature));
        assert_eq!(parse_signature(&printed[2..]), Ok(signature));
        assert_eq!(
            verify_signer(&digest, &signature, &signer.address()),
            Ok(())
        );

        let other = PatientSigner::from_seed(&[3; 32]);
        let error = verify_signer(&digest, &signature, &other.address()).unwrap_err();
        assert_eq!(
            error,
            VerifyError::WrongSigner {
                expected: other.address(),
                signer: signer.address(),
            }
        );
        // Wallets show EIP-55 addresses; the message names both accounts that way.
        let text = error.to_string();
        assert!(
            text.contains("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            "{text}"
        );
        assert!(text.contains(&checksummed(&other.address())), "{text}");

        assert!(matches!(
            parse_signature("0xzz"),
            Err(SignatureError::NotHex(_))
        ));
        assert_eq!(
            parse_signature(&printed[..printed.len() - 3]),
            Err(SignatureError::Length(64))
        );
        assert_eq!(
            verify_signer(&digest, &signature[..64], &signer.address()),
            Err(VerifyError::Signature(SignatureError::Length(64)))
        );
    }

    #[test]
    fn addresses_are_read_as_wallets_show_them_and_mistyped_checksums_refused() {
        let expected = anvil_signer().address();
        for text in [
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\n",
            "F39FD6E51AAD88F6F4CE6AB8827279CFFFB92266",
        ] {
            assert_eq!(parse_address(text), Ok(expected), "{text}");
        }
        // One letter's case changed: the checksum no longer matches.
        assert_eq!(
            parse_address("0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            Err(AddressError::Checksum)
        );
        for bad in ["", "0x", "0xf39fd6e51aad88f6f4ce6ab8827279cfffb922", "0xzz"] {
            assert_eq!(parse_address(bad), Err(AddressError::NotAddress), "{bad}");
        }
    }

    #[test]
    fn seeds_derive_distinct_stable_keys() {
        let a = PatientSigner::from_seed(&[1; 32]);
        assert_eq!(a.address(), PatientSigner::from_seed(&[1; 32]).address());
        assert_ne!(a.address(), PatientSigner::from_seed(&[2; 32]).address());
        // Pinned: a wallet's account must not change when the hashing library does.
        assert_eq!(
            hex::encode(a.address()),
            SEED_1_ADDRESS,
            "the seed derivation changed"
        );
    }

    // The address the previous, hand-written derivation gave seed [1; 32].
    const SEED_1_ADDRESS: &str = "5fdfd461c9751c99c6f2b5b09ff8884c9eabd369";

    #[test]
    fn debug_shows_the_address_and_not_the_key() {
        let text = format!("{:?}", anvil_signer());
        assert!(text.to_lowercase().contains(ANVIL_ADDRESS_0), "{text}");
        assert!(!text.contains(ANVIL_KEY_0), "{text}");
    }
}
