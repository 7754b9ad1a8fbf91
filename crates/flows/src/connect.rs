//! Connections to the network's services, from its description: a hospital's gateway and
//! key service as one of its identities, the certificate contract as a hospital's issuer
//! account, IPFS, the CSP.
//!
//! A process that runs many flows (the demo, the benchmark, an agent beside a hospital)
//! keeps one connection per service and identity: each flow call would otherwise pay a
//! TLS handshake per service, and the S3 client would parse the system's roots again.
//! The connections are kept per thread and only while the runtime that made them runs
//! (their background tasks live on it), so a test's runtime never inherits a dead one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
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

/// The connections this thread keeps, all made on the runtime `alive` tells of.
#[derive(Default)]
struct Connections {
    /// Dropped with the runtime the connections were made on.
    alive: Weak<()>,
    gateways: HashMap<String, Gateway>,
    key_services: HashMap<String, KeyServiceClient>,
    certificates: HashMap<String, MedicalCertificateClient>,
    ipfs: HashMap<String, Ipfs>,
    csps: HashMap<String, Csp>,
}

thread_local! {
    static CONNECTIONS: RefCell<Connections> = RefCell::new(Connections::default());
}

/// `f` on this thread's connections, forgotten first if their runtime has ended; `None`
/// outside a runtime, where nothing is kept.
fn with_connections<T>(f: impl FnOnce(&mut Connections) -> T) -> Option<T> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    CONNECTIONS.with_borrow_mut(|connections| {
        if connections.alive.upgrade().is_none() {
            // A task that holds the token until its runtime shuts down and drops it.
            let token = Arc::new(());
            *connections = Connections {
                alive: Arc::downgrade(&token),
                ..Connections::default()
            };
            runtime.spawn(async move {
                let _token = token;
                std::future::pending::<()>().await
            });
        }
        Some(f(connections))
    })
}

/// The connection `pick` finds under `key`, or a new one from `connect`, kept under `key`.
async fn kept<T: Clone, F>(
    key: String,
    pick: fn(&mut Connections) -> &mut HashMap<String, T>,
    connect: F,
) -> Result<T, FlowError>
where
    F: std::future::Future<Output = Result<T, FlowError>>,
{
    if let Some(Some(kept)) = with_connections(|c| pick(c).get(&key).cloned()) {
        return Ok(kept);
    }
    let made = connect.await?;
    with_connections(|c| pick(c).insert(key, made.clone()));
    Ok(made)
}

/// [`kept`] for a connection made without waiting.
fn kept_now<T: Clone>(
    key: String,
    pick: fn(&mut Connections) -> &mut HashMap<String, T>,
    connect: impl FnOnce() -> Result<T, FlowError>,
) -> Result<T, FlowError> {
    if let Some(Some(kept)) = with_connections(|c| pick(c).get(&key).cloned()) {
        return Ok(kept);
    }
    let made = connect()?;
    with_connections(|c| pick(c).insert(key, made.clone()));
    Ok(made)
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
    let endpoints: Vec<&str> = hospital
        .peers()
        .iter()
        .map(|p| p.endpoint.as_str())
        .collect();
    let key = format!(
        "{} {} {}",
        endpoints.join(","),
        identity.msp_id,
        identity.cert.display()
    );
    kept(
        key,
        |c| &mut c.gateways,
        connect_gateway(hospital, identity),
    )
    .await
}

async fn connect_gateway(hospital: &Hospital, identity: &Identity) -> Result<Gateway, FlowError> {
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
    let identity = actor.identity(hospital)?;
    let service = &hospital.key_service;
    let key = format!("{} {}", service.endpoint, identity.cert.display());
    kept(key, |c| &mut c.key_services, async {
        let signer = signer(hospital, identity)?;
        let client =
            KeyServiceClient::connect(&service.endpoint, &service.host, &service.tls_ca, signer)
                .await
                .map_err(|source| FlowError::key_service(&hospital.id, source))?;
        check_serves(hospital, client.keys())?;
        Ok(client)
    })
    .await
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
    let address = contract_address(network)?;
    let key = format!(
        "{} {address:?} hospital account {}",
        network.ethereum.rpc_url, hospital.eth_account
    );
    kept_now(
        key,
        |c| &mut c.certificates,
        || {
            let wallet = wallet_from_hex(&account.private_key)?;
            Ok(MedicalCertificateClient::attach(
                &chain_config(network),
                address,
                wallet,
            )?)
        },
    )
}

/// The certificate contract for reading only (sends nothing; the admin account is a
/// placeholder sender).
pub fn certificate_reader(network: &Network) -> Result<MedicalCertificateClient, FlowError> {
    let account = network
        .ethereum
        .accounts
        .first()
        .ok_or(FlowError::NoAccounts)?;
    let address = contract_address(network)?;
    let key = format!("{} {address:?} reader", network.ethereum.rpc_url);
    kept_now(
        key,
        |c| &mut c.certificates,
        || {
            Ok(MedicalCertificateClient::attach(
                &chain_config(network),
                address,
                wallet_from_hex(&account.private_key)?,
            )?)
        },
    )
}

/// The network's IPFS node.
pub fn ipfs(network: &Network) -> Result<Ipfs, FlowError> {
    kept_now(
        network.ipfs.api_url.clone(),
        |c| &mut c.ipfs,
        || Ok(Ipfs::new(&network.ipfs.api_url, Duration::from_secs(60))?),
    )
}

/// The network's CSP (its S3 bucket).
pub fn csp(network: &Network) -> Result<Csp, FlowError> {
    let s3 = &network.s3;
    let key = format!("{} {} {}", s3.endpoint, s3.bucket, s3.access_key_id);
    kept_now(key, |c| &mut c.csps, || Ok(Csp::s3(s3)?))
}
