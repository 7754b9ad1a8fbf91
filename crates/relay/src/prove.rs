//! Re-checking an answer a relay recorded on a hospital's channel against the certificate
//! chain (`medcert-relay prove`): the recorded block must be on the chain as it is now
//! (its header hashed from its fields and linked by parent hash to the newest final
//! block), and the proof rebuilt there from the node's data must have the recorded
//! digest and say what the answer says.

use alloy_primitives::{Address, B256};
use medcert_ethereum::ethers::providers::{Http, Provider};
use medcert_ethereum::proof::{
    HashChainVerifier, HeaderVerifier, ProofError, prove_receipt, prove_storage,
    served_request_slot,
};
use medcert_hospital_api::{ChainProof, ProofKind, Recovery, RecoveryResult, RecoveryState};
use medcert_network::Network;

use crate::fabric::HospitalSide;
use crate::{RelayError, ethereum_chain, request_id};

/// What re-checking a recorded answer found.
#[derive(Debug)]
pub struct Recheck {
    /// The recovery as the channel holds it.
    pub recovery: Recovery,
    /// Whether the recorded proof holds on the chain now (`Ok`), or why not. `None`: the
    /// answer records no proof (pending, or refused by the contract).
    pub verdict: Option<Result<(), String>>,
}

/// Reads recovery `index` of hospital `hospital` and re-checks the proof recorded with
/// its answer against the certificate chain.
pub async fn recheck(network: &Network, hospital: &str, index: u64) -> Result<Recheck, RelayError> {
    let hospital = network.hospital(hospital)?;
    let side = HospitalSide::connect(
        hospital,
        &network.fabric.relay,
        &network.fabric.chaincode_name,
        &ethereum_chain(network.ethereum.chain_id),
    )
    .await?;
    let recovery = side.recovery_status(index).await?;
    let Some(recorded) = recovery.proof.clone() else {
        return Ok(Recheck {
            recovery,
            verdict: None,
        });
    };
    let contract: Address = network
        .ethereum
        .contract_address
        .as_deref()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            RelayError::Config("the network description has no contract address".into())
        })?;
    let provider =
        Provider::<Http>::try_from(network.ethereum.rpc_url.as_str()).map_err(|source| {
            RelayError::RpcUrl {
                url: network.ethereum.rpc_url.clone(),
                source: Box::new(source),
            }
        })?;
    let id = request_id(&hospital.channel, index);
    let verdict = match check(&provider, contract, id, &recovery, &recorded).await {
        Ok(verdict) => verdict,
        Err(error) if error.is_chain_fault() => Err(error.to_string()),
        Err(error) => return Err(RelayError::Proof(error)),
    };
    Ok(Recheck {
        recovery,
        verdict: Some(verdict),
    })
}

async fn check(
    provider: &Provider<Http>,
    contract: Address,
    id: [u8; 32],
    recovery: &Recovery,
    recorded: &ChainProof,
) -> Result<Result<(), String>, ProofError> {
    if recorded.chain_id != provider_chain(provider).await? {
        return Ok(Err(format!(
            "the proof is for chain {}, the node serves another",
            recorded.chain_id
        )));
    }
    // Trusts the newest final block as it is and walks back to the recorded one.
    let verifier = HashChainVerifier::new(provider.clone(), 1, None);
    let header = verifier.header(recorded.block_number).await?;
    if header.hash().0 != recorded.block_hash {
        return Ok(Err(format!(
            "block {} is {:#x} on the chain, the answer records {}",
            recorded.block_number,
            header.hash(),
            B256::from(recorded.block_hash)
        )));
    }
    let digest = match (recorded.kind, &recovery.outcome) {
        (ProofKind::Receipt, RecoveryState::Completed { result, .. }) => {
            let result: RecoveryResult = serde_json::from_str(result)
                .map_err(|e| inconsistent(recorded, format!("the recorded result: {e}")))?;
            let tx = B256::from(result.eth_tx);
            let Some(proven) = prove_receipt(provider, &verifier, tx).await? else {
                return Ok(Err(format!("the node has no receipt of {tx}")));
            };
            if proven.header.number() != recorded.block_number {
                return Ok(Err(format!(
                    "{tx} is in block {}, the answer records block {}",
                    proven.header.number(),
                    recorded.block_number
                )));
            }
            proven.proof.digest()
        }
        (ProofKind::Unserved, RecoveryState::Failed { .. }) => {
            if header.timestamp() <= recovery.deadline {
                return Ok(Err(format!(
                    "block {} (time {}) is not past the deadline {}",
                    recorded.block_number,
                    header.timestamp(),
                    recovery.deadline
                )));
            }
            let storage =
                prove_storage(provider, &header, contract, served_request_slot(id)).await?;
            if !storage.value.is_zero() {
                return Ok(Err(format!(
                    "the request was served (slot value {}) at block {}",
                    storage.value, recorded.block_number
                )));
            }
            storage.proof.digest()
        }
        (kind, outcome) => {
            return Ok(Err(format!(
                "a {kind:?} proof does not back the answer {outcome:?}"
            )));
        }
    };
    if digest != recorded.digest {
        return Ok(Err(format!(
            "the proof rebuilt from the chain has digest {}, the answer records {}",
            hex::encode(digest),
            hex::encode(recorded.digest)
        )));
    }
    Ok(Ok(()))
}

fn inconsistent(recorded: &ChainProof, what: String) -> ProofError {
    ProofError::Inconsistent {
        number: recorded.block_number,
        what,
    }
}

async fn provider_chain(provider: &Provider<Http>) -> Result<u64, ProofError> {
    use medcert_ethereum::ethers::providers::Middleware;
    let id = provider.get_chainid().await.map_err(|e| ProofError::Rpc {
        method: "eth_chainId",
        source: Box::new(e),
    })?;
    if id > u64::MAX.into() {
        return Ok(0);
    }
    Ok(id.low_u64())
}
