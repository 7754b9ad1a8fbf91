//! The cross-chain relay (BitXHub's part in the paper): carries each hospital's recovery
//! request from its Fabric channel to the MedicalCertificate contract on Ethereum and the
//! answer back, verifying both chains' proofs, exactly once.
//!
//! For every hospital channel at once, the relay
//! 1. follows the chaincode's `InterchainRequest` events from a durable checkpoint (on a
//!    new store: from the channel's height at first start);
//! 2. proves each one in a block that its light client of the channel verified from a
//!    persisted checkpoint ([`fabric_light_client`]: orderer signatures, hash chain, the
//!    hospital's peers endorsing as the chaincode's policy requires, certificates valid
//!    at the block's time), the endorsed event being the delivered one
//!    ([`fabric_proof`]); admits it only at the next index of its pair (duplicates
//!    ignored, gaps filled from the ledger first);
//! 3. serves it with `serveRecovery` (unless already served: the contract serves each
//!    request id once), waits until its block is final and proves the receipt against
//!    the `receiptsRoot` of a verified header ([`medcert_ethereum::proof`]: each header's
//!    hash recomputed and linked by parent hash to a persisted checkpoint);
//! 4. answers on the channel with `CompleteRecovery` or `FailRecovery` (a contract
//!    refusal, or a timeout: the request proven unserved, by a storage proof, in a
//!    verified block past the deadline the hospital chose, after which the contract
//!    refuses it), recording what it proved, after checking the channel has no answer
//!    yet.
//!
//! Each message's status is committed to the store ([`store`]) before the next side
//! effect, so a crash at any step is resumed without loss or repetition. A chain whose
//! proof fails is frozen ([`freeze`]): its messages are refused and recorded until an
//! operator unfreezes it.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

// The binary's (main.rs) dependencies, not the library's.
use {anyhow as _, clap as _, tracing_subscriber as _};

mod error;
pub mod ethereum;
pub mod fabric;
pub mod fabric_light_client;
pub mod fabric_proof;
pub mod freeze;
pub mod metrics;
mod pause;
pub mod prove;
pub mod store;
mod worker;

pub(crate) use error::ErrorChain;
pub use error::RelayError;
pub use pause::PauseStep;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use medcert_ethereum::{ChainConfig, MedicalCertificateClient, wallet_from_hex};
use medcert_network::Network;
use prost::Message;
use sha3::{Digest, Keccak256};
use tokio::task::JoinSet;

use crate::ethereum::EthereumSide;
use crate::fabric::HospitalSide;
use crate::freeze::{FreezeBook, Refusal};
use crate::metrics::Metrics;
use crate::proto::{Interchain, interchain};
use crate::store::{Admission, Checkpoint, MessageRecord, Status, Store};
use medcert_hospital_api::events::INTERCHAIN_REQUEST;

/// The project's interchain messages (`proto/interchain.proto`).
#[allow(missing_docs)] // generated
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/medcert.interchain.v1.rs"));
}

/// Version of the interchain messages this relay writes.
pub const MESSAGE_VERSION: u32 = 1;

/// Domain tag of [`request_id`].
const REQUEST_ID_TAG: &[u8] = b"medcert/recovery/v1";

/// The id `serveRecovery` is called with for request `index` of `channel`:
/// keccak256("medcert/recovery/v1" ‖ channel ‖ 0x00 ‖ index as u64 big-endian).
/// The contract serves each id once, so two relays can never serve a request twice.
pub fn request_id(channel: &str, index: u64) -> [u8; 32] {
    Keccak256::new()
        .chain_update(REQUEST_ID_TAG)
        .chain_update(channel.as_bytes())
        .chain_update([0u8])
        .chain_update(index.to_be_bytes())
        .finalize()
        .into()
}

/// Chain id of a hospital channel.
pub fn fabric_chain(channel: &str) -> String {
    format!("fabric:{channel}")
}

/// Chain id of the certificate chain.
pub fn ethereum_chain(chain_id: u64) -> String {
    format!("ethereum:{chain_id}")
}

fn pair(source: &str, destination: &str) -> String {
    format!("{source}->{destination}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// What the relay serves and how.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The network to serve.
    pub network: Network,
    /// Directory of the relay's durable store and freeze file.
    pub state_dir: PathBuf,
    /// Blocks, counting the transaction's own, before an Ethereum receipt is final.
    pub confirmations: usize,
    /// How long a step on Ethereum (a transaction waiting to be mined) runs before the
    /// relay looks whether the request's deadline passed on the certificate chain.
    pub request_timeout: Duration,
    /// Where to serve Prometheus metrics (loopback only; port 0 picks one).
    pub metrics_addr: Option<SocketAddr>,
    /// Serve only these hospital ids (all when `None`).
    pub only_hospitals: Option<Vec<String>>,
    /// Stop forever at this step, printing `paused at <step> index=<n>` (crash tests).
    pub pause_at: Option<PauseStep>,
}

impl RelayConfig {
    /// Defaults: 1 confirmation, a 60 s timeout, no metrics, every hospital.
    pub fn new(network: Network, state_dir: PathBuf) -> Self {
        Self {
            network,
            state_dir,
            confirmations: 1,
            request_timeout: Duration::from_secs(60),
            metrics_addr: None,
            only_hospitals: None,
            pause_at: None,
        }
    }
}

/// The relay's own time on one message: verification and bookkeeping, not chain waits.
#[derive(Debug, Default)]
pub struct Stopwatch {
    total: Duration,
    started: Option<Instant>,
}

impl Stopwatch {
    /// Starts timing (again); a running stopwatch keeps running.
    pub fn start(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// Stops timing, adding the time since the start.
    pub fn stop(&mut self) {
        if let Some(started) = self.started.take() {
            self.total += started.elapsed();
        }
    }

    /// The time measured so far.
    pub fn total(&self) -> Duration {
        self.total + self.started.map(|s| s.elapsed()).unwrap_or_default()
    }
}

/// A running relay. Dropping it leaves the tasks running; call [`RelayHandle::shutdown`].
pub struct RelayHandle {
    core: Arc<Core>,
    sources: JoinSet<()>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
    metrics_addr: Option<SocketAddr>,
}

impl RelayHandle {
    /// The relay's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.core.metrics.clone()
    }

    /// The address metrics are served on (with the port chosen if 0 was asked).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops every task. Whatever was in progress resumes from the store next start.
    pub async fn shutdown(mut self) {
        self.sources.abort_all();
        while self.sources.join_next().await.is_some() {}
        let mut workers = std::mem::take(&mut *self.core.workers.lock().expect("workers lock"));
        workers.abort_all();
        while workers.join_next().await.is_some() {}
        if let Some(server) = self.metrics_server.take() {
            server.abort();
        }
        tracing::info!("relay stopped");
    }
}

/// The relay service.
pub struct Relay;

impl Relay {
    /// Opens the store, connects to every served hospital's peer and starts following
    /// their channels; resumes every unanswered message.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        let network = &config.network;
        if let Some(addr) = config.metrics_addr {
            metrics::check_loopback(addr).map_err(RelayError::Config)?;
        }
        let contract = network
            .ethereum
            .contract_address
            .as_deref()
            .ok_or_else(|| {
                RelayError::Config(
                    "the network description has no contract address: the certificate contract is not deployed".into(),
                )
            })?;
        let contract = contract.parse().map_err(|_| {
            RelayError::Config(format!("contract address {contract:?} is not an address"))
        })?;
        let relay_account = network.ethereum.accounts.get(1).ok_or_else(|| {
            RelayError::Config(
                "the network description lists no relay account (accounts[1])".into(),
            )
        })?;
        let hospitals: Vec<_> = match &config.only_hospitals {
            None => network.fabric.hospitals.iter().collect(),
            Some(ids) => ids
                .iter()
                .map(|id| network.hospital(id))
                .collect::<Result<_, _>>()?,
        };
        std::fs::create_dir_all(&config.state_dir).map_err(|source| RelayError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
        let store = Store::open(&config.state_dir)?;
        let freeze = FreezeBook::new(&config.state_dir);

        let mut chain =
            ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id);
        chain.confirmations = config.confirmations;
        chain.timeout = config.request_timeout;
        let client = MedicalCertificateClient::attach(
            &chain,
            contract,
            wallet_from_hex(&relay_account.private_key)?,
        )?;
        let eth = EthereumSide::new(
            client,
            network.ethereum.chain_id,
            config.confirmations,
            &store,
        )?;

        let mut sides = BTreeMap::new();
        for hospital in hospitals {
            let side = HospitalSide::connect(
                hospital,
                &network.fabric.relay,
                &network.fabric.chaincode_name,
                &eth.chain,
            )
            .await?;
            sides.insert(hospital.channel.clone(), Arc::new(side));
        }

        let (metrics_server, metrics_addr, metrics) = {
            let metrics = Arc::new(Metrics::default());
            match config.metrics_addr {
                None => (None, None, metrics),
                Some(addr) => {
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|source| RelayError::Metrics { addr, source })?;
                    let bound = listener.local_addr().ok();
                    let server = tokio::spawn(metrics::serve(listener, metrics.clone()));
                    (Some(server), bound, metrics)
                }
            }
        };

        let core = Arc::new(Core {
            store,
            freeze,
            metrics,
            eth,
            hospitals: sides,
            request_timeout: config.request_timeout,
            pause_at: config.pause_at,
            in_flight: Mutex::new(HashSet::new()),
            workers: Mutex::new(JoinSet::new()),
        });
        // A new store starts at each channel's present (what came before is not this
        // relay's), fixed before returning so that nothing committed after start is missed.
        for side in core.hospitals.values() {
            if core.store.checkpoint(side.channel())?.is_none() {
                let checkpoint = Checkpoint {
                    block_number: side.height().await?,
                    after_tx_id: None,
                };
                core.store.set_checkpoint(side.channel(), &checkpoint)?;
                tracing::info!(chain = %side.chain, block = checkpoint.block_number, "new store: starting at the channel's height");
            }
        }
        for record in core.store.unanswered()? {
            tracing::info!(request = %record.key(), status = record.status.name(), "resuming");
            core.spawn_worker(record.key(), Stopwatch::default());
        }
        let mut sources = JoinSet::new();
        for side in core.hospitals.values() {
            sources.spawn(follow(core.clone(), side.clone()));
        }
        tracing::info!(
            channels = core.hospitals.len(),
            state_dir = %config.state_dir.display(),
            metrics = ?metrics_addr,
            "relay started"
        );
        Ok(RelayHandle {
            core,
            sources,
            metrics_server,
            metrics_addr,
        })
    }
}

struct Core {
    store: Store,
    freeze: FreezeBook,
    metrics: Arc<Metrics>,
    eth: EthereumSide,
    /// By channel.
    hospitals: BTreeMap<String, Arc<HospitalSide>>,
    request_timeout: Duration,
    pause_at: Option<PauseStep>,
    /// Messages a worker is driving right now.
    in_flight: Mutex<HashSet<String>>,
    workers: Mutex<JoinSet<()>>,
}

/// What became of one event.
enum Handled {
    Admitted,
    Duplicate,
    Refused,
}

/// Follows one channel for ever, reconnecting after errors.
async fn follow(core: Arc<Core>, side: Arc<HospitalSide>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match follow_once(&core, &side).await {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(chain = %side.chain, error = %ErrorChain(&e), "event stream interrupted; resuming from the checkpoint");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// Reads events from the stored checkpoint until the stream ends, an error occurs, or the
/// chain was unfrozen after refusals (then the refused events are read again).
async fn follow_once(core: &Arc<Core>, side: &HospitalSide) -> Result<(), RelayError> {
    let channel = side.channel();
    let checkpoint = core.store.checkpoint(channel)?.ok_or_else(|| {
        RelayError::Config(format!(
            "no checkpoint for channel {channel}; restart the relay"
        ))
    })?;
    let start = medcert_fabric::Checkpoint {
        block_number: checkpoint.block_number,
        after_tx_id: checkpoint.after_tx_id,
    };
    let events = side
        .gateway
        .network(channel)
        .chaincode_events(&side.chaincode, start)
        .await
        .map_err(|source| RelayError::Fabric {
            hospital: side.hospital.id.clone(),
            source,
        })?;
    let mut events = std::pin::pin!(events);
    let mut refused_since_checkpoint = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            item = events.next() => {
                let Some(item) = item else { return Ok(()) };
                let event = item.map_err(|source| RelayError::Fabric {
                    hospital: side.hospital.id.clone(),
                    source,
                })?;
                if event.name != INTERCHAIN_REQUEST {
                    continue;
                }
                if let Handled::Refused = core.handle_event(side, &event).await? {
                    refused_since_checkpoint = true;
                }
            }
            _ = tick.tick(), if refused_since_checkpoint => {
                if core.freeze.frozen(&side.chain)?.is_none() {
                    tracing::info!(chain = %side.chain, "unfrozen: reading the refused events again");
                    return Ok(());
                }
            }
        }
    }
}

impl Core {
    async fn pause(&self, step: PauseStep, index: u64) {
        if self.pause_at == Some(step) {
            eprintln!("paused at {step} index={index}");
            std::future::pending::<()>().await;
        }
    }

    /// Freezes `chain` (if it is not yet) and records the refusal of `message`.
    fn refuse(
        &self,
        chain: &str,
        freeze_reason: &str,
        message: &str,
        reason: &str,
    ) -> Result<(), RelayError> {
        let (newly_frozen, new_refusal) = self.freeze.refuse(
            chain,
            freeze_reason,
            Refusal {
                message: message.to_owned(),
                reason: reason.to_owned(),
                at_ms: now_ms(),
            },
        )?;
        if newly_frozen {
            Metrics::count(&self.metrics.frozen);
            tracing::error!(%chain, reason = freeze_reason, "chain frozen");
        }
        if new_refusal {
            Metrics::count(&self.metrics.refused);
            tracing::warn!(%chain, refused = %message, %reason, "message refused");
        }
        Ok(())
    }

    /// Proves and admits one `InterchainRequest` event, then hands it to a worker.
    async fn handle_event(
        self: &Arc<Self>,
        side: &HospitalSide,
        event: &medcert_fabric::ChaincodeEvent,
    ) -> Result<Handled, RelayError> {
        let described = format!("{}/tx/{}", side.chain, event.tx_id);
        if let Some(reason) = self.freeze.frozen(&side.chain)? {
            self.refuse(
                &side.chain,
                &reason,
                &described,
                &format!("chain frozen: {reason}"),
            )?;
            return Ok(Handled::Refused);
        }
        let mut own = Stopwatch::default();
        let proven = match side
            .prove_event(
                &self.store,
                event.block_number,
                &event.tx_id,
                &event.payload,
                &mut own,
            )
            .await?
        {
            Ok(proven) => proven,
            Err(refused) => {
                self.refuse(&side.chain, &refused.0, &described, &refused.0)?;
                return Ok(Handled::Refused);
            }
        };
        let checkpoint = Checkpoint {
            block_number: event.block_number,
            after_tx_id: Some(event.tx_id.clone()),
        };
        own.start();
        let index = proven.request.index;
        match store::admit(self.store.next_index(&side.pair)?, index) {
            Admission::Next => {}
            Admission::Duplicate { expected } => {
                tracing::warn!(pair = %side.pair, index, expected, tx = %event.tx_id, "duplicate index ignored");
                self.store.set_checkpoint(side.channel(), &checkpoint)?;
                Metrics::count(&self.metrics.duplicates);
                return Ok(Handled::Duplicate);
            }
            Admission::Gap { expected } => {
                own.stop();
                tracing::warn!(pair = %side.pair, index, expected, "index gap: fetching the missing requests from the ledger");
                for missing in expected..index {
                    let mut filler_own = Stopwatch::default();
                    match side
                        .prove_index(&self.store, missing, &mut filler_own)
                        .await?
                    {
                        Ok(filler) => {
                            // The checkpoint stays where it is: the current event is next.
                            let at = self
                                .store
                                .checkpoint(side.channel())?
                                .unwrap_or(checkpoint.clone());
                            let (key, filler_own) = self.admit(side, filler, &at, filler_own)?;
                            self.spawn_worker(key, filler_own);
                        }
                        Err(refused) => {
                            let message = format!("{}/{missing}", side.chain);
                            self.refuse(&side.chain, &refused.0, &message, &refused.0)?;
                            return Ok(Handled::Refused);
                        }
                    }
                }
                own.start();
            }
        }
        own.stop();
        let (key, own) = self.admit(side, proven, &checkpoint, own)?;
        self.pause(PauseStep::ReadEvent, index).await;
        self.spawn_worker(key, own);
        Ok(Handled::Admitted)
    }

    /// Records a proven request as `Received`; returns its key for the worker to take.
    fn admit(
        &self,
        side: &HospitalSide,
        proven: fabric::ProvenRequest,
        checkpoint: &Checkpoint,
        mut own: Stopwatch,
    ) -> Result<(String, Stopwatch), RelayError> {
        own.start();
        let index = proven.request.index;
        let message = Interchain {
            source_chain: side.chain.clone(),
            destination_chain: self.eth.chain.clone(),
            index,
            r#type: interchain::Type::Request as i32,
            payload: proven.payload,
            proof: proven.proof.encode_to_vec(),
            timestamp_ms: now_ms(),
            version: MESSAGE_VERSION,
        };
        let record = MessageRecord {
            channel: side.channel().to_owned(),
            index,
            request: hex::encode(message.encode_to_vec()),
            received_at_ms: now_ms(),
            status: Status::Received,
        };
        self.store.admit(&side.pair, &record, checkpoint)?;
        own.stop();
        Metrics::count(&self.metrics.received);
        tracing::info!(pair = %side.pair, index, block = proven.proof.block_number, tx = %proven.proof.tx_id, "request admitted");
        Ok((record.key(), own))
    }

    fn spawn_worker(self: &Arc<Self>, key: String, own: Stopwatch) {
        if !self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .insert(key.clone())
        {
            return;
        }
        let core = self.clone();
        let mut workers = self.workers.lock().expect("workers lock");
        while workers.try_join_next().is_some() {}
        workers.spawn(async move {
            let mut own = Some(own);
            worker::supervised(&key, Duration::from_secs(5), || {
                core.drive(&key, own.take().unwrap_or_default())
            })
            .await;
            core.in_flight.lock().expect("in-flight lock").remove(&key);
        });
    }
}
