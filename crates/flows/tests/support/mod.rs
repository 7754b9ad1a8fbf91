//! What the flows' tests on the shared network share beyond medcert-test-support: a
//! registered patient, and checks of a failure's kind. Each test makes its own patients,
//! records and wallets with random names, so tests run side by side.

#![allow(dead_code)] // each test binary uses the part it needs

use medcert_flows::{CreateRequest, FailureKind, FlowError, RegisterRequest, register_patient};
use medcert_network::Network;
use zeroize::Zeroizing;

pub(crate) use medcert_test_support::unique;

/// The running network, initialised (`medcert network init`).
pub(crate) fn network() -> Network {
    medcert_test_support::initialised_network()
}

/// A fresh password.
pub(crate) fn password() -> Zeroizing<String> {
    Zeroizing::new(unique("pw"))
}

/// A patient registered at `hospital`, with a wallet in `patients_dir`; returns the
/// treatment number.
pub(crate) async fn registered(
    network: &Network,
    patients_dir: &std::path::Path,
    patient: &str,
    hospital: &str,
    password: &Zeroizing<String>,
) -> String {
    register_patient(
        network,
        patients_dir,
        &RegisterRequest {
            patient,
            hospital,
            doctor: 0,
            treatment_number: None,
            id_number: &format!("ID-{patient}"),
            password,
        },
    )
    .await
    .expect("registration")
    .treatment_number
}

/// `create_record`'s request for a visit of the patient `treatment` at `hospital`: a
/// generated document of `size` bytes, stored by doctor 0 under a fresh id, neither
/// certified nor kept.
/// The patient's audit trail on `client`'s channel, oldest first.
pub(crate) async fn patient_trail(
    client: &medcert_flows::hospital_api::HospitalClient,
    treatment: &str,
) -> Vec<medcert_flows::hospital_api::AuditEntry> {
    use medcert_flows::hospital_api::args::{AuditKind, GetAudit};
    client
        .get_audit(&GetAudit {
            kind: AuditKind::Patient,
            id: treatment.to_owned(),
        })
        .await
        .unwrap()
}

pub(crate) fn visit<'a>(
    hospital: &'a str,
    treatment: &'a str,
    password: &'a Zeroizing<String>,
    size: u64,
) -> CreateRequest<'a> {
    CreateRequest {
        hospital,
        doctor: 0,
        treatment_number: treatment,
        record_id: None,
        password,
        size,
        certify_for: None,
        keep: None,
    }
}

/// An error and its sources, as the command line prints them.
pub(crate) fn message(error: &FlowError) -> String {
    let mut text = error.to_string();
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        text = format!("{text}: {source}");
        next = source.source();
    }
    text
}

pub(crate) fn assert_kind(error: &FlowError, kind: FailureKind) {
    assert_eq!(error.kind(), kind, "{}", message(error));
}
