//! Records: creation, audited and plain reads, history, and deletion at the patient's
//! signed request.

use medcert_hospital_api::events::{self, RecordDeleted};
use medcert_hospital_api::{
    ContentFingerprint, Function, Record, RecordChange, RecordState, Tombstone,
    WatermarkFingerprint, args,
};

use super::dispatch::Acted;
use super::{ContractError, Reply, Tx, keys};
use crate::ledger::Ledger;
use medcert_hospital_api::Actor;

impl<L: Ledger> Tx<'_, L> {
    /// `CreateRecord`, once [`Tx::doctor_action`] has checked the doctor and the ticket.
    pub(super) async fn create_record(
        &mut self,
        args: args::CreateRecord,
        doctor: &Actor,
    ) -> Result<Acted, ContractError> {
        let record = Record {
            record_id: args.record_id,
            treatment_number: args.treatment_number,
            hash_c: args.hash_c,
            size: args.size,
            content_fingerprint: ContentFingerprint(args.content_fingerprint),
            watermark_fingerprint: WatermarkFingerprint(args.watermark_fingerprint),
            created_by: doctor.clone(),
            created_at_ms: self.ctx.timestamp_ms,
            created_tx: self.ctx.tx_id.clone(),
        };
        self.put_json(&keys::record(&record.record_id), &record)
            .await?;
        Ok(Acted {
            reply: Reply::json(&record),
            event_payload: None,
        })
    }

    /// `QueryRecord`, once [`Tx::doctor_action`] has checked the doctor and the ticket.
    pub(super) async fn query_record(
        &mut self,
        args: args::QueryRecord,
    ) -> Result<Acted, ContractError> {
        let record = match self.record_state(&args.record_id).await? {
            RecordState::Active { record } if record.treatment_number == args.treatment_number => {
                record
            }
            RecordState::Active { .. } => return Err(ContractError::UnknownRecord(args.record_id)),
            RecordState::Deleted { .. } => {
                return Err(ContractError::RecordDeleted(args.record_id));
            }
        };
        Ok(Acted {
            reply: Reply::json(&record),
            event_payload: None,
        })
    }

    pub(super) async fn get_record(
        &mut self,
        args: args::GetRecord,
    ) -> Result<Reply, ContractError> {
        self.hospital_member()?;
        Ok(Reply::json(&self.record_state(&args.record_id).await?))
    }

    pub(super) async fn get_record_history(
        &mut self,
        args: args::GetRecordHistory,
    ) -> Result<Reply, ContractError> {
        self.hospital_member()?;
        let history: Vec<RecordChange> = self
            .ledger
            .history(&keys::record(&args.record_id))
            .await?
            .into_iter()
            .map(|m| RecordChange {
                tx_id: m.tx_id,
                timestamp_ms: m.timestamp_ms,
                deleted: m.value.is_none(),
            })
            .collect();
        if history.is_empty() {
            return Err(ContractError::UnknownRecord(args.record_id));
        }
        Ok(Reply::json(&history))
    }

    pub(super) async fn delete_record(
        &mut self,
        args: args::DeleteRecord,
    ) -> Result<Reply, ContractError> {
        let args::DeleteRecord {
            record_id,
            nonce,
            patient_signature,
        } = args;
        let submitter = self.hospital_member()?;
        let digest = medcert_eip712::deletion_digest(&self.ctx.channel, &record_id, nonce);
        let signer = medcert_eip712::recover_signer(&digest, &patient_signature)
            .map(|address| format!("0x{}", hex::encode(address)))
            .map_err(|e| ContractError::Malformed {
                name: "patientSignature",
                reason: e.to_string(),
            })?;
        let nonce_key = keys::deletion_nonce(&signer, nonce);
        let record = match self.record_state(&record_id).await? {
            RecordState::Active { record } => Some(record),
            RecordState::Deleted { .. } => None,
        };
        if self.ledger.get(&nonce_key).await?.is_some() {
            return Err(ContractError::ReplayedNonce {
                patient: signer,
                nonce,
            });
        }
        let Some(record) = record else {
            return Err(ContractError::RecordDeleted(record_id));
        };
        let patient = self.patient(&record.treatment_number).await?;
        if patient.eth_address != signer {
            return Err(ContractError::Forbidden(format!(
                "the deletion request for record {record_id:?} is not signed by its patient"
            )));
        }
        let tombstone = Tombstone {
            record_id: record_id.clone(),
            treatment_number: record.treatment_number.clone(),
            deleted_by: signer,
            submitted_by: submitter.clone(),
            nonce,
            deleted_at_ms: self.ctx.timestamp_ms,
            deleted_tx: self.ctx.tx_id.clone(),
        };
        self.ledger.delete(&keys::record(&record_id)).await?;
        self.put_json(&keys::tombstone(&record_id), &tombstone)
            .await?;
        self.ledger
            .put(&nonce_key, self.ctx.tx_id.as_bytes().to_vec())
            .await?;
        self.audit(
            Function::DeleteRecord.name(),
            &submitter,
            Some(&record_id),
            Some(&record.treatment_number),
            None,
        )
        .await?;
        let reply = Reply::json(&tombstone);
        let event = RecordDeleted {
            tombstone,
            hash_c: record.hash_c,
        };
        Ok(reply.with_event(events::RECORD_DELETED, &event))
    }

    pub(super) async fn record_state(
        &mut self,
        record_id: &str,
    ) -> Result<RecordState, ContractError> {
        if let Some(record) = self.get_json(&keys::record(record_id)).await? {
            return Ok(RecordState::Active { record });
        }
        match self.get_json(&keys::tombstone(record_id)).await? {
            Some(tombstone) => Ok(RecordState::Deleted { tombstone }),
            None => Err(ContractError::UnknownRecord(record_id.to_owned())),
        }
    }
}
