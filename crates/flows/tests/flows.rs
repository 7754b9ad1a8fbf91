//! The library's flows against the shared network: register → create + certify → query
//! and retrieve → certificates → consent → delete (and its re-run), and the refusals of
//! bad input, each leaving nothing behind, neither on the chain, in the CSP nor in the
//! hospital's key service.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::Path;

use medcert_flows::certificates::CertificateView;
use medcert_flows::delete::Cleanup;
use medcert_flows::hospital_api::RecordState;
use medcert_flows::hospital_api::args;
use medcert_flows::query::record_state;
use medcert_flows::store::StoreError;
use medcert_flows::wallet::WalletError;
use medcert_flows::{
    Actor, CertificatesRequest, CertifyRequest, ConsentRequest, CreateRequest, DeleteRequest,
    FailureKind, FlowError, QueryRequest, Quiet, RegisterRequest, StoreFlowRequest, certify_record,
    connect, create_record, delete_record, list_certificates, query_record, register_patient,
    sign_consent, store,
};
use medcert_key_service::{Access, KeyServiceClient, KeyServiceError};
use medcert_network::{Hospital, Network};
use std::time::Duration;
use support::{assert_kind, message, network, password, registered, unique, visit};
use tempfile::TempDir;
use zeroize::Zeroizing;

#[tokio::test]
async fn store_certify_query_consent_delete() {
    let (network, hospital, patients) = first_hospital();
    let (patient, password, treatment) = new_patient(&network, patients.path(), "alice").await;
    let other = network.fabric.hospitals[1].clone();
    let scratch = tempfile::tempdir().unwrap();

    // Create and certify.
    let kept = scratch.path().join("original.xml");
    let created = create_record(
        &network,
        patients.path(),
        &CreateRequest {
            certify_for: Some(&patient),
            keep: Some(&kept),
            ..visit(&hospital.id, &treatment, &password, 30_000)
        },
        &Quiet,
    )
    .await
    .unwrap();
    let record_id = created.stored.record_id.clone();
    let certificate = created.certificate.as_ref().unwrap();
    assert!(!certificate.already_certified);
    assert!(certificate.cid.starts_with("bafk") || certificate.cid.starts_with("baf"));
    let ipfs = connect::ipfs(&network).unwrap();
    assert!(ipfs.is_pinned(&certificate.cid).await.unwrap());

    // Certifying again finds the certificate instead of issuing a second.
    let request = certifying(&hospital.id, &record_id, &patient);
    let again = certify_record(&network, patients.path(), &request, &Quiet)
        .await
        .unwrap();
    assert!(again.already_certified);
    assert_eq!(again.certificate_id, certificate.certificate_id);

    let listed = certificates(&network, patients.path(), &patient).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record_id, record_id);
    assert_eq!(listed[0].hospital, hospital.id);
    assert_eq!(
        listed[0].content_fingerprint,
        created.stored.content_fingerprint
    );

    // Query (audited) and retrieve: the document comes back authentic.
    let query = QueryRequest {
        hospital: &hospital.id,
        doctor: 0,
        treatment_number: &treatment,
        record_id: &record_id,
        password: &password,
        out: None,
    };
    let out = scratch.path().join("retrieved.xml");
    let queried = query_record(
        &network,
        &QueryRequest {
            out: Some(&out),
            ..query
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(&queried.record.hash_c, created.stored.hash_c.as_bytes());
    let retrieved = queried.retrieved.unwrap();
    assert!(retrieved.authentic(), "{:?}", retrieved.verification);
    assert_eq!(
        medcert_watermark::content_fingerprint(std::io::BufReader::new(
            std::fs::File::open(&kept).unwrap()
        ))
        .unwrap(),
        medcert_watermark::content_fingerprint(std::io::BufReader::new(
            std::fs::File::open(&out).unwrap()
        ))
        .unwrap(),
        "the retrieved document has the original's content"
    );

    // A release for that query was given once: its ticket is spent.
    let keys = connect::key_service(&hospital, Actor::Doctor(0))
        .await
        .unwrap();
    let again = keys
        .release_key(Access::Query {
            tx_id: queried.tx_id.clone(),
        })
        .await;
    assert!(again.is_err(), "a second key for one audited query");

    // Wrong password: the failed attempt is recorded on the chain, then refused (exit 4).
    let wrong = zeroize::Zeroizing::new("wrong-password".to_string());
    let error = query_record(
        &network,
        &QueryRequest {
            password: &wrong,
            ..query
        },
        &Quiet,
    )
    .await
    .unwrap_err();
    assert_kind(&error, FailureKind::Refused);
    let FlowError::WrongPassword(wrong_password) = &error else {
        panic!("expected a wrong password: {}", message(&error));
    };
    assert_eq!(wrong_password.attempt, 1);
    assert!(!message(&error).contains("wrong-password"), "{error}");

    // An audited query without retrieval takes no key (the right password resets the
    // count of wrong ones).
    let unretrieved = query_record(&network, &query, &Quiet).await.unwrap();
    assert!(unretrieved.retrieved.is_none());

    // Consent for another hospital: a file that H' can use.
    let consent_path = scratch.path().join("consent.json");
    let consent_request = ConsentRequest {
        patient: &patient,
        hospital: &other.id,
        certificate_id: certificate.certificate_id,
        valid_for: Duration::from_secs(600),
        out: &consent_path,
    };
    let consent = sign_consent(&network, patients.path(), &consent_request)
        .await
        .unwrap();
    assert_eq!(consent.consent.record_id, record_id);
    assert_eq!(consent.consent.source_hospital, hospital.id);
    // A signature only: the wallet records it for the patient's agent, which alone
    // releases the key after the recovery is served (recover_flow.rs).
    let wallet = medcert_flows::PatientWallet::open(patients.path(), &patient).unwrap();
    let issued = wallet.consent(consent.consent.nonce).unwrap();
    assert_eq!(issued.certificate_id, certificate.certificate_id);
    assert_eq!(issued.hospital, other.id);
    assert!(!issued.revoked && issued.settled.is_none());
    // A second consent to the same path is refused, the first file kept.
    let error = sign_consent(&network, patients.path(), &consent_request)
        .await
        .unwrap_err();
    assert!(message(&error).contains("already exists"), "{error}");

    // Another patient cannot consent for this certificate.
    let mallory = unique("mallory");
    medcert_flows::PatientWallet::open_or_create(patients.path(), &mallory).unwrap();
    let error = sign_consent(
        &network,
        patients.path(),
        &ConsentRequest {
            patient: &mallory,
            out: &scratch.path().join("mallory.json"),
            ..consent_request
        },
    )
    .await
    .unwrap_err();
    assert!(message(&error).contains("is not patient"), "{error}");

    // Another patient cannot delete it either.
    let deletion = DeleteRequest {
        patient: &patient,
        hospital: &hospital.id,
        record_id: &record_id,
        submitter: Actor::Doctor(0),
    };
    let error = delete_record(
        &network,
        patients.path(),
        &DeleteRequest {
            patient: &mallory,
            ..deletion
        },
    )
    .await
    .unwrap_err();
    assert_kind(&error, FailureKind::Refused);

    // Delete: HB says deleted, CSP object gone, key shredded.
    let deleted = delete_record(&network, patients.path(), &deletion)
        .await
        .unwrap();
    assert!(deleted.tx_id.is_some());
    assert_eq!(deleted.csp_object, Cleanup::Removed);
    assert_eq!(deleted.hospital_key, Cleanup::Removed);
    let contract = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
        .await
        .unwrap();
    assert!(matches!(
        record_state(&contract, &hospital.channel, &record_id)
            .await
            .unwrap(),
        RecordState::Deleted { .. }
    ));
    let csp = connect::csp(&network).unwrap();
    assert!(!csp.exists(created.stored.hash_c.as_bytes()).await.unwrap());
    // The key service has no key left: the committed query whose key was never taken
    // gets none now.
    let refused = keys
        .release_key(Access::Query {
            tx_id: unretrieved.tx_id.clone(),
        })
        .await;
    assert!(refused.is_err(), "a key released after the deletion");
    assert_no_key(&keys, &record_id).await;
    // The certificate and the envelope stay: they are the patient's.
    assert!(ipfs.is_pinned(&certificate.cid).await.unwrap());

    // Re-running finds everything done.
    let rerun = delete_record(&network, patients.path(), &deletion)
        .await
        .unwrap();
    assert!(rerun.tx_id.is_none());
    assert_eq!(rerun.deleted_tx, deleted.deleted_tx);
    assert_eq!(rerun.hospital_key, Cleanup::AlreadyAbsent);

    // A deleted record cannot be queried.
    let error = query_record(&network, &query, &Quiet).await.unwrap_err();
    assert!(message(&error).contains("deleted"), "{error}");
}

#[tokio::test]
async fn a_deletion_interrupted_after_the_chain_is_finished_by_a_rerun() {
    let (network, hospital, patients) = first_hospital();
    let (patient, password, treatment) = new_patient(&network, patients.path(), "pat").await;
    let created = create_record(
        &network,
        patients.path(),
        &visit(&hospital.id, &treatment, &password, 20_000),
        &Quiet,
    )
    .await
    .unwrap();
    assert!(created.certificate.is_none());
    let record_id = created.stored.record_id;

    // The chain's half of a deletion, as if the process died right after DeleteRecord:
    // the hospital's note of Hash C is written first, exactly as delete_record does.
    let note_dir = medcert_flows::delete::pending_deletions_dir(&network.run_dir, &hospital.id);
    std::fs::create_dir_all(&note_dir).unwrap();
    use sha3::Digest;
    let note = note_dir.join(format!(
        "{}.json",
        hex::encode(sha3::Sha3_256::digest(record_id.as_bytes()))
    ));
    std::fs::write(
        &note,
        serde_json::json!({"record_id": record_id, "hash_c": created.stored.hash_c.to_string()})
            .to_string(),
    )
    .unwrap();
    let wallet = medcert_flows::PatientWallet::open(patients.path(), &patient).unwrap();
    let nonce: u64 = rand::random();
    let signature = wallet
        .signer()
        .sign_deletion(&hospital.channel, &record_id, nonce);
    let contract = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
        .await
        .unwrap();
    contract
        .delete_record(&args::DeleteRecord {
            record_id: record_id.clone(),
            nonce,
            patient_signature: signature.to_vec(),
        })
        .await
        .unwrap();

    let finished = delete_record(
        &network,
        patients.path(),
        &DeleteRequest {
            patient: &patient,
            hospital: &hospital.id,
            record_id: &record_id,
            submitter: Actor::Doctor(0),
        },
    )
    .await
    .unwrap();
    assert!(
        finished.tx_id.is_none(),
        "the chain's deletion is not redone"
    );
    assert_eq!(finished.csp_object, Cleanup::Removed);
    assert_eq!(finished.hospital_key, Cleanup::Removed);
    assert!(!note.exists());
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing() {
    let (network, hospital, patients) = first_hospital();
    let (patient, password, treatment) = new_patient(&network, patients.path(), "bob").await;
    let scratch = tempfile::tempdir().unwrap();
    let keys = connect::key_service(&hospital, Actor::Doctor(0))
        .await
        .unwrap();
    let contract = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
        .await
        .unwrap();

    let attempt = |source: std::path::PathBuf, certify: Option<String>| {
        let record_id = unique("R");
        let network = network.clone();
        let hospital = hospital.id.clone();
        let treatment = treatment.clone();
        let password = password.clone();
        let patients = patients.path().to_owned();
        async move {
            let result = store(
                &network,
                &patients,
                &StoreFlowRequest {
                    hospital: &hospital,
                    doctor: 0,
                    treatment_number: &treatment,
                    record_id: Some(&record_id),
                    source: &source,
                    password: &password,
                    certify_for: certify.as_deref(),
                },
                &Quiet,
            )
            .await;
            (record_id, result)
        }
    };

    // A missing file, a file that is not C-CDA, malformed XML.
    let (id, result) = attempt(scratch.path().join("absent.xml"), None).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, FlowError::Store(StoreError::Read { .. })),
        "{error}"
    );
    assert_no_key(&keys, &id).await;
    let plain = scratch.path().join("note.xml");
    std::fs::write(&plain, "<note><to>x</to></note>").unwrap();
    let (id, result) = attempt(plain, None).await;
    let error = result.unwrap_err();
    assert!(message(&error).contains("not a C-CDA document"), "{error}");
    assert!(
        record_state(&contract, &hospital.channel, &id)
            .await
            .is_err()
    );
    let broken = scratch.path().join("broken.xml");
    std::fs::write(&broken, "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id").unwrap();
    let (_, result) = attempt(broken, None).await;
    assert!(result.is_err());

    // Certification for an unknown wallet: refused before anything is stored.
    let document = scratch.path().join("record.xml");
    medcert_ccda::generate(
        &medcert_ccda::GeneratorConfig {
            seed: 1,
            target_size: 20_000,
            patient_id: treatment.clone(),
            hospital: hospital.id.clone(),
        },
        std::fs::File::create(&document).unwrap(),
    )
    .unwrap();
    let (id, result) = attempt(document.clone(), Some(unique("nobody"))).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, FlowError::Wallet(WalletError::Unknown { .. })),
        "{error}"
    );
    assert!(
        record_state(&contract, &hospital.channel, &id)
            .await
            .is_err()
    );
    assert_no_key(&keys, &id).await;

    // A patient the key service does not know, and an unknown record: refused.
    let unknown_record = QueryRequest {
        hospital: &hospital.id,
        doctor: 0,
        treatment_number: &treatment,
        record_id: &unique("R"),
        password: &password,
        out: None,
    };
    let error = query_record(
        &network,
        &QueryRequest {
            treatment_number: &unique("T"),
            ..unknown_record
        },
        &Quiet,
    )
    .await
    .unwrap_err();
    assert_kind(&error, FailureKind::Refused);
    assert!(message(&error).contains("not enrolled"), "{error}");
    let error = query_record(&network, &unknown_record, &Quiet)
        .await
        .unwrap_err();
    assert!(message(&error).contains("unknown record"), "{error}");

    // Unknown hospital, bad ids, a taken treatment number.
    let carol = unique("carol");
    let taken_treatment = RegisterRequest {
        patient: &carol,
        hospital: &hospital.id,
        doctor: 0,
        treatment_number: Some(&treatment),
        id_number: "ID",
        password: &password,
    };
    let error = register_patient(
        &network,
        patients.path(),
        &RegisterRequest {
            patient: &unique("carol"),
            hospital: "hospital99",
            treatment_number: None,
            ..taken_treatment
        },
    )
    .await
    .unwrap_err();
    assert!(
        message(&error).contains("no hospital hospital99"),
        "{error}"
    );
    let error = register_patient(&network, patients.path(), &taken_treatment)
        .await
        .unwrap_err();
    assert_kind(&error, FailureKind::Refused);
    assert!(
        !patients.path().join(&carol).exists(),
        "a failed registration leaves no wallet"
    );
    let unknown = unique("R");
    let request = certifying(&hospital.id, &unknown, &patient);
    let error = certify_record(&network, patients.path(), &request, &Quiet)
        .await
        .unwrap_err();
    assert!(message(&error).contains("unknown record"), "{error}");
}

/// The key service holds no key for `record_id`: it wraps none to anyone.
async fn assert_no_key(keys: &KeyServiceClient, record_id: &str) {
    let anyone = medcert_crypto::HpkeKeyPair::generate().public_key();
    let wrapped = keys.wrap_for_patient(record_id, &anyone).await;
    assert!(
        matches!(wrapped, Err(KeyServiceError::NotFound { .. })),
        "{wrapped:?}"
    );
}

/// Certification failing after `CreateRecord` (IPFS down, or the certificate chain
/// refusing the issuer) keeps the hospital record, says so, and `ehr certify` finishes.
#[tokio::test]
async fn a_failed_certification_leaves_the_record_and_is_retried() {
    let (network, hospital, patients) = first_hospital();
    let (patient, password, treatment) = new_patient(&network, patients.path(), "erin").await;

    let mut ipfs_down = network.clone();
    ipfs_down.ipfs.api_url = "http://127.0.0.1:9".into();
    let mut not_an_issuer = network.clone();
    // The relay's account is not a registered hospital: the contract refuses to issue.
    not_an_issuer.fabric.hospitals[0].eth_account = 1;

    for (broken, kind) in [
        (&ipfs_down, FailureKind::Unreachable),
        (&not_an_issuer, FailureKind::Refused),
    ] {
        let error = create_record(
            broken,
            patients.path(),
            &CreateRequest {
                certify_for: Some(&patient),
                ..visit(&hospital.id, &treatment, &password, 20_000)
            },
            &Quiet,
        )
        .await
        .unwrap_err();
        assert_kind(&error, kind);
        let FlowError::CertifyAfterStore { record_id, .. } = &error else {
            panic!("expected a stored but uncertified record: {error}");
        };
        let contract = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
            .await
            .unwrap();
        assert!(matches!(
            record_state(&contract, &hospital.channel, record_id)
                .await
                .unwrap(),
            RecordState::Active { .. }
        ));
        let request = certifying(&hospital.id, record_id, &patient);
        let certified = certify_record(&network, patients.path(), &request, &Quiet)
            .await
            .unwrap();
        assert!(!certified.already_certified);
    }
    assert_eq!(
        certificates(&network, patients.path(), &patient)
            .await
            .len(),
        2
    );
}

/// The network, its first hospital, and a fresh directory for patients' wallets.
fn first_hospital() -> (Network, Hospital, TempDir) {
    let network = network();
    let hospital = network.fabric.hospitals[0].clone();
    (network, hospital, tempfile::tempdir().unwrap())
}

/// A patient named after `name` registered at the first hospital, with a wallet in
/// `patients`: (the wallet's name, the password, the treatment number).
async fn new_patient(
    network: &Network,
    patients: &Path,
    name: &str,
) -> (String, Zeroizing<String>, String) {
    let patient = unique(name);
    let password = password();
    let hospital = &network.fabric.hospitals[0].id;
    let treatment = registered(network, patients, &patient, hospital, &password).await;
    (patient, password, treatment)
}

/// Doctor 0's request to certify `record_id` at `hospital` for `patient`.
fn certifying<'a>(hospital: &'a str, record_id: &'a str, patient: &'a str) -> CertifyRequest<'a> {
    CertifyRequest {
        hospital,
        doctor: 0,
        record_id,
        patient,
    }
}

/// The patient's certificates on the certificate chain.
async fn certificates(network: &Network, patients: &Path, patient: &str) -> Vec<CertificateView> {
    list_certificates(network, patients, &CertificatesRequest { patient })
        .await
        .unwrap()
        .certificates
}
