//! Network init: idempotent bootstrap of a running network: the certificate contract,
//! its relay, each hospital's registration on it with the X25519 key its key service
//! publishes, and each key service's ticket key registered on its hospital's channel.

use std::path::Path;

use medcert_eip712::hospital_id;
use medcert_ethereum::bindings::MedicalCertificateErrors;
use medcert_ethereum::ethers::signers::Signer;
use medcert_ethereum::ethers::types::Address;
use medcert_ethereum::{
    ChainConfig, EthereumError, HospitalKeys, MedicalCertificateClient, wallet_from_hex,
};
use medcert_hospital_api::args;
use medcert_network::{Hospital, Network, NetworkError};
use serde::Serialize;

use crate::connect::{Actor, hospital_client, public_keys};
use crate::error::{FailureKind, FlowError};

/// Why the certificate chain could not be bootstrapped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The network description has no Ethereum account at an index `init` needs.
    #[error("the network description lists no account {index}; run deploy/up again")]
    MissingAccount {
        /// The account index.
        index: usize,
    },
    /// A hospital in the network description cannot be registered on the contract.
    #[error("hospital {id}: {reason}")]
    BadHospital {
        /// The hospital's id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The network description's contract address does not parse.
    #[error("contract address {0:?} in the network description is not an address")]
    BadAddress(String),
    /// The certificate chain refused or failed a call.
    #[error(transparent)]
    Ethereum(#[from] EthereumError),
    /// A hospital's key service or channel refused or failed, or cannot be reached.
    #[error("hospital {id}")]
    Hospital {
        /// The hospital's id.
        id: String,
        /// What failed.
        source: Box<FlowError>,
    },
    /// The network description cannot be read or used.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

impl InitError {
    /// What kind of failure this is (the binary's exit code).
    pub fn kind(&self) -> FailureKind {
        match self {
            InitError::Hospital { source, .. } => source.kind(),
            _ => FailureKind::Failed,
        }
    }
}

/// What `init` found and did.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The certificate contract's address.
    pub contract_address: String,
    /// Whether this run deployed the contract (rather than attaching to one).
    pub deployed: bool,
    /// Whether this run set the contract's relay account.
    pub relay_set: bool,
    /// Hospitals newly registered on the contract in this run.
    pub registered: Vec<String>,
    /// Hospitals already registered with the same account and key.
    pub already_registered: Vec<String>,
    /// Hospitals whose key service's ticket key this run registered on their channel.
    pub key_services_set: Vec<String>,
    /// Hospitals whose channel already had their key service's ticket key.
    pub key_services_unchanged: Vec<String>,
}

fn account(network: &Network, index: usize) -> Result<&str, InitError> {
    network
        .ethereum
        .accounts
        .get(index)
        .map(|a| a.private_key.as_str())
        .ok_or(InitError::MissingAccount { index })
}

/// Bootstraps the certificate chain and saves the contract address to `save_path`.
pub async fn init_network(
    network: &mut Network,
    save_path: &Path,
) -> Result<InitReport, InitError> {
    let config = ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id);
    let admin = wallet_from_hex(account(network, 0)?)?.with_chain_id(network.ethereum.chain_id);
    let relay = wallet_from_hex(account(network, 1)?)?.address();

    let (client, deployed) = match &network.ethereum.contract_address {
        Some(address) => {
            let address: Address = address
                .parse()
                .map_err(|_| InitError::BadAddress(address.clone()))?;
            (
                MedicalCertificateClient::attach(&config, address, admin)?,
                false,
            )
        }
        None => (
            MedicalCertificateClient::deploy(&config, admin, relay)
                .await?
                .0,
            true,
        ),
    };
    let contract_address = format!("{:#x}", client.address());
    if deployed {
        // Saved at once so a failure below does not deploy a second contract next time.
        network.ethereum.contract_address = Some(contract_address.clone());
        network.save_to(save_path)?;
    }
    let relay_set = client.relay().await? != relay;
    if relay_set {
        client.set_relay(relay).await?;
    }

    let mut registered = Vec::new();
    let mut already_registered = Vec::new();
    let mut key_services_set = Vec::new();
    let mut key_services_unchanged = Vec::new();
    for hospital in &network.fabric.hospitals {
        let in_hospital = |source| InitError::Hospital {
            id: hospital.id.clone(),
            source: Box::new(source),
        };
        let published = public_keys(hospital).await.map_err(in_hospital)?;
        let ticket_key = published.ticket_key.to_bytes();
        if set_key_service(network, hospital, ticket_key)
            .await
            .map_err(in_hospital)?
        {
            key_services_set.push(hospital.id.clone());
        } else {
            key_services_unchanged.push(hospital.id.clone());
        }
        let keys = HospitalKeys {
            public_key: published.hospital_key.to_bytes(),
            watermark_key: published.watermark_key.to_bytes(),
        };
        let id = hospital_id(&hospital.id).ok_or(InitError::BadHospital {
            id: hospital.id.clone(),
            reason: "its id is not 1 to 32 bytes without NUL",
        })?;
        let account = wallet_from_hex(account(network, hospital.eth_account)?)?.address();
        match client.hospital(id).await {
            Ok(on_chain) if on_chain.account == account => {
                if HospitalKeys::of(&on_chain) == Some(keys) {
                    already_registered.push(hospital.id.clone());
                } else {
                    // The key service's keys were recreated (e.g. after a wipe): publish
                    // the new ones; records marked with the old watermark key read as forged.
                    client.set_hospital_keys(id, &keys).await?;
                    registered.push(hospital.id.clone());
                }
                continue;
            }
            // Another account under this id: re-register it.
            Ok(_) => {
                client.remove_hospital(id).await?;
            }
            Err(EthereumError::Refused(MedicalCertificateErrors::UnknownHospital(_))) => {}
            Err(e) => return Err(e.into()),
        }
        client.register_hospital(id, account, &keys).await?;
        registered.push(hospital.id.clone());
    }
    Ok(InitReport {
        contract_address,
        deployed,
        relay_set,
        registered,
        already_registered,
        key_services_set,
        key_services_unchanged,
    })
}

/// Registers `ticket_key` on `hospital`'s channel as its admin, unless the channel has it
/// already; answers whether it registered.
async fn set_key_service(
    network: &Network,
    hospital: &Hospital,
    ticket_key: [u8; 32],
) -> Result<bool, FlowError> {
    let chain = |source| FlowError::chain(&hospital.channel, source);
    let admin = hospital_client(network, hospital, Actor::Admin).await?;
    let registered = admin.get_key_service().await.map_err(chain)?;
    if registered.is_some_and(|ks| ks.ticket_key.eq_ignore_ascii_case(&hex::encode(ticket_key))) {
        return Ok(false);
    }
    admin
        .set_key_service(&args::SetKeyService { ticket_key })
        .await
        .map_err(chain)?;
    Ok(true)
}
