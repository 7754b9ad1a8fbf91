//! The patient signs with another Ethereum wallet on the shared network: each flow stops at
//! its typed data, ethers.js (`tests/ethers-js`) signs that JSON with the patient's key, and
//! the flow finishes on the signature given: the certificate contract issues on the
//! authorisation, the consent file carries the consent, the hospital chaincode deletes the
//! record. A stranger's signature, or a message for another request, is refused.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

#[path = "../../ethereum/tests/ethers_js/mod.rs"]
mod ethers_js;
mod support;

use medcert_eip712::{PatientSigner, parse_signature};
use medcert_flows::wallet::PatientWallet;
use medcert_flows::{
    Actor, CertifyRequest, ConsentFile, ConsentRequest, CreateRequest, DeleteRequest, FlowError,
    Quiet, SignatureSource, Signed, ToSign, certify_record_with, create_record, delete_record_with,
    sign_consent_with,
};
use std::time::Duration;
use support::{network, password, registered, unique, visit};

/// The typed data a flow stopped at.
fn to_sign<T: std::fmt::Debug>(outcome: Signed<T>) -> ToSign {
    match outcome {
        Signed::ToSign(to_sign) => to_sign,
        Signed::Done(report) => panic!("the flow ran to its end: {report:?}"),
    }
}

fn done<T>(outcome: Signed<T>) -> T {
    match outcome {
        Signed::Done(report) => report,
        Signed::ToSign(to_sign) => panic!("the flow asked for a signature: {to_sign:?}"),
    }
}

/// ethers.js's signature of `to_sign` with `secret`, as medcert reads a wallet's.
fn signed_elsewhere(to_sign: &ToSign, secret: &[u8; 32]) -> [u8; 65] {
    let answer = ethers_js::sign(&to_sign.typed_data, secret);
    parse_signature(answer.signature.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn certify_consent_and_delete_with_signatures_made_by_ethers_js() {
    let network = network();
    let hospital = network.fabric.hospitals[0].clone();
    let other = network.fabric.hospitals[1].clone();
    let patients = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let patient = unique("wallet");
    let password = password();
    let treatment = registered(&network, patients.path(), &patient, &hospital.id, &password).await;
    let wallet = PatientWallet::open(patients.path(), &patient).unwrap();
    // The patient's key as another wallet holds it.
    let secret: [u8; 32] = wallet.signer().signing_key().to_bytes().into();
    let stranger: [u8; 32] = PatientSigner::from_seed(&rand::random())
        .signing_key()
        .to_bytes()
        .into();
    let created = create_record(
        &network,
        patients.path(),
        &CreateRequest {
            certify_for: None,
            ..visit(&hospital.id, &treatment, &password, 10_000)
        },
        &Quiet,
    )
    .await
    .unwrap();
    let record_id = created.stored.record_id.clone();

    // Certify: the envelope goes to IPFS, the authorisation naming it is signed elsewhere.
    let certify = CertifyRequest {
        hospital: &hospital.id,
        doctor: 0,
        record_id: &record_id,
        patient: &patient,
    };
    let certify_with =
        |source| certify_record_with(&network, patients.path(), &certify, source, &Quiet);
    let authorization = to_sign(certify_with(SignatureSource::TypedDataOnly).await.unwrap());
    assert_eq!(authorization.signer, wallet.info().address);
    assert_eq!(
        authorization.typed_data["primaryType"],
        "CertificateAuthorization"
    );
    let forged = signed_elsewhere(&authorization, &stranger);
    let error = certify_with(SignatureSource::Given {
        typed_data: &authorization.typed_data,
        signature: forged,
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, FlowError::NotPatientsSignature { .. }),
        "{error}"
    );
    let certified = done(
        certify_with(SignatureSource::Given {
            typed_data: &authorization.typed_data,
            signature: signed_elsewhere(&authorization, &secret),
        })
        .await
        .unwrap(),
    );
    assert!(!certified.already_certified);
    assert_eq!(
        certified.cid,
        authorization.typed_data["message"]["cid"].as_str().unwrap()
    );
    assert_eq!(certified.patient_address, wallet.info().address);

    // Consent: the file carries the consent ethers.js signed.
    let out = scratch.path().join("consent.json");
    let consent = ConsentRequest {
        patient: &patient,
        hospital: &other.id,
        certificate_id: certified.certificate_id,
        valid_for: Duration::from_secs(600),
        out: &out,
    };
    let asked = to_sign(
        sign_consent_with(
            &network,
            patients.path(),
            &consent,
            SignatureSource::TypedDataOnly,
        )
        .await
        .unwrap(),
    );
    assert!(
        !out.exists(),
        "printing the typed data writes no consent file"
    );
    let signature = signed_elsewhere(&asked, &secret);
    let report = done(
        sign_consent_with(
            &network,
            patients.path(),
            &consent,
            SignatureSource::Given {
                typed_data: &asked.typed_data,
                signature,
            },
        )
        .await
        .unwrap(),
    );
    let file = ConsentFile::read(&report.path).unwrap();
    assert_eq!(file.signed_consent().unwrap().signature, signature);
    assert_eq!(
        file.nonce.to_string(),
        asked.typed_data["message"]["nonce"].as_str().unwrap()
    );

    // Delete: a request signed for another record is refused; the patient's is accepted.
    let deletion = DeleteRequest {
        patient: &patient,
        hospital: &hospital.id,
        record_id: &record_id,
        submitter: Actor::Doctor(0),
    };
    let delete_with = |source| delete_record_with(&network, patients.path(), &deletion, source);
    let asked = to_sign(delete_with(SignatureSource::TypedDataOnly).await.unwrap());
    let mut elsewhere = asked.typed_data.clone();
    elsewhere["message"]["recordId"] = "R-another".into();
    let error = delete_with(SignatureSource::Given {
        typed_data: &elsewhere,
        signature: signed_elsewhere(
            &ToSign {
                typed_data: elsewhere.clone(),
                signer: asked.signer.clone(),
            },
            &secret,
        ),
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            FlowError::SignedOtherMessage {
                field: "recordId",
                ..
            }
        ),
        "{error}"
    );
    let deleted = done(
        delete_with(SignatureSource::Given {
            typed_data: &asked.typed_data,
            signature: signed_elsewhere(&asked, &secret),
        })
        .await
        .unwrap(),
    );
    assert!(deleted.tx_id.is_some());
    assert_eq!(deleted.deleted_by, wallet.info().address);
}
