//! From a function name to its code, who may call it, and the one shape of every doctor
//! action for a patient.

use medcert_hospital_api::{Actor, Function, Role, args, events};

use super::tickets::{Gate, Redeemed};
use super::{ContractError, Event, Reply, Tx, hospital_msp, keys, to_json};
use crate::identity::actor_from_creator;
use crate::ledger::Ledger;

/// The functions by which a doctor acts for a patient: one shape, [`Tx::doctor_action`].
pub(super) enum DoctorAction {
    RegisterPatient(args::RegisterPatient),
    CreateRecord(args::CreateRecord),
    QueryRecord(args::QueryRecord),
    RequestRecovery(args::RequestRecovery),
}

impl DoctorAction {
    fn function(&self) -> Function {
        match self {
            Self::RegisterPatient(_) => Function::RegisterPatient,
            Self::CreateRecord(_) => Function::CreateRecord,
            Self::QueryRecord(_) => Function::QueryRecord,
            Self::RequestRecovery(_) => Function::RequestRecovery,
        }
    }

    fn event(&self) -> &'static str {
        match self {
            Self::RegisterPatient(_) => events::PATIENT_REGISTERED,
            Self::CreateRecord(_) => events::RECORD_CREATED,
            Self::QueryRecord(_) => events::RECORD_QUERIED,
            Self::RequestRecovery(_) => events::INTERCHAIN_REQUEST,
        }
    }

    /// The patient and the record acted on.
    fn subject(&self) -> (&str, Option<&str>) {
        match self {
            Self::RegisterPatient(a) => (&a.treatment_number, None),
            Self::CreateRecord(a) => (&a.treatment_number, Some(&a.record_id)),
            Self::QueryRecord(a) => (&a.treatment_number, Some(&a.record_id)),
            Self::RequestRecovery(a) => (&a.treatment_number, Some(&a.record_id)),
        }
    }

    /// The password ticket of a password-gated action (registration has none).
    fn ticket(&self) -> Option<&[u8]> {
        match self {
            Self::RegisterPatient(_) => None,
            Self::CreateRecord(a) => Some(&a.ticket),
            Self::QueryRecord(a) => Some(&a.ticket),
            Self::RequestRecovery(a) => Some(&a.ticket),
        }
    }

    /// The keys the action's new patient or record must not have yet, each with the
    /// refusal if it does: a record id is never reused, not even after a deletion.
    fn fresh_keys(&self) -> Vec<(String, ContractError)> {
        match self {
            Self::RegisterPatient(a) => vec![(
                keys::patient(&a.treatment_number),
                ContractError::AlreadyExists(format!("patient {:?}", a.treatment_number)),
            )],
            Self::CreateRecord(a) => vec![
                (
                    keys::record(&a.record_id),
                    ContractError::AlreadyExists(format!("record {:?}", a.record_id)),
                ),
                (
                    keys::tombstone(&a.record_id),
                    ContractError::RetiredRecordId(a.record_id.clone()),
                ),
            ],
            Self::QueryRecord(_) | Self::RequestRecovery(_) => Vec::new(),
        }
    }
}

/// What a doctor action answers.
pub(super) struct Acted {
    pub reply: Reply,
    /// The event's payload, when it is not the action's audit entry.
    pub event_payload: Option<Vec<u8>>,
}

impl<L: Ledger> Tx<'_, L> {
    pub(super) async fn dispatch(&mut self) -> Result<Reply, ContractError> {
        let function = Function::from_name(&self.ctx.function).ok_or_else(|| {
            ContractError::UnknownFunction(self.ctx.function.chars().take(64).collect())
        })?;
        match function {
            Function::Version => {
                self.args::<args::Version>()?;
                Ok(Reply::ok(env!("CARGO_PKG_VERSION").as_bytes().to_vec()))
            }
            Function::SetKeyService => self.set_key_service(self.args()?).await,
            Function::GetKeyService => {
                self.args::<args::GetKeyService>()?;
                self.get_key_service().await
            }
            Function::RegisterPatient => {
                let action = DoctorAction::RegisterPatient(self.args()?);
                self.doctor_action(action).await
            }
            Function::CreateRecord => {
                let action = DoctorAction::CreateRecord(self.args()?);
                self.doctor_action(action).await
            }
            Function::QueryRecord => {
                let action = DoctorAction::QueryRecord(self.args()?);
                self.doctor_action(action).await
            }
            Function::GetRecord => self.get_record(self.args()?).await,
            Function::GetRecordHistory => self.get_record_history(self.args()?).await,
            Function::DeleteRecord => self.delete_record(self.args()?).await,
            Function::RequestRecovery => {
                let action = DoctorAction::RequestRecovery(self.args()?);
                self.doctor_action(action).await
            }
            Function::CompleteRecovery => {
                let args::CompleteRecovery {
                    index,
                    result,
                    proof,
                } = self.args()?;
                self.resolve_recovery(Function::CompleteRecovery, index, result, Some(proof))
                    .await
            }
            Function::FailRecovery => {
                let args::FailRecovery {
                    index,
                    reason,
                    proof,
                } = self.args()?;
                self.resolve_recovery(Function::FailRecovery, index, reason, proof)
                    .await
            }
            Function::GetRecoveryStatus => self.get_recovery_status(self.args()?).await,
            Function::GetAudit => self.get_audit(self.args()?).await,
        }
    }

    /// Every doctor action for a patient: the creator must be a doctor of this hospital.
    /// A patient or record the action would create must be new, and the patient of a
    /// gated action must exist (plain refusals: no attempt was made). A password-gated
    /// action then redeems its ticket: anything but an accepted ticket for exactly this
    /// action is a failed attempt, recorded and refused (the refusal commits). Then the
    /// action runs, is audited with its ticket, and its event is emitted.
    async fn doctor_action(&mut self, action: DoctorAction) -> Result<Reply, ContractError> {
        let doctor = self.doctor()?;
        for (key, taken) in action.fresh_keys() {
            if self.ledger.get(&key).await?.is_some() {
                return Err(taken);
            }
        }
        let (function, event) = (action.function(), action.event());
        let (treatment_number, record_id) = action.subject();
        let (treatment_number, record_id) =
            (treatment_number.to_owned(), record_id.map(str::to_owned));
        let mut ticket = None;
        if let Some(bytes) = action.ticket() {
            self.patient(&treatment_number).await?;
            let gate = Gate {
                function,
                treatment_number: &treatment_number,
                record_id: record_id.as_deref().unwrap_or_default(),
                doctor: &doctor,
            };
            match self.redeem_ticket(&gate, bytes).await? {
                Redeemed::Accepted { nonce } => ticket = Some(nonce),
                Redeemed::Refused(refusal) => return Ok(refusal),
            }
        }
        let acted = match action {
            DoctorAction::RegisterPatient(args) => self.register_patient(args, &doctor).await?,
            DoctorAction::CreateRecord(args) => self.create_record(args, &doctor).await?,
            DoctorAction::QueryRecord(args) => self.query_record(args).await?,
            DoctorAction::RequestRecovery(args) => self.request_recovery(args, &doctor).await?,
        };
        let entry = self
            .audit(
                function.name(),
                &doctor,
                record_id.as_deref(),
                Some(&treatment_number),
                ticket,
            )
            .await?;
        let mut reply = acted.reply;
        reply.event = Some(Event {
            name: event.to_owned(),
            payload: acted.event_payload.unwrap_or_else(|| to_json(&entry)),
        });
        Ok(reply)
    }

    pub(super) fn actor(&self) -> Result<Actor, ContractError> {
        Ok(actor_from_creator(&self.ctx.creator)?)
    }

    /// The creator, if it belongs to the MSP that owns this channel.
    pub(super) fn hospital_member(&self) -> Result<Actor, ContractError> {
        let actor = self.actor()?;
        match hospital_msp(&self.ctx.channel) {
            Some(msp) if msp == actor.msp_id => Ok(actor),
            Some(msp) => Err(ContractError::Forbidden(format!(
                "{} of {} is not a member of {msp}, which owns channel {}",
                actor.name, actor.msp_id, self.ctx.channel
            ))),
            None => Err(ContractError::Forbidden(format!(
                "channel {} is not a hospital channel",
                self.ctx.channel
            ))),
        }
    }

    /// The creator, if it is a doctor (a client) of this channel's hospital.
    fn doctor(&self) -> Result<Actor, ContractError> {
        self.hospital_role(Role::Client, "a doctor (NodeOU client)")
    }

    /// The creator, if it is an admin of this channel's hospital.
    pub(super) fn hospital_admin(&self) -> Result<Actor, ContractError> {
        self.hospital_role(Role::Admin, "a hospital admin (NodeOU admin)")
    }

    fn hospital_role(&self, role: Role, what: &str) -> Result<Actor, ContractError> {
        let actor = self.hospital_member()?;
        if actor.role != role {
            return Err(ContractError::Forbidden(format!(
                "{} is not {what} of {}",
                actor.name, actor.msp_id
            )));
        }
        Ok(actor)
    }

    /// The creator, if it is the relay.
    pub(super) fn relay(&self, function: Function) -> Result<Actor, ContractError> {
        let relay = self.actor()?;
        if relay.msp_id != self.config.relay_msp_id {
            return Err(ContractError::Forbidden(format!(
                "{function} is reserved to the relay ({})",
                self.config.relay_msp_id
            )));
        }
        Ok(relay)
    }
}
