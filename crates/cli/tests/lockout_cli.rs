//! The password lock-out as a user meets it: each wrong password is recorded and refused
//! (exit 4) with what is left before the lock; the locked patient is refused even with
//! the right password, told how to unlock; `medcert patient unlock` (the hospital's
//! admin) lifts it.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use medcert_test_support::unique;
use support::{Run, Visit, medcert, register, start};

#[test]
fn five_wrong_passwords_lock_the_patient_until_the_admin_unlocks() {
    let (network, patients) = start();
    let hospital = &network.fabric.hospitals[0].id;
    let patient = unique("lou");
    let password = unique("pw");

    let registered = register(patients.path(), &patient, hospital, &password);
    let treatment = registered["treatment_number"].as_str().unwrap().to_owned();
    let visit = Visit {
        patients: patients.path(),
        hospital,
        treatment: &treatment,
    };
    let run = visit.doctor("create", &["--json"], Some(&password), None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let created = run.json();
    let record = created["record_id"].as_str().unwrap().to_owned();

    let query =
        |password: &str| visit.doctor("query", &["--record", &record], Some(password), None);
    for attempt in 1..=5 {
        let Run { code, stderr, .. } = query("not-the-password");
        assert_eq!(code, Some(4), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "wrong password for patient \"{treatment}\": attempt {attempt} of 5"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("recorded on the hospital chain"),
            "{stderr}"
        );
        assert!(!stderr.contains(&password), "{stderr}");
        assert_eq!(stderr.contains("now locked"), attempt == 5, "{stderr}");
    }

    // Locked: the right password is refused too, with the way out.
    let Run { code, stderr, .. } = query(&password);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
    let unlock = format!("medcert patient unlock --hospital {hospital} --treatment {treatment}");
    assert!(stderr.contains(&unlock), "{stderr}");

    let Run {
        code,
        stdout,
        stderr,
    } = medcert(
        patients.path(),
        &[
            "patient",
            "unlock",
            "--hospital",
            hospital,
            "--treatment",
            &treatment,
        ],
        None,
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!("patient {treatment} unlocked at {hospital}")),
        "{stdout}"
    );

    let Run {
        code,
        stdout,
        stderr,
    } = query(&password);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("query audited in"), "{stdout}");
}
