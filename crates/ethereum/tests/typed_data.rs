//! medcert-eip712's hand-written hashing against an independent EIP-712 implementation
//! (ethers' `TypedData`, which hashes the standard JSON form wallets sign).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use medcert_ethereum::ethers::types::transaction::eip712::{Eip712, TypedData};
use medcert_ethereum::{
    CertificateAuthorization, CertificateDomain, Consent, deletion_digest, hospital_id,
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
