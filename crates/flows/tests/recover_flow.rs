//! Recovery at another hospital through an in-process relay, on the shared network:
//! store + certify at H → delete at H → consent for H' → recover at H' while the
//! patient's agent releases the key (verified, stored again); and the refusals: a
//! replayed consent, an expired one, a wrong password, a consent for another hospital, a
//! record whose content was changed after marking, and a served recovery whose key the
//! patient's agent does not release (no agent, a revoked consent).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use medcert_flows::hospital_api::RecordState;
use medcert_flows::query::record_state;
use medcert_flows::recover::{DEFAULT_SERVE_WITHIN, RecoverReport};
use medcert_flows::{
    Actor, ConsentRequest, DeleteRequest, FailureKind, FlowError, PatientAgent, PatientWallet,
    Quiet, RecoverRequest, connect, delete_record, recover, revoke_consent, sign_consent,
};
use medcert_network::{Hospital, Network};
use medcert_relay::{Relay, RelayConfig, RelayHandle};
use support::{assert_kind, certified_patient, message, network, password, registered, unique};
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(120);
const AGENT_INTERVAL: Duration = Duration::from_millis(50);

/// What every recovery test starts from: the source hospital H, the recovering hospital
/// H' with a relay of its own, a patients' folder and a scratch folder.
struct Scene {
    network: Network,
    h1: Hospital,
    h2: Hospital,
    patients: tempfile::TempDir,
    scratch: tempfile::TempDir,
    relay: RelayHandle,
}

impl Scene {
    async fn new() -> Self {
        let network = network();
        let (h1, h2) = (
            network.fabric.hospitals[0].clone(),
            network.fabric.hospitals[2].clone(),
        );
        let scratch = tempfile::tempdir().unwrap();
        let mut config = RelayConfig::new(network.clone(), scratch.path().join("relay"));
        config.only_hospitals = Some(vec![h2.id.clone()]);
        let relay = Relay::start(config).await.expect("relay starts");
        Scene {
            network,
            h1,
            h2,
            patients: tempfile::tempdir().unwrap(),
            scratch,
            relay,
        }
    }

    /// `patient`'s consent for H' to recover `certificate`, valid for `valid_for`, signed
    /// into the scratch folder as `file`.
    async fn consent(
        &self,
        patient: &str,
        certificate: u64,
        valid_for: Duration,
        file: &str,
    ) -> PathBuf {
        let out = self.scratch.path().join(file);
        sign_consent(
            &self.network,
            self.patients.path(),
            &ConsentRequest {
                patient,
                hospital: &self.h2.id,
                certificate_id: certificate,
                valid_for,
                out: &out,
            },
        )
        .await
        .unwrap();
        out
    }

    /// Runs `request` while `patient`'s agent runs beside it, releasing the key once the
    /// recovery is served.
    async fn recover(
        &self,
        patient: &str,
        request: &RecoverRequest<'_>,
    ) -> Result<RecoverReport, FlowError> {
        PatientAgent::open(&self.network, self.patients.path(), patient)
            .await
            .unwrap()
            .beside(AGENT_INTERVAL, recover(&self.network, request, &Quiet))
            .await
    }

    /// A recovery at H' by its doctor 0 with `consent`, under the record's original id,
    /// waiting up to [`WAIT`] and writing no copy.
    fn recovery<'a>(
        &'a self,
        treatment: &'a str,
        password: &'a Zeroizing<String>,
        consent: &'a Path,
    ) -> RecoverRequest<'a> {
        RecoverRequest {
            hospital: &self.h2.id,
            doctor: 0,
            treatment_number: treatment,
            password,
            consent,
            record_id: None,
            resume: None,
            wait: WAIT,
            serve_within: DEFAULT_SERVE_WITHIN,
            out: None,
        }
    }

    /// A patient with a certified record at H (returned: record id, certificate id), also
    /// registered at H'.
    async fn patient_with_certificate(&self) -> (Patient, String, u64) {
        let certified = certified_patient(
            &self.network,
            self.patients.path(),
            &self.h1.id,
            &self.h2.id,
            40_000,
        )
        .await;
        (
            Patient {
                name: certified.name,
                password: certified.password,
                treatment_at_h2: certified.treatment_at_recovering,
            },
            certified.record_id,
            certified.certificate_id,
        )
    }
}

struct Patient {
    name: String,
    password: Zeroizing<String>,
    treatment_at_h2: String,
}

#[tokio::test]
async fn deleted_record_is_recovered_at_another_hospital_once() {
    let scene = Scene::new().await;
    let Scene {
        network,
        h1,
        h2,
        patients,
        scratch,
        ..
    } = &scene;

    let (patient, record_id, certificate) = scene.patient_with_certificate().await;
    delete_record(
        network,
        patients.path(),
        &DeleteRequest {
            patient: &patient.name,
            hospital: &h1.id,
            record_id: &record_id,
            submitter: Actor::Doctor(0),
        },
    )
    .await
    .unwrap();

    let consent_path = scene
        .consent(
            &patient.name,
            certificate,
            Duration::from_secs(600),
            "consent.json",
        )
        .await;
    let out = scratch.path().join("recovered.xml");
    let request = RecoverRequest {
        out: Some(&out),
        ..scene.recovery(&patient.treatment_at_h2, &patient.password, &consent_path)
    };
    let report = scene.recover(&patient.name, &request).await.unwrap();
    assert_eq!(report.source_hospital, h1.id);
    assert_eq!(report.source_record_id, record_id);
    assert_eq!(report.certificate_id, certificate);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["eth_tx"].as_str().unwrap().starts_with("0x"));
    assert_ne!(report.eth_tx, [0; 32]);
    assert_eq!(report.stored.record_id, record_id);
    let contract = connect::hospital_client(network, h2, Actor::Doctor(0))
        .await
        .unwrap();
    match record_state(&contract, &h2.channel, &record_id)
        .await
        .unwrap()
    {
        RecordState::Active { record } => {
            assert_eq!(&record.hash_c, report.stored.hash_c.as_bytes());
            assert_eq!(record.treatment_number, patient.treatment_at_h2);
        }
        other => panic!("not stored at {}: {other:?}", h2.id),
    }
    let verified = medcert_flows::verify_file(network, &out).await.unwrap();
    assert!(matches!(
        verified.verdict,
        medcert_flows::verify::VerdictReport::Authentic { ref hospital_id, .. } if *hospital_id == h1.id
    ));

    // The same consent again: the relay refuses it (the nonce is spent).
    let replay = RecoverRequest {
        record_id: Some(&unique("R")),
        out: None,
        ..request
    };
    let error = scene.recover(&patient.name, &replay).await.unwrap_err();
    assert_kind(&error, FailureKind::Refused);
    assert!(matches!(error, FlowError::RecoveryFailed { .. }), "{error}");
    scene.relay.shutdown().await;
}

#[tokio::test]
async fn recoveries_are_refused_without_a_valid_consent_or_password() {
    let scene = Scene::new().await;
    let network = &scene.network;
    let h3 = &network.fabric.hospitals[1];
    let (patient, _, certificate) = scene.patient_with_certificate().await;

    // Expired consent: recorded on the hospital chain, failed by the relay.
    let expired = scene
        .consent(
            &patient.name,
            certificate,
            Duration::from_secs(1),
            "expired.json",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let request = RecoverRequest {
        record_id: Some(&unique("R")),
        ..scene.recovery(&patient.treatment_at_h2, &patient.password, &expired)
    };
    let error = recover(network, &request, &Quiet).await.unwrap_err();
    match &error {
        FlowError::RecoveryFailed { reason, .. } => {
            assert!(reason.contains("expired"), "{reason}")
        }
        other => panic!("expected a failed recovery, got {other}"),
    }

    // A wrong password: refused by H''s chain before anything crosses chains.
    let valid = scene
        .consent(
            &patient.name,
            certificate,
            Duration::from_secs(600),
            "valid.json",
        )
        .await;
    let wrong = Zeroizing::new("wrong-password".to_string());
    let error = recover(
        network,
        &RecoverRequest {
            password: &wrong,
            consent: &valid,
            ..request
        },
        &Quiet,
    )
    .await
    .unwrap_err();
    assert_kind(&error, FailureKind::Refused);
    assert!(message(&error).contains("wrong password"), "{error}");

    // No consent for this hospital: refused before anything is sent.
    let error = recover(
        network,
        &RecoverRequest {
            hospital: &h3.id,
            consent: &valid,
            ..request
        },
        &Quiet,
    )
    .await
    .unwrap_err();
    assert!(message(&error).contains("the consent is for"), "{error}");

    // The valid consent still works after the refusals. Not waiting at all leaves the
    // request pending; `--resume` picks it up without a second request.
    let impatient = RecoverRequest {
        consent: &valid,
        wait: Duration::ZERO,
        ..request
    };
    let index = match recover(network, &impatient, &Quiet).await {
        Err(FlowError::RecoveryTimeout { index, .. }) => {
            let resumed = recover(
                network,
                &RecoverRequest {
                    resume: Some(index),
                    ..request
                },
                &Quiet,
            )
            .await;
            assert!(
                resumed.is_err(),
                "resuming with the expired consent is refused"
            );
            index
        }
        // The relay answered before the first look: the key is still to be released.
        Err(FlowError::KeyNotReleased { index, .. }) => index,
        other => panic!("a recovery that waits for nothing ended with {other:?}"),
    };
    let report = scene
        .recover(
            &patient.name,
            &RecoverRequest {
                consent: &valid,
                resume: Some(index),
                ..request
            },
        )
        .await
        .unwrap();
    assert_eq!(report.index, index);
    assert!(report.request_tx.is_none());
    assert_eq!(report.certificate_id, certificate);
    scene.relay.shutdown().await;
}

/// A certificate whose envelope holds a document changed after H marked it: the
/// recovery completes on the chains, but H' refuses to store it (not authentic).
#[tokio::test]
async fn a_record_tampered_after_marking_is_not_stored() {
    use medcert_crypto::{
        Dek, EnvelopeHeader, KeyBinding, RecordAad, WrapPurpose, encrypt_stream, wrap_key,
    };
    use medcert_eip712::{CertificateAuthorization, hospital_id};

    let scene = Scene::new().await;
    let Scene {
        network,
        h1,
        h2,
        patients,
        ..
    } = &scene;
    let name = unique("pat");
    let password = password();
    let treatment = registered(network, patients.path(), &name, &h2.id, &password).await;
    let wallet = PatientWallet::open(patients.path(), &name).unwrap();

    // H marks the document; then its content is changed.
    let record_id = unique("R");
    let mut document = Vec::new();
    medcert_ccda::generate(
        &medcert_ccda::GeneratorConfig {
            seed: rand::random(),
            target_size: 20_000,
            patient_id: "T".into(),
            hospital: h1.id.clone(),
        },
        &mut document,
    )
    .unwrap();
    // H's key service signs the mark, as the store flow has it do.
    let keys = connect::key_service(h1, Actor::Doctor(0)).await.unwrap();
    let mut source = std::io::Cursor::new(document);
    let prepared = medcert_watermark::prepare(
        &mut source,
        &medcert_watermark::Mark {
            hospital_id: &h1.id,
            record_id: &record_id,
            issued_at: 1_700_000_000,
        },
    )
    .unwrap();
    let signature = keys.sign_watermark(prepared.unsigned()).await.unwrap();
    let mut marked = Vec::new();
    let embedded = prepared
        .embed(
            &mut source,
            &mut marked,
            signature,
            medcert_watermark::TooSmall::Refuse,
        )
        .unwrap();
    let mut text = String::from_utf8(marked).unwrap();
    let at = text.rfind("</").unwrap();
    text.insert_str(at, "Allergy: none.");

    // Sealed and certified as H would, with the original fingerprints anchored.
    let dek = Dek::generate();
    let aad = RecordAad {
        record_id: &record_id,
        hospital_id: &h1.id,
    };
    let binding = KeyBinding {
        record_id: &record_id,
        purpose: WrapPurpose::PatientEnvelope,
    };
    let wrapped = wrap_key(&dek, &wallet.x25519().public_key(), &binding).unwrap();
    let mut envelope = EnvelopeHeader::seal(&aad, wrapped).encode().unwrap();
    encrypt_stream(&dek, &aad, text.as_bytes(), &mut envelope).unwrap();
    let cid = connect::ipfs(network)
        .unwrap()
        .add(std::io::Cursor::new(envelope))
        .await
        .unwrap();
    let client = connect::certificate_client_as_hospital(network, h1).unwrap();
    let authorization = CertificateAuthorization {
        hospital: hospital_id(&h1.id).unwrap(),
        record_id: medcert_flows::ids::certificate_record_id(&record_id).unwrap(),
        cid,
        content_fingerprint: embedded.content_fingerprint,
        watermark_fingerprint: embedded.watermark_fingerprint,
        nonce: rand::random(),
    };
    let signature = wallet
        .signer()
        .sign_certificate_authorization(&authorization, &client.domain());
    let issued = client
        .issue_certificate(&authorization, wallet.signer().address().into(), &signature)
        .await
        .unwrap();

    let consent_path = scene
        .consent(
            &name,
            issued.certificate_id,
            Duration::from_secs(600),
            "consent.json",
        )
        .await;
    let error = scene
        .recover(&name, &scene.recovery(&treatment, &password, &consent_path))
        .await
        .unwrap_err();
    assert_kind(&error, FailureKind::NotAuthentic);
    assert!(message(&error).contains("tampered"), "{error}");
    let contract = connect::hospital_client(network, h2, Actor::Doctor(0))
        .await
        .unwrap();
    assert!(
        record_state(&contract, &h2.channel, &record_id)
            .await
            .is_err(),
        "nothing was stored at {}",
        h2.id
    );
    scene.relay.shutdown().await;
}

/// The consent file alone opens nothing: the relay serves the recovery, but until the
/// patient's agent releases the key H' cannot decrypt; an agent refuses to release for a
/// consent the patient revoked; a later pass for an unrevoked consent releases it and the
/// resumed recovery completes.
#[tokio::test]
async fn without_the_patients_release_a_served_recovery_decrypts_nothing() {
    let scene = Scene::new().await;
    let network = &scene.network;
    let (patient, _, certificate) = scene.patient_with_certificate().await;
    let consent_path = scene
        .consent(
            &patient.name,
            certificate,
            Duration::from_secs(600),
            "consent.json",
        )
        .await;
    let consent = medcert_flows::ConsentFile::read(&consent_path).unwrap();
    let text = std::fs::read_to_string(&consent_path).unwrap();
    assert!(
        !text.contains("wrapped"),
        "the consent file carries no key: {text}"
    );

    // No agent runs: served on the chains, yet nothing to decrypt with.
    let request = RecoverRequest {
        record_id: Some(&unique("R")),
        wait: Duration::from_secs(40),
        ..scene.recovery(&patient.treatment_at_h2, &patient.password, &consent_path)
    };
    let error = recover(network, &request, &Quiet).await.unwrap_err();
    let FlowError::KeyNotReleased { index, .. } = error else {
        panic!("expected a served recovery waiting for the key, got {error}");
    };
    let contract = connect::hospital_client(network, &scene.h2, Actor::Doctor(0))
        .await
        .unwrap();
    assert!(
        record_state(&contract, &scene.h2.channel, request.record_id.unwrap())
            .await
            .is_err(),
        "nothing was stored at {}",
        scene.h2.id
    );

    // A second consent, served, then revoked by the patient: the agent refuses it.
    let revoked_path = scene
        .consent(
            &patient.name,
            certificate,
            Duration::from_secs(600),
            "revoked.json",
        )
        .await;
    let revoked = medcert_flows::ConsentFile::read(&revoked_path).unwrap();
    let second = RecoverRequest {
        record_id: Some(&unique("R")),
        consent: &revoked_path,
        wait: Duration::from_secs(40),
        ..request
    };
    let error = recover(network, &second, &Quiet).await.unwrap_err();
    assert!(matches!(error, FlowError::KeyNotReleased { .. }), "{error}");
    let revocation = revoke_consent(network, scene.patients.path(), &patient.name, revoked.nonce)
        .await
        .unwrap();
    assert!(
        revocation.tx.is_none(),
        "a served consent's nonce is already spent"
    );

    let agent = PatientAgent::open(network, scene.patients.path(), &patient.name)
        .await
        .unwrap();
    let pass = agent.release_pass().await.unwrap();
    assert_eq!(pass.released.len(), 1, "{pass:?}");
    assert_eq!(pass.released[0].certificate_id, consent.certificate_id);
    assert_eq!(pass.refused.len(), 1, "{pass:?}");
    assert!(pass.refused[0].reason.contains("revoked"), "{pass:?}");
    // Settled consents are not looked at again.
    let again = agent.release_pass().await.unwrap();
    assert!(
        again.released.is_empty() && again.refused.is_empty(),
        "{again:?}"
    );

    let report = recover(
        network,
        &RecoverRequest {
            resume: Some(index),
            ..request
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(report.certificate_id, certificate);
    scene.relay.shutdown().await;
}
