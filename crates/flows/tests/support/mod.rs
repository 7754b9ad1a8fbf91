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

/// A patient whose generated record of `size` bytes is created and certified at `source`,
/// registered also at `recovering`, the hospital that will recover it.
pub(crate) struct CertifiedPatient {
    /// The wallet's name.
    pub(crate) name: String,
    /// The patient's password at both hospitals.
    pub(crate) password: Zeroizing<String>,
    /// The treatment number at the recovering hospital.
    pub(crate) treatment_at_recovering: String,
    /// The record's id at the source hospital.
    pub(crate) record_id: String,
    /// The record's certificate.
    pub(crate) certificate_id: u64,
}

pub(crate) async fn certified_patient(
    network: &Network,
    patients_dir: &std::path::Path,
    source: &str,
    recovering: &str,
    size: u64,
) -> CertifiedPatient {
    let name = unique("pat");
    let password = password();
    let treatment = registered(network, patients_dir, &name, source, &password).await;
    let created = medcert_flows::create_record(
        network,
        patients_dir,
        &CreateRequest {
            certify_for: Some(&name),
            ..visit(source, &treatment, &password, size)
        },
        &medcert_flows::Quiet,
    )
    .await
    .unwrap();
    let treatment_at_recovering =
        registered(network, patients_dir, &name, recovering, &password).await;
    CertifiedPatient {
        name,
        password,
        treatment_at_recovering,
        record_id: created.stored.record_id,
        certificate_id: created.certificate.unwrap().certificate_id,
    }
}
