//! medcert-eip712's digests, typed-data JSON and signatures against two independent
//! EIP-712 implementations: ethers-rs' `TypedData`, fed JSON written here by hand, and
//! ethers.js (`tests/ethers-js`), fed the JSON medcert prints for wallets. Each signs what
//! the other verifies.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod ethers_js;

use medcert_eip712::{Deletion, VerifyError, parse_signature, verify_signer};
use medcert_ethereum::ethers::types::transaction::eip712::{Eip712, TypedData};
use medcert_ethereum::{
    AgentAuthorization, CertificateAuthorization, CertificateDomain, Consent, PatientSigner,
    deletion_digest, hospital_id,
};
use serde_json::json;

fn typed_data(value: serde_json::Value) -> [u8; 32] {
    let data: TypedData = serde_json::from_value(value).unwrap();
    data.encode_eip712().unwrap()
}

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn domain() -> CertificateDomain {
    CertificateDomain {
        chain_id: 31337,
        verifying_contract: [0x5f; 20],
    }
}

/// The standard EIP-712 digest of `message`, of type `primary` with `fields`, in the
/// MedicalCertificate domain of [`domain`].
fn in_certificate_domain(
    primary: &str,
    fields: serde_json::Value,
    message: serde_json::Value,
) -> [u8; 32] {
    let domain_type = json!([
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]);
    typed_data(json!({
        "types": {"EIP712Domain": domain_type, primary: fields},
        "primaryType": primary,
        "domain": {
            "name": "MedicalCertificate",
            "version": "1",
            "chainId": 31337,
            "verifyingContract": format!("0x{}", "5f".repeat(20)),
        },
        "message": message,
    }))
}

#[test]
fn consent_digest_matches_standard_eip712() {
    let consent = Consent {
        hospital: hospital_id("hospital2").unwrap(),
        certificate_id: 12,
        expiry: 1_900_000_000,
        nonce: u64::MAX,
    };
    let expected = in_certificate_domain(
        "Consent",
        json!([
            {"name": "hospital", "type": "bytes32"},
            {"name": "certificateId", "type": "uint256"},
            {"name": "expiry", "type": "uint64"},
            {"name": "nonce", "type": "uint256"},
        ]),
        json!({
            "hospital": hex32(&consent.hospital),
            "certificateId": "12",
            "expiry": "1900000000",
            "nonce": u64::MAX.to_string(),
        }),
    );
    assert_eq!(consent.digest(&domain()), expected);
}

#[test]
fn certificate_authorization_digest_matches_standard_eip712() {
    let authorization = CertificateAuthorization {
        hospital: hospital_id("hospital1").unwrap(),
        record_id: [0x11; 32],
        cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
        content_fingerprint: [0xc0; 32],
        watermark_fingerprint: [0x3a; 32],
        nonce: 7,
    };
    let expected = in_certificate_domain(
        "CertificateAuthorization",
        json!([
            {"name": "hospital", "type": "bytes32"},
            {"name": "recordId", "type": "bytes32"},
            {"name": "cid", "type": "string"},
            {"name": "contentFingerprint", "type": "bytes32"},
            {"name": "watermarkFingerprint", "type": "bytes32"},
            {"name": "nonce", "type": "uint256"},
        ]),
        json!({
            "hospital": hex32(&authorization.hospital),
            "recordId": hex32(&authorization.record_id),
            "cid": authorization.cid,
            "contentFingerprint": hex32(&authorization.content_fingerprint),
            "watermarkFingerprint": hex32(&authorization.watermark_fingerprint),
            "nonce": "7",
        }),
    );
    assert_eq!(authorization.digest(&domain()), expected);
}

#[test]
fn agent_authorization_digest_matches_standard_eip712() {
    let authorization = AgentAuthorization {
        agent: [0xa9; 20],
        nonce: u64::MAX,
    };
    let expected = in_certificate_domain(
        "AgentAuthorization",
        json!([
            {"name": "agent", "type": "address"},
            {"name": "nonce", "type": "uint256"},
        ]),
        json!({
            "agent": format!("0x{}", "a9".repeat(20)),
            "nonce": u64::MAX.to_string(),
        }),
    );
    assert_eq!(authorization.digest(&domain()), expected);
}

#[test]
fn deletion_digest_matches_standard_eip712() {
    let expected = typed_data(json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            "Deletion": [
                {"name": "channel", "type": "string"},
                {"name": "recordId", "type": "string"},
                {"name": "nonce", "type": "uint64"},
            ],
        },
        "primaryType": "Deletion",
        "domain": {"name": "MedcertDeletion", "version": "1"},
        "message": {"channel": "hospital1", "recordId": "record-42", "nonce": "9"},
    }));
    assert_eq!(deletion_digest("hospital1", "record-42", 9), expected);
}

fn authorization() -> CertificateAuthorization {
    CertificateAuthorization {
        hospital: hospital_id("hospital1").unwrap(),
        record_id: [0x11; 32],
        cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
        content_fingerprint: [0xc0; 32],
        watermark_fingerprint: [0x3a; 32],
        nonce: u64::MAX,
    }
}

fn consent() -> Consent {
    Consent {
        hospital: hospital_id("hospital2").unwrap(),
        certificate_id: 12,
        expiry: u64::MAX,
        nonce: u64::MAX - 1,
    }
}

fn deletion() -> Deletion {
    Deletion {
        channel: "hospital1".into(),
        record_id: "record-42".into(),
        nonce: u64::MAX,
    }
}

fn agent_authorization() -> AgentAuthorization {
    AgentAuthorization {
        agent: PatientSigner::from_seed(&[0xa9; 32]).address(),
        nonce: u64::MAX,
    }
}

/// Each message's typed-data JSON and medcert's digest of it.
fn messages() -> [(serde_json::Value, [u8; 32]); 4] {
    [
        (
            authorization().typed_data(&domain()),
            authorization().digest(&domain()),
        ),
        (consent().typed_data(&domain()), consent().digest(&domain())),
        (deletion().typed_data(), deletion().digest()),
        (
            agent_authorization().typed_data(&domain()),
            agent_authorization().digest(&domain()),
        ),
    ]
}

/// A random patient and their secret key, as another wallet would hold it.
fn random_patient() -> (PatientSigner, [u8; 32]) {
    let patient = PatientSigner::from_seed(&rand::random());
    let secret = patient.signing_key().to_bytes().into();
    (patient, secret)
}

#[test]
fn ethers_js_hashes_medcerts_typed_data_to_medcerts_digests_and_recovers_its_signatures() {
    let (patient, _) = random_patient();
    for (typed_data, digest) in messages() {
        let signature = patient.sign_digest(&digest);
        let ethers = ethers_js::verify(&typed_data, &signature);
        assert_eq!(ethers.digest, digest, "{typed_data}");
        assert_eq!(ethers.signer, patient.address(), "{typed_data}");
    }
}

#[test]
fn signatures_made_by_ethers_js_are_accepted_as_the_patients_and_no_one_elses() {
    let (patient, secret) = random_patient();
    let (stranger, _) = random_patient();
    for (typed_data, digest) in messages() {
        let ethers = ethers_js::sign(&typed_data, &secret);
        assert_eq!(ethers.signer, patient.address());
        let signature = parse_signature(ethers.signature.as_deref().unwrap()).unwrap();
        assert_eq!(
            verify_signer(&digest, &signature, &patient.address()),
            Ok(())
        );
        assert_eq!(
            verify_signer(&digest, &signature, &stranger.address()),
            Err(VerifyError::WrongSigner {
                expected: stranger.address(),
                signer: patient.address(),
            })
        );
    }
}

/// The chaincode's tests submit `tests/ethers-js/deletion-signed.json` as a deletion
/// request signed by another wallet; it must be what ethers.js signs, for medcert's JSON.
#[test]
fn the_chaincodes_wallet_signed_deletion_is_ethers_js_signing_medcerts_json() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/ethers-js/deletion-signed.json"
    );
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let deletion = Deletion {
        channel: "hospital1".into(),
        record_id: "R-1".into(),
        nonce: 1,
    };
    assert_eq!(fixture["typedData"], deletion.typed_data());
    let secret: [u8; 32] = hex::decode(&fixture["privateKey"].as_str().unwrap()[2..])
        .unwrap()
        .try_into()
        .unwrap();
    let ethers = ethers_js::sign(&deletion.typed_data(), &secret);
    assert_eq!(ethers.signature.as_deref(), fixture["signature"].as_str());
    assert_eq!(ethers.digest, deletion.digest());
}
