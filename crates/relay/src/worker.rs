//! Driving one message from `Received` to `Answered`, one committed step at a time.

use std::time::{Duration, Instant};

use medcert_ethereum::ethers::types::H256;
use prost::Message;

use crate::ethereum::{ChainFault, SendOutcome};
use crate::fabric::HospitalSide;
use crate::metrics::Metrics;
use crate::proto::{Interchain, interchain};
use crate::store::{MessageRecord, Outcome, Status};
use crate::{
    Core, ErrorChain, MESSAGE_VERSION, PauseStep, RelayError, Stopwatch, now_ms, request_id,
};
use medcert_eip712::{SignedConsent, hospital_id};
use medcert_hospital_api::{InterchainRequest, RecoveryState};

/// What a step asks the driver to do next.
enum Next {
    /// Read the status again and take the next step.
    Continue,
    /// The message is answered.
    Done(Outcome),
}

impl Core {
    /// Takes the message `key` through its remaining steps, retrying transient errors,
    /// waiting while a chain it needs is frozen, and rolling it back after the timeout.
    pub(crate) async fn drive(&self, key: &str, mut own: Stopwatch) {
        let mut deadline = Instant::now() + self.request_timeout;
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.step(key, deadline, &mut own).await {
                Ok(Next::Continue) => backoff = Duration::from_millis(200),
                Ok(Next::Done(outcome)) => {
                    match outcome {
                        Outcome::Completed { .. } => Metrics::count(&self.metrics.served),
                        Outcome::Failed { .. } => Metrics::count(&self.metrics.failed),
                    }
                    self.metrics.overhead.observe(own.total());
                    if let Ok(Some(record)) = self.store.message(key) {
                        let elapsed = now_ms().saturating_sub(record.received_at_ms);
                        self.metrics
                            .end_to_end
                            .observe(Duration::from_millis(elapsed));
                    }
                    return;
                }
                Err(RelayError::Frozen { chain, reason }) => {
                    tracing::debug!(request = key, %chain, %reason, "waiting for the chain to be unfrozen");
                    // Time spent frozen is the operator's, not the request's.
                    deadline = Instant::now() + self.request_timeout;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::warn!(request = key, error = %ErrorChain(&e), "step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn step(
        &self,
        key: &str,
        deadline: Instant,
        own: &mut Stopwatch,
    ) -> Result<Next, RelayError> {
        let record = self
            .store
            .message(key)?
            .ok_or_else(|| RelayError::CorruptMessage {
                key: key.to_owned(),
                reason: "vanished from the store".into(),
            })?;
        let side = self
            .hospitals
            .get(&record.channel)
            .cloned()
            .ok_or_else(|| {
                RelayError::Config(format!(
                    "message {key} belongs to channel {}, which this relay does not serve",
                    record.channel
                ))
            })?;
        match record.status.clone() {
            Status::Received | Status::EthSent { .. } => {
                self.check_frozen(&record, &side, true)?;
                self.ethereum_step(&record, &side, deadline, own)
                    .await
                    .map(|_| Next::Continue)
            }
            Status::EthConfirmed { result, receipt } => {
                self.check_frozen(&record, &side, false)?;
                self.answer_step(&record, &side, Outcome::Completed { result }, receipt)
                    .await
            }
            Status::Failing { reason, rollback } => {
                self.check_frozen(&record, &side, false)?;
                let message = self.failure_message(&record, &reason, rollback);
                self.answer_step(&record, &side, Outcome::Failed { reason }, message)
                    .await
            }
            Status::Answered { outcome, .. } => Ok(Next::Done(outcome)),
        }
    }

    /// Refuses (and records) the message while a chain it needs is frozen. The freeze
    /// file is read on each step, so an operator's unfreeze takes effect at once.
    fn check_frozen(
        &self,
        record: &MessageRecord,
        side: &HospitalSide,
        needs_ethereum: bool,
    ) -> Result<(), RelayError> {
        let state = self.freeze.load()?;
        let chains = [Some(&side.chain), needs_ethereum.then_some(&self.eth.chain)];
        for chain in chains.into_iter().flatten() {
            if let Some(freeze) = state.frozen.get(chain) {
                self.refuse(
                    chain,
                    &freeze.reason,
                    &record.key(),
                    &format!("chain {chain} frozen: {}", freeze.reason),
                )?;
                return Err(RelayError::Frozen {
                    chain: chain.clone(),
                    reason: freeze.reason.clone(),
                });
            }
        }
        Ok(())
    }

    /// Records that transaction `tx` serves the request, then pauses there if told to.
    async fn eth_sent(
        &self,
        record: &MessageRecord,
        key: &str,
        tx: H256,
    ) -> Result<(), RelayError> {
        self.store.transition(
            key,
            Status::EthSent {
                tx_hash: format!("{tx:#x}"),
            },
        )?;
        self.pause(PauseStep::EthSent, record.index).await;
        Ok(())
    }

    /// Where a request goes when its transaction did not serve it: to whichever
    /// transaction did, or back to be sent again.
    async fn without_tx(&self, id: [u8; 32], floor: u64) -> Result<Status, RelayError> {
        Ok(match self.eth.served_by(id, floor).await? {
            Some(other) => Status::EthSent {
                tx_hash: format!("{other:#x}"),
            },
            None => Status::Received,
        })
    }

    fn freeze_ethereum(&self, record: &MessageRecord, fault: ChainFault) -> RelayError {
        let reason = ErrorChain(&fault).to_string();
        if let Err(e) = self.refuse(&self.eth.chain, &reason, &record.key(), &reason) {
            return e;
        }
        RelayError::Frozen {
            chain: self.eth.chain.clone(),
            reason,
        }
    }

    async fn ethereum_step(
        &self,
        record: &MessageRecord,
        side: &HospitalSide,
        deadline: Instant,
        own: &mut Stopwatch,
    ) -> Result<(), RelayError> {
        let key = record.key();
        own.start();
        let checked = decode_request(record).and_then(|request| {
            check_consent(&request, &side.hospital.id).inspect_err(|reason| {
                tracing::warn!(request = %key, %reason, "request cannot be served");
            })
        });
        let consent = match checked {
            Ok(consent) => consent,
            Err(reason) => {
                self.store.transition(
                    &key,
                    Status::Failing {
                        reason,
                        rollback: false,
                    },
                )?;
                own.stop();
                return Ok(());
            }
        };
        own.stop();
        let id = request_id(&record.channel, record.index);
        if Instant::now() >= deadline {
            // Retries of failing steps (an unreachable node) ran out the time.
            return self.timed_out(record, id).await;
        }
        let outcome = tokio::time::timeout_at(
            deadline.into(),
            self.ethereum_leg(record, &key, id, &consent, own),
        )
        .await;
        match outcome {
            Ok(result) => result,
            Err(_) => self.timed_out(record, id).await,
        }
    }

    /// Sends (unless served already), confirms and proves. Each call makes one transition.
    async fn ethereum_leg(
        &self,
        record: &MessageRecord,
        key: &str,
        id: [u8; 32],
        consent: &SignedConsent,
        own: &mut Stopwatch,
    ) -> Result<(), RelayError> {
        let acknowledged = self.freeze.last_unfrozen_ms(&self.eth.chain)?;
        if let Err(fault) = self.eth.check_chain(&self.store, acknowledged).await? {
            return Err(self.freeze_ethereum(record, fault));
        }
        let floor = self
            .store
            .ethereum_mark()?
            .map(|m| m.floor)
            .unwrap_or_default();
        match &record.status {
            Status::Received => {
                if let Some(tx) = self.eth.served_by(id, floor).await? {
                    tracing::info!(request = key, tx = ?tx, "already served on Ethereum (earlier run or another relay)");
                    return self.eth_sent(record, key, tx).await;
                }
                match self.eth.send(id, consent).await? {
                    SendOutcome::Sent(tx) => {
                        tracing::info!(request = key, tx = ?tx, "serveRecovery sent");
                        self.eth_sent(record, key, tx).await?;
                    }
                    SendOutcome::AlreadyServed => {
                        // Served by a transaction not mined yet (the contract refused
                        // against the pending state): the next step finds it mined.
                        if let Some(tx) = self.eth.served_by(id, floor).await? {
                            self.eth_sent(record, key, tx).await?;
                        }
                    }
                    SendOutcome::Refused(reason) => {
                        tracing::info!(request = key, %reason, "certificate chain refused the request");
                        self.store.transition(
                            key,
                            Status::Failing {
                                reason,
                                rollback: false,
                            },
                        )?;
                    }
                }
                Ok(())
            }
            Status::EthSent { tx_hash } => {
                let tx: H256 = tx_hash.parse().map_err(|_| RelayError::CorruptMessage {
                    key: key.to_owned(),
                    reason: format!("transaction hash {tx_hash:?}"),
                })?;
                let Some(receipt) = self.eth.confirmed_receipt(tx).await? else {
                    // The node does not know the transaction: it was dropped.
                    let next = self.without_tx(id, floor).await?;
                    tracing::warn!(request = key, tx = ?tx, next = next.name(), "serveRecovery transaction dropped");
                    self.store.transition(key, next)?;
                    return Ok(());
                };
                if receipt.status != Some(1u64.into()) {
                    // Mined but reverted: state moved between estimation and mining
                    // (another relay served it first, or the patient revoked).
                    let next = self.without_tx(id, floor).await?;
                    tracing::warn!(request = key, tx = ?tx, "serveRecovery reverted on chain; checking again");
                    self.store.transition(key, next)?;
                    return Ok(());
                }
                let proven = match self
                    .eth
                    .prove(&receipt, id, consent, &record.channel, record.index, own)
                    .await?
                {
                    Ok(proven) => proven,
                    Err(fault) => return Err(self.freeze_ethereum(record, fault)),
                };
                own.start();
                self.store.transition(
                    key,
                    Status::EthConfirmed {
                        result: proven.result,
                        receipt: hex::encode(&proven.receipt_message),
                    },
                )?;
                own.stop();
                tracing::info!(request = key, tx = ?tx, block = proven.event.block_number, "receipt proven against receiptsRoot");
                self.pause(PauseStep::EthReceipt, record.index).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// After the timeout: roll back unless the request turns out served. A request whose
    /// transaction was sent is rolled back only once the chain says it is not served
    /// (otherwise the transaction could still land after the rollback).
    async fn timed_out(&self, record: &MessageRecord, id: [u8; 32]) -> Result<(), RelayError> {
        let key = record.key();
        let secs = self.request_timeout.as_secs();
        let floor = self
            .store
            .ethereum_mark()?
            .map(|m| m.floor)
            .unwrap_or_default();
        match self.eth.served_by(id, floor).await {
            Ok(Some(tx)) => {
                if record.status
                    != (Status::EthSent {
                        tx_hash: format!("{tx:#x}"),
                    })
                {
                    self.store.transition(
                        &key,
                        Status::EthSent {
                            tx_hash: format!("{tx:#x}"),
                        },
                    )?;
                }
                Ok(())
            }
            Ok(None) => self.roll_back(
                &key,
                format!("relay timeout after {secs}s: serveRecovery was not confirmed"),
            ),
            Err(e) if record.status == Status::Received => self.roll_back(
                &key,
                format!(
                    "relay timeout after {secs}s: certificate chain unreachable ({})",
                    ErrorChain(&e)
                ),
            ),
            Err(e) => Err(e),
        }
    }

    fn roll_back(&self, key: &str, reason: String) -> Result<(), RelayError> {
        let reason: String = reason
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(400)
            .collect();
        tracing::warn!(request = key, %reason, "rolling back");
        self.store.transition(
            key,
            Status::Failing {
                reason,
                rollback: true,
            },
        )?;
        Ok(())
    }

    fn failure_message(&self, record: &MessageRecord, reason: &str, rollback: bool) -> String {
        let kind = if rollback {
            interchain::Type::Rollback
        } else {
            interchain::Type::FailureReceipt
        };
        hex::encode(
            Interchain {
                source_chain: self.eth.chain.clone(),
                destination_chain: crate::fabric_chain(&record.channel),
                index: record.index,
                r#type: kind as i32,
                payload: reason.as_bytes().to_vec(),
                proof: Vec::new(),
                timestamp_ms: now_ms(),
                version: MESSAGE_VERSION,
            }
            .encode_to_vec(),
        )
    }

    /// Writes the answer on the channel unless it already has one, then records it.
    async fn answer_step(
        &self,
        record: &MessageRecord,
        side: &HospitalSide,
        outcome: Outcome,
        message: String,
    ) -> Result<Next, RelayError> {
        let key = record.key();
        let status = side.recovery_status(record.index).await?;
        let wanted = std::mem::discriminant(&outcome);
        let (recorded, fabric_tx) = match status.outcome {
            RecoveryState::Pending => {
                let tx = side.answer(record.index, &outcome).await?;
                tracing::info!(request = %key, fabric_tx = %tx, ?outcome, "answer committed on the channel");
                (outcome, tx)
            }
            RecoveryState::Completed { result, tx, .. } => (Outcome::Completed { result }, tx),
            RecoveryState::Failed { reason, tx, .. } => (Outcome::Failed { reason }, tx),
        };
        if std::mem::discriminant(&recorded) != wanted {
            tracing::warn!(request = %key, ?recorded, "the channel already holds another answer (another relay); keeping it");
        }
        // The channel holds the answer (ours or another relay's); not yet recorded here.
        self.pause(PauseStep::FabricSubmitted, record.index).await;
        self.store.transition(
            &key,
            Status::Answered {
                outcome: recorded.clone(),
                fabric_tx,
                message,
            },
        )?;
        tracing::info!(request = %key, outcome = ?recorded, "answered");
        Ok(Next::Done(recorded))
    }
}

fn decode_request(record: &MessageRecord) -> Result<InterchainRequest, String> {
    let bytes =
        hex::decode(&record.request).map_err(|e| format!("stored request is not hex: {e}"))?;
    let message = Interchain::decode(bytes.as_slice())
        .map_err(|e| format!("stored request is malformed: {e}"))?;
    serde_json::from_slice(&message.payload)
        .map_err(|e| format!("malformed InterchainRequest: {e}"))
}

/// The patient's signed consent, checked against the request it travels with.
fn check_consent(request: &InterchainRequest, hospital: &str) -> Result<SignedConsent, String> {
    let bytes =
        hex::decode(&request.consent).map_err(|_| "malformed consent: not hex".to_owned())?;
    let consent =
        SignedConsent::from_bytes(&bytes).map_err(|e| format!("malformed consent: {e}"))?;
    let certificate: u64 = request
        .certificate_id
        .parse()
        .map_err(|_| format!("malformed certificate id {:?}", request.certificate_id))?;
    if consent.consent.certificate_id != certificate {
        return Err(format!(
            "consent is for certificate {}, the request for {certificate}",
            consent.consent.certificate_id
        ));
    }
    // Without this, a hospital could spend another hospital's consent on its own channel.
    let expected = hospital_id(hospital)
        .ok_or_else(|| format!("hospital id {hospital:?} has no on-chain form"))?;
    if consent.consent.hospital != expected {
        return Err(format!("consent is for another hospital, not {hospital}"));
    }
    Ok(consent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medcert_eip712::Consent;
    use medcert_hospital_api::{Actor, Role};

    fn request(consent: &SignedConsent, certificate: &str) -> InterchainRequest {
        InterchainRequest {
            channel: "hospital1".into(),
            index: 1,
            record_id: "R-1".into(),
            certificate_id: certificate.into(),
            consent: hex::encode(consent.to_bytes()),
            requesting_hospital: "hospital1".into(),
            doctor: Actor {
                msp_id: "Hospital1MSP".into(),
                name: "User1@hospital1.medcert.local".into(),
                role: Role::Client,
                cert_id: "00".into(),
            },
        }
    }

    fn consent(hospital: &str, certificate: u64) -> SignedConsent {
        SignedConsent {
            consent: Consent {
                hospital: hospital_id(hospital).unwrap(),
                certificate_id: certificate,
                expiry: 10,
                nonce: 1,
            },
            signature: [1; 65],
        }
    }

    #[test]
    fn consents_must_match_hospital_and_certificate() {
        let good = consent("hospital1", 7);
        assert_eq!(
            check_consent(&request(&good, "7"), "hospital1").unwrap(),
            good
        );
        let error =
            check_consent(&request(&consent("hospital2", 7), "7"), "hospital1").unwrap_err();
        assert!(error.contains("another hospital"), "{error}");
        let error = check_consent(&request(&good, "8"), "hospital1").unwrap_err();
        assert!(error.contains("certificate 7"), "{error}");
        let mut short = request(&good, "7");
        short.consent.truncate(20);
        assert!(
            check_consent(&short, "hospital1")
                .unwrap_err()
                .starts_with("malformed consent")
        );
        let mut not_hex = request(&good, "7");
        not_hex.consent = "zz".into();
        assert!(
            check_consent(&not_hex, "hospital1")
                .unwrap_err()
                .starts_with("malformed consent")
        );
    }
}
