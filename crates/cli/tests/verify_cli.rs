//! `medcert ehr verify` as a user runs it, against the watermark keys the running
//! network's hospitals' key services publish.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use ed25519_dalek::SigningKey;
use medcert_ccda::{GeneratorConfig, generate};
use medcert_flows::Actor;
use medcert_flows::connect::key_service;
use medcert_test_support::network;
use medcert_watermark::{Mark, TooSmall, embed, prepare};

fn medcert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcert"))
        .args(args)
        .output()
        .expect("run medcert")
}

fn record(patient_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let config = GeneratorConfig {
        seed: rand::random(),
        target_size: 20_000,
        patient_id: patient_id.into(),
        hospital: "hospital1".into(),
    };
    generate(&config, &mut out).unwrap();
    out
}

const MARK: Mark<'static> = Mark {
    hospital_id: "hospital1",
    record_id: "r-1",
    issued_at: 1_700_000_000,
};

/// Marked by a key that is not hospital1's.
fn forged(document: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = Vec::new();
    embed(&mut Cursor::new(document), &mut out, &MARK, key).unwrap();
    out
}

/// Marked as hospital1's store flow marks: its key service signs.
async fn authentic(document: &[u8]) -> Vec<u8> {
    let network = network();
    let hospital = network.hospital("hospital1").unwrap();
    let keys = key_service(hospital, Actor::Doctor(0))
        .await
        .expect("hospital1's key service (deploy/up starts it)");
    let mut source = Cursor::new(document);
    let prepared = prepare(&mut source, &MARK).unwrap();
    let signature = keys.sign_watermark(prepared.unsigned()).await.unwrap();
    let mut out = Vec::new();
    prepared
        .embed(&mut source, &mut out, signature, TooSmall::Refuse)
        .unwrap();
    out
}

fn verify(path: &Path) -> (Option<i32>, String, String) {
    let out = medcert(&["ehr", "verify", path.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn verdicts_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let patient = format!("T-{}", rand::random::<u32>());
    let document = record(&patient);

    let marked = tmp.path().join("authentic.xml");
    let marked_doc = authentic(&document).await;
    std::fs::write(&marked, &marked_doc).unwrap();
    let (code, stdout, _) = verify(&marked);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with("authentic: record r-1 marked by hospital1"),
        "{stdout}"
    );

    let tampered = tmp.path().join("tampered.xml");
    let text = String::from_utf8(marked_doc).unwrap();
    std::fs::write(&tampered, text.replace(&patient, "T-0")).unwrap();
    let (code, stdout, _) = verify(&tampered);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.starts_with("TAMPERED"), "{stdout}");

    let forgery = tmp.path().join("forged.xml");
    let forger = SigningKey::from_bytes(&rand::random());
    std::fs::write(&forgery, forged(&document, &forger)).unwrap();
    let (code, stdout, _) = verify(&forgery);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        stdout.starts_with("FORGED: the mark claims hospital1"),
        "{stdout}"
    );

    let plain = tmp.path().join("plain.xml");
    std::fs::write(&plain, &document).unwrap();
    let (code, stdout, _) = verify(&plain);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.starts_with("ABSENT"), "{stdout}");

    let out = medcert(&["--json", "ehr", "verify", plain.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "absent");
}

#[test]
fn bad_input_gets_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.xml");
    let (code, _, stderr) = verify(&missing);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot read") && stderr.contains("nope.xml"),
        "{stderr}"
    );

    let not_xml = tmp.path().join("notes.txt");
    std::fs::write(&not_xml, "<a><b></a>").unwrap();
    let (code, _, stderr) = verify(&not_xml);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("is not a well-formed XML record"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_medcert"))
        .args(["ehr", "verify", "x.xml"])
        .env("MEDCERT_NETWORK", tmp.path().join("absent.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("run `medcert network up`"), "{stderr}");
}
