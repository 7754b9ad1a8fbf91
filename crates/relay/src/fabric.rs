//! The relay's side of one hospital channel: reading and proving its interchain
//! requests, and writing the answers back.

use std::time::SystemTime;

use medcert_fabric::block::{self, BlockTransaction};
use medcert_fabric::{Block, Contract, Gateway, Identity};
use medcert_fabric_protos::protos::TxValidationCode;
use medcert_network::Hospital;
use prost::Message;
use serde::Deserialize;

use crate::RelayError;
use crate::fabric_proof::{self, MspTrust};
use crate::proto::FabricProof;

/// Name of the chaincode event the relay follows.
pub const INTERCHAIN_EVENT: &str = "InterchainRequest";

/// The chaincode's `InterchainRequest` event payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InterchainRequest {
    pub channel: String,
    pub index: u64,
    pub record_id: String,
    pub certificate_id: String,
    pub consent: String,
    pub requesting_hospital: String,
}

/// What `GetRecoveryStatus` reports of a request (the fields the relay reads).
#[derive(Debug, Clone, Deserialize)]
pub struct RecoveryStatus {
    pub requested_tx: String,
    pub outcome: RecoveryOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RecoveryOutcome {
    Pending,
    Completed { result: String, tx: String },
    Failed { reason: String, tx: String },
}

/// `common.BlockchainInfo`, as qscc's GetChainInfo returns it (only the height is read).
#[derive(Clone, PartialEq, Message)]
struct BlockchainInfo {
    #[prost(uint64, tag = "1")]
    height: u64,
}

/// One verified request: its payload, proof and position.
#[derive(Debug, Clone)]
pub struct ProvenRequest {
    pub request: InterchainRequest,
    pub payload: Vec<u8>,
    pub proof: FabricProof,
}

/// Why a transaction's proof was refused: the chain is to be frozen.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProofRefused(pub String);

pub struct HospitalSide {
    pub hospital: Hospital,
    pub chain: String,
    pub pair: String,
    pub chaincode: String,
    pub gateway: Gateway,
    trust: MspTrust,
}

impl HospitalSide {
    pub async fn connect(
        hospital: &Hospital,
        relay: &medcert_network::Identity,
        chaincode: &str,
        ethereum_chain: &str,
    ) -> Result<Self, RelayError> {
        let fabric = |source| RelayError::Fabric {
            hospital: hospital.id.clone(),
            source,
        };
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                RelayError::Config(format!(
                    "hospital {}: cannot read {}: {e}",
                    hospital.id,
                    path.display()
                ))
            })
        };
        let identity =
            Identity::from_files(&relay.msp_id, &relay.cert, &relay.key).map_err(fabric)?;
        let trust = MspTrust::from_pem(&hospital.msp_id, &read(&hospital.msp_ca)?)
            .map_err(|e| RelayError::Config(format!("hospital {}: {e}", hospital.id)))?;
        let gateway = Gateway::connect(
            &hospital.peer.endpoint,
            &hospital.peer.host,
            &read(&hospital.peer.tls_ca)?,
            identity,
        )
        .await
        .map_err(fabric)?;
        let chain = crate::fabric_chain(&hospital.channel);
        Ok(Self {
            pair: crate::pair(&chain, ethereum_chain),
            chain,
            chaincode: chaincode.to_owned(),
            hospital: hospital.clone(),
            gateway,
            trust,
        })
    }

    fn fabric_error(&self, source: medcert_fabric::Error) -> RelayError {
        RelayError::Fabric {
            hospital: self.hospital.id.clone(),
            source,
        }
    }

    pub fn channel(&self) -> &str {
        &self.hospital.channel
    }

    pub fn contract(&self) -> Contract {
        self.gateway
            .network(self.channel())
            .contract(&self.chaincode)
    }

    fn qscc(&self) -> Contract {
        self.gateway.network(self.channel()).contract("qscc")
    }

    /// The channel's block height (the number of the next block).
    pub async fn height(&self) -> Result<u64, RelayError> {
        let bytes = self
            .qscc()
            .evaluate("GetChainInfo", &[self.channel()])
            .await
            .map_err(|e| self.fabric_error(e))?;
        let info = BlockchainInfo::decode(bytes.as_slice()).map_err(|e| {
            self.fabric_error(medcert_fabric::Error::Malformed(format!("chain info: {e}")))
        })?;
        Ok(info.height)
    }

    async fn block_by_number(&self, number: u64) -> Result<Block, RelayError> {
        let bytes = self
            .qscc()
            .evaluate("GetBlockByNumber", &[self.channel(), &number.to_string()])
            .await
            .map_err(|e| self.fabric_error(e))?;
        self.decode_block(&bytes)
    }

    async fn block_by_tx(&self, tx_id: &str) -> Result<Block, RelayError> {
        let bytes = self
            .qscc()
            .evaluate("GetBlockByTxID", &[self.channel(), tx_id])
            .await
            .map_err(|e| self.fabric_error(e))?;
        self.decode_block(&bytes)
    }

    fn decode_block(&self, bytes: &[u8]) -> Result<Block, RelayError> {
        Block::decode(bytes)
            .map_err(|e| self.fabric_error(medcert_fabric::Error::Malformed(format!("block: {e}"))))
    }

    /// Fetches block `block_number` and proves that transaction `tx_id` in it is VALID,
    /// endorsed by this hospital's org and carries exactly `payload` as its interchain
    /// event. `Ok(Err(..))` is a refused proof.
    pub async fn prove_event(
        &self,
        block_number: u64,
        tx_id: &str,
        payload: &[u8],
        own: &mut crate::Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        let block = self.block_by_number(block_number).await?;
        own.start();
        let proven = self.prove_in_block(&block, tx_id, payload);
        own.stop();
        Ok(proven)
    }

    fn prove_in_block(
        &self,
        block: &Block,
        tx_id: &str,
        payload: &[u8],
    ) -> Result<ProvenRequest, ProofRefused> {
        let refuse = |reason: String| Err(ProofRefused(reason));
        let number = block.header.as_ref().map(|h| h.number).unwrap_or_default();
        let transactions = block::transactions(block)
            .map_err(|e| ProofRefused(format!("block {number} is malformed: {e}")))?;
        let Some(transaction) = transactions.iter().find(|t| t.tx_id == tx_id) else {
            return refuse(format!("transaction {tx_id} is not in block {number}"));
        };
        self.prove_transaction(transaction, number, payload)
    }

    fn prove_transaction(
        &self,
        transaction: &BlockTransaction,
        block_number: u64,
        payload: &[u8],
    ) -> Result<ProvenRequest, ProofRefused> {
        let tx_id = &transaction.tx_id;
        if transaction.validation_code != TxValidationCode::Valid {
            return Err(ProofRefused(format!(
                "transaction {tx_id} is {:?}, not VALID",
                transaction.validation_code
            )));
        }
        if transaction.channel != self.hospital.channel {
            return Err(ProofRefused(format!(
                "transaction {tx_id} belongs to channel {}, not {}",
                transaction.channel, self.hospital.channel
            )));
        }
        let proof = fabric_proof::proof_of(transaction, block_number);
        self.trust
            .verify(
                &proof,
                &self.chaincode,
                INTERCHAIN_EVENT,
                payload,
                SystemTime::now(),
            )
            .map_err(|e| ProofRefused(format!("transaction {tx_id}: {e}")))?;
        let request: InterchainRequest = serde_json::from_slice(payload).map_err(|e| {
            ProofRefused(format!(
                "transaction {tx_id}: malformed InterchainRequest: {e}"
            ))
        })?;
        if request.channel != self.hospital.channel {
            return Err(ProofRefused(format!(
                "transaction {tx_id}: request names unknown chain fabric:{} on channel {}",
                request.channel, self.hospital.channel
            )));
        }
        if request.index == 0 {
            return Err(ProofRefused(format!(
                "transaction {tx_id}: request index 0 (indices start at 1)"
            )));
        }
        Ok(ProvenRequest {
            request,
            payload: payload.to_vec(),
            proof,
        })
    }

    /// Finds and proves request `index` from the ledger (to fill a gap in the events):
    /// its recovery entry names the requesting transaction, qscc returns its block.
    pub async fn prove_index(
        &self,
        index: u64,
        own: &mut crate::Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        let status = self.recovery_status(index).await?;
        let block = self.block_by_tx(&status.requested_tx).await?;
        own.start();
        let number = block.header.as_ref().map(|h| h.number).unwrap_or_default();
        let transactions = block::transactions(&block).map_err(|e| self.fabric_error(e))?;
        let Some(transaction) = transactions.iter().find(|t| t.tx_id == status.requested_tx) else {
            own.stop();
            return Ok(Err(ProofRefused(format!(
                "request {index}: transaction {} is not in block {number}",
                status.requested_tx
            ))));
        };
        let payload = transaction
            .event
            .as_ref()
            .filter(|e| e.event_name == INTERCHAIN_EVENT)
            .map(|e| e.payload.clone())
            .unwrap_or_default();
        let proven = self
            .prove_transaction(transaction, number, &payload)
            .and_then(|p| {
                if p.request.index == index {
                    Ok(p)
                } else {
                    Err(ProofRefused(format!(
                        "request {index}: its transaction carries index {}",
                        p.request.index
                    )))
                }
            });
        own.stop();
        Ok(proven)
    }

    pub async fn recovery_status(&self, index: u64) -> Result<RecoveryStatus, RelayError> {
        let bytes = self
            .contract()
            .evaluate("GetRecoveryStatus", &[&index.to_string()])
            .await
            .map_err(|e| self.fabric_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.fabric_error(medcert_fabric::Error::Malformed(format!(
                "GetRecoveryStatus {index}: {e}"
            )))
        })
    }

    /// Submits CompleteRecovery (`completed`) or FailRecovery and waits for its commit;
    /// returns the transaction id.
    pub async fn answer(
        &self,
        index: u64,
        completed: bool,
        detail: &str,
    ) -> Result<String, RelayError> {
        let function = if completed {
            "CompleteRecovery"
        } else {
            "FailRecovery"
        };
        let committed = self
            .contract()
            .submit(function, &[&index.to_string(), detail])
            .await
            .map_err(|e| self.fabric_error(e))?;
        Ok(committed.tx_id)
    }
}
