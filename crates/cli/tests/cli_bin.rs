//! The `medcert` binary as a user runs it: JSON output, passwords from stdin or the
//! environment, exit codes, one-line errors.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::process::{Command, Stdio};

use medcert_test_support::{initialised_network, unique};
use support::{Visit, medcert, register, start};

#[test]
fn help_documents_the_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = medcert(tmp.path(), &["--help"], None, None);
    assert_eq!(run.code, Some(0));
    for code in [
        "0  success",
        "3  not authentic",
        "4  refused by a chain",
        "5  a service",
    ] {
        assert!(run.stdout.contains(code), "{code} missing: {}", run.stdout);
    }
    let run = medcert(tmp.path(), &["ehr", "store"], None, None);
    assert_eq!(run.code, Some(2), "missing arguments are bad usage");
}

#[test]
fn patient_and_doctor_commands_end_to_end() {
    let (network, patients) = start();
    let hospital = &network.fabric.hospitals[0].id;
    let scratch = tempfile::tempdir().unwrap();
    let patient = unique("dana");
    let password = unique("pw");

    let registered = register(patients.path(), &patient, hospital, &password);
    let treatment = registered["treatment_number"].as_str().unwrap().to_owned();
    assert_eq!(registered["wallet_created"], true);
    assert!(registered["tx_id"].as_str().unwrap().len() >= 32);

    // The password from stdin; the record certified for the patient.
    let visit = Visit {
        patients: patients.path(),
        hospital,
        treatment: &treatment,
    };
    let run = visit.doctor(
        "create",
        &["--json", "--certify", &patient, "--password-stdin"],
        None,
        Some(&format!("{password}\n")),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let created = run.json();
    let record = created["record_id"].as_str().unwrap().to_owned();
    let certificate = created["certificate"]["certificate_id"].as_u64().unwrap();

    let run = medcert(
        patients.path(),
        &["--json", "patient", "certificates", "--patient", &patient],
        None,
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.json()["certificates"][0]["certificate_id"].as_u64(),
        Some(certificate)
    );

    // The doctor's query of this record, run four ways below.
    let query = |extra: &[&str], password: Option<&str>| {
        visit.doctor(
            "query",
            &[&["--record", &record], extra].concat(),
            password,
            None,
        )
    };

    let out = scratch.path().join("record.xml");
    let run = query(&["--json", "--out", out.to_str().unwrap()], Some(&password));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.json()["retrieved"]["verification"]["verdict"],
        "authentic"
    );
    let run = medcert(
        patients.path(),
        &["ehr", "verify", out.to_str().unwrap()],
        None,
        None,
    );
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.starts_with("authentic"), "{}", run.stdout);

    // A wrong password is refused by the chain: exit 4, one line.
    let run = query(&[], Some("not-the-password"));
    assert_eq!(run.code, Some(4));
    assert!(
        run.one_line_error().contains("wrong password"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&password));

    // No password at all, stdin not a terminal: told how to give one.
    let run = query(&[], None);
    assert_eq!(run.code, Some(1));
    assert!(run.one_line_error().contains("--password-stdin"));

    let run = medcert(
        patients.path(),
        &[
            "--json",
            "patient",
            "delete",
            "--patient",
            &patient,
            "--hospital",
            hospital,
            "--record",
            &record,
        ],
        None,
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let deleted = run.json();
    assert_eq!(deleted["csp_object"], "removed");
    assert_eq!(deleted["hospital_key"], "removed");

    let run = query(&["--json"], Some(&password));
    assert_eq!(run.code, Some(4), "a deleted record is refused");
    assert!(run.json()["error"].as_str().unwrap().contains("deleted"));
}

#[test]
fn bad_input_gets_one_line_and_a_stable_code() {
    let (network, patients) = start();
    let hospital = &network.fabric.hospitals[0].id;
    let scratch = tempfile::tempdir().unwrap();

    let missing = scratch.path().join("missing.xml");
    let missing = missing.to_str().unwrap();
    let text = scratch.path().join("notes.txt");
    std::fs::write(&text, "not xml at all").unwrap();
    let text = text.to_str().unwrap();
    // Each mistake fails (exit 1) with one line that says `message`.
    let fails = |args: &[&str], password: Option<&str>, message: &str| {
        let run = medcert(patients.path(), args, password, None);
        assert_eq!(run.code, Some(1), "{args:?}");
        assert!(
            run.one_line_error().contains(message),
            "{args:?}: {}",
            run.stderr
        );
    };
    fails(
        &[
            "--network",
            "/nonexistent/network.json",
            "patient",
            "certificates",
            "--patient",
            "x",
        ],
        None,
        "medcert network up",
    );
    let ghost = unique("ghost");
    fails(
        &["patient", "certificates", "--patient", &ghost],
        None,
        "medcert patient register",
    );
    // A doctor's command for patient T-1, given a file it cannot use.
    for (command, flag, file, message) in [
        ("store", "--file", missing, "check the path"),
        ("store", "--file", text, "not a C-CDA document"),
        ("recover", "--consent", text, "not a medcert consent file"),
    ] {
        let args = [
            "ehr",
            command,
            "--hospital",
            hospital,
            "--treatment",
            "T-1",
            flag,
            file,
        ];
        fails(&args, Some("pw"), message);
    }

    let run = medcert(
        patients.path(),
        &[
            "--json",
            "doctor",
            "query",
            "--hospital",
            "hospital99",
            "--treatment",
            "T",
            "--record",
            "R",
        ],
        Some("pw"),
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.json()["error"]
            .as_str()
            .unwrap()
            .contains("no hospital hospital99")
    );

    let run = medcert(
        patients.path(),
        &[
            "patient",
            "consent",
            "--patient",
            "p",
            "--hospital",
            hospital,
            "--certificate",
            "1",
            "--expires",
            "soon",
            "--out",
            "x.json",
        ],
        None,
        None,
    );
    assert_eq!(run.code, Some(2), "a bad duration is bad usage");
}

#[test]
fn the_demo_tells_the_whole_story() {
    let (network, patients) = start();
    let run = medcert(patients.path(), &["--json", "demo"], None, None);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["passed"], true);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 14);
    assert!(steps.iter().all(|s| s["ok"] == true));
    let titles: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    assert!(titles.iter().any(|t| t.contains("recovers")));
    assert!(titles.iter().any(|t| t.contains("wrong password")));
    assert!(titles.iter().any(|t| t.contains("forged")));
    assert!(titles.iter().any(|t| t.contains("edited afterwards")));

    let run = medcert(
        patients.path(),
        &[
            "demo",
            "--hospitals",
            &(network.fabric.hospitals.len() + 1).to_string(),
        ],
        None,
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(run.one_line_error().contains("give --hospitals"));
}

#[test]
fn relay_run_serves_until_interrupted() {
    use std::io::{BufRead, BufReader};
    initialised_network();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_medcert"))
        .args(["relay", "run", "--state-dir"])
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("relay running"), "{line}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        std::fs::read_dir(state.path()).unwrap().next().is_some(),
        "the relay kept its state"
    );
}
