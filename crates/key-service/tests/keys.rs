//! Record keys, watermark signatures and the state directory, against an in-process
//! service. (Releases against a live chain are tested with the network.)

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use medcert_crypto::{CryptoError, Dek, HpkeKeyPair, KeyBinding, WrapPurpose, unwrap_key};
use medcert_hospital_api::Function;
use medcert_key_service::{Access, KeyServer, KeyServiceError, ServerError, Shredded};
use medcert_watermark::{Mark, TooSmall, UnsignedPayload, Verdict, prepare, verify};
use support::Hospital;

const PASSWORD: &[u8] = b"a password that must never reach a disk";

#[tokio::test]
async fn a_deposited_key_survives_a_restart_and_is_wrapped_for_its_patient_by_its_depositor() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    let dek = Dek::generate();
    doctor.deposit_key("R-1", "T-1", &dek).await.unwrap();
    // Depositing the same key again is harmless; another key or patient is refused.
    doctor.deposit_key("R-1", "T-1", &dek).await.unwrap();
    let error = doctor
        .deposit_key("R-1", "T-1", &Dek::generate())
        .await
        .unwrap_err();
    assert!(matches!(error, KeyServiceError::Conflict { .. }), "{error}");
    let error = doctor.deposit_key("R-1", "T-2", &dek).await.unwrap_err();
    assert!(error.to_string().contains("another patient"), "{error}");

    server.stop().await.unwrap();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    let patient = HpkeKeyPair::generate();
    let wrapped = doctor
        .wrap_for_patient("R-1", &patient.public_key())
        .await
        .unwrap();
    let envelope = KeyBinding {
        record_id: "R-1",
        purpose: WrapPurpose::PatientEnvelope,
    };
    assert_eq!(unwrap_key(&wrapped, &patient, &envelope).unwrap(), dek);
    assert!(matches!(
        unwrap_key(&wrapped, &HpkeKeyPair::generate(), &envelope),
        Err(CryptoError::WrongKey(_))
    ));
    let error = doctor
        .wrap_for_patient("R-404", &patient.public_key())
        .await
        .unwrap_err();
    assert!(matches!(error, KeyServiceError::NotFound { .. }), "{error}");
    // Another doctor could name their own key as the patient's: refused.
    let colleague = hospital
        .msp
        .member("User2@hospital1.medcert.local", "client");
    let colleague = hospital.client(&server, &colleague).await;
    let error = colleague
        .wrap_for_patient("R-1", &patient.public_key())
        .await
        .unwrap_err();
    assert!(matches!(error, KeyServiceError::Denied { .. }), "{error}");
    server.stop().await.unwrap();
}

/// A document with room for the watermark.
fn document() -> Vec<u8> {
    let mut doc = String::from("<?xml version=\"1.0\"?>\n<root>\n");
    for i in 0..150 {
        doc.push_str(&format!(
            "  <item id=\"{i}\" code='c{i}' system=\"s\" display=\"Item {i}\"/>\n"
        ));
    }
    doc.push_str("</root>\n");
    doc.into_bytes()
}

#[tokio::test]
async fn watermarks_are_signed_for_this_hospital_only_with_the_published_key() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    let doc = document();
    let mut source = Cursor::new(&doc);
    let mark = Mark {
        hospital_id: "hospital1",
        record_id: "R-1",
        issued_at: 1_760_000_000,
    };
    let prepared = prepare(&mut source, &mark).unwrap();
    let signature = doctor.sign_watermark(prepared.unsigned()).await.unwrap();
    let mut marked = Vec::new();
    prepared
        .embed(&mut source, &mut marked, signature, TooSmall::Refuse)
        .unwrap();
    let published = doctor.keys().watermark_key;
    let verification = verify(&marked[..], |id| (id == "hospital1").then_some(published)).unwrap();
    assert!(
        matches!(verification.verdict, Verdict::Authentic { ref record_id, .. } if record_id == "R-1"),
        "{:?}",
        verification.verdict
    );

    let foreign = UnsignedPayload::new("hospital2", "R-1", 1, [0; 32]).unwrap();
    let error = doctor.sign_watermark(&foreign).await.unwrap_err();
    assert!(matches!(error, KeyServiceError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("not hospital2's"), "{error}");
    server.stop().await.unwrap();
}

fn walk(dir: &Path, each: &mut impl FnMut(&Path, bool)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_dir = path.is_dir();
        each(&path, is_dir);
        if is_dir {
            walk(&path, each);
        }
    }
}

#[tokio::test]
async fn the_state_directory_is_private_and_never_holds_a_password() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    doctor.enroll_patient("T-1", PASSWORD).await.unwrap();
    for password in [PASSWORD, b"a wrong one".as_slice()] {
        doctor
            .check_password(Function::CreateRecord, "T-1", "R-1", password)
            .await
            .unwrap();
    }
    doctor
        .deposit_key("R-1", "T-1", &Dek::generate())
        .await
        .unwrap();
    server.stop().await.unwrap();

    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(hospital.state_dir()), 0o700);
    let mut files = 0;
    walk(hospital.state_dir(), &mut |path, is_dir| {
        if is_dir {
            assert_eq!(mode(path), 0o700, "{}", path.display());
            return;
        }
        files += 1;
        assert_eq!(mode(path), 0o600, "{}", path.display());
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD),
            "{} holds the password",
            path.display()
        );
    });
    // Keys, seeds, the patient, two tickets, the record's owner, the TLS material.
    assert!(files >= 10, "{files} files");
    // What clients read is public, and is the CA the service keeps.
    assert_eq!(mode(&hospital.config.tls_ca_out), 0o644);
    assert_eq!(
        std::fs::read(&hospital.config.tls_ca_out).unwrap(),
        std::fs::read(hospital.state_dir().join("tls/ca.pem")).unwrap()
    );
}

#[tokio::test]
async fn the_service_starts_without_its_peer_and_releases_nothing_without_it() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    let error = doctor
        .release_key(Access::Query {
            tx_id: "not a transaction id".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, KeyServiceError::Malformed { .. }),
        "{error}"
    );
    let tx_id = "ab".repeat(32);
    for error in [
        doctor
            .release_key(Access::Create {
                tx_id: tx_id.clone(),
            })
            .await
            .unwrap_err(),
        doctor
            .shred_key("R-1", &tx_id)
            .await
            .map(|_: Shredded| ())
            .unwrap_err(),
        doctor.abandon_key("R-1").await.unwrap_err(),
    ] {
        assert!(
            matches!(error, KeyServiceError::PeerFailed { .. }),
            "{error}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_service_listens_on_loopback_only() {
    let mut hospital = Hospital::new();
    hospital.config.listen = "0.0.0.0:0".parse().unwrap();
    let error = KeyServer::start(hospital.config.clone())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, ServerError::NotLoopback(_)), "{error}");
}
