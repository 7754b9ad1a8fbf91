//! A Fabric client identity: an X.509 certificate and its ECDSA P-256 key.

use crate::Error;
use medcert_fabric_protos::msp::SerializedIdentity;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use prost::Message;
use std::path::{Path, PathBuf};

/// Why an identity cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file of the MSP directory cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not PEM text.
    #[error("{path} is not PEM")]
    NotPem {
        /// The key file.
        path: PathBuf,
    },
    /// The private key is not a PKCS#8 P-256 key.
    #[error("the private key is not PKCS#8 P-256")]
    Key(#[source] p256::pkcs8::Error),
}

/// Signs proposals, transactions and requests as one MSP member. The private key is
/// zeroized when dropped (by `p256`'s `SigningKey`).
#[derive(Clone)]
pub struct Identity {
    msp_id: String,
    cert_pem: Vec<u8>,
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// `cert_pem` is the PEM certificate, `key_pem` the PKCS#8 PEM private key.
    pub fn new(msp_id: &str, cert_pem: Vec<u8>, key_pem: &str) -> Result<Self, Error> {
        let key = SigningKey::from_pkcs8_pem(key_pem).map_err(IdentityError::Key)?;
        Ok(Self {
            msp_id: msp_id.to_owned(),
            cert_pem,
            key,
        })
    }

    /// Reads an identity from the files of an MSP directory (`signcerts/…pem`,
    /// `keystore/priv_sk`).
    pub fn from_files(msp_id: &str, cert: &Path, key: &Path) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| IdentityError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        let key_pem = std::str::from_utf8(&key_pem).map_err(|_| IdentityError::NotPem {
            path: key.to_owned(),
        })?;
        Self::new(msp_id, read(cert)?, key_pem)
    }

    /// The identity's MSP.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The identity's certificate, PEM.
    pub fn certificate_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The `msp.SerializedIdentity` bytes Fabric calls the creator.
    pub fn serialized(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.cert_pem.clone(),
        }
        .encode_to_vec()
    }

    /// A DER ECDSA signature over SHA-256 of `message`, normalised to low S as Fabric
    /// requires.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        let signature = signature.normalize_s().unwrap_or(signature);
        signature.to_der().as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;
    use p256::elliptic_curve::scalar::IsHigh;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    #[test]
    fn signatures_are_low_s_der_and_verify() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let identity = Identity::new("Hospital1MSP", b"cert".to_vec(), &pem).unwrap();
        let verifying = VerifyingKey::from(&key);
        for i in 0..32u8 {
            let message = [i; 40];
            let der = identity.sign(&message);
            let signature = Signature::from_der(&der).unwrap();
            assert!(!bool::from(signature.s().is_high()));
            verifying.verify(&message, &signature).unwrap();
        }
        let creator = SerializedIdentity::decode(identity.serialized().as_slice()).unwrap();
        assert_eq!(creator.mspid, "Hospital1MSP");
        assert_eq!(creator.id_bytes, b"cert");
    }

    #[test]
    fn a_key_that_is_not_pkcs8_is_refused() {
        let error = Identity::new(
            "M",
            Vec::new(),
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(
            matches!(error, Error::Identity(IdentityError::Key(_))),
            "{error}"
        );
    }
}
