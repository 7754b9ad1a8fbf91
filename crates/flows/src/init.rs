//! Network init: idempotent bootstrap of the certificate chain on a running
//! network: contract, relay, each hospital's local keys and on-chain registration.

use std::path::Path;

use medcert_eip712::hospital_id;
use medcert_ethereum::bindings::MedicalCertificateErrors;
use medcert_ethereum::ethers::signers::Signer;
use medcert_ethereum::ethers::types::Address;
use medcert_ethereum::{ChainConfig, EthereumError, MedicalCertificateClient, wallet_from_hex};
use medcert_network::{Network, NetworkError};
use serde::Serialize;

use crate::keys::{HospitalKeys, KeysError};

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
    /// A hospital's secrets cannot be opened or created.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// The network description cannot be read or used.
    #[error(transparent)]
    Network(#[from] NetworkError),
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
    for hospital in &network.fabric.hospitals {
        let keys =
            HospitalKeys::open_or_create(&HospitalKeys::dir(&network.run_dir, &hospital.id))?;
        let public_key = keys.key_store.public_key().to_bytes();
        let id = hospital_id(&hospital.id).ok_or(InitError::BadHospital {
            id: hospital.id.clone(),
            reason: "its id is not 1 to 32 bytes without NUL",
        })?;
        let account = wallet_from_hex(account(network, hospital.eth_account)?)?.address();
        match client.hospital(id).await {
            Ok(on_chain)
                if on_chain.account == account && on_chain.public_key.as_ref() == public_key =>
            {
                already_registered.push(hospital.id.clone());
                continue;
            }
            // Re-registering replaces a stale entry (e.g. keys recreated after a wipe).
            Ok(_) => {
                client.remove_hospital(id).await?;
            }
            Err(EthereumError::Refused(MedicalCertificateErrors::UnknownHospital(_))) => {}
            Err(e) => return Err(e.into()),
        }
        client.register_hospital(id, account, public_key).await?;
        registered.push(hospital.id.clone());
    }
    Ok(InitReport {
        contract_address,
        deployed,
        relay_set,
        registered,
        already_registered,
    })
}
