//! Verification of a Fabric transaction's endorsements against its org's MSP root CA:
//! each endorser certificate is issued by the CA (P-256 signature over its TBS part, in
//! its validity period), each endorsement signature verifies under that certificate, and
//! the chaincode event the relay acts on is the one the endorsers signed.

use std::time::SystemTime;

use medcert_fabric::block::BlockTransaction;
use medcert_fabric_protos::msp::SerializedIdentity;
use medcert_fabric_protos::protos::{ChaincodeAction, ChaincodeEvent, ProposalResponsePayload};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use prost::Message;
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode, oid::ObjectIdentifier};
use x509_cert::name::Name;

use crate::proto::{FabricEndorsement, FabricProof};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// Why a transaction's proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum FabricProofError {
    /// The MSP CA certificate is not a usable P-256 root.
    #[error("MSP CA certificate of {msp_id}")]
    BadCa {
        /// The MSP.
        msp_id: String,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// No endorsement at all.
    #[error("the transaction carries no endorsement")]
    NoEndorsement,
    /// An endorsement does not verify.
    #[error("endorsement {index}")]
    BadEndorsement {
        /// Its position in the transaction.
        index: usize,
        /// Why.
        #[source]
        source: EndorsementError,
    },
    /// No endorsement is by the org.
    #[error("no endorsement by {msp_id}")]
    NotEndorsedByOrg {
        /// The org's MSP.
        msp_id: String,
    },
    /// The endorsed event is not the delivered one, and how.
    #[error("the endorsed transaction {0}")]
    EventMismatch(&'static str),
    /// Part of the endorsed payload does not decode.
    #[error("malformed endorsed {what}")]
    Decode {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: prost::DecodeError,
    },
}

/// Why an endorsement does not count.
#[derive(Debug, thiserror::Error)]
pub enum EndorsementError {
    /// The endorser is not a serialized identity.
    #[error("endorser is not a serialized identity")]
    Identity(#[source] prost::DecodeError),
    /// The endorser is of another MSP.
    #[error("endorser belongs to {found}, not {expected}")]
    OtherMsp {
        /// The endorser's MSP.
        found: String,
        /// The org's.
        expected: String,
    },
    /// The endorser's certificate is unusable.
    #[error("endorser certificate")]
    Certificate(#[source] CertificateError),
    /// The endorser's certificate is issued by another CA.
    #[error("endorser certificate is issued by {issuer}, not by the {msp_id} CA {ca}")]
    OtherIssuer {
        /// The certificate's issuer.
        issuer: String,
        /// The org's MSP.
        msp_id: String,
        /// The org's CA.
        ca: String,
    },
    /// The endorser's certificate names the CA but is not signed by it.
    #[error("endorser certificate is not signed by the {msp_id} CA")]
    NotSignedByCa {
        /// The org's MSP.
        msp_id: String,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// The endorser's certificate is expired or not yet valid.
    #[error("endorser certificate is outside its validity period")]
    OutsideValidity,
    /// The signature is not DER ECDSA.
    #[error("signature is not DER ECDSA")]
    SignatureEncoding(#[source] p256::ecdsa::Error),
    /// The signature does not verify.
    #[error("signature does not verify under the endorser's certificate")]
    Signature,
}

/// Why a certificate is not a usable P-256 one.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Not a certificate.
    #[error("not an X.509 certificate")]
    Parse(#[source] x509_cert::der::Error),
    /// Its key is not an EC key.
    #[error("public key algorithm {0} is not EC")]
    NotEc(ObjectIdentifier),
    /// Its key is not on P-256.
    #[error("public key is not a P-256 point")]
    NotP256,
    /// It is not signed with ECDSA over SHA-256.
    #[error("signature algorithm {0} is not ecdsa-with-SHA256")]
    SignatureAlgorithm(ObjectIdentifier),
    /// Its signed part cannot be re-encoded.
    #[error("re-encoding the certificate")]
    Encode(#[source] x509_cert::der::Error),
    /// Its signature is not DER ECDSA.
    #[error("certificate signature is not DER ECDSA")]
    SignatureEncoding(#[source] p256::ecdsa::Error),
    /// Its signature does not verify.
    #[error("certificate signature does not verify")]
    Signature,
    /// A CA certificate that does not sign itself.
    #[error("not a self-signed CA")]
    NotSelfSigned(#[source] Box<CertificateError>),
}

/// An org's MSP root CA, the trust anchor of its endorsements.
#[derive(Debug, Clone)]
pub struct MspTrust {
    msp_id: String,
    subject: Name,
    key: VerifyingKey,
}

impl MspTrust {
    /// The trust anchor of `msp_id`: its self-signed P-256 root CA, PEM.
    pub fn from_pem(msp_id: &str, ca_pem: &[u8]) -> Result<Self, FabricProofError> {
        let bad = |source| FabricProofError::BadCa {
            msp_id: msp_id.to_owned(),
            source,
        };
        let ca = Certificate::from_pem(ca_pem)
            .map_err(CertificateError::Parse)
            .map_err(bad)?;
        let key = p256_key(&ca).map_err(bad)?;
        // A root CA signs itself: checking it here catches a file that is not one.
        verify_issued(&ca, &key).map_err(|e| bad(CertificateError::NotSelfSigned(Box::new(e))))?;
        Ok(Self {
            msp_id: msp_id.to_owned(),
            subject: ca.tbs_certificate.subject,
            key,
        })
    }

    /// The MSP this CA anchors.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// Checks every endorsement of `proof` (issued by this CA, valid at `now`, correct
    /// signature, this MSP), that at least one exists, and that the endorsed chaincode
    /// action carries exactly the event `(chaincode, name, payload)` of transaction
    /// `proof.tx_id`.
    pub fn verify(
        &self,
        proof: &FabricProof,
        chaincode: &str,
        event_name: &str,
        payload: &[u8],
        now: SystemTime,
    ) -> Result<(), FabricProofError> {
        if proof.endorsements.is_empty() {
            return Err(FabricProofError::NoEndorsement);
        }
        for (index, endorsement) in proof.endorsements.iter().enumerate() {
            self.verify_endorsement(&proof.proposal_response_payload, endorsement, now)
                .map_err(|source| FabricProofError::BadEndorsement { index, source })?;
        }
        let event = endorsed_event(&proof.proposal_response_payload)?;
        let mismatch = FabricProofError::EventMismatch;
        if event.tx_id != proof.tx_id {
            return Err(mismatch("event belongs to another transaction"));
        }
        if event.chaincode_id != chaincode {
            return Err(mismatch("event comes from another chaincode"));
        }
        if event.event_name != event_name {
            return Err(mismatch("event has another name"));
        }
        if event.payload != payload {
            return Err(mismatch("event payload differs from the one delivered"));
        }
        Ok(())
    }

    fn verify_endorsement(
        &self,
        proposal_response_payload: &[u8],
        endorsement: &FabricEndorsement,
        now: SystemTime,
    ) -> Result<(), EndorsementError> {
        let identity = SerializedIdentity::decode(endorsement.endorser.as_slice())
            .map_err(EndorsementError::Identity)?;
        if identity.mspid != self.msp_id {
            return Err(EndorsementError::OtherMsp {
                found: identity.mspid,
                expected: self.msp_id.clone(),
            });
        }
        let cert = Certificate::from_pem(&identity.id_bytes)
            .or_else(|_| Certificate::from_der(&identity.id_bytes))
            .map_err(|e| EndorsementError::Certificate(CertificateError::Parse(e)))?;
        if cert.tbs_certificate.issuer != self.subject {
            return Err(EndorsementError::OtherIssuer {
                issuer: cert.tbs_certificate.issuer.to_string(),
                msp_id: self.msp_id.clone(),
                ca: self.subject.to_string(),
            });
        }
        verify_issued(&cert, &self.key).map_err(|source| EndorsementError::NotSignedByCa {
            msp_id: self.msp_id.clone(),
            source,
        })?;
        let validity = &cert.tbs_certificate.validity;
        let (from, until) = (
            validity.not_before.to_system_time(),
            validity.not_after.to_system_time(),
        );
        if now < from || now > until {
            return Err(EndorsementError::OutsideValidity);
        }
        let key = p256_key(&cert).map_err(EndorsementError::Certificate)?;
        let signature = Signature::from_der(&endorsement.signature)
            .map_err(EndorsementError::SignatureEncoding)?;
        let message = [proposal_response_payload, endorsement.endorser.as_slice()].concat();
        key.verify(&message, &signature)
            .map_err(|_| EndorsementError::Signature)
    }
}

/// The proof of a committed transaction, from a block's copy of it.
pub fn proof_of(transaction: &BlockTransaction, block_number: u64) -> FabricProof {
    FabricProof {
        channel: transaction.channel.clone(),
        block_number,
        tx_id: transaction.tx_id.clone(),
        proposal_response_payload: transaction.proposal_response_payload.clone(),
        endorsements: transaction
            .endorsements
            .iter()
            .map(|e| FabricEndorsement {
                endorser: e.endorser.clone(),
                signature: e.signature.clone(),
            })
            .collect(),
    }
}

fn endorsed_event(proposal_response_payload: &[u8]) -> Result<ChaincodeEvent, FabricProofError> {
    let malformed = |what, source| FabricProofError::Decode { what, source };
    let payload = ProposalResponsePayload::decode(proposal_response_payload)
        .map_err(|e| malformed("proposal response payload", e))?;
    let action = ChaincodeAction::decode(payload.extension.as_slice())
        .map_err(|e| malformed("chaincode action", e))?;
    if action.events.is_empty() {
        return Err(FabricProofError::EventMismatch("carries no event"));
    }
    ChaincodeEvent::decode(action.events.as_slice()).map_err(|e| malformed("chaincode event", e))
}

fn p256_key(cert: &Certificate) -> Result<VerifyingKey, CertificateError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(CertificateError::NotEc(spki.algorithm.oid));
    }
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| CertificateError::NotP256)
}

/// Checks `cert`'s signature (ECDSA P-256 with SHA-256) under `issuer_key`.
fn verify_issued(cert: &Certificate, issuer_key: &VerifyingKey) -> Result<(), CertificateError> {
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA256 {
        return Err(CertificateError::SignatureAlgorithm(
            cert.signature_algorithm.oid,
        ));
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(CertificateError::Encode)?;
    let signature = Signature::from_der(cert.signature.raw_bytes())
        .map_err(CertificateError::SignatureEncoding)?;
    issuer_key
        .verify(&tbs, &signature)
        .map_err(|_| CertificateError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorChain;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use std::str::FromStr;
    use std::time::Duration;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    use x509_cert::der::pem::LineEnding;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::Validity;

    struct Org {
        key: SigningKey,
        name: Name,
        pem: String,
    }

    fn ca(name: &str) -> Org {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let name = Name::from_str(&format!("CN=ca.{name}")).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
        let cert = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            Validity::from_now(Duration::from_secs(3600)).unwrap(),
            name.clone(),
            spki,
            &key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap();
        Org {
            key,
            name,
            pem: cert.to_pem(LineEnding::LF).unwrap(),
        }
    }

    /// A peer certificate issued by `issuer` and the peer's signing key.
    fn peer(issuer: &Org, validity: Validity) -> (Vec<u8>, SigningKey) {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
        let cert = CertificateBuilder::new(
            Profile::Leaf {
                issuer: issuer.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::from(2u32),
            validity,
            Name::from_str("CN=peer0").unwrap(),
            spki,
            &issuer.key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap();
        (cert.to_pem(LineEnding::LF).unwrap().into_bytes(), key)
    }

    fn response_payload(tx_id: &str, payload: &[u8]) -> Vec<u8> {
        let event = ChaincodeEvent {
            chaincode_id: "hospital".into(),
            tx_id: tx_id.into(),
            event_name: "InterchainRequest".into(),
            payload: payload.to_vec(),
        };
        let action = ChaincodeAction {
            events: event.encode_to_vec(),
            ..Default::default()
        };
        ProposalResponsePayload {
            proposal_hash: vec![1; 32],
            extension: action.encode_to_vec(),
        }
        .encode_to_vec()
    }

    fn endorse(msp: &str, cert: &[u8], key: &SigningKey, prp: &[u8]) -> FabricEndorsement {
        let endorser = SerializedIdentity {
            mspid: msp.into(),
            id_bytes: cert.to_vec(),
        }
        .encode_to_vec();
        let signature: Signature = key.sign(&[prp, endorser.as_slice()].concat());
        FabricEndorsement {
            endorser,
            signature: signature.to_der().as_bytes().to_vec(),
        }
    }

    fn proof(endorsements: Vec<FabricEndorsement>, prp: Vec<u8>) -> FabricProof {
        FabricProof {
            channel: "hospital1".into(),
            block_number: 9,
            tx_id: "tx1".into(),
            proposal_response_payload: prp,
            endorsements,
        }
    }

    const PAYLOAD: &[u8] = br#"{"index":1}"#;

    fn check(trust: &MspTrust, proof: &FabricProof) -> Result<(), FabricProofError> {
        trust.verify(
            proof,
            "hospital",
            "InterchainRequest",
            PAYLOAD,
            SystemTime::now(),
        )
    }

    fn hour() -> Validity {
        Validity::from_now(Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn an_endorsement_by_the_org_verifies() {
        let org = ca("hospital1");
        let trust = MspTrust::from_pem("Hospital1MSP", org.pem.as_bytes()).unwrap();
        let (cert, key) = peer(&org, hour());
        let prp = response_payload("tx1", PAYLOAD);
        let good = proof(vec![endorse("Hospital1MSP", &cert, &key, &prp)], prp);
        check(&trust, &good).unwrap();
    }

    #[test]
    fn forged_endorsements_are_refused() {
        let org = ca("hospital1");
        let other = ca("hospital2");
        let trust = MspTrust::from_pem("Hospital1MSP", org.pem.as_bytes()).unwrap();
        let (cert, key) = peer(&org, hour());
        let prp = response_payload("tx1", PAYLOAD);

        // A peer of another org claiming this MSP.
        let (foreign_cert, foreign_key) = peer(&other, hour());
        let foreign = proof(
            vec![endorse("Hospital1MSP", &foreign_cert, &foreign_key, &prp)],
            prp.clone(),
        );
        let error = check(&trust, &foreign).unwrap_err();
        let text = ErrorChain(&error).to_string();
        assert!(text.contains("issued by"), "{text}");

        // The right certificate, signed by another key.
        let forged = proof(
            vec![endorse("Hospital1MSP", &cert, &foreign_key, &prp)],
            prp.clone(),
        );
        let error = check(&trust, &forged).unwrap_err();
        assert!(ErrorChain(&error).to_string().contains("does not verify"));

        // A genuine endorsement of another payload.
        let other_prp = response_payload("tx1", b"{\"index\":2}");
        let swapped = proof(
            vec![endorse("Hospital1MSP", &cert, &key, &other_prp)],
            prp.clone(),
        );
        assert!(matches!(
            check(&trust, &swapped),
            Err(FabricProofError::BadEndorsement { .. })
        ));

        // A genuine endorsement whose event is not the delivered one.
        let other_event = proof(
            vec![endorse("Hospital1MSP", &cert, &key, &other_prp)],
            other_prp,
        );
        assert!(matches!(
            check(&trust, &other_event),
            Err(FabricProofError::EventMismatch(_))
        ));

        // Another MSP id, no endorsement at all, an expired certificate.
        let wrong_msp = proof(vec![endorse("RelayMSP", &cert, &key, &prp)], prp.clone());
        assert!(check(&trust, &wrong_msp).is_err());
        assert!(matches!(
            check(&trust, &proof(vec![], prp.clone())),
            Err(FabricProofError::NoEndorsement)
        ));
        let (old_cert, old_key) = peer(&org, hour());
        let expired = proof(
            vec![endorse("Hospital1MSP", &old_cert, &old_key, &prp)],
            prp,
        );
        let later = SystemTime::now() + Duration::from_secs(7200);
        let error = trust
            .verify(&expired, "hospital", "InterchainRequest", PAYLOAD, later)
            .unwrap_err();
        let text = ErrorChain(&error).to_string();
        assert!(text.contains("validity"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_ca_is_refused() {
        let org = ca("hospital1");
        let (leaf, _) = peer(&org, hour());
        assert!(MspTrust::from_pem("Hospital1MSP", &leaf).is_err());
        assert!(MspTrust::from_pem("Hospital1MSP", b"not pem").is_err());
    }
}
