//! The relay's side of the certificate chain: serving a request once, waiting for its
//! confirmations, proving the receipt against the block header, and noticing a chain
//! that was reset under the relay.

use std::time::Duration;

use alloy_primitives::{Address as AlloyAddress, B256, Bytes as AlloyBytes};
use medcert_eip712::SignedConsent;
use medcert_ethereum::bindings::MedicalCertificateErrors;
use medcert_ethereum::ethers::providers::{Http, Middleware, Provider};
use medcert_ethereum::ethers::types::{BlockNumber, H256, Log, TransactionReceipt, U64};
use medcert_ethereum::{EthereumError, MedicalCertificateClient, RecoveryServed};
use medcert_hospital_api::RecoveryResult;
use prost::Message;
use tokio::sync::Mutex;

use crate::proto::{EthereumProof, Interchain, interchain};
use crate::receipt_proof::{self, Receipt, ReceiptLog, ReceiptProofError};
use crate::store::{EthereumMark, Store};
use crate::{ErrorChain, RelayError, now_ms};

/// What sending `serveRecovery` came to.
#[derive(Debug)]
pub enum SendOutcome {
    /// Sent in this transaction.
    Sent(H256),
    /// Another relay (or an earlier run) served it already.
    AlreadyServed,
    /// The contract refused the consent: a one-line reason for FailRecovery.
    Refused(String),
}

/// A verified failure of the chain itself: freeze it.
#[derive(Debug, thiserror::Error)]
pub enum ChainFault {
    /// The chain is not the one the relay saw before, and how.
    #[error("chain reset: {0}")]
    Reset(String),
    /// A receipt does not verify against its block header.
    #[error("receipt proof failed")]
    Proof(#[from] ReceiptProofError),
    /// The node's answers about a transaction contradict each other.
    #[error("receipt of {tx:?} disagrees with its block: {reason}")]
    Inconsistent {
        /// The transaction.
        tx: H256,
        /// What disagrees.
        reason: String,
    },
}

/// The relay's proven outcome of one request.
#[derive(Debug, Clone)]
pub struct ProvenServe {
    /// The proven `RecoveryServed` event.
    pub event: RecoveryServed,
    /// The CompleteRecovery result JSON (the cross-helper contract).
    pub result: String,
    /// The SUCCESS_RECEIPT interchain message, encoded.
    pub receipt_message: Vec<u8>,
}

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
    /// The relay account is shared by every request: one send at a time keeps its nonces
    /// in order (other relay processes on the same account are handled by retrying).
    send_lock: Mutex<()>,
    /// Reading the head and comparing it with the last one seen must not interleave.
    watch_lock: Mutex<()>,
}

fn rpc(e: impl std::error::Error + Send + Sync + 'static) -> RelayError {
    RelayError::Ethereum(EthereumError::Rpc(Box::new(e)))
}

impl EthereumSide {
    /// `confirmations` counts the transaction's own block.
    pub fn new(
        client: MedicalCertificateClient,
        chain_id: u64,
        confirmations: usize,
    ) -> Result<Self, RelayError> {
        let config = client.config().clone();
        let provider = Provider::<Http>::try_from(config.rpc_url.as_str())
            .map_err(|source| RelayError::RpcUrl {
                url: config.rpc_url.clone(),
                source: Box::new(source),
            })?
            .interval(config.poll_interval);
        Ok(Self {
            client,
            provider,
            chain: crate::ethereum_chain(chain_id),
            chain_id,
            confirmations: confirmations.max(1) as u64,
            poll: config.poll_interval,
            send_lock: Mutex::new(()),
            watch_lock: Mutex::new(()),
        })
    }

    /// Compares the node with what the relay saw before: same chain id, same genesis, a
    /// head that never goes back. `acknowledged_after_ms`: the operator unfroze this
    /// chain at that time, so the chain as it is now becomes the reference.
    pub async fn check_chain(
        &self,
        store: &Store,
        acknowledged_after_ms: Option<u64>,
    ) -> Result<Result<(), ChainFault>, RelayError> {
        let _guard = self.watch_lock.lock().await;
        let chain_id = self.provider.get_chainid().await.map_err(rpc)?.as_u64();
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
        match judge_chain(
            self.chain_id,
            mark.as_ref(),
            &seen,
            acknowledged_after_ms,
            now_ms(),
        ) {
            Ok(next) => {
                if mark
                    .as_ref()
                    .is_some_and(|m| m.genesis_hash != next.genesis_hash)
                {
                    tracing::warn!(chain = %self.chain, genesis = %next.genesis_hash, head, "operator unfroze the chain: adopting it as it is now");
                }
                store.set_ethereum_mark(&next)?;
                Ok(Ok(()))
            }
            Err(reason) => Ok(Err(ChainFault::Reset(reason))),
        }
    }

    /// The transaction that served `request_id`, if any: the contract's `servedCertificate`
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

    /// Sends `serveRecovery` for `request_id` with the patient's consent (one send at a
    /// time; a nonce taken by another process is retried).
    pub async fn send(
        &self,
        request_id: [u8; 32],
        consent: &SignedConsent,
    ) -> Result<SendOutcome, RelayError> {
        let _guard = self.send_lock.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .client
                .send_serve_recovery(request_id, &consent.consent, &consent.signature)
                .await
            {
                Ok(tx) => return Ok(SendOutcome::Sent(tx)),
                Err(EthereumError::Refused(MedicalCertificateErrors::RequestAlreadyServed(_))) => {
                    return Ok(SendOutcome::AlreadyServed);
                }
                Err(EthereumError::Refused(refusal)) => {
                    return Ok(SendOutcome::Refused(refusal_reason(refusal)));
                }
                // Another process sending as the relay account took this nonce.
                Err(e) if attempt < 20 && is_nonce_race(&e) => {
                    tracing::debug!(error = %ErrorChain(&e), attempt, "nonce race on the relay account; retrying");
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The receipt of `tx` once it has the configured confirmations, or `None` if the
    /// node does not know the transaction (dropped).
    pub async fn confirmed_receipt(
        &self,
        tx: H256,
    ) -> Result<Option<TransactionReceipt>, RelayError> {
        loop {
            let Some(receipt) = self
                .provider
                .get_transaction_receipt(tx)
                .await
                .map_err(rpc)?
            else {
                if self
                    .provider
                    .get_transaction(tx)
                    .await
                    .map_err(rpc)?
                    .is_none()
                {
                    return Ok(None);
                }
                tokio::time::sleep(self.poll).await;
                continue;
            };
            let Some(block) = receipt.block_number else {
                tokio::time::sleep(self.poll).await;
                continue;
            };
            let head = self.provider.get_block_number().await.map_err(rpc)?;
            if head.as_u64() + 1 >= block.as_u64() + self.confirmations {
                return Ok(Some(receipt));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Proves `receipt` against its block header and reads the `RecoveryServed` event of
    /// `request_id` from the proven receipt (not from the node's word).
    pub async fn prove(
        &self,
        receipt: &TransactionReceipt,
        request_id: [u8; 32],
        consent: &SignedConsent,
        channel: &str,
        index: u64,
        own: &mut crate::Stopwatch,
    ) -> Result<Result<ProvenServe, ChainFault>, RelayError> {
        let tx = receipt.transaction_hash;
        let inconsistent = |reason: String| Ok(Err(ChainFault::Inconsistent { tx, reason }));
        let Some(block_number) = receipt.block_number else {
            return inconsistent("receipt without a block number".into());
        };
        let block = self
            .provider
            .get_block(block_number)
            .await
            .map_err(rpc)?
            .ok_or_else(|| {
                RelayError::Config(format!("block {block_number} vanished (reorganised?)"))
            })?;
        if block.hash != receipt.block_hash {
            return inconsistent(format!(
                "block {block_number} is now {:?}, the receipt says {:?}",
                block.hash, receipt.block_hash
            ));
        }
        let receipts: Vec<TransactionReceipt> = self
            .provider
            .request("eth_getBlockReceipts", [BlockNumber::Number(block_number)])
            .await
            .map_err(rpc)?;
        own.start();
        let index_in_block = receipt.transaction_index.as_usize();
        if receipts.len() != block.transactions.len() {
            return inconsistent(format!(
                "block has {} transactions but {} receipts",
                block.transactions.len(),
                receipts.len()
            ));
        }
        if block.transactions.get(index_in_block) != Some(&tx)
            || receipts.get(index_in_block).map(|r| r.transaction_hash) != Some(tx)
        {
            return inconsistent(format!(
                "transaction is not at index {index_in_block} of its block"
            ));
        }
        let encoded: Vec<Vec<u8>> = receipts
            .iter()
            .map(|r| consensus_receipt(r).encode_2718())
            .collect();
        let nodes = match receipt_proof::build_proof(&encoded, index_in_block) {
            Ok((_, nodes)) => nodes,
            Err(e) => return Ok(Err(e.into())),
        };
        let proof = EthereumProof {
            chain_id: self.chain_id,
            block_number: block_number.as_u64(),
            block_hash: block.hash.unwrap_or_default().as_bytes().to_vec(),
            receipts_root: block.receipts_root.as_bytes().to_vec(),
            tx_index: index_in_block as u64,
            receipt: encoded[index_in_block].clone(),
            trie_nodes: nodes.iter().map(|n| n.to_vec()).collect(),
        };
        // The header's receiptsRoot is the trust anchor; the node's receipts are not.
        let proven = match receipt_proof::verify(&proof) {
            Ok(proven) => proven,
            Err(e) => return Ok(Err(e.into())),
        };
        if !proven.success {
            return inconsistent("the proven receipt is a failed transaction".into());
        }
        let contract = self.client.address();
        let Some((log_index, log)) = proven.logs.iter().enumerate().find(|(_, log)| {
            log.address.0.0 == contract.0 && log.topics.get(1).map(|t| t.0) == Some(request_id)
        }) else {
            return inconsistent(format!(
                "no RecoveryServed log of request 0x{} in the proven receipt",
                hex::encode(request_id)
            ));
        };
        let event = self.client.parse_recovery_served(Log {
            address: contract,
            topics: log.topics.iter().map(|t| H256(t.0)).collect(),
            data: log.data.to_vec().into(),
            block_hash: block.hash,
            block_number: Some(block_number),
            transaction_hash: Some(tx),
            transaction_index: Some(U64::from(index_in_block)),
            log_index: Some(
                receipt
                    .logs
                    .get(log_index)
                    .and_then(|l| l.log_index)
                    .unwrap_or_default(),
            ),
            ..Default::default()
        });
        let event = match event {
            Ok(event) => event,
            Err(e) => return inconsistent(format!("the proven log is not RecoveryServed: {e}")),
        };
        if event.certificate_id != consent.consent.certificate_id
            || event.hospital != consent.consent.hospital
        {
            return inconsistent(
                "the served certificate or hospital differs from the consent".into(),
            );
        }
        let result = serde_json::to_string(&recovery_result(&event, request_id))
            .expect("a recovery result serialises to JSON");
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
        own.stop();
        Ok(Ok(ProvenServe {
            event,
            result,
            receipt_message,
        }))
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

/// The CompleteRecovery result: what the certificate chain proved it served.
pub fn recovery_result(event: &RecoveryServed, request_id: [u8; 32]) -> RecoveryResult {
    RecoveryResult {
        certificate_id: event.certificate_id,
        cid: event.cid.clone(),
        content_fingerprint: hex::encode(event.content_fingerprint),
        watermark_fingerprint: hex::encode(event.watermark_fingerprint),
        eth_tx: format!("{:#x}", event.transaction_hash),
        eth_block: event.block_number,
        request_id: format!("0x{}", hex::encode(request_id)),
    }
}

/// The consensus fields of a node's receipt.
pub fn consensus_receipt(r: &TransactionReceipt) -> Receipt {
    Receipt {
        tx_type: r.transaction_type.map(|t| t.as_u64() as u8).unwrap_or(0),
        success: r.status == Some(U64::one()),
        cumulative_gas_used: r.cumulative_gas_used.as_u64(),
        logs_bloom: r.logs_bloom.0,
        logs: r
            .logs
            .iter()
            .map(|l| ReceiptLog {
                address: AlloyAddress::from(l.address.0),
                topics: l.topics.iter().map(|t| B256::from(t.0)).collect(),
                data: AlloyBytes::copy_from_slice(&l.data),
            })
            .collect(),
    }
}

/// A short reason for FailRecovery, then the contract's own words.
pub fn refusal_reason(refusal: MedicalCertificateErrors) -> String {
    use MedicalCertificateErrors as E;
    let short = match &refusal {
        E::ConsentExpired(_) => "consent expired",
        E::NonceUsed(_) => "consent already used or revoked",
        E::NotPatient(_) => "consent not signed by the certificate's patient",
        E::InvalidSignature(_) => "malformed consent signature",
        E::UnknownHospital(_) => "hospital not registered on the certificate chain",
        E::UnknownCertificate(_) => "unknown certificate",
        E::CertificateRevoked(_) => "certificate revoked for recovery",
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

fn is_nonce_race(error: &EthereumError) -> bool {
    let text = match error {
        EthereumError::Rpc(e) => e.to_string(),
        _ => return false,
    }
    .to_lowercase();
    [
        "nonce too low",
        "already known",
        "already imported",
        "replacement transaction underpriced",
        "nonce",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
#[path = "ethereum_tests.rs"]
mod tests;
