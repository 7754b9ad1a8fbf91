//! Cross-chain recoveries: the request that the relay carries to the certificate chain,
//! the relay's answer, and the status both sides read.

use medcert_hospital_api::{
    ChainProof, Function, InterchainRequest, Recovery, RecoveryState, args, events,
};

use super::dispatch::Acted;
use super::{ContractError, Reply, Tx, keys, parse_json, to_json};
use crate::ledger::Ledger;
use medcert_hospital_api::Actor;

impl<L: Ledger> Tx<'_, L> {
    /// `RequestRecovery`, once [`Tx::doctor_action`] has checked the doctor and the
    /// ticket: a doctor acts for a patient registered here, proven by the key service's
    /// check of the patient's password, before anything crosses chains on the patient's
    /// behalf.
    pub(super) async fn request_recovery(
        &mut self,
        args: args::RequestRecovery,
        doctor: &Actor,
    ) -> Result<Acted, ContractError> {
        let index = match self.ledger.get(keys::RECOVERY_COUNTER).await? {
            Some(bytes) => {
                let last: u64 = parse_json(keys::RECOVERY_COUNTER, &bytes)?;
                last + 1
            }
            None => 1,
        };
        let consent = hex::encode(&args.consent);
        let recovery = Recovery {
            index,
            treatment_number: args.treatment_number,
            record_id: args.record_id.clone(),
            certificate_id: args.certificate_id.clone(),
            consent: consent.clone(),
            requesting_hospital: self.ctx.channel.clone(),
            doctor: doctor.clone(),
            requested_at_ms: self.ctx.timestamp_ms,
            requested_tx: self.ctx.tx_id.clone(),
            deadline: args.deadline,
            outcome: RecoveryState::Pending,
            proof: None,
        };
        self.put_json(keys::RECOVERY_COUNTER, &index).await?;
        self.put_json(&keys::recovery(index), &recovery).await?;
        let request = InterchainRequest {
            channel: self.ctx.channel.clone(),
            index,
            record_id: args.record_id,
            certificate_id: args.certificate_id,
            consent,
            requesting_hospital: self.ctx.channel.clone(),
            doctor: doctor.clone(),
            deadline: args.deadline,
        };
        Ok(Acted {
            reply: Reply::json(&recovery),
            event_payload: Some(to_json(&request)),
        })
    }

    /// `CompleteRecovery` (with the relay's result) or `FailRecovery` (with its reason),
    /// recorded with what the relay proved on the certificate chain.
    pub(super) async fn resolve_recovery(
        &mut self,
        function: Function,
        index: u64,
        detail: String,
        proof: Option<ChainProof>,
    ) -> Result<Reply, ContractError> {
        let completed = function == Function::CompleteRecovery;
        self.relay(function)?;
        let key = keys::recovery(index);
        let mut recovery: Recovery = self
            .get_json(&key)
            .await?
            .ok_or(ContractError::UnknownRecovery(index))?;
        if recovery.outcome != RecoveryState::Pending {
            // Idempotent by index: a repeated call reports what was recorded, writes nothing.
            return Ok(Reply::json(&recovery));
        }
        let (at_ms, tx) = (self.ctx.timestamp_ms, self.ctx.tx_id.clone());
        recovery.outcome = if completed {
            RecoveryState::Completed {
                result: detail,
                at_ms,
                tx,
            }
        } else {
            RecoveryState::Failed {
                reason: detail,
                at_ms,
                tx,
            }
        };
        recovery.proof = proof;
        self.put_json(&key, &recovery).await?;
        let name = if completed {
            events::RECOVERY_COMPLETED
        } else {
            events::RECOVERY_FAILED
        };
        Ok(Reply::json(&recovery).with_event(name, &recovery))
    }

    pub(super) async fn get_recovery_status(
        &mut self,
        args: args::GetRecoveryStatus,
    ) -> Result<Reply, ContractError> {
        let recovery: Recovery = self
            .get_json(&keys::recovery(args.index))
            .await?
            .ok_or(ContractError::UnknownRecovery(args.index))?;
        let actor = self.actor()?;
        if actor.msp_id != self.config.relay_msp_id {
            self.hospital_member()?;
        }
        Ok(Reply::json(&recovery))
    }
}
