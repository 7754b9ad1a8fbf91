//! Shared by the tests that run against the shared network: each test makes its own
//! patients, records and wallets with random names, so tests run side by side.

#![allow(dead_code)]

use medcert_cli::{FailureKind, FlowError, Progress, RegisterRequest, register_patient};
use medcert_network::Network;
use zeroize::Zeroizing;

pub fn network() -> Network {
    let network = Network::load()
        .expect("network description not found: run deploy/up, then medcert network init");
    assert!(
        network.ethereum.contract_address.is_some(),
        "no certificate contract: run medcert network init"
    );
    network
}

pub fn unique(prefix: &str) -> String {
    medcert_cli::ids::new_id(prefix)
}

pub fn password() -> Zeroizing<String> {
    Zeroizing::new(unique("pw"))
}

pub fn hidden() -> Progress {
    Progress::hidden()
}

/// A patient registered at `hospital`, with a wallet in `patients_dir`; returns the
/// treatment number.
pub async fn registered(
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

pub fn assert_kind(error: &FlowError, kind: FailureKind) {
    assert_eq!(error.kind(), kind, "{error}");
}
