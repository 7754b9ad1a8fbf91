//! Signatures made by another wallet (ethers.js, `tests/ethers-js`) from the typed-data JSON
//! medcert prints, on the real anvil started by deploy/up: the contract issues a
//! certificate on such an authorisation and serves a recovery on such a consent, both
//! credited to the patient.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod ethers_js;
mod support;

use medcert_eip712::parse_signature;
use medcert_ethereum::ethers::types::Address;
use medcert_ethereum::{Consent, hospital_id};
use support::{Fixture, authorization_for, deadline, register, unix_now};

#[tokio::test]
async fn the_contract_accepts_an_authorisation_and_a_consent_signed_by_ethers_js() {
    let f = Fixture::new().await;
    // The patient's key, as a wallet other than medcert's would hold it.
    let secret: [u8; 32] = f.patient.signing_key().to_bytes().into();
    let domain = f.admin.domain();

    let authorization = authorization_for(f.hospital_id, 1, 1);
    let signed = ethers_js::sign(&authorization.typed_data(&domain), &secret);
    let signature = parse_signature(signed.signature.as_deref().unwrap()).unwrap();
    let issued = f
        .hospital
        .issue_certificate(&authorization, f.patient.address().into(), &signature)
        .await
        .expect("the contract accepts ethers.js's authorisation");
    let certificate = f.admin.certificate(issued.certificate_id).await.unwrap();
    assert_eq!(certificate.patient, Address::from(f.patient.address()));
    assert_eq!(certificate.cid, authorization.cid);

    let other = hospital_id("hospital2").unwrap();
    register(&f.admin, other).await;
    let consent = Consent {
        hospital: other,
        certificate_id: issued.certificate_id,
        expiry: unix_now() + 3600,
        nonce: 2,
    };
    let signed = ethers_js::sign(&consent.typed_data(&domain), &secret);
    let signature = parse_signature(signed.signature.as_deref().unwrap()).unwrap();
    let served = f
        .relay
        .serve_recovery([0xe7; 32], deadline(), &consent, &signature)
        .await
        .expect("the contract accepts ethers.js's consent");
    assert_eq!(served.event.certificate_id, issued.certificate_id);
    assert_eq!(served.event.hospital, other);
    assert!(
        f.admin
            .nonce_used(f.patient.address().into(), 2)
            .await
            .unwrap(),
        "the consent's nonce is spent under the patient's account"
    );
}
