//! The relay's side of the certificate chain: serving a request once, waiting until its
//! block is final, proving the receipt against a verified header, and noticing a chain
//! that was reset or reorganised under the relay.
//!
//! Headers are verified by [`HashChainVerifier`] (each header's hash recomputed, linked
//! by parent hash to the checkpoint persisted in the store); see
//! [`medcert_ethereum::proof`] for what that proves on anvil and what it cannot.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy_primitives::B256;
use medcert_eip712::SignedConsent;
use medcert_ethereum::bindings::{MedicalCertificateErrors, RecoveryServedFilter};
use medcert_ethereum::ethers::abi::RawLog;
use medcert_ethereum::ethers::contract::EthEvent;
use medcert_ethereum::ethers::providers::{Http, Middleware, Provider};
use medcert_ethereum::ethers::signers::Signer;
use medcert_ethereum::ethers::types::{BlockNumber, Bytes, H256, TransactionRequest, U256};
use medcert_ethereum::proof::{
    HashChainVerifier, HeaderVerifier, ProofError, VerifiedHeader, VerifiedReceipt, prove_receipt,
    prove_storage, served_request_slot,
};
use medcert_ethereum::{EthereumError, MedicalCertificateClient};
use medcert_hospital_api::{
    ChainProof, ContentFingerprint, ProofKind, RecoveryResult, WatermarkFingerprint,
};
use prost::Message;
use tokio::sync::Mutex;

use crate::proto::{EthereumProof, Interchain, interchain};
use crate::store::{EthereumMark, Store};
use crate::{RelayError, now_ms};

/// The gas limit of `serveRecovery`: its cost is bounded (fixed-size calldata, a few
/// slots: 72 500 gas in the README's gas table, about 17 000 more when the consent's nonce
/// opens a fresh bitmap word), so a fixed limit with room over it replaces an estimate per
/// request. Only the gas used is paid.
const SERVE_RECOVERY_GAS_LIMIT: u64 = 200_000;

/// A `serveRecovery` transaction signed with the relay's next nonce, not yet sent: its
/// hash is recorded before it is.
#[derive(Debug)]
pub struct Signed {
    /// The transaction's hash.
    pub tx_hash: H256,
    raw: Bytes,
}

/// What preparing `serveRecovery` came to.
#[derive(Debug)]
pub enum SendOutcome {
    /// Signed, to be recorded and then broadcast.
    Signed(Signed),
    /// Another relay (or an earlier run) served it already.
    AlreadyServed,
    /// The request's deadline passed (as of the pending block): fail it only once a
    /// verified block proves it unserved past the deadline.
    DeadlinePassed,
    /// The contract refused the consent: a one-line reason for FailRecovery.
    Refused(String),
}

/// A verified failure of the chain itself: freeze it.
#[derive(Debug, thiserror::Error)]
pub enum ChainFault {
    /// The chain is not the one the relay saw before, and how.
    #[error("chain reset: {0}")]
    Reset(String),
    /// A header, receipt or storage proof failed, or the node contradicted a verified
    /// header.
    #[error("proof failed")]
    Proof(#[source] ProofError),
    /// The proven receipt does not hold what the relay's transaction must have emitted.
    #[error("receipt of {tx:?} does not hold the served request: {reason}")]
    Inconsistent {
        /// The transaction.
        tx: H256,
        /// What disagrees.
        reason: String,
    },
}

/// Splits a proof's failure into a chain fault (freeze) and anything else (retry).
pub(crate) fn judged<T>(
    result: Result<T, ProofError>,
) -> Result<Result<T, ChainFault>, RelayError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error.is_chain_fault() => Ok(Err(ChainFault::Proof(error))),
        Err(error) => Err(RelayError::Proof(error)),
    }
}

/// The relay's proven outcome of one request.
#[derive(Debug, Clone)]
pub struct ProvenServe {
    /// The block the `RecoveryServed` event was proven in.
    pub block_number: u64,
    /// The CompleteRecovery result JSON (the cross-helper contract).
    pub result: String,
    /// The SUCCESS_RECEIPT interchain message, encoded.
    pub receipt_message: Vec<u8>,
    /// What was proven, for the channel's record.
    pub proof: ChainProof,
}

/// Where a sent transaction stands.
#[derive(Debug)]
pub enum Mined {
    /// The node does not know the transaction: it was dropped.
    Dropped,
    /// Mined in a final block and proven there.
    Proven(Box<VerifiedReceipt>),
}

type Verifier = HashChainVerifier<Provider<Http>>;

/// The certificate chain as the relay uses it: one relay account, one contract.
pub struct EthereumSide {
    /// The contract, as the relay account.
    pub client: MedicalCertificateClient,
    provider: Provider<Http>,
    /// The chain id as the relay names it (`ethereum:<id>`).
    pub chain: String,
    chain_id: u64,
    confirmations: u64,
    poll: Duration,
    /// Replaced (with no checkpoint) when an operator unfreezes the chain.
    verifier: RwLock<Arc<Verifier>>,
    /// The relay account's next nonce as this relay counts it (`None`: ask the node).
    /// Only taking a nonce and signing are serialised: sends do not wait for each other
    /// or for mining. Reset after a failed broadcast (a gap is then filled by the next
    /// transaction; another process on the same account makes the node refuse ours).
    nonce: Mutex<Option<U256>>,
    /// Reading the head and comparing it with the last one seen must not interleave.
    watch_lock: Mutex<()>,
}

fn rpc(e: impl std::error::Error + Send + Sync + 'static) -> RelayError {
    RelayError::Ethereum(EthereumError::Rpc(Box::new(e)))
}

/// A number from the node that must fit 64 bits.
fn to_u64(value: U256, what: &'static str) -> Result<u64, RelayError> {
    if value > U256::from(u64::MAX) {
        return Err(RelayError::Ethereum(EthereumError::Overflow { what }));
    }
    Ok(value.low_u64())
}

impl EthereumSide {
    /// `confirmations` counts the transaction's own block; the header checkpoint is the
    /// one persisted in `store` (none on a new store: the chain's final head at the
    /// first check is trusted).
    pub fn new(
        client: MedicalCertificateClient,
        chain_id: u64,
        confirmations: usize,
        store: &Store,
    ) -> Result<Self, RelayError> {
        let config = client.config().clone();
        let provider = Provider::<Http>::try_from(config.rpc_url.as_str())
            .map_err(|source| RelayError::RpcUrl {
                url: config.rpc_url.clone(),
                source: Box::new(source),
            })?
            .interval(config.poll_interval);
        let confirmations = confirmations.max(1) as u64;
        let verifier = HashChainVerifier::new(
            provider.clone(),
            confirmations,
            store.ethereum_checkpoint()?,
        );
        Ok(Self {
            client,
            provider,
            chain: crate::ethereum_chain(chain_id),
            chain_id,
            confirmations,
            poll: config.poll_interval,
            verifier: RwLock::new(Arc::new(verifier)),
            nonce: Mutex::new(None),
            watch_lock: Mutex::new(()),
        })
    }

    fn verifier(&self) -> Arc<Verifier> {
        self.verifier
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Persists the verifier's checkpoint (the newest final header it verified).
    async fn save_checkpoint(&self, store: &Store) -> Result<(), RelayError> {
        if let Some(checkpoint) = self.verifier().checkpoint().await {
            store.set_ethereum_checkpoint(&checkpoint)?;
        }
        Ok(())
    }

    /// Compares the node with what the relay saw before: same chain id, same genesis, a
    /// head that never goes back, and every final header linked to the persisted
    /// checkpoint. `acknowledged_after_ms`: the operator unfroze this chain at that time,
    /// so the chain as it is now becomes the reference.
    pub async fn check_chain(
        &self,
        store: &Store,
        acknowledged_after_ms: Option<u64>,
    ) -> Result<Result<(), ChainFault>, RelayError> {
        let _guard = self.watch_lock.lock().await;
        let chain_id = to_u64(
            self.provider.get_chainid().await.map_err(rpc)?,
            "the chain id",
        )?;
        let genesis = self
            .provider
            .get_block(0u64)
            .await
            .map_err(rpc)?
            .and_then(|b| b.hash)
            .ok_or_else(|| RelayError::Config("the Ethereum node has no genesis block".into()))?;
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(rpc)?
            .as_u64();
        let seen = ObservedChain {
            chain_id,
            genesis_hash: format!("{genesis:#x}"),
            head,
        };
        let mark = store.ethereum_mark()?;
        let adopting = mark
            .as_ref()
            .is_some_and(|m| acknowledged_after_ms.is_some_and(|at| at > m.updated_at_ms));
        let next = match judge_chain(
            self.chain_id,
            mark.as_ref(),
            &seen,
            acknowledged_after_ms,
            now_ms(),
        ) {
            Ok(next) => next,
            Err(reason) => return Ok(Err(ChainFault::Reset(reason))),
        };
        if adopting {
            tracing::warn!(chain = %self.chain, genesis = %next.genesis_hash, head, "operator unfroze the chain: adopting it as it is now");
            store.clear_ethereum_checkpoint()?;
            let fresh = HashChainVerifier::new(self.provider.clone(), self.confirmations, None);
            *self
                .verifier
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        }
        let verified = judged(self.verifier().final_head().await.map(|_| ()));
        self.save_checkpoint(store).await?;
        match verified {
            Ok(Ok(())) => {}
            Ok(Err(fault)) => return Ok(Err(fault)),
            // A chain still shorter than the confirmations has nothing to check yet.
            Err(RelayError::Proof(ProofError::NotFinal { .. })) => {}
            Err(e) => return Err(e),
        }
        store.set_ethereum_mark(&next)?;
        Ok(Ok(()))
    }

    /// The transaction that served `request_id`, if any: the contract's `served`
    /// first, then its `RecoveryServed` log from `floor` on (from the first block if it
    /// is not there).
    pub async fn served_by(
        &self,
        request_id: [u8; 32],
        floor: u64,
    ) -> Result<Option<H256>, RelayError> {
        if self.client.served_certificate(request_id).await?.is_none() {
            return Ok(None);
        }
        let mut event = self.client.served_recovery(request_id, floor).await?;
        if event.is_none() && floor > 0 {
            // Another relay may have served it before this store first saw the chain.
            event = self.client.served_recovery(request_id, 0).await?;
        }
        event.map(|e| Some(e.transaction_hash)).ok_or_else(|| {
            RelayError::Config(format!(
                "request 0x{} is served on the contract but no RecoveryServed log of it exists; is the contract address right?",
                hex::encode(request_id)
            ))
        })
    }

    /// Prepares `serveRecovery` for `request_id` with the hospital's `deadline` and the
    /// patient's consent: estimates it (a refusal sends nothing), then signs it with the
    /// relay's next nonce. Many requests prepare at once; only the nonce is taken in turn.
    pub async fn prepare(
        &self,
        request_id: [u8; 32],
        deadline: u64,
        consent: &SignedConsent,
    ) -> Result<SendOutcome, RelayError> {
        let call = match self
            .client
            .serve_recovery_call(request_id, deadline, &consent.consent, &consent.signature)
            .await
        {
            Ok(call) => call,
            // The certificate the node reports is not the committed one.
            Err(EthereumError::Refused(refusal)) => {
                return Ok(SendOutcome::Refused(refusal_reason(refusal)));
            }
            Err(error @ EthereumError::UnknownCertificate(_)) => {
                return Ok(SendOutcome::Refused(format!(
                    "unknown certificate ({error})"
                )));
            }
            Err(error) => return Err(RelayError::Ethereum(error)),
        };
        // One run of the call against the pending state shows a refusal before anything
        // is signed; a gas estimate would run it several times over (anvil searches for
        // the limit) for a figure the fixed limit below already bounds.
        match call.clone().block(BlockNumber::Pending).call().await {
            Ok(()) => {}
            Err(error) => {
                return match error.decode_contract_revert::<MedicalCertificateErrors>() {
                    Some(MedicalCertificateErrors::RequestAlreadyServed(_)) => {
                        Ok(SendOutcome::AlreadyServed)
                    }
                    Some(MedicalCertificateErrors::DeadlinePassed(_)) => {
                        Ok(SendOutcome::DeadlinePassed)
                    }
                    Some(refusal) => Ok(SendOutcome::Refused(refusal_reason(refusal))),
                    None => Err(rpc(error)),
                };
            }
        };
        let signer = self.client.contract().client();
        let mut tx = call.tx.clone();
        tx.set_gas(SERVE_RECOVERY_GAS_LIMIT);
        // The fees and chain id; the nonce is set below, in turn.
        tx.set_nonce(U256::zero());
        signer.fill_transaction(&mut tx, None).await.map_err(rpc)?;
        let mut next = self.nonce.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            None => self
                .provider
                .get_transaction_count(signer.address(), Some(BlockNumber::Pending.into()))
                .await
                .map_err(rpc)?,
        };
        tx.set_nonce(nonce);
        let signature = signer.signer().sign_transaction(&tx).await.map_err(rpc)?;
        *next = Some(nonce + 1);
        Ok(SendOutcome::Signed(Signed {
            tx_hash: tx.hash(&signature),
            raw: tx.rlp_signed(&signature),
        }))
    }

    /// Sends a signed transaction (again, if the node already has it: harmless).
    pub async fn broadcast(&self, signed: &Signed) -> Result<(), RelayError> {
        match self.provider.send_raw_transaction(signed.raw.clone()).await {
            Ok(_) => Ok(()),
            // This very transaction (same hash) is already there.
            Err(error)
                if ["already known", "already imported"]
                    .iter()
                    .any(|known| error.to_string().to_lowercase().contains(known)) =>
            {
                Ok(())
            }
            Err(error) => {
                // The nonce may be unused (a gap) or taken by another process: ask the
                // node for the next one from now on.
                *self.nonce.lock().await = None;
                Err(rpc(error))
            }
        }
    }

    /// Has an idle development chain (anvil mines only on a transaction) mine a block,
    /// with a transfer of nothing to the relay's own account, so that its time can pass a
    /// request's deadline; a chain with its own block time never needs it.
    pub async fn nudge(&self) -> Result<(), RelayError> {
        let mut next = self.nonce.lock().await;
        let transfer = TransactionRequest::new()
            .to(self.client.sender())
            .value(0u64);
        self.client
            .contract()
            .client()
            .send_transaction(transfer, None)
            .await
            .map_err(rpc)?;
        // The transfer took the node's next nonce.
        *next = None;
        tracing::debug!(chain = %self.chain, "nudged an idle chain to mine a block");
        Ok(())
    }

    /// Waits until `tx` is mined in a final block and proves its receipt there against
    /// the verified header, or finds that the node dropped it.
    pub async fn mined(
        &self,
        store: &Store,
        tx: H256,
    ) -> Result<Result<Mined, ChainFault>, RelayError> {
        loop {
            let verifier = self.verifier();
            let proven = prove_receipt(&self.provider, &*verifier, B256::from(tx.0)).await;
            self.save_checkpoint(store).await?;
            match judged(proven) {
                Ok(Ok(Some(receipt))) => return Ok(Ok(Mined::Proven(Box::new(receipt)))),
                Ok(Ok(None)) => {
                    if self
                        .provider
                        .get_transaction(tx)
                        .await
                        .map_err(rpc)?
                        .is_none()
                    {
                        return Ok(Ok(Mined::Dropped));
                    }
                }
                Ok(Err(fault)) => return Ok(Err(fault)),
                Err(RelayError::Proof(ProofError::NotFinal { .. })) => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Reads the `RecoveryServed` event of `request_id` from a proven receipt (not from
    /// the node's word) and builds the answer for the hospital's channel.
    pub fn served(
        &self,
        proven: &VerifiedReceipt,
        request_id: [u8; 32],
        consent: &SignedConsent,
        channel: &str,
        index: u64,
    ) -> Result<ProvenServe, ChainFault> {
        let tx = H256(proven.tx_hash.0);
        let inconsistent = |reason: String| ChainFault::Inconsistent { tx, reason };
        if !proven.receipt.success {
            return Err(inconsistent(
                "the proven receipt is a failed transaction".into(),
            ));
        }
        let contract = self.client.address();
        let Some(log) = proven.logs().iter().find(|log| {
            log.address.0.0 == contract.0
                && log.topics.first().map(|t| t.0) == Some(RecoveryServedFilter::signature().0)
                && log.topics.get(1).map(|t| t.0) == Some(request_id)
        }) else {
            return Err(inconsistent(format!(
                "no RecoveryServed log of request 0x{} in the proven receipt",
                hex::encode(request_id)
            )));
        };
        let event = RecoveryServedFilter::decode_log(&RawLog {
            topics: log.topics.iter().map(|t| H256(t.0)).collect(),
            data: log.data.to_vec(),
        })
        .map_err(|e| inconsistent(format!("the proven log is not RecoveryServed: {e}")))?;
        if event.certificate_id != U256::from(consent.consent.certificate_id)
            || event.hospital != consent.consent.hospital
        {
            return Err(inconsistent(
                "the served certificate or hospital differs from the consent".into(),
            ));
        }
        let block_number = proven.header.number();
        let result = recovery_result(
            &event,
            consent.consent.certificate_id,
            block_number,
            tx,
            request_id,
        );
        let result = serde_json::to_string(&result).map_err(|e| inconsistent(e.to_string()))?;
        let proof = EthereumProof {
            chain_id: self.chain_id,
            block_number,
            block_hash: proven.header.hash().to_vec(),
            receipts_root: proven.header.receipts_root().to_vec(),
            tx_index: proven.proof.tx_index,
            receipt: proven.proof.receipt.clone(),
            trie_nodes: proven.proof.nodes.iter().map(|n| n.to_vec()).collect(),
        };
        let receipt_message = Interchain {
            source_chain: self.chain.clone(),
            destination_chain: crate::fabric_chain(channel),
            index,
            r#type: interchain::Type::SuccessReceipt as i32,
            payload: result.clone().into_bytes(),
            proof: proof.encode_to_vec(),
            timestamp_ms: now_ms(),
            version: crate::MESSAGE_VERSION,
        }
        .encode_to_vec();
        Ok(ProvenServe {
            block_number,
            result,
            receipt_message,
            proof: self.chain_proof(ProofKind::Receipt, &proven.header, proven.proof.digest()),
        })
    }

    fn chain_proof(
        &self,
        kind: ProofKind,
        header: &VerifiedHeader,
        digest: [u8; 32],
    ) -> ChainProof {
        ChainProof {
            kind,
            chain_id: self.chain_id,
            block_number: header.number(),
            block_hash: header.hash().0,
            block_time: header.timestamp(),
            digest,
        }
    }

    /// Proves that `request_id` can no longer be served: in the newest final block,
    /// verified, whose time is past `deadline`, the contract's
    /// `served[request_id]` is 0 (a storage proof against the header's state
    /// root). `None` while no final block is past the deadline, or if the request is
    /// served (its transaction is then found and proven instead).
    pub async fn prove_unserved(
        &self,
        store: &Store,
        request_id: [u8; 32],
        deadline: u64,
    ) -> Result<Result<Option<ChainProof>, ChainFault>, RelayError> {
        let head = judged(self.verifier().final_head().await);
        self.save_checkpoint(store).await?;
        let header = match head {
            Ok(Ok(header)) => header,
            Ok(Err(fault)) => return Ok(Err(fault)),
            Err(RelayError::Proof(ProofError::NotFinal { .. })) => return Ok(Ok(None)),
            Err(e) => return Err(e),
        };
        if header.timestamp() <= deadline {
            return Ok(Ok(None));
        }
        let contract = alloy_primitives::Address::from(self.client.address().0);
        let slot = served_request_slot(request_id);
        let storage = match judged(prove_storage(&self.provider, &header, contract, slot).await)? {
            Ok(storage) => storage,
            Err(fault) => return Ok(Err(fault)),
        };
        if !storage.value.is_zero() {
            return Ok(Ok(None));
        }
        Ok(Ok(Some(self.chain_proof(
            ProofKind::Unserved,
            &header,
            storage.proof.digest(),
        ))))
    }
}

/// The certificate chain as the node shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedChain {
    /// The chain id the node reports.
    pub chain_id: u64,
    /// Its genesis block hash, `0x` hex.
    pub genesis_hash: String,
    /// Its newest block.
    pub head: u64,
}

/// Whether the chain seen now is the one the relay saw before (`mark`): the same chain
/// id as configured, the same genesis, a head that never went back. Returns the mark to
/// keep, or why the chain was reset. After an operator unfroze the chain
/// (`acknowledged_after_ms` later than the mark), the chain as it is now is adopted and
/// searched from its first block.
pub fn judge_chain(
    expected_chain_id: u64,
    mark: Option<&EthereumMark>,
    seen: &ObservedChain,
    acknowledged_after_ms: Option<u64>,
    now_ms: u64,
) -> Result<EthereumMark, String> {
    let fresh = |floor| EthereumMark {
        chain_id: seen.chain_id,
        genesis_hash: seen.genesis_hash.clone(),
        head: seen.head,
        floor,
        updated_at_ms: now_ms,
    };
    if seen.chain_id != expected_chain_id {
        return Err(format!(
            "the node reports chain id {}, the network description {expected_chain_id}",
            seen.chain_id
        ));
    }
    let Some(mark) = mark else {
        return Ok(fresh(seen.head));
    };
    if acknowledged_after_ms.is_some_and(|at| at > mark.updated_at_ms) {
        return Ok(fresh(if mark.genesis_hash == seen.genesis_hash {
            mark.floor
        } else {
            0
        }));
    }
    if mark.chain_id != seen.chain_id || mark.genesis_hash != seen.genesis_hash {
        return Err(format!(
            "genesis {} (chain {}) replaced by {} (chain {})",
            mark.genesis_hash, mark.chain_id, seen.genesis_hash, seen.chain_id
        ));
    }
    if seen.head < mark.head {
        return Err(format!(
            "head went back from block {} to {}",
            mark.head, seen.head
        ));
    }
    Ok(EthereumMark {
        head: seen.head,
        updated_at_ms: now_ms,
        ..mark.clone()
    })
}

/// The CompleteRecovery result: what the certificate chain proved it served
/// (`certificate_id` is the event's, checked against the consent).
pub fn recovery_result(
    event: &RecoveryServedFilter,
    certificate_id: u64,
    block_number: u64,
    tx: H256,
    request_id: [u8; 32],
) -> RecoveryResult {
    RecoveryResult {
        certificate_id,
        cid: event.cid.clone(),
        content_fingerprint: ContentFingerprint(event.content_fingerprint),
        watermark_fingerprint: WatermarkFingerprint(event.watermark_fingerprint),
        eth_tx: tx.0,
        eth_block: block_number,
        request_id,
    }
}

/// A short reason for FailRecovery, then the contract's own words.
pub fn refusal_reason(refusal: MedicalCertificateErrors) -> String {
    use MedicalCertificateErrors as E;
    let short = match &refusal {
        E::ConsentExpired(_) => "consent expired",
        E::DeadlinePassed(_) => "the request's deadline passed",
        E::NonceUsed(_) => "consent already used or revoked",
        E::NotPatient(_) => "consent not signed by the certificate's patient",
        E::InvalidSignature(_) => "malformed consent signature",
        E::UnknownHospital(_) => "hospital not registered on the certificate chain",
        E::UnknownCertificate(_) => "unknown certificate",
        E::CertificateRevoked(_) => "certificate revoked for recovery",
        E::CertificateMismatch(_) => "the certificate differs from the one the chain committed to",
        E::NotRelay(_) => "the relay account is not the contract's relay",
        _ => "refused by the certificate chain",
    };
    let detail = EthereumError::Refused(refusal).to_string();
    let detail = detail
        .strip_prefix("the MedicalCertificate contract refused: ")
        .unwrap_or(&detail)
        .to_owned();
    format!("{short} ({detail})")
}

#[cfg(test)]
#[path = "ethereum_tests.rs"]
mod tests;
