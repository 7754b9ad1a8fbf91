//! The hospital half of Store against the shared network: a stored record is on the
//! hospital chain, in the CSP and its key in the hospital's key service; a store with a
//! wrong password is recorded on the chain as a failed attempt and leaves nothing else.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use medcert_ccda::{GeneratorConfig, generate};
use medcert_crypto::{HpkeKeyPair, RecordAad};
use medcert_csp::Csp;
use medcert_eip712::PatientSigner;
use medcert_flows::Actor;
use medcert_flows::connect::{hospital_client, key_service};
use medcert_flows::hospital_api::{RecordState, args, events};
use medcert_flows::query::record_state;
use medcert_flows::store::{StoreError, StoreRequest, store_record};
use medcert_key_service::{Access, KeyServiceError};
use medcert_test_support::{network, unique};
use zeroize::Zeroizing;

const PASSWORD: &str = "store-flow-secret-9c1e";

#[tokio::test]
async fn store_then_refused_store_leaves_nothing() {
    let network = network();
    let hospital = &network.fabric.hospitals[0];
    let keys = key_service(hospital, Actor::Doctor(0))
        .await
        .expect("the hospital's key service (deploy/up starts it)");
    let csp = Csp::s3(&network.s3).unwrap();
    let contract = hospital_client(&network, hospital, Actor::Doctor(0))
        .await
        .unwrap();

    let patient = PatientSigner::from_seed(&rand::random());
    let treatment = unique("T");
    let registration = args::RegisterPatient {
        treatment_number: treatment.clone(),
        id_hash: [0x33; 32],
        eth_address: patient.address(),
        x25519_public: [0x33; 32],
    };
    contract.register_patient(&registration).await.unwrap();
    keys.enroll_patient(&treatment, PASSWORD.as_bytes())
        .await
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("record.xml");
    let config = GeneratorConfig {
        seed: rand::random(),
        target_size: 50_000,
        patient_id: treatment.clone(),
        hospital: hospital.id.clone(),
    };
    generate(&config, std::fs::File::create(&source).unwrap()).unwrap();

    let record_id = unique("R");
    let password = Zeroizing::new(PASSWORD.to_string());
    let request = StoreRequest {
        hospital_id: &hospital.id,
        treatment_number: &treatment,
        record_id: &record_id,
        source: &source,
        password: &password,
    };
    let stored = store_record(&request, &keys, &csp, &contract)
        .await
        .unwrap();
    assert!(stored.block_number.is_some_and(|block| block > 0));
    assert!(csp.exists(stored.hash_c.as_bytes()).await.unwrap());
    let on_chain = record_state(&contract, &hospital.channel, &record_id)
        .await
        .unwrap();
    assert!(
        matches!(&on_chain, RecordState::Active { record } if record.treatment_number == treatment),
        "{on_chain:?}"
    );
    // The key service holds the key: released for the committed creation, it opens E'.
    let dek = keys
        .release_key(Access::Create {
            tx_id: stored.tx_id.clone(),
        })
        .await
        .unwrap();
    let encrypted = tmp.path().join("record.enc");
    csp.get_to_file(stored.hash_c.as_bytes(), &encrypted)
        .await
        .unwrap();
    let aad = RecordAad {
        record_id: &record_id,
        hospital_id: &hospital.id,
    };
    medcert_crypto::decrypt_to_file(
        &dek,
        &aad,
        std::io::BufReader::new(std::fs::File::open(&encrypted).unwrap()),
        &tmp.path().join("record.out.xml"),
    )
    .expect("the released key opens the stored record");

    // The same file under a new id with a wrong password: the chain records the failed
    // attempt, and nothing else is left behind.
    let refused_id = unique("R");
    let wrong = Zeroizing::new("not-the-password".to_string());
    let refused = StoreRequest {
        record_id: &refused_id,
        password: &wrong,
        ..request
    };
    let error = store_record(&refused, &keys, &csp, &contract)
        .await
        .unwrap_err();
    let StoreError::WrongPassword(wrong_password) = &error else {
        panic!("expected a wrong password, got {error}");
    };
    assert_eq!(wrong_password.attempt, 1, "{error}");
    let message = error.to_string();
    assert!(message.contains("wrong password"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    let trail = support::patient_trail(&contract, &treatment).await;
    assert!(
        trail
            .iter()
            .any(|entry| entry.action == events::PASSWORD_REJECTED
                && entry.tx_id == wrong_password.tx_id),
        "the failed attempt is on the patient's audit trail: {trail:?}"
    );
    let nobody = HpkeKeyPair::generate().public_key();
    assert!(matches!(
        keys.wrap_for_patient(&refused_id, &nobody).await,
        Err(KeyServiceError::NotFound { .. })
    ));
    assert!(
        record_state(&contract, &hospital.channel, &refused_id)
            .await
            .is_err()
    );
    // Each store has a fresh DEK and watermark time, so its Hash C is not the first one's;
    // the only object under this patient's records is the first store's.
    assert!(csp.exists(stored.hash_c.as_bytes()).await.unwrap());

    // Not a C-CDA document: refused before anything is written.
    let junk = tmp.path().join("junk.txt");
    std::fs::write(&junk, "just text").unwrap();
    let junk_id = unique("R");
    let error = store_record(
        &StoreRequest {
            record_id: &junk_id,
            source: &junk,
            ..request
        },
        &keys,
        &csp,
        &contract,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::NotCcda { .. }), "{error}");
    assert!(matches!(
        keys.wrap_for_patient(&junk_id, &nobody).await,
        Err(KeyServiceError::NotFound { .. })
    ));
}
