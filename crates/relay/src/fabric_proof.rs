//! Verification of a Fabric transaction's proof against its org's MSP: every endorsement
//! is a member's of the org ([`MspTrust::verify_endorsement`]: certificate issued by its
//! root CA and in its validity period, correct signature), and the chaincode event the
//! relay acts on is the one the endorsers signed.

use std::time::SystemTime;

use medcert_fabric::block::BlockTransaction;
use medcert_fabric::msp::{EndorsementError, MspTrust};
use medcert_fabric_protos::protos::{ChaincodeAction, ChaincodeEvent, ProposalResponsePayload};
use prost::Message;

use crate::proto::{FabricEndorsement, FabricProof};

/// Why a transaction's proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum FabricProofError {
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

/// Checks every endorsement of `proof` (by a member of `trust`'s MSP valid at `now`, with
/// a correct signature), that at least one exists, and that the endorsed chaincode action
/// carries exactly the event `(chaincode, name, payload)` of transaction `proof.tx_id`.
pub fn verify(
    trust: &MspTrust,
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
        trust
            .verify_endorsement(
                &proof.proposal_response_payload,
                &endorsement.endorser,
                &endorsement.signature,
                now,
            )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorChain;
    use medcert_fabric_protos::msp::SerializedIdentity;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use std::str::FromStr;
    use std::time::Duration;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    use x509_cert::der::pem::LineEnding;
    use x509_cert::name::Name;
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
        verify(
            trust,
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
        let error = verify(
            &trust,
            &expired,
            "hospital",
            "InterchainRequest",
            PAYLOAD,
            later,
        )
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
