//! Patients: registration, their password, lock-out and unlocking.

use medcert_hospital_api::{Function, Role, STATUS_REFUSED_RECORDED, args, events};
use serde::{Deserialize, Serialize};

use super::dispatch::Acted;
use super::{ContractError, Reply, Tx, keys};
use crate::ledger::Ledger;
use crate::password;
use medcert_hospital_api::Actor;

/// A registered patient, as state holds it (never answered: it holds the verifier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Patient {
    treatment_number: String,
    /// SHA3-256 of the patient's ID number, hex (computed by the hospital application).
    id_hash: String,
    password_verifier: String,
    /// The patient's Ethereum address (`0x` + 40 lowercase hex): signs deletions.
    pub eth_address: String,
    /// The patient's X25519 public key, hex: receives wrapped record keys.
    x25519_public: String,
    failed_attempts: u32,
    locked: bool,
    registered_by: Actor,
    registered_at_ms: i64,
}

impl<L: Ledger> Tx<'_, L> {
    /// `RegisterPatient`, once [`Tx::doctor_action`] has checked the doctor.
    pub(super) async fn register_patient(
        &mut self,
        args: args::RegisterPatient,
        doctor: &Actor,
        password: &[u8],
    ) -> Result<Acted, ContractError> {
        let treatment_number = args.treatment_number;
        let patient = Patient {
            password_verifier: password::verifier(&self.ctx.channel, &treatment_number, password),
            treatment_number: treatment_number.clone(),
            id_hash: hex::encode(args.id_hash),
            eth_address: format!("0x{}", hex::encode(args.eth_address)),
            x25519_public: hex::encode(args.x25519_public),
            failed_attempts: 0,
            locked: false,
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

    pub(super) async fn unlock_patient(
        &mut self,
        args: args::UnlockPatient,
    ) -> Result<Reply, ContractError> {
        let treatment_number = args.treatment_number;
        let admin = self.hospital_member()?;
        if admin.role != Role::Admin {
            return Err(ContractError::Forbidden(
                "only a hospital admin may unlock a patient".into(),
            ));
        }
        let mut patient = self.patient(&treatment_number).await?;
        patient.failed_attempts = 0;
        patient.locked = false;
        self.put_json(&keys::patient(&treatment_number), &patient)
            .await?;
        let entry = self
            .audit(
                Function::UnlockPatient.name(),
                &admin,
                None,
                Some(&treatment_number),
            )
            .await?;
        Ok(Reply::ok(Vec::new()).with_event(events::PATIENT_UNLOCKED, &entry))
    }

    pub(super) async fn patient(
        &mut self,
        treatment_number: &str,
    ) -> Result<Patient, ContractError> {
        self.get_json(&keys::patient(treatment_number))
            .await?
            .ok_or_else(|| ContractError::UnknownPatient(treatment_number.to_owned()))
    }

    /// Checks the patient's password. On a wrong one, records the failure (locking the
    /// patient at the limit) and returns the refusal to commit; on the right one, clears
    /// earlier failures and returns `None`.
    pub(super) async fn check_password(
        &mut self,
        treatment_number: &str,
        password: &[u8],
        doctor: &Actor,
        record_id: Option<&str>,
    ) -> Result<Option<Reply>, ContractError> {
        let mut patient = self.patient(treatment_number).await?;
        if patient.locked {
            return Err(ContractError::Locked(treatment_number.to_owned()));
        }
        let key = keys::patient(treatment_number);
        if password::matches(&patient.password_verifier, password) {
            if patient.failed_attempts > 0 {
                patient.failed_attempts = 0;
                self.put_json(&key, &patient).await?;
            }
            return Ok(None);
        }
        patient.failed_attempts += 1;
        patient.locked = patient.failed_attempts >= self.config.max_password_failures;
        self.put_json(&key, &patient).await?;
        let entry = self
            .audit(
                events::PASSWORD_REJECTED,
                doctor,
                record_id,
                Some(treatment_number),
            )
            .await?;
        let mut message = format!(
            "wrong password for patient {treatment_number:?}: attempt {} of {}",
            patient.failed_attempts, self.config.max_password_failures
        );
        if patient.locked {
            message.push_str(", the patient is now locked");
        }
        Ok(Some(
            Reply {
                status: STATUS_REFUSED_RECORDED,
                message,
                payload: Vec::new(),
                event: None,
            }
            .with_event(events::PASSWORD_REJECTED, &entry),
        ))
    }
}
