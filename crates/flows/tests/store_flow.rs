//! The hospital half of Store against the shared network: a stored record is on the
//! hospital chain, in the CSP and in the key store; a refused store leaves none of them.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use medcert_ccda::{GeneratorConfig, generate};
use medcert_csp::Csp;
use medcert_eip712::PatientSigner;
use medcert_flows::connect::hospital_client;
use medcert_flows::hospital_api::{ClientError, HospitalClient, RecordState, args};
use medcert_flows::query::record_state;
use medcert_flows::store::{StoreError, StoreRequest, store_record};
use medcert_flows::{Actor, HospitalKeys};
use medcert_network::Network;
use medcert_test_support::{network, unique};
use zeroize::Zeroizing;

const PASSWORD: &str = "store-flow-secret-9c1e";

async fn doctor(network: &Network, index: usize) -> HospitalClient {
    let hospital = &network.fabric.hospitals[index];
    hospital_client(network, hospital, Actor::Doctor(0))
        .await
        .unwrap()
}

#[tokio::test]
async fn store_then_refused_store_leaves_nothing() {
    let network = network();
    let hospital = &network.fabric.hospitals[0];
    let keys = HospitalKeys::open_existing(&HospitalKeys::dir(&network.run_dir, &hospital.id))
        .expect("hospital keys missing: run medcert network init");
    let csp = Csp::s3(&network.s3).unwrap();
    let contract = doctor(&network, 0).await;

    let patient = PatientSigner::from_seed(&rand::random());
    let treatment = unique("T");
    let registration = args::RegisterPatient {
        treatment_number: treatment.clone(),
        id_hash: [0x33; 32],
        eth_address: patient.address(),
        x25519_public: [0x33; 32],
    };
    contract
        .register_patient(&registration, PASSWORD.as_bytes())
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
    assert!(stored.block_number > 0);
    assert!(csp.exists(stored.hash_c.as_bytes()).await.unwrap());
    assert!(keys.key_store.get(&record_id).is_ok());
    let on_chain = record_state(&contract, &hospital.channel, &record_id)
        .await
        .unwrap();
    assert!(
        matches!(&on_chain, RecordState::Active { record } if record.treatment_number == treatment),
        "{on_chain:?}"
    );

    // The same file under a new id with a wrong password: refused, nothing left behind.
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
    assert!(
        matches!(error, StoreError::Chain(ClientError::Fabric { .. })),
        "{error}"
    );
    assert!(keys.key_store.get(&refused_id).is_err());
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
    assert!(keys.key_store.get(&junk_id).is_err());
}
