//! Driving one message from `Received` to `Answered`, one committed step at a time.

use std::time::Duration;

use medcert_ethereum::ethers::types::H256;
use prost::Message;

use crate::ethereum::{ChainFault, Mined, SendOutcome};
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
    /// waiting while a chain it needs is frozen, and failing it (with proof) once its
    /// deadline passed on the certificate chain unserved.
    pub(crate) async fn drive(&self, key: &str, mut own: Stopwatch) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.step(key, &mut own).await {
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

    async fn step(&self, key: &str, own: &mut Stopwatch) -> Result<Next, RelayError> {
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
                self.ethereum_step(&record, &side, own)
                    .await
                    .map(|_| Next::Continue)
            }
            Status::EthConfirmed {
                result,
                receipt,
                proof,
            } => {
                self.check_frozen(&record, &side, false)?;
                let outcome = Outcome::Completed { result, proof };
                self.answer_step(&record, &side, outcome, receipt).await
            }
            Status::Failing {
                reason,
                rollback,
                proof,
            } => {
                self.check_frozen(&record, &side, false)?;
                let message = self.failure_message(&record, &reason, rollback);
                let outcome = Outcome::Failed { reason, proof };
                self.answer_step(&record, &side, outcome, message).await
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
        own: &mut Stopwatch,
    ) -> Result<(), RelayError> {
        let key = record.key();
        own.start();
        let checked = decode_request(record).and_then(|request| {
            check_consent(&request, &side.hospital.id)
                .map(|consent| (consent, request.deadline))
                .inspect_err(|reason| {
                    tracing::warn!(request = %key, %reason, "request cannot be served");
                })
        });
        let (consent, deadline) = match checked {
            Ok(checked) => checked,
            Err(reason) => {
                self.store.transition(
                    &key,
                    Status::Failing {
                        reason,
                        rollback: false,
                        proof: None,
                    },
                )?;
                own.stop();
                return Ok(());
            }
        };
        own.stop();
        let id = request_id(&record.channel, record.index);
        // A leg that waits this long (its transaction held back) looks at the deadline.
        let outcome = tokio::time::timeout(
            self.request_timeout,
            self.ethereum_leg(record, &key, id, deadline, &consent, own),
        )
        .await;
        match outcome {
            Ok(result) => result,
            Err(_) => self.past_deadline(record, id, deadline).await,
        }
    }

    /// Sends (unless served already), confirms and proves. Each call makes one transition.
    async fn ethereum_leg(
        &self,
        record: &MessageRecord,
        key: &str,
        id: [u8; 32],
        deadline: u64,
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
                match self.eth.prepare(id, deadline, consent).await? {
                    SendOutcome::Signed(signed) => {
                        // Recorded before it is sent: after a crash the relay looks for
                        // this very transaction (the node may never have had it).
                        self.eth_sent(record, key, signed.tx_hash).await?;
                        self.eth.broadcast(&signed).await?;
                        tracing::info!(request = key, tx = ?signed.tx_hash, "serveRecovery sent");
                        self.pause(PauseStep::EthBroadcast, record.index).await;
                    }
                    SendOutcome::AlreadyServed => {
                        // Served by a transaction not mined yet (the contract refused
                        // against the pending state): the next step finds it mined.
                        if let Some(tx) = self.eth.served_by(id, floor).await? {
                            self.eth_sent(record, key, tx).await?;
                        }
                    }
                    SendOutcome::DeadlinePassed => {
                        return self.past_deadline(record, id, deadline).await;
                    }
                    SendOutcome::Refused(reason) => {
                        tracing::info!(request = key, %reason, "certificate chain refused the request");
                        self.store.transition(
                            key,
                            Status::Failing {
                                reason,
                                rollback: false,
                                proof: None,
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
                let receipt = match self.eth.mined(&self.store, tx).await? {
                    Ok(Mined::Proven(receipt)) => receipt,
                    Ok(Mined::Dropped) => {
                        let next = self.without_tx(id, floor).await?;
                        tracing::warn!(request = key, tx = ?tx, next = next.name(), "serveRecovery transaction dropped");
                        self.store.transition(key, next)?;
                        return Ok(());
                    }
                    Err(fault) => return Err(self.freeze_ethereum(record, fault)),
                };
                if !receipt.receipt.success {
                    // Mined but reverted (proven so): state moved between estimation and
                    // mining (another relay served it first, or the patient revoked).
                    let next = self.without_tx(id, floor).await?;
                    tracing::warn!(request = key, tx = ?tx, "serveRecovery reverted on chain; checking again");
                    self.store.transition(key, next)?;
                    return Ok(());
                }
                own.start();
                let proven =
                    match self
                        .eth
                        .served(&receipt, id, consent, &record.channel, record.index)
                    {
                        Ok(proven) => proven,
                        Err(fault) => {
                            own.stop();
                            return Err(self.freeze_ethereum(record, fault));
                        }
                    };
                self.store.transition(
                    key,
                    Status::EthConfirmed {
                        result: proven.result,
                        receipt: hex::encode(&proven.receipt_message),
                        proof: proven.proof,
                    },
                )?;
                own.stop();
                tracing::info!(request = key, tx = ?tx, block = proven.block_number, "receipt proven against a verified header");
                self.pause(PauseStep::EthReceipt, record.index).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Once the request's deadline passed on the certificate chain: fail it with the
    /// proof that it is unserved in a verified block past the deadline (the contract
    /// refuses it from then on, so no pending transaction can contradict the answer), or
    /// follow the transaction that served it. Before a final block is past the deadline,
    /// nothing changes (an idle development chain is nudged to mine one).
    async fn past_deadline(
        &self,
        record: &MessageRecord,
        id: [u8; 32],
        deadline: u64,
    ) -> Result<(), RelayError> {
        let key = record.key();
        match self.eth.prove_unserved(&self.store, id, deadline).await? {
            Err(fault) => Err(self.freeze_ethereum(record, fault)),
            Ok(Some(proof)) => {
                let reason = format!(
                    "deadline {deadline} passed unserved (proven at certificate-chain block {}, time {})",
                    proof.block_number, proof.block_time
                );
                tracing::warn!(request = %key, %reason, "failing the request");
                self.store.transition(
                    &key,
                    Status::Failing {
                        reason,
                        rollback: true,
                        proof: Some(proof),
                    },
                )?;
                Ok(())
            }
            Ok(None) => {
                let floor = self
                    .store
                    .ethereum_mark()?
                    .map(|m| m.floor)
                    .unwrap_or_default();
                match self.eth.served_by(id, floor).await? {
                    Some(tx) => {
                        let sent = Status::EthSent {
                            tx_hash: format!("{tx:#x}"),
                        };
                        if record.status != sent {
                            self.store.transition(&key, sent)?;
                        }
                    }
                    None if now_ms() / 1000 > deadline => self.eth.nudge().await?,
                    None => {}
                }
                Ok(())
            }
        }
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
            RecoveryState::Completed { result, tx, .. } => {
                let proof = match (status.proof, &outcome) {
                    (Some(proof), _) => proof,
                    // Answered before proofs were recorded: keep what this relay proved.
                    (None, Outcome::Completed { proof, .. }) => proof.clone(),
                    (None, Outcome::Failed { .. }) => {
                        return Err(RelayError::CorruptMessage {
                            key,
                            reason: "the channel's completion records no proof".into(),
                        });
                    }
                };
                (Outcome::Completed { result, proof }, tx)
            }
            RecoveryState::Failed { reason, tx, .. } => (
                Outcome::Failed {
                    reason,
                    proof: status.proof,
                },
                tx,
            ),
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

/// Runs `attempt` until it finishes, starting it again `pause` after a panic (logged):
/// whatever in one message's handling panics, its message is retried and the relay's
/// other messages are not held up.
pub(crate) async fn supervised<F, Fut>(key: &str, pause: Duration, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt;
    while let Err(panic) = std::panic::AssertUnwindSafe(attempt()).catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(request = key, panic = %what, "handling the message panicked; retrying it");
        tokio::time::sleep(pause).await;
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
            deadline: 4_000_000_000,
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

    #[tokio::test]
    async fn a_panicking_message_is_retried_while_the_others_are_served() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let attempts = AtomicU32::new(0);
        let served = AtomicU32::new(0);
        let failing = supervised("fabric:hospital1/1", Duration::from_millis(10), || async {
            // A node's answer that a step did not expect, twice.
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("unexpected answer");
            }
        });
        let others = async {
            for i in 2..5 {
                supervised(&format!("fabric:hospital1/{i}"), Duration::ZERO, || async {
                    served.fetch_add(1, Ordering::SeqCst);
                })
                .await;
            }
        };
        tokio::join!(failing, others);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(served.load(Ordering::SeqCst), 3);
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
