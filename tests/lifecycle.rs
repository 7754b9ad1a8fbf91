//! The whole record lifecycle, and its refusals, on a network whose every service runs
//! from the images that deploy/images built, started with testcontainers (see support/):
//! store → query → delete → recover at another hospital with the patient's consent.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use medcert_crypto::{
    Dek, EnvelopeHeader, KeyBinding, RecordAad, WrapPurpose, encrypt_stream, wrap_key,
};
use medcert_eip712::{CertificateAuthorization, SignedConsent, hospital_id};
use medcert_flows::connect::{
    certificate_client_as_hospital, csp, hospital_client, ipfs, key_service,
};
use medcert_flows::delete::Cleanup;
use medcert_flows::hospital_api::RecordState;
use medcert_flows::query::record_state;
use medcert_flows::recover::{DEFAULT_SERVE_WITHIN, RecoverReport};
use medcert_flows::verify::VerdictReport;
use medcert_flows::{
    Actor, ConsentFile, ConsentRequest, CreateRequest, DeleteRequest, FlowError, PatientAgent,
    PatientWallet, QueryRequest, Quiet, RecoverRequest, RegisterRequest, create_record,
    delete_record, init_network, query_record, recover, register_patient, sign_consent,
};
use medcert_network::{Hospital, Network};
use medcert_relay::{Relay, RelayConfig};
use support::ContainerNetwork;
use zeroize::Zeroizing;

/// How long a recovery may wait for the relay before the test calls it hung.
const RELAY_WAIT: Duration = Duration::from_secs(120);

struct World {
    network: Network,
    patients: PathBuf,
    scratch: tempfile::TempDir,
}

impl World {
    fn h(&self, n: usize) -> &Hospital {
        &self.network.fabric.hospitals[n]
    }

    async fn register(
        &self,
        patient: &str,
        hospital: usize,
        password: &Zeroizing<String>,
    ) -> String {
        register_patient(
            &self.network,
            &self.patients,
            &RegisterRequest {
                patient,
                hospital: &self.h(hospital).id,
                doctor: 0,
                treatment_number: None,
                id_number: &format!("ID-{patient}"),
                password,
            },
        )
        .await
        .unwrap()
        .treatment_number
    }

    async fn consent(
        &self,
        patient: &str,
        hospital: usize,
        certificate: u64,
        valid_for: Duration,
    ) -> PathBuf {
        let out = self
            .scratch
            .path()
            .join(format!("consent-{}.json", rand::random::<u32>()));
        sign_consent(
            &self.network,
            &self.patients,
            &ConsentRequest {
                patient,
                hospital: &self.h(hospital).id,
                certificate_id: certificate,
                valid_for,
                out: &out,
            },
        )
        .await
        .unwrap();
        out
    }

    /// A recovery at hospital `hospital` while `patient`'s agent runs beside it.
    async fn recover(
        &self,
        patient: &str,
        hospital: usize,
        treatment_number: &str,
        password: &Zeroizing<String>,
        consent: &Path,
        record_id: &str,
    ) -> Result<RecoverReport, FlowError> {
        let request = RecoverRequest {
            hospital: &self.h(hospital).id,
            doctor: 0,
            treatment_number,
            password,
            consent,
            record_id: Some(record_id),
            resume: None,
            wait: RELAY_WAIT,
            serve_within: DEFAULT_SERVE_WITHIN,
            out: None,
        };
        PatientAgent::open(&self.network, &self.patients, patient)
            .await
            .unwrap()
            .beside(
                Duration::from_millis(50),
                recover(&self.network, &request, &Quiet),
            )
            .await
    }

    /// Whether `record_id` exists (active or deleted) on hospital `n`'s chain.
    async fn on_chain(&self, n: usize, record_id: &str) -> bool {
        let contract = hospital_client(&self.network, self.h(n), Actor::Doctor(0))
            .await
            .unwrap();
        record_state(&contract, &self.h(n).channel, record_id)
            .await
            .is_ok()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_are_deleted_and_recovered_elsewhere_only_with_consent() {
    let containers = ContainerNetwork::start(2).await;
    let mut network = containers.network.clone();
    let description = containers.run_dir().join("network.json");
    init_network(&mut network, &description).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut relay_config = RelayConfig::new(network.clone(), scratch.path().join("relay"));
    relay_config.request_timeout = Duration::from_secs(60);
    let relay = Relay::start(relay_config).await.unwrap();
    let world = World {
        patients: scratch.path().join("patients"),
        network,
        scratch,
    };
    let network = &world.network;

    // Store at hospital 1, certified for the patient.
    let alice = "alice";
    let password = Zeroizing::new("correct horse battery".to_owned());
    let t1 = world.register(alice, 0, &password).await;
    let created = create_record(
        network,
        &world.patients,
        &CreateRequest {
            hospital: &world.h(0).id,
            doctor: 0,
            treatment_number: &t1,
            record_id: None,
            password: &password,
            size: 60_000,
            certify_for: Some(alice),
            keep: None,
        },
        &Quiet,
    )
    .await
    .unwrap();
    let record = created.stored.record_id.clone();
    let certificate = created.certificate.as_ref().unwrap().certificate_id;

    // Query (audited) and retrieve: the hospital reads its own authentic record.
    let retrieved_path = world.scratch.path().join("retrieved.xml");
    let query = QueryRequest {
        hospital: &world.h(0).id,
        doctor: 0,
        treatment_number: &t1,
        record_id: &record,
        password: &password,
        out: Some(&retrieved_path),
    };
    let queried = query_record(network, &query, &Quiet).await.unwrap();
    assert!(queried.retrieved.unwrap().authentic());
    let wrong = Zeroizing::new("not the password".to_owned());
    let refused = query_record(
        network,
        &QueryRequest {
            password: &wrong,
            out: None,
            ..query
        },
        &Quiet,
    )
    .await;
    // Refused, and recorded on the chain as a failed attempt.
    let refused = refused.unwrap_err();
    assert!(
        matches!(refused, FlowError::WrongPassword { .. }),
        "{refused:?}"
    );

    // Delete: the chain says deleted, the CSP object is gone, the hospital's key shredded.
    let deleted = delete_record(
        network,
        &world.patients,
        &DeleteRequest {
            patient: alice,
            hospital: &world.h(0).id,
            record_id: &record,
            submitter: Actor::Doctor(0),
        },
    )
    .await
    .unwrap();
    let hash_c = deleted.hash_c.unwrap();
    let contract = hospital_client(network, world.h(0), Actor::Doctor(0))
        .await
        .unwrap();
    let state = record_state(&contract, &world.h(0).channel, &record)
        .await
        .unwrap();
    assert!(matches!(state, RecordState::Deleted { .. }), "{state:?}");
    assert!(
        !csp(network)
            .unwrap()
            .exists(hash_c.as_bytes())
            .await
            .unwrap()
    );
    // Crypto-shredding: the key service destroyed the record's key.
    assert_eq!(deleted.hospital_key, Cleanup::Removed);
    let after = query_record(network, &QueryRequest { out: None, ..query }, &Quiet).await;
    assert!(format!("{:?}", after.unwrap_err()).contains("deleted"));

    // Recover at hospital 2 with consent: served once, verified, stored again there.
    let t2 = world.register(alice, 1, &password).await;
    let consent = world
        .consent(alice, 1, certificate, Duration::from_secs(3600))
        .await;
    let recovered = world
        .recover(alice, 1, &t2, &password, &consent, &record)
        .await
        .unwrap();
    assert!(
        matches!(
            recovered.verification.verdict,
            VerdictReport::Authentic { .. }
        ),
        "{:?}",
        recovered.verification.verdict
    );
    assert_eq!(recovered.source_hospital, world.h(0).id);
    assert_ne!(recovered.stored.hash_c, deleted.hash_c.unwrap());
    assert!(world.on_chain(1, &record).await);

    // Refusals. A spent consent: the contract refuses the replayed nonce.
    let replay = world
        .recover(alice, 1, &t2, &password, &consent, "R-replay")
        .await;
    assert!(
        matches!(replay, Err(FlowError::RecoveryFailed { .. })),
        "{replay:?}"
    );
    assert!(!world.on_chain(1, "R-replay").await);

    // A doctor with a wrong password: refused on the hospital chain, nothing crosses.
    let fresh = world
        .consent(alice, 1, certificate, Duration::from_secs(3600))
        .await;
    let wrong_password = world
        .recover(alice, 1, &t2, &wrong, &fresh, "R-wrong-password")
        .await;
    assert!(
        matches!(wrong_password, Err(FlowError::WrongPassword { .. })),
        "{wrong_password:?}"
    );

    // An expired consent.
    let short = world
        .consent(alice, 1, certificate, Duration::from_secs(1))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = world
        .recover(alice, 1, &t2, &password, &short, "R-expired")
        .await;
    match expired {
        Err(FlowError::RecoveryFailed { reason, .. }) => {
            assert!(reason.contains("expired"), "{reason}")
        }
        other => panic!("an expired consent was not refused: {other:?}"),
    }

    // No consent from the patient: the consent is signed by someone else.
    let mallory = "mallory";
    world.register(mallory, 1, &password).await;
    let forged = forge_signature(&world, &fresh, mallory).await;
    let unconsented = world
        .recover(alice, 1, &t2, &password, &forged, "R-unconsented")
        .await;
    assert!(
        matches!(unconsented, Err(FlowError::RecoveryFailed { .. })),
        "{unconsented:?}"
    );
    assert!(!world.on_chain(1, "R-unconsented").await);

    // A record whose watermark was tampered with before it was certified: recovered
    // bytes decrypt, but the record is refused and not stored.
    let tampered_certificate = certify_tampered_record(&world, alice, &t1).await;
    let consent = world
        .consent(alice, 1, tampered_certificate, Duration::from_secs(3600))
        .await;
    let tampered = world
        .recover(alice, 1, &t2, &password, &consent, "R-tampered")
        .await;
    assert!(
        matches!(tampered, Err(FlowError::NotAuthentic(_))),
        "{tampered:?}"
    );
    assert!(!world.on_chain(1, "R-tampered").await);

    relay.shutdown().await;
}

/// `consent` with its signature replaced by `signer`'s over the same consent.
async fn forge_signature(world: &World, consent: &Path, signer: &str) -> PathBuf {
    let mut file = ConsentFile::read(consent).unwrap();
    let mut signed = file.signed_consent().unwrap();
    let wallet = PatientWallet::open(&world.patients, signer).unwrap();
    let client = certificate_client_as_hospital(&world.network, world.h(1)).unwrap();
    signed.signature = wallet
        .signer()
        .sign_consent(&signed.consent, &client.domain());
    file.signed_consent = hex::encode(SignedConsent::to_bytes(&signed));
    let out = consent.with_extension("forged.json");
    std::fs::write(&out, serde_json::to_vec(&file).unwrap()).unwrap();
    out
}

/// Certifies for `patient` a record of hospital 1 whose text was edited after hospital 1
/// embedded its watermark: the certificate anchors the edited content, so only the
/// watermark tells.
async fn certify_tampered_record(world: &World, patient: &str, treatment_number: &str) -> u64 {
    let hospital = world.h(0);
    let record_id = format!("R-tampered-{:08x}", rand::random::<u32>());
    let mut document = Vec::new();
    medcert_ccda::generate(
        &medcert_ccda::GeneratorConfig {
            seed: rand::random(),
            target_size: 30_000,
            patient_id: treatment_number.to_owned(),
            hospital: hospital.id.clone(),
        },
        &mut document,
    )
    .unwrap();
    // Hospital 1's key service signs the mark, as the store flow has it do.
    let keys = key_service(hospital, Actor::Doctor(0)).await.unwrap();
    let mut source = Cursor::new(document);
    let prepared = medcert_watermark::prepare(
        &mut source,
        &medcert_watermark::Mark {
            hospital_id: &hospital.id,
            record_id: &record_id,
            issued_at: 1_800_000_000,
        },
    )
    .unwrap();
    let signature = keys.sign_watermark(prepared.unsigned()).await.unwrap();
    let mut marked = Vec::new();
    prepared
        .embed(
            &mut source,
            &mut marked,
            signature,
            medcert_watermark::TooSmall::Refuse,
        )
        .unwrap();
    edit_first_text(&mut marked);
    let watermark_fingerprint = medcert_watermark::extract(Cursor::new(&marked))
        .unwrap()
        .unwrap()
        .fingerprint();
    let content_fingerprint = medcert_watermark::content_fingerprint(Cursor::new(&marked)).unwrap();

    let wallet = PatientWallet::open(&world.patients, patient).unwrap();
    let dek = Dek::generate();
    let aad = RecordAad {
        record_id: &record_id,
        hospital_id: &hospital.id,
    };
    let binding = KeyBinding {
        record_id: &record_id,
        purpose: WrapPurpose::PatientEnvelope,
    };
    let wrapped = wrap_key(&dek, &wallet.x25519().public_key(), &binding).unwrap();
    let mut envelope = EnvelopeHeader::seal(&aad, wrapped).encode().unwrap();
    encrypt_stream(&dek, &aad, Cursor::new(marked), &mut envelope).unwrap();
    let cid = ipfs(&world.network)
        .unwrap()
        .add(Cursor::new(envelope))
        .await
        .unwrap();

    let client = certificate_client_as_hospital(&world.network, hospital).unwrap();
    let authorization = CertificateAuthorization {
        hospital: hospital_id(&hospital.id).unwrap(),
        record_id: medcert_flows::ids::certificate_record_id(&record_id).unwrap(),
        cid,
        content_fingerprint,
        watermark_fingerprint,
        nonce: rand::random(),
    };
    let signature = wallet
        .signer()
        .sign_certificate_authorization(&authorization, &client.domain());
    client
        .issue_certificate(&authorization, wallet.signer().address().into(), &signature)
        .await
        .unwrap()
        .certificate_id
}

/// Changes the case of the first letter that starts a text node after the header.
fn edit_first_text(document: &mut [u8]) {
    let start = document.windows(6).position(|w| w == b"<title").unwrap();
    let at = document[start..]
        .windows(2)
        .position(|w| w[0] == b'>' && w[1].is_ascii_alphabetic())
        .unwrap()
        + start
        + 1;
    document[at] ^= 0x20;
}
