//! Connections to the network's services, from its description: a hospital's gateway and
//! key service as one of its identities, the certificate contract as a hospital's issuer
//! account, IPFS, the CSP.

use std::time::Duration;

use medcert_csp::Csp;
use medcert_ethereum::ethers::types::Address;
use medcert_ethereum::{ChainConfig, MedicalCertificateClient, wallet_from_hex};
use medcert_fabric::{Gateway, PeerEndpoint};
use medcert_hospital_api::HospitalClient;
use medcert_ipfs::Ipfs;
use medcert_key_service::{KeyServiceClient, PublicKeys};
use medcert_network::{Hospital, Identity, Network};

use crate::error::FlowError;

/// Who acts on a hospital's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The hospital's `n`-th doctor (0-based).
    Doctor(usize),
    /// The hospital's admin.
    Admin,
}

impl Actor {
    /// The actor's Fabric identity in `hospital`'s description.
    pub fn identity(self, hospital: &Hospital) -> Result<&Identity, FlowError> {
        match self {
            Actor::Doctor(n) => hospital.doctors.get(n).ok_or(FlowError::NoSuchDoctor {
                hospital: hospital.id.clone(),
                count: hospital.doctors.len(),
                doctor: n,
            }),
            Actor::Admin => Ok(&hospital.admin),
        }
    }
}

/// `identity`'s Fabric signer, from its certificate and key files.
fn signer(hospital: &Hospital, identity: &Identity) -> Result<medcert_fabric::Identity, FlowError> {
    medcert_fabric::Identity::from_files(&identity.msp_id, &identity.cert, &identity.key)
        .map_err(|source| FlowError::fabric(&hospital.channel, source))
}

/// Opens `hospital`'s gateway as `identity` (any identity its peers accept: a doctor, the
/// admin, the relay's org) over TLS with each peer's CA: every peer of the hospital, in
/// the description's order, so that a call goes to another one while a peer is down.
pub async fn gateway(hospital: &Hospital, identity: &Identity) -> Result<Gateway, FlowError> {
    let signer = signer(hospital, identity)?;
    let peers = hospital
        .peers()
        .iter()
        .map(|peer| {
            let tls_ca_pem = std::fs::read(&peer.tls_ca).map_err(|source| FlowError::Read {
                path: peer.tls_ca.clone(),
                source,
            })?;
            Ok(PeerEndpoint {
                endpoint: peer.endpoint.clone(),
                server_name: peer.host.clone(),
                tls_ca_pem,
            })
        })
        .collect::<Result<Vec<_>, FlowError>>()?;
    Gateway::connect_any(&peers, signer)
        .await
        .map_err(|source| FlowError::fabric(&hospital.channel, source))
}

/// The hospital chaincode on `hospital`'s channel, called as `actor`.
pub async fn hospital_client(
    network: &Network,
    hospital: &Hospital,
    actor: Actor,
) -> Result<HospitalClient, FlowError> {
    let gateway = gateway(hospital, actor.identity(hospital)?).await?;
    Ok(HospitalClient::new(
        gateway
            .network(&hospital.channel)
            .contract(&network.fabric.chaincode_name),
    ))
}

/// `hospital`'s key service, called as `actor`: every request is signed with the actor's
/// Fabric enrollment key, and the service serves only its hospital's doctors (and its
/// admin, to unlock a patient).
pub async fn key_service(hospital: &Hospital, actor: Actor) -> Result<KeyServiceClient, FlowError> {
    let signer = signer(hospital, actor.identity(hospital)?)?;
    let service = &hospital.key_service;
    let client =
        KeyServiceClient::connect(&service.endpoint, &service.host, &service.tls_ca, signer)
            .await
            .map_err(|source| FlowError::key_service(&hospital.id, source))?;
    check_serves(hospital, client.keys())?;
    Ok(client)
}

/// The public keys `hospital`'s key service publishes (its X25519 key, its watermark and
/// ticket verifying keys); asks no identity. A service that says it serves another
/// hospital is refused.
pub async fn public_keys(hospital: &Hospital) -> Result<PublicKeys, FlowError> {
    let service = &hospital.key_service;
    let keys = KeyServiceClient::public_keys(&service.endpoint, &service.host, &service.tls_ca)
        .await
        .map_err(|source| FlowError::key_service(&hospital.id, source))?;
    check_serves(hospital, &keys)?;
    Ok(keys)
}

/// A service at `hospital`'s endpoint that serves another hospital (a mixed-up network
/// description) would wrap keys and sign marks for the wrong one.
fn check_serves(hospital: &Hospital, keys: &PublicKeys) -> Result<(), FlowError> {
    if keys.hospital_id == hospital.id {
        return Ok(());
    }
    Err(FlowError::ForeignKeyService {
        hospital: hospital.id.clone(),
        endpoint: hospital.key_service.endpoint.clone(),
        serves: keys.hospital_id.clone(),
    })
}

/// The deployed certificate contract's address.
pub fn contract_address(network: &Network) -> Result<Address, FlowError> {
    let address = network
        .ethereum
        .contract_address
        .as_deref()
        .ok_or(FlowError::NoContract)?;
    address.parse().map_err(|_| FlowError::MalformedAddress {
        address: address.to_owned(),
    })
}

fn chain_config(network: &Network) -> ChainConfig {
    ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id)
}

/// The certificate contract, sending as `hospital`'s issuer account.
pub fn certificate_client_as_hospital(
    network: &Network,
    hospital: &Hospital,
) -> Result<MedicalCertificateClient, FlowError> {
    let account = network
        .hospital_account(hospital)
        .ok_or_else(|| FlowError::NoAccount {
            hospital: hospital.id.clone(),
            index: hospital.eth_account,
        })?;
    let wallet = wallet_from_hex(&account.private_key)?;
    Ok(MedicalCertificateClient::attach(
        &chain_config(network),
        contract_address(network)?,
        wallet,
    )?)
}

/// The certificate contract for reading only (sends nothing; the admin account is a
/// placeholder sender).
pub fn certificate_reader(network: &Network) -> Result<MedicalCertificateClient, FlowError> {
    let account = network
        .ethereum
        .accounts
        .first()
        .ok_or(FlowError::NoAccounts)?;
    Ok(MedicalCertificateClient::attach(
        &chain_config(network),
        contract_address(network)?,
        wallet_from_hex(&account.private_key)?,
    )?)
}

/// The network's IPFS node.
pub fn ipfs(network: &Network) -> Result<Ipfs, FlowError> {
    Ok(Ipfs::new(&network.ipfs.api_url, Duration::from_secs(60))?)
}

/// The network's CSP (its S3 bucket).
pub fn csp(network: &Network) -> Result<Csp, FlowError> {
    Ok(Csp::s3(&network.s3)?)
}
