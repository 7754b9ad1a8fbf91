//! A hospital's admin lifts a patient's lock-out: after too many wrong passwords in a
//! row, the hospital's key service answers no ticket for the patient until then.

use medcert_network::Network;
use serde::Serialize;

use crate::connect::{Actor, key_service};
use crate::error::FlowError;
use crate::ids::check_identifier;

/// A hospital's admin unlocking a patient.
#[derive(Debug, Clone, Copy)]
pub struct UnlockRequest<'a> {
    /// The hospital whose key service locked the patient.
    pub hospital: &'a str,
    /// The patient's treatment number there.
    pub treatment_number: &'a str,
}

/// The patient unlocked.
#[derive(Debug, Serialize)]
pub struct UnlockReport {
    /// The hospital's id.
    pub hospital: String,
    /// The patient's treatment number there.
    pub treatment_number: String,
}

/// Unlocks the patient in the hospital's key service, as the hospital's admin (the only
/// identity the service lets unlock); the count of wrong passwords starts again.
pub async fn unlock_patient(
    network: &Network,
    request: &UnlockRequest<'_>,
) -> Result<UnlockReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("treatment number", request.treatment_number)?;
    key_service(hospital, Actor::Admin)
        .await?
        .unlock_patient(request.treatment_number)
        .await
        .map_err(|source| FlowError::key_service(&hospital.id, source))?;
    Ok(UnlockReport {
        hospital: hospital.id.clone(),
        treatment_number: request.treatment_number.to_owned(),
    })
}
