//! Connections to the network's services as the actor a flow runs as: a hospital's doctor
//! or admin on its channel, a hospital's issuer account on the certificate chain, IPFS,
//! the CSP.

use std::time::Duration;

use medcert_csp::Csp;
use medcert_ethereum::ethers::types::Address;
use medcert_ethereum::{ChainConfig, MedicalCertificateClient, wallet_from_hex};
use medcert_fabric::{Contract, Gateway, Identity};
use medcert_ipfs::Ipfs;
use medcert_network::{Hospital, Network};

use crate::error::FlowError;

/// Who acts on a hospital's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The hospital's `n`-th doctor (0-based).
    Doctor(usize),
    Admin,
}

/// The hospital chaincode on `hospital`'s channel, called as `actor`.
pub async fn hospital_contract(
    network: &Network,
    hospital: &Hospital,
    actor: Actor,
) -> Result<Contract, FlowError> {
    let identity = match actor {
        Actor::Doctor(n) => hospital.doctors.get(n).ok_or_else(|| {
            FlowError::Input(format!(
                "{} has {} doctor identities, so there is no doctor {n}; pick 0 to {}",
                hospital.id,
                hospital.doctors.len(),
                hospital.doctors.len().saturating_sub(1)
            ))
        })?,
        Actor::Admin => &hospital.admin,
    };
    let fabric = |source| FlowError::fabric(&hospital.channel, source);
    let signer =
        Identity::from_files(&identity.msp_id, &identity.cert, &identity.key).map_err(fabric)?;
    let ca = std::fs::read(&hospital.peer.tls_ca).map_err(|source| FlowError::Read {
        path: hospital.peer.tls_ca.clone(),
        source,
    })?;
    let gateway = Gateway::connect(&hospital.peer.endpoint, &hospital.peer.host, &ca, signer)
        .await
        .map_err(fabric)?;
    Ok(gateway
        .network(&hospital.channel)
        .contract(&network.fabric.chaincode_name))
}

/// The deployed certificate contract's address.
pub fn contract_address(network: &Network) -> Result<Address, FlowError> {
    let address = network
        .ethereum
        .contract_address
        .as_deref()
        .ok_or_else(|| {
            FlowError::Input(
                "the network description has no certificate contract; run `medcert network init`"
                    .into(),
            )
        })?;
    address.parse().map_err(|_| FlowError::Malformed {
        what: "the contract address",
        source_name: "the network description".into(),
        reason: format!("{address:?} is not an address"),
    })
}

/// The certificate contract, sending as `hospital`'s issuer account.
pub fn certificate_client_as_hospital(
    network: &Network,
    hospital: &Hospital,
) -> Result<MedicalCertificateClient, FlowError> {
    let account = network.hospital_account(hospital).ok_or_else(|| {
        FlowError::Input(format!(
            "the network description has no Ethereum account {} for {}; run deploy/up again",
            hospital.eth_account, hospital.id
        ))
    })?;
    let config = ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id);
    let wallet = wallet_from_hex(&account.private_key)?;
    Ok(MedicalCertificateClient::attach(
        &config,
        contract_address(network)?,
        wallet,
    )?)
}

/// The certificate contract for reading only (sends nothing; the admin account is a
/// placeholder sender).
pub fn certificate_reader(network: &Network) -> Result<MedicalCertificateClient, FlowError> {
    let account = network.ethereum.accounts.first().ok_or_else(|| {
        FlowError::Input("the network description lists no Ethereum account".into())
    })?;
    let config = ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id);
    Ok(MedicalCertificateClient::attach(
        &config,
        contract_address(network)?,
        wallet_from_hex(&account.private_key)?,
    )?)
}

pub fn ipfs(network: &Network) -> Result<Ipfs, FlowError> {
    Ok(Ipfs::new(&network.ipfs.api_url, Duration::from_secs(60))?)
}

pub fn csp(network: &Network) -> Result<Csp, FlowError> {
    Ok(Csp::s3(&network.s3)?)
}
