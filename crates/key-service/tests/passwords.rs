//! The password gate and the service's door, against an in-process service.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::time::{Duration, Instant};

use medcert_hospital_api::Function;
use medcert_hospital_api::ticket::Verdict;
use medcert_key_service::proto::{CheckPasswordRequest, EnrollPatientRequest};
use medcert_key_service::{KeyServiceClient, KeyServiceError};
use prost::Message;
use sha3::{Digest, Sha3_256};
use support::pki::Msp;
use support::{Hospital, TLS_HOST, now_ms, signed};

const PASSWORD: &[u8] = b"correct horse battery staple";

#[tokio::test]
async fn right_and_wrong_passwords_get_tickets_signed_with_the_published_key() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    doctor.enroll_patient("T-1", PASSWORD).await.unwrap();
    let published = KeyServiceClient::public_keys(
        &Hospital::endpoint(&server),
        TLS_HOST,
        &hospital.config.tls_ca_out,
    )
    .await
    .unwrap();

    let accepted = doctor
        .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap();
    let ticket = accepted.verify(&published.ticket_key).unwrap();
    assert_eq!(ticket.verdict, Verdict::Accepted);
    assert_eq!(ticket.channel, "hospital1");
    assert_eq!(ticket.function, Function::QueryRecord);
    assert_eq!(ticket.treatment_number, "T-1");
    assert_eq!(ticket.record_id, "R-1");
    let cert_id: [u8; 32] = Sha3_256::digest(&hospital.doctor.cert_der).into();
    assert_eq!(ticket.doctor_cert_id, cert_id);

    let rejected = doctor
        .check_password(Function::CreateRecord, "T-1", "R-2", b"wrong")
        .await
        .unwrap();
    let refusal = rejected.verify(&published.ticket_key).unwrap();
    assert_eq!(
        refusal.verdict,
        Verdict::Rejected {
            attempt: 1,
            limit: 5
        }
    );
    assert_ne!(refusal.nonce, ticket.nonce);

    // A right password resets the count.
    doctor
        .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap();
    let again = doctor
        .check_password(Function::RequestRecovery, "T-1", "R-1", b"wrong")
        .await
        .unwrap();
    assert_eq!(
        again.ticket.verdict,
        Verdict::Rejected {
            attempt: 1,
            limit: 5
        }
    );

    let error = doctor.enroll_patient("T-1", b"another").await.unwrap_err();
    assert!(matches!(error, KeyServiceError::Conflict { .. }), "{error}");
    let error = doctor
        .check_password(Function::QueryRecord, "T-404", "R-1", PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(error, KeyServiceError::NotFound { .. }), "{error}");
    assert!(
        error.to_string().contains("T-404 is not enrolled"),
        "{error}"
    );
    let error = doctor
        .check_password(Function::GetRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(error, KeyServiceError::Malformed { .. }),
        "{error}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn one_recovery_check_also_admits_storing_the_record_again() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    doctor.enroll_patient("T-1", PASSWORD).await.unwrap();

    let (request, store) = doctor
        .check_recovery_password("T-1", "R-1", "R-1-copy", PASSWORD)
        .await
        .unwrap();
    assert_eq!(request.ticket.function, Function::RequestRecovery);
    assert_eq!(request.ticket.record_id, "R-1");
    let store = store.expect("a right password admits the store too");
    assert_eq!(store.ticket.function, Function::CreateRecord);
    assert_eq!(store.ticket.record_id, "R-1-copy");
    assert_eq!(store.ticket.treatment_number, "T-1");
    assert_eq!(store.ticket.verdict, Verdict::Accepted);
    assert_eq!(store.ticket.doctor_cert_id, request.ticket.doctor_cert_id);
    assert_ne!(store.ticket.nonce, request.ticket.nonce);

    let (refused, store) = doctor
        .check_recovery_password("T-1", "R-1", "R-1-copy", b"wrong")
        .await
        .unwrap();
    assert!(matches!(refused.ticket.verdict, Verdict::Rejected { .. }));
    assert!(store.is_none(), "a wrong password admits no store");

    // Only a recovery names a second record.
    let body = CheckPasswordRequest {
        function: "QueryRecord".into(),
        treatment_number: "T-1".into(),
        record_id: "R-1".into(),
        password: PASSWORD.to_vec(),
        stored_as: "R-2".into(),
    };
    let request = signed(
        &hospital.doctor,
        "CheckPassword",
        body.encode_to_vec(),
        now_ms(),
        &[7; 16],
    );
    let status = hospital
        .rpc(&server)
        .await
        .check_password(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_patient_across_a_restart_until_the_admin_unlocks() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    doctor.enroll_patient("T-1", PASSWORD).await.unwrap();
    for attempt in 1..=5 {
        let ticket = doctor
            .check_password(Function::QueryRecord, "T-1", "R-1", b"guess")
            .await
            .unwrap();
        assert_eq!(
            ticket.ticket.verdict,
            Verdict::Rejected { attempt, limit: 5 }
        );
    }
    let error = doctor
        .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, KeyServiceError::Locked { treatment_number } if treatment_number == "T-1"),
        "{error}"
    );
    assert!(error.to_string().contains("admin unlocks"), "{error}");

    server.stop().await.unwrap();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    let error = doctor
        .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(error, KeyServiceError::Locked { .. }), "{error}");

    let error = doctor.unlock_patient("T-1").await.unwrap_err();
    assert!(matches!(error, KeyServiceError::Refused { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("UnlockPatient is for admin members"),
        "{error}"
    );
    let admin = hospital.client(&server, &hospital.admin).await;
    admin.unlock_patient("T-1").await.unwrap();
    let ticket = doctor
        .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
        .await
        .unwrap();
    assert_eq!(ticket.ticket.verdict, Verdict::Accepted);
    let error = admin.unlock_patient("T-404").await.unwrap_err();
    assert!(matches!(error, KeyServiceError::NotFound { .. }), "{error}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn password_checks_are_rate_limited_per_patient() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let doctor = hospital.client(&server, &hospital.doctor).await;
    doctor.enroll_patient("T-1", PASSWORD).await.unwrap();
    let per_minute = medcert_key_service::PATIENT_ATTEMPTS_PER_MINUTE;
    let start = Instant::now();
    let mut served = 0;
    let error = loop {
        match doctor
            .check_password(Function::QueryRecord, "T-1", "R-1", PASSWORD)
            .await
        {
            Ok(_) => served += 1,
            Err(error) => break error,
        }
        assert!(served <= 3 * per_minute, "never rate-limited");
    };
    // The whole minute's worth at once, and what refilled while they were checked.
    let refilled = (start.elapsed().as_secs_f64() * f64::from(per_minute) / 60.0).ceil() as u32;
    assert!(
        (per_minute..=per_minute + refilled).contains(&served),
        "{served} checks served"
    );
    match &error {
        KeyServiceError::RateLimited { retry_after } => {
            assert!(*retry_after > Duration::ZERO && *retry_after <= Duration::from_secs(60));
        }
        other => panic!("expected a rate limit, got {other}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("too many attempts, retry in "),
        "{error}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn only_the_hospitals_members_with_fresh_signed_requests_are_served() {
    let hospital = Hospital::new();
    let server = hospital.start().await;
    let endpoint = Hospital::endpoint(&server);
    let refused = |result: Result<(), KeyServiceError>, why: &str| match result {
        Err(KeyServiceError::Refused { reason }) => {
            assert!(reason.contains(why), "{reason} does not say {why:?}")
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    };

    // Another CA's certificate claiming the hospital's MSP.
    let intruders = Msp::new("Hospital1MSP", "intruder.example");
    let intruder = intruders.member("User1@intruder.example", "client");
    let client = KeyServiceClient::connect(
        &endpoint,
        TLS_HOST,
        &hospital.config.tls_ca_out,
        intruder.identity(),
    )
    .await
    .unwrap();
    refused(client.enroll_patient("T-1", PASSWORD).await, "issued by");

    // The hospital's certificate presented as another MSP's.
    let renegade = hospital.msp.member_as("Hospital2MSP", "User9", "client");
    let client = hospital.client(&server, &renegade).await;
    refused(
        client.enroll_patient("T-1", PASSWORD).await,
        "belongs to Hospital2MSP",
    );

    // Roles: an admin is no doctor, a peer neither.
    let admin = hospital.client(&server, &hospital.admin).await;
    refused(admin.enroll_patient("T-1", PASSWORD).await, "is admin");
    let peer = hospital.msp.member("peer0.hospital1.medcert.local", "peer");
    let client = hospital.client(&server, &peer).await;
    refused(client.enroll_patient("T-1", PASSWORD).await, "is peer");

    let mut rpc = hospital.rpc(&server).await;
    let body = EnrollPatientRequest {
        treatment_number: "T-1".into(),
        password: PASSWORD.to_vec(),
    }
    .encode_to_vec();
    let refusal = |status: tonic::Status, why: &str| {
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains(why),
            "{} does not say {why:?}",
            status.message()
        );
    };

    let stale = signed(
        &hospital.doctor,
        "EnrollPatient",
        body.clone(),
        now_ms() - 3 * 60 * 1000,
        &[1; 16],
    );
    refusal(rpc.enroll_patient(stale).await.unwrap_err(), "timestamp");

    let request = signed(
        &hospital.doctor,
        "EnrollPatient",
        body.clone(),
        now_ms(),
        &[2; 16],
    );
    rpc.enroll_patient(request.clone()).await.unwrap();
    refusal(rpc.enroll_patient(request).await.unwrap_err(), "replay");

    // A request signed for one method serves no other.
    let check = CheckPasswordRequest {
        function: "QueryRecord".into(),
        treatment_number: "T-1".into(),
        record_id: "R-1".into(),
        password: PASSWORD.to_vec(),
        stored_as: String::new(),
    }
    .encode_to_vec();
    let misdirected = signed(
        &hospital.doctor,
        "EnrollPatient",
        check.clone(),
        now_ms(),
        &[3; 16],
    );
    refusal(
        rpc.check_password(misdirected).await.unwrap_err(),
        "signed for EnrollPatient",
    );

    // A body changed after signing.
    let mut altered = signed(&hospital.doctor, "CheckPassword", check, now_ms(), &[4; 16]);
    altered.body[0] ^= 1;
    refusal(rpc.check_password(altered).await.unwrap_err(), "signature");
    server.stop().await.unwrap();
}
