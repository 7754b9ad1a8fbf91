//! Patients: registration, and what state keeps of them. Their passwords live in the
//! hospital's key service; nothing password-derived is kept here.

use medcert_hospital_api::{Actor, args};
use serde::{Deserialize, Serialize};

use super::dispatch::Acted;
use super::{ContractError, Reply, Tx, keys};
use crate::ledger::Ledger;

/// A registered patient, as state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Patient {
    treatment_number: String,
    /// SHA3-256 of the patient's ID number, hex (computed by the hospital application).
    id_hash: String,
    /// The patient's Ethereum address (`0x` + 40 lowercase hex): signs deletions.
    pub eth_address: String,
    /// The patient's X25519 public key, hex: receives wrapped record keys.
    x25519_public: String,
    registered_by: Actor,
    registered_at_ms: i64,
}

impl<L: Ledger> Tx<'_, L> {
    /// `RegisterPatient`, once [`Tx::doctor_action`] has checked the doctor.
    pub(super) async fn register_patient(
        &mut self,
        args: args::RegisterPatient,
        doctor: &Actor,
    ) -> Result<Acted, ContractError> {
        let treatment_number = args.treatment_number;
        let patient = Patient {
            treatment_number: treatment_number.clone(),
            id_hash: hex::encode(args.id_hash),
            eth_address: format!("0x{}", hex::encode(args.eth_address)),
            x25519_public: hex::encode(args.x25519_public),
            registered_by: doctor.clone(),
            registered_at_ms: self.ctx.timestamp_ms,
        };
        self.put_json(&keys::patient(&treatment_number), &patient)
            .await?;
        Ok(Acted {
            reply: Reply::ok(treatment_number.into_bytes()),
            event_payload: None,
        })
    }

    pub(super) async fn patient(
        &mut self,
        treatment_number: &str,
    ) -> Result<Patient, ContractError> {
        self.get_json(&keys::patient(treatment_number))
            .await?
            .ok_or_else(|| ContractError::UnknownPatient(treatment_number.to_owned()))
    }
}
