//! The relay's side of one hospital channel: reading and proving its interchain
//! requests (through the channel's light client, [`crate::fabric_light_client`]), and
//! writing the answers back.

use medcert_fabric::msp::MspTrust;
use medcert_fabric::{Gateway, Identity, Network, PeerEndpoint};
use medcert_hospital_api::{ClientError, HospitalClient, InterchainRequest, Recovery, args};
use medcert_network::Hospital;

use crate::RelayError;
use crate::fabric_light_client::ChannelLightClient;
use crate::proto::FabricProof;
use crate::store::{Outcome, Store};

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

/// One hospital channel as the relay uses it: its peers, its chaincode, its light client.
pub struct HospitalSide {
    /// The hospital.
    pub hospital: Hospital,
    /// The chain id as the relay names it (`fabric:<channel>`).
    pub chain: String,
    /// The request pair (`fabric:<channel>->ethereum:<id>`) its indices count on.
    pub pair: String,
    /// The hospital chaincode's name.
    pub chaincode: String,
    /// The peers' gateway, as the relay's identity.
    pub gateway: Gateway,
    client: HospitalClient,
    light_client: ChannelLightClient,
}

impl HospitalSide {
    /// Connects to the hospital's peers as `relay` and reads its MSP CA (the anchor the
    /// channel's configuration must name for the hospital).
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
        let anchor =
            MspTrust::from_pem(&hospital.msp_id, &read(&hospital.msp_ca)?).map_err(|source| {
                RelayError::MspCa {
                    hospital: hospital.id.clone(),
                    source,
                }
            })?;
        // Every peer of the hospital: the relay goes on through another while one is down.
        let peers = hospital
            .peers()
            .iter()
            .map(|peer| {
                Ok(PeerEndpoint {
                    endpoint: peer.endpoint.clone(),
                    server_name: peer.host.clone(),
                    tls_ca_pem: read(&peer.tls_ca)?,
                })
            })
            .collect::<Result<Vec<_>, RelayError>>()?;
        let gateway = Gateway::connect_any(&peers, identity)
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
            light_client: ChannelLightClient::new(
                &hospital.id,
                &hospital.channel,
                &hospital.msp_id,
                chaincode,
                anchor,
            ),
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
        self.network()
            .height()
            .await
            .map_err(|e| self.fabric_error(e))
    }

    fn network(&self) -> Network {
        self.gateway.network(self.channel())
    }

    /// Proves that transaction `tx_id` of block `block_number` is the channel's, VALID,
    /// endorsed as the chaincode's policy requires and carries exactly `payload` as its
    /// interchain event, verifying the channel's blocks from the checkpoint in `store`
    /// up to it. `Ok(Err(..))` is a refused proof.
    pub async fn prove_event(
        &self,
        store: &Store,
        block_number: u64,
        tx_id: &str,
        payload: &[u8],
        own: &mut crate::Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        self.light_client
            .prove_event(&self.network(), store, block_number, tx_id, payload, own)
            .await
    }

    /// Finds and proves request `index` from the ledger (to fill a gap in the events):
    /// its recovery entry names the requesting transaction, whose block is verified.
    pub async fn prove_index(
        &self,
        store: &Store,
        index: u64,
        own: &mut crate::Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        let status = self.recovery_status(index).await?;
        let proven = self
            .light_client
            .prove_transaction(&self.network(), store, &status.requested_tx, own)
            .await?;
        Ok(proven.and_then(|p| {
            if p.request.index == index {
                Ok(p)
            } else {
                Err(ProofRefused(format!(
                    "request {index}: its transaction {} carries index {}",
                    status.requested_tx, p.request.index
                )))
            }
        }))
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
            Outcome::Completed { result, proof } => {
                let (result, proof) = (result.clone(), proof.clone());
                self.client
                    .complete_recovery(&args::CompleteRecovery {
                        index,
                        result,
                        proof,
                    })
                    .await
            }
            Outcome::Failed { reason, proof } => {
                let (reason, proof) = (reason.clone(), proof.clone());
                self.client
                    .fail_recovery(&args::FailRecovery {
                        index,
                        reason,
                        proof,
                    })
                    .await
            }
        };
        Ok(committed
            .map_err(|source| self.hospital_error(source))?
            .tx_id)
    }
}
