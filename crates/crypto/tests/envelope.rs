//! The IPFS envelope: header + E', written and read in streaming fashion.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Read;

use medcert_crypto::{
    CryptoError, Dek, EnvelopeHeader, HpkeKeyPair, KeyBinding, MAX_ID_LEN, RecordAad, WrapPurpose,
    decrypt_stream, decrypt_stream_async, encrypt_stream, unwrap_key, wrap_key,
};

const AAD: RecordAad<'static> = RecordAad {
    record_id: "rec-7",
    hospital_id: "hospital2",
};
const RECORD: &[u8] = b"<ClinicalDocument>watermarked</ClinicalDocument>";

/// An envelope built the way the store flow does: E' (the CSP object) first, then the header
/// written ahead of an unchanged copy of it.
fn envelope(dek: &Dek, patient: &HpkeKeyPair) -> Vec<u8> {
    let mut e_prime = Vec::new();
    encrypt_stream(dek, &AAD, RECORD, &mut e_prime).unwrap();
    let binding = KeyBinding {
        record_id: AAD.record_id,
        purpose: WrapPurpose::PatientEnvelope,
    };
    let wrapped = wrap_key(dek, &patient.public_key(), &binding).unwrap();
    let header = EnvelopeHeader::seal(&AAD, wrapped);
    let mut envelope = header.encode().unwrap();
    envelope.extend_from_slice(&e_prime);
    envelope
}

#[test]
fn patient_opens_the_envelope() {
    let dek = Dek::generate();
    let patient = HpkeKeyPair::from_seed(&[3; 32]);
    let bytes = envelope(&dek, &patient);

    let mut reader = bytes.as_slice();
    let header = EnvelopeHeader::read(&mut reader).unwrap();
    assert_eq!(header.aad(), AAD);
    let opened = header.unwrap_dek(&patient).unwrap();
    let mut plain = Vec::new();
    decrypt_stream(&opened, &header.aad(), reader, &mut plain).unwrap();
    assert_eq!(plain, RECORD);
}

#[tokio::test]
async fn recovering_hospital_opens_it_with_the_patients_recovery_copy() {
    let dek = Dek::generate();
    let patient = HpkeKeyPair::generate();
    let bytes = envelope(&dek, &patient);
    let hospital = HpkeKeyPair::generate();

    let mut reader = bytes.as_slice();
    let header = EnvelopeHeader::read_async(&mut reader).await.unwrap();
    // The patient re-wraps the DEK for the hospital; the hospital alone cannot unwrap the
    // patient's copy.
    assert!(matches!(
        header.unwrap_dek(&hospital),
        Err(CryptoError::WrongKey(_))
    ));
    let binding = KeyBinding {
        record_id: &header.record_id,
        purpose: WrapPurpose::Recovery,
    };
    let for_hospital = wrap_key(
        &header.unwrap_dek(&patient).unwrap(),
        &hospital.public_key(),
        &binding,
    )
    .unwrap();
    let dek = unwrap_key(&for_hospital, &hospital, &binding).unwrap();
    let mut plain = Vec::new();
    decrypt_stream_async(&dek, &header.aad(), reader, &mut plain)
        .await
        .unwrap();
    assert_eq!(plain, RECORD);
}

#[test]
fn an_altered_header_does_not_open() {
    let dek = Dek::generate();
    let patient = HpkeKeyPair::generate();
    let bytes = envelope(&dek, &patient);
    // The record id starts after magic, version and its 2-byte length.
    let mut altered = bytes.clone();
    altered[7] ^= 1;
    let mut reader = altered.as_slice();
    let header = EnvelopeHeader::read(&mut reader).unwrap();
    assert_ne!(header.record_id, AAD.record_id);
    assert!(matches!(
        header.unwrap_dek(&patient),
        Err(CryptoError::WrongKey(_))
    ));
    // Even with the right key, E' refuses the altered ids.
    assert!(matches!(
        decrypt_stream(&dek, &header.aad(), reader, Vec::new()),
        Err(CryptoError::Tampered)
    ));
}

#[test]
fn short_or_foreign_bytes_are_typed_errors() {
    let patient = HpkeKeyPair::generate();
    let bytes = envelope(&Dek::generate(), &patient);
    let header_len = EnvelopeHeader::read(&mut bytes.as_slice())
        .unwrap()
        .encode()
        .unwrap()
        .len();
    for cut in [0, 3, 6, 12, header_len - 1] {
        assert!(
            matches!(
                EnvelopeHeader::read(&mut &bytes[..cut]),
                Err(CryptoError::Truncated)
            ),
            "cut at {cut}"
        );
    }
    let mut header_only = &bytes[..header_len];
    EnvelopeHeader::read(&mut header_only).unwrap();
    assert_eq!(header_only.bytes().count(), 0);

    let mut foreign = bytes.clone();
    foreign[0] = b'X';
    assert!(matches!(
        EnvelopeHeader::read(&mut foreign.as_slice()),
        Err(CryptoError::Malformed { .. })
    ));
    let mut future = bytes.clone();
    future[4] = 9;
    assert!(matches!(
        EnvelopeHeader::read(&mut future.as_slice()),
        Err(CryptoError::UnsupportedVersion { version: 9, .. })
    ));
    let mut huge_id = bytes;
    huge_id[5..7].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        EnvelopeHeader::read(&mut huge_id.as_slice()),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn overlong_ids_are_refused_when_encoding() {
    let long = "r".repeat(MAX_ID_LEN + 1);
    let aad = RecordAad {
        record_id: &long,
        hospital_id: "h",
    };
    let binding = KeyBinding {
        record_id: &long,
        purpose: WrapPurpose::PatientEnvelope,
    };
    let wrapped = wrap_key(
        &Dek::generate(),
        &HpkeKeyPair::generate().public_key(),
        &binding,
    )
    .unwrap();
    let header = EnvelopeHeader::seal(&aad, wrapped);
    assert!(matches!(
        header.encode(),
        Err(CryptoError::TooLong {
            what: "record id",
            ..
        })
    ));
}
