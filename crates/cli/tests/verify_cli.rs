//! `medcert ehr verify` as a user runs it, against the keys `medcert network init` made
//! for the running network's hospitals.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use ed25519_dalek::SigningKey;
use medcert_ccda::{GeneratorConfig, generate};
use medcert_flows::HospitalKeys;
use medcert_test_support::network;
use medcert_watermark::{Mark, embed};

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

fn marked(document: &[u8], key: &SigningKey, record_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mark = Mark {
        hospital_id: "hospital1",
        record_id,
        issued_at: 1_700_000_000,
    };
    embed(&mut Cursor::new(document), &mut out, &mark, key).unwrap();
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

#[test]
fn verdicts_and_exit_codes() {
    let network = network();
    let keys = HospitalKeys::open_existing(&HospitalKeys::dir(&network.run_dir, "hospital1"))
        .expect("hospital1 has no keys: run medcert network init");
    let tmp = tempfile::tempdir().unwrap();
    let patient = format!("T-{}", rand::random::<u32>());
    let document = record(&patient);

    let authentic = tmp.path().join("authentic.xml");
    let marked_doc = marked(&document, keys.watermark_key(), "r-1");
    std::fs::write(&authentic, &marked_doc).unwrap();
    let (code, stdout, _) = verify(&authentic);
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

    let forged = tmp.path().join("forged.xml");
    let forger = SigningKey::from_bytes(&rand::random());
    std::fs::write(&forged, marked(&document, &forger, "r-1")).unwrap();
    let (code, stdout, _) = verify(&forged);
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
