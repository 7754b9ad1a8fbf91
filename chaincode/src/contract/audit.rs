//! The audit trail: one entry per action, kept under both its record and its patient.

use medcert_hospital_api::AuditEntry;
use medcert_hospital_api::args::{self, AuditKind};

use super::{ContractError, Reply, Tx, keys, parse_json};
use crate::ledger::Ledger;
use medcert_hospital_api::Actor;

impl<L: Ledger> Tx<'_, L> {
    pub(super) async fn get_audit(&mut self, args: args::GetAudit) -> Result<Reply, ContractError> {
        self.hospital_member()?;
        let start = keys::audit_prefix(args.kind.as_str(), &args.id);
        let end = format!("{start}{}", keys::RANGE_END);
        let entries = self
            .ledger
            .range(&start, &end)
            .await?
            .into_iter()
            .map(|(key, value)| parse_json::<AuditEntry>(&key, &value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reply::json(&entries))
    }

    /// Records `action` by `actor` under the record and the patient it concerns, naming
    /// the password ticket (its nonce, hex) the action carried, if any.
    pub(super) async fn audit(
        &mut self,
        action: &str,
        actor: &Actor,
        record_id: Option<&str>,
        treatment_number: Option<&str>,
        ticket: Option<String>,
    ) -> Result<AuditEntry, ContractError> {
        let entry = AuditEntry {
            action: action.to_owned(),
            actor: actor.clone(),
            record_id: record_id.map(str::to_owned),
            treatment_number: treatment_number.map(str::to_owned),
            tx_id: self.ctx.tx_id.clone(),
            timestamp_ms: self.ctx.timestamp_ms,
            ticket,
        };
        let subjects = [
            (AuditKind::Record, record_id),
            (AuditKind::Patient, treatment_number),
        ];
        for (kind, id) in subjects {
            if let Some(id) = id {
                let key = keys::audit(kind.as_str(), id, self.ctx.timestamp_ms, &self.ctx.tx_id);
                self.put_json(&key, &entry).await?;
            }
        }
        Ok(entry)
    }
}
