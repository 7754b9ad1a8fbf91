//! Argon2id password verifiers stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::CryptoError;
use crate::keys::random_bytes;

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// Argon2id cost parameters for new verifiers. Existing verifiers carry their own parameters
/// in the PHC string, so raising these later does not break old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash in KiB.
    pub memory_kib: u32,
    /// Passes over that memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordParams {
    /// The OWASP Password Storage Cheat Sheet minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    /// The hospital chaincode uses the same costs for its verifiers.
    fn default() -> Self {
        PasswordParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// An Argon2id verifier of a password, with a random 16-byte salt and a 32-byte output.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordVerifier(String);

impl PasswordVerifier {
    /// Hashes `password` with a fresh random salt.
    pub fn hash(password: &[u8], params: &PasswordParams) -> Result<Self, CryptoError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| CryptoError::InvalidPasswordParams(e.to_string()))?;
        let salt = SaltString::encode_b64(random_bytes::<SALT_LEN>().as_ref())
            .expect("16 bytes are a valid salt");
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password, &salt)
            .map_err(|e| CryptoError::InvalidPasswordParams(e.to_string()))?
            .to_string();
        Ok(PasswordVerifier(phc))
    }

    /// A stored verifier; it must be an Argon2id PHC string.
    pub fn from_phc(phc: &str) -> Result<Self, CryptoError> {
        let parsed =
            PasswordHash::new(phc).map_err(|e| CryptoError::InvalidVerifier(e.to_string()))?;
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return Err(CryptoError::InvalidVerifier(format!(
                "algorithm {} is not argon2id",
                parsed.algorithm
            )));
        }
        Params::try_from(&parsed).map_err(|e| CryptoError::InvalidVerifier(e.to_string()))?;
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(CryptoError::InvalidVerifier(
                "salt or hash missing".to_owned(),
            ));
        }
        Ok(PasswordVerifier(phc.to_owned()))
    }

    /// The PHC string to store.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// Checks `password` against the verifier with the parameters stored in it. The final
    /// comparison of hash outputs is constant-time.
    pub fn verify(&self, password: &[u8]) -> Result<(), CryptoError> {
        let parsed = PasswordHash::new(&self.0).expect("checked when the verifier was made");
        Argon2::default()
            .verify_password(password, &parsed)
            .map_err(|e| match e {
                argon2::password_hash::Error::Password => CryptoError::WrongPassword,
                other => CryptoError::InvalidVerifier(other.to_string()),
            })
    }
}

impl fmt::Debug for PasswordVerifier {
    // The verifier is not the password, but it allows offline guessing: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordVerifier(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Small costs keep the unit tests fast; the defaults are exercised once.
    const CHEAP: PasswordParams = PasswordParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let v = PasswordVerifier::hash(b"correct horse", &CHEAP).unwrap();
        v.verify(b"correct horse").unwrap();
        assert!(matches!(
            v.verify(b"correct horsf"),
            Err(CryptoError::WrongPassword)
        ));
        assert!(matches!(v.verify(b""), Err(CryptoError::WrongPassword)));
    }

    #[test]
    fn default_parameters_are_recorded_in_the_phc_string() {
        let v = PasswordVerifier::hash(b"pw", &PasswordParams::default()).unwrap();
        assert!(
            v.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            v.as_phc()
        );
        let stored = PasswordVerifier::from_phc(v.as_phc()).unwrap();
        stored.verify(b"pw").unwrap();
        assert!(!format!("{stored:?}").contains(v.as_phc()));
    }

    #[test]
    fn salts_differ_between_hashes_of_one_password() {
        let a = PasswordVerifier::hash(b"pw", &CHEAP).unwrap();
        let b = PasswordVerifier::hash(b"pw", &CHEAP).unwrap();
        assert_ne!(a.as_phc(), b.as_phc());
    }

    #[test]
    fn malformed_or_foreign_verifiers_are_rejected() {
        assert!(matches!(
            PasswordVerifier::from_phc("not a verifier"),
            Err(CryptoError::InvalidVerifier(_))
        ));
        let argon2i = PasswordVerifier::hash(b"pw", &CHEAP)
            .unwrap()
            .as_phc()
            .replace("$argon2id$", "$argon2i$");
        let err = PasswordVerifier::from_phc(&argon2i).unwrap_err();
        assert!(err.to_string().contains("not argon2id"), "{err}");
    }

    #[test]
    fn out_of_range_parameters_are_a_typed_error() {
        let params = PasswordParams {
            memory_kib: 1,
            ..CHEAP
        };
        assert!(matches!(
            PasswordVerifier::hash(b"pw", &params),
            Err(CryptoError::InvalidPasswordParams(_))
        ));
    }
}
