//! The relay's side of one hospital channel: reading and proving its interchain
//! requests, and writing the answers back.

use std::time::SystemTime;

use medcert_fabric::block::{self, BlockTransaction};
use medcert_fabric::msp::MspTrust;
use medcert_fabric::{Block, Gateway, Identity};
use medcert_fabric_protos::protos::TxValidationCode;
use medcert_hospital_api::events::INTERCHAIN_REQUEST;
use medcert_hospital_api::{ClientError, HospitalClient, InterchainRequest, Recovery, args};
use medcert_network::Hospital;

use crate::fabric_proof;
use crate::proto::FabricProof;
use crate::store::Outcome;
use crate::{ErrorChain, RelayError};

/// One verified request: its payload, proof and position.
#[derive(Debug, Clone)]
pub struct ProvenRequest {
    /// The request the event carries.
    pub request: InterchainRequest,
    /// The event payload, as endorsed.
    pub payload: Vec<u8>,
    /// The transaction's endorsements and block.
    pub proof: FabricProof,
}

/// Why a transaction's proof was refused: the chain is to be frozen.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProofRefused(pub String);

/// One hospital channel as the relay uses it: its peer, its chaincode, its MSP CA.
pub struct HospitalSide {
    /// The hospital.
    pub hospital: Hospital,
    /// The chain id as the relay names it (`fabric:<channel>`).
    pub chain: String,
    /// The request pair (`fabric:<channel>->ethereum:<id>`) its indices count on.
    pub pair: String,
    /// The hospital chaincode's name.
    pub chaincode: String,
    /// The peer's gateway, as the relay's identity.
    pub gateway: Gateway,
    client: HospitalClient,
    trust: MspTrust,
}

impl HospitalSide {
    /// Connects to the hospital's peer as `relay` and reads its MSP CA.
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
            std::fs::read(path).map_err(|source| RelayError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let identity =
            Identity::from_files(&relay.msp_id, &relay.cert, &relay.key).map_err(fabric)?;
        let trust =
            MspTrust::from_pem(&hospital.msp_id, &read(&hospital.msp_ca)?).map_err(|source| {
                RelayError::MspCa {
                    hospital: hospital.id.clone(),
                    source,
                }
            })?;
        let gateway = Gateway::connect(
            &hospital.peer.endpoint,
            &hospital.peer.host,
            &read(&hospital.peer.tls_ca)?,
            identity,
        )
        .await
        .map_err(fabric)?;
        let chain = crate::fabric_chain(&hospital.channel);
        let client = HospitalClient::new(gateway.network(&hospital.channel).contract(chaincode));
        Ok(Self {
            pair: crate::pair(&chain, ethereum_chain),
            chain,
            chaincode: chaincode.to_owned(),
            hospital: hospital.clone(),
            gateway,
            client,
            trust,
        })
    }

    fn fabric_error(&self, source: medcert_fabric::Error) -> RelayError {
        RelayError::Fabric {
            hospital: self.hospital.id.clone(),
            source,
        }
    }

    fn hospital_error(&self, source: ClientError) -> RelayError {
        RelayError::Chaincode {
            hospital: self.hospital.id.clone(),
            source,
        }
    }

    /// The hospital's channel.
    pub fn channel(&self) -> &str {
        &self.hospital.channel
    }

    /// The channel's block height (the number of the next block).
    pub async fn height(&self) -> Result<u64, RelayError> {
        self.gateway
            .network(self.channel())
            .height()
            .await
            .map_err(|e| self.fabric_error(e))
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
        let block = self
            .gateway
            .network(self.channel())
            .block(block_number)
            .await
            .map_err(|e| self.fabric_error(e))?;
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
        let transactions = block::transactions(block).map_err(|e| {
            ProofRefused(format!("block {number} is malformed: {}", ErrorChain(&e)))
        })?;
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
        fabric_proof::verify(
            &self.trust,
            &proof,
            &self.chaincode,
            INTERCHAIN_REQUEST,
            payload,
            SystemTime::now(),
        )
        .map_err(|e| ProofRefused(format!("transaction {tx_id}: {}", ErrorChain(&e))))?;
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
        let block = self
            .gateway
            .network(self.channel())
            .block_by_tx_id(&status.requested_tx)
            .await
            .map_err(|e| self.fabric_error(e))?;
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
            .filter(|e| e.event_name == INTERCHAIN_REQUEST)
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

    /// Recovery `index` as the channel holds it.
    pub async fn recovery_status(&self, index: u64) -> Result<Recovery, RelayError> {
        self.client
            .get_recovery_status(&args::GetRecoveryStatus { index })
            .await
            .map_err(|source| self.hospital_error(source))
    }

    /// Records `outcome` as the recovery's answer on the channel and waits for the
    /// commit; returns the transaction id.
    pub async fn answer(&self, index: u64, outcome: &Outcome) -> Result<String, RelayError> {
        let committed = match outcome {
            Outcome::Completed { result } => {
                let result = result.clone();
                self.client
                    .complete_recovery(&args::CompleteRecovery { index, result })
                    .await
            }
            Outcome::Failed { reason } => {
                let reason = reason.clone();
                self.client
                    .fail_recovery(&args::FailRecovery { index, reason })
                    .await
            }
        };
        Ok(committed
            .map_err(|source| self.hospital_error(source))?
            .tx_id)
    }
}
