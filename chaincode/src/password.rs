//! Patient password verifiers: Argon2id (m = 19 MiB, t = 2, p = 1), stored as a PHC
//! string.
//!
//! Endorsement must be deterministic (every endorsing peer has to compute the same write
//! set), so the salt is not random: it is derived from the channel and the treatment
//! number, which are unique per patient and hospital. Verification recomputes the hash
//! with the stored parameters and compares in constant time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha3::{Digest, Sha3_256};

const SALT_LABEL: &[u8] = b"medcert/argon2id-salt/v1";

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("constant Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The verifier of `password` for patient `treatment_number` on `channel`.
pub fn verifier(channel: &str, treatment_number: &str, password: &[u8]) -> String {
    let digest = Sha3_256::new()
        .chain_update(SALT_LABEL)
        .chain_update([0])
        .chain_update(channel)
        .chain_update([0])
        .chain_update(treatment_number)
        .finalize();
    let salt = SaltString::encode_b64(&digest[..16]).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password, &salt)
        .expect("Argon2 with valid parameters and salt")
        .to_string()
}

/// Whether `password` matches `verifier`. A malformed verifier matches nothing.
pub fn matches(verifier: &str, password: &[u8]) -> bool {
    PasswordHash::new(verifier)
        .and_then(|hash| hasher().verify_password(password, &hash))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_deterministic_and_checks_the_password() {
        let v = verifier("hospital1", "T-1", b"correct horse");
        assert_eq!(v, verifier("hospital1", "T-1", b"correct horse"));
        assert!(v.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{v}");
        assert!(matches(&v, b"correct horse"));
        assert!(!matches(&v, b"correct horsf"));
        assert!(!matches("not a verifier", b"correct horse"));
    }

    #[test]
    fn salt_differs_per_patient_and_channel() {
        let a = verifier("hospital1", "T-1", b"pw");
        assert_ne!(a, verifier("hospital1", "T-2", b"pw"));
        assert_ne!(a, verifier("hospital2", "T-1", b"pw"));
    }
}
