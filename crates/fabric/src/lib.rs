//! A Fabric Gateway client in the shape of the official ones:
//! [`Gateway`] → [`Network`] (a channel) → [`Contract`] (a chaincode).
//!
//! ```no_run
//! # async fn demo(identity: medcert_fabric::Identity, ca: Vec<u8>) -> Result<(), medcert_fabric::Error> {
//! let gateway = medcert_fabric::Gateway::connect("127.0.0.1:7051", "peer0.hospital1.medcert.local", &ca, identity).await?;
//! let contract = gateway.network("hospital1").contract("hospital");
//! let version = contract.evaluate("Version", &[]).await?;
//! let committed = contract
//!     .new_proposal("CreateRecord")
//!     .args(["T-1", "R-1"])
//!     .transient("password", b"secret".to_vec())
//!     .build()?
//!     .endorse()
//!     .await?
//!     .submit()
//!     .await?
//!     .status()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A chaincode response status of 300–399 is committed by Fabric (only 400 and above
//! abort endorsement); medcert's chaincode uses it for refusals that must be recorded
//! (a wrong password), and [`Submitted::status`] turns it into [`Error::Refused`] once
//! the transaction has committed.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

pub mod block;
mod error;
#[cfg(test)]
mod failover_tests;
mod identity;
pub mod light_client;
pub mod msp;
mod proposal;

pub use error::Error;
pub use identity::{Identity, IdentityError};
pub use proposal::{Committed, Contract, Proposal, ProposalBuilder, Submitted, Transaction};

use error::gateway_error;

use futures_util::{Stream, StreamExt};
use medcert_fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use medcert_fabric_protos::gateway::gateway_client::GatewayClient;
use medcert_fabric_protos::gateway::{ChaincodeEventsRequest, SignedChaincodeEventsRequest};
use medcert_fabric_protos::orderer::{
    SeekInfo, SeekPosition, SeekSpecified, seek_info, seek_position,
};
use medcert_fabric_protos::protos::deliver_client::DeliverClient;
use medcert_fabric_protos::protos::deliver_response;
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use medcert_fabric_protos::common::Block;

/// One peer's gateway service: where it listens and how its TLS certificate is checked.
#[derive(Debug, Clone)]
pub struct PeerEndpoint {
    /// Its `host:port`.
    pub endpoint: String,
    /// The name its TLS certificate is for.
    pub server_name: String,
    /// The CA certificate (PEM) its TLS certificate chains to.
    pub tls_ca_pem: Vec<u8>,
}

struct Peer {
    endpoint: String,
    channel: Channel,
}

struct Inner {
    peers: Vec<Peer>,
    /// The peer that answered last: calls start there, so a dead peer costs one refused
    /// connection, not one per call.
    current: AtomicUsize,
    identity: Identity,
}

/// A connection to one organisation's peers' gateway services as one identity: each call
/// goes to one peer, and to the next one while a peer is unreachable.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl Gateway {
    /// Connects over TLS to `endpoint` (`host:port`), checking the peer's certificate
    /// against `tls_ca_pem` and the name `server_name`.
    pub async fn connect(
        endpoint: &str,
        server_name: &str,
        tls_ca_pem: &[u8],
        identity: Identity,
    ) -> Result<Self, Error> {
        let peer = PeerEndpoint {
            endpoint: endpoint.to_owned(),
            server_name: server_name.to_owned(),
            tls_ca_pem: tls_ca_pem.to_vec(),
        };
        Self::connect_any(&[peer], identity).await
    }

    /// Connects to the first of `peers` (one organisation's, in order of preference) that
    /// answers. Evaluation, endorsement, submission, commit status and the opening of an
    /// event or block stream then go to the peer that answered last and, when it cannot
    /// be reached (a connection error or UNAVAILABLE), to each other peer in turn.
    pub async fn connect_any(peers: &[PeerEndpoint], identity: Identity) -> Result<Self, Error> {
        let endpoints = peers
            .iter()
            .map(|peer| {
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&peer.tls_ca_pem))
                    .domain_name(&peer.server_name);
                Endpoint::from_shared(format!("https://{}", peer.endpoint))
                    .and_then(|e| e.tls_config(tls))
                    .map(|e| e.connect_timeout(std::time::Duration::from_secs(10)))
                    .map_err(|source| Error::Connect {
                        endpoint: peer.endpoint.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut failure = None;
        let mut connected = None;
        for (i, endpoint) in endpoints.iter().enumerate() {
            match endpoint.connect().await {
                Ok(channel) => {
                    connected = Some((i, channel));
                    break;
                }
                Err(source) => failure = Some(source),
            }
        }
        let Some((first, channel)) = connected else {
            let tried = peers
                .iter()
                .map(|p| p.endpoint.as_str())
                .collect::<Vec<_>>();
            return Err(match failure {
                Some(source) => Error::Connect {
                    endpoint: tried.join(", "),
                    source,
                },
                None => Error::NoPeers,
            });
        };
        // The others connect when a call first needs them.
        let mut channel = Some(channel);
        let peers = peers
            .iter()
            .zip(&endpoints)
            .enumerate()
            .map(|(i, (peer, endpoint))| Peer {
                endpoint: peer.endpoint.clone(),
                channel: match channel.take_if(|_| i == first) {
                    Some(connected) => connected,
                    None => endpoint.connect_lazy(),
                },
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                peers,
                current: AtomicUsize::new(first),
                identity,
            }),
        })
    }

    /// The identity the gateway signs as.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The `host:port` of the peer that answered last (or was connected first).
    pub fn current_peer(&self) -> &str {
        &self.inner.peers[self.inner.current.load(Ordering::Relaxed)].endpoint
    }

    /// The channel `channel` through this gateway.
    pub fn network(&self, channel: &str) -> Network {
        Network {
            gateway: self.clone(),
            channel: channel.to_owned(),
        }
    }

    /// The answer of `call` made on the current peer or, while a peer answers UNAVAILABLE
    /// (which a connection error also is), on the next one; a failure names `operation`.
    /// Every call may be repeated on another peer: an evaluation or endorsement commits
    /// nothing, and a transaction submitted twice commits once (the second copy is
    /// invalidated as a duplicate of its id).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        mut call: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let peers = &self.inner.peers;
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut unavailable = None;
        for i in (start..peers.len()).chain(0..start) {
            match call(peers[i].channel.clone()).await {
                Ok(response) => {
                    self.inner.current.store(i, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Err(status) if unreachable(&status) => unavailable = Some(status),
                Err(status) => return Err(gateway_error(operation, status)),
            }
        }
        // No peer could be reached: that is UNAVAILABLE, however the last one failed.
        let last = unavailable.expect("a gateway has at least one peer");
        Err(gateway_error(
            operation,
            tonic::Status::unavailable(last.message()),
        ))
    }
}

/// Whether `status` says the peer could not be reached or did not answer: UNAVAILABLE (a
/// refused connection is one), or a failure of the connection itself (a peer that went
/// away under an open connection), which tonic reports as UNKNOWN with the transport
/// error as its source. A status the peer sent has no source.
fn unreachable(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        || std::error::Error::source(status)
            .is_some_and(|source| source.is::<tonic::transport::Error>())
}

/// The peer's system chaincode that answers ledger queries.
const QSCC: &str = "qscc";

/// `common.BlockchainInfo`, as qscc's GetChainInfo returns it (only the height is read).
#[derive(Clone, PartialEq, Message)]
struct BlockchainInfo {
    #[prost(uint64, tag = "1")]
    height: u64,
}

fn decode_block(bytes: &[u8]) -> Result<Block, Error> {
    Block::decode(bytes).map_err(|source| Error::Decode {
        what: "block",
        source,
    })
}

/// One channel seen through a gateway.
#[derive(Clone)]
pub struct Network {
    gateway: Gateway,
    pub(crate) channel: String,
}

/// Where a chaincode event stream starts: at `block_number`, after transaction
/// `after_tx_id` of that block if given (the last event already processed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The block to start at.
    pub block_number: u64,
    /// The last transaction of that block already processed.
    pub after_tx_id: Option<String>,
}

/// A chaincode event as committed in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeEvent {
    /// The block that holds the transaction.
    pub block_number: u64,
    /// The transaction that emitted it.
    pub tx_id: String,
    /// The chaincode that emitted it.
    pub chaincode: String,
    /// The event's name.
    pub name: String,
    /// The event's payload.
    pub payload: Vec<u8>,
}

impl ChaincodeEvent {
    /// The checkpoint that resumes right after this event.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            block_number: self.block_number,
            after_tx_id: Some(self.tx_id.clone()),
        }
    }
}

impl Network {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.channel
    }

    /// The chaincode `chaincode` on this channel.
    pub fn contract(&self, chaincode: &str) -> Contract {
        Contract::new(self.clone(), chaincode)
    }

    /// The channel's height (the number of its next block), from the peer's `qscc`.
    pub async fn height(&self) -> Result<u64, Error> {
        let bytes = self
            .contract(QSCC)
            .evaluate("GetChainInfo", &[&self.channel])
            .await?;
        BlockchainInfo::decode(bytes.as_slice())
            .map(|info| info.height)
            .map_err(|source| Error::Decode {
                what: "chain info",
                source,
            })
    }

    /// Block `number` of the channel, from the peer's `qscc`.
    pub async fn block(&self, number: u64) -> Result<Block, Error> {
        let bytes = self
            .contract(QSCC)
            .evaluate("GetBlockByNumber", &[&self.channel, &number.to_string()])
            .await?;
        decode_block(&bytes)
    }

    /// The block holding transaction `tx_id`, from the peer's `qscc`.
    pub async fn block_by_tx_id(&self, tx_id: &str) -> Result<Block, Error> {
        let bytes = self
            .contract(QSCC)
            .evaluate("GetBlockByTxID", &[&self.channel, tx_id])
            .await?;
        decode_block(&bytes)
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.gateway.inner.identity
    }

    /// [`Gateway::call`] on this channel's gateway.
    pub(crate) async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, Error>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.gateway.call(operation, call).await
    }

    /// Committed events of `chaincode` from `start` on; the stream waits for new blocks
    /// and ends only when the connection does.
    pub async fn chaincode_events(
        &self,
        chaincode: &str,
        start: Checkpoint,
    ) -> Result<impl Stream<Item = Result<ChaincodeEvent, Error>> + use<>, Error> {
        let request = ChaincodeEventsRequest {
            channel_id: self.channel.clone(),
            chaincode_id: chaincode.to_owned(),
            identity: self.identity().serialized(),
            start_position: Some(SeekPosition {
                r#type: Some(seek_position::Type::Specified(SeekSpecified {
                    number: start.block_number,
                })),
            }),
            after_transaction_id: start.after_tx_id.unwrap_or_default(),
        }
        .encode_to_vec();
        let signed = SignedChaincodeEventsRequest {
            signature: self.identity().sign(&request),
            request,
        };
        let stream = self
            .call("chaincode events", |channel| {
                let signed = signed.clone();
                async move { GatewayClient::new(channel).chaincode_events(signed).await }
            })
            .await?;
        let chaincode = chaincode.to_owned();
        Ok(stream.flat_map(move |item| {
            let events: Vec<Result<ChaincodeEvent, Error>> = match item {
                Ok(response) => response
                    .events
                    .into_iter()
                    .map(|e| {
                        Ok(ChaincodeEvent {
                            block_number: response.block_number,
                            tx_id: e.tx_id,
                            chaincode: if e.chaincode_id.is_empty() {
                                chaincode.clone()
                            } else {
                                e.chaincode_id
                            },
                            name: e.event_name,
                            payload: e.payload,
                        })
                    })
                    .collect(),
                Err(status) => vec![Err(gateway_error("chaincode events", status))],
            };
            futures_util::stream::iter(events)
        }))
    }

    /// Every block of the channel from `start` through the newest one at the time of the
    /// call, from the peer's deliver service.
    pub async fn blocks(&self, start: u64) -> Result<Vec<Block>, Error> {
        let seek = SeekInfo {
            start: Some(SeekPosition {
                r#type: Some(seek_position::Type::Specified(SeekSpecified {
                    number: start,
                })),
            }),
            stop: Some(SeekPosition {
                r#type: Some(seek_position::Type::Newest(Default::default())),
            }),
            behavior: seek_info::SeekBehavior::FailIfNotReady as i32,
            ..Default::default()
        };
        let (channel_header, signature_header, _) = self.headers(HeaderType::DeliverSeekInfo, None);
        let payload = Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: signature_header.encode_to_vec(),
            }),
            data: seek.encode_to_vec(),
        }
        .encode_to_vec();
        let envelope = Envelope {
            signature: self.identity().sign(&payload),
            payload,
        };
        let mut stream = self
            .call("block delivery", |channel| {
                let envelope = envelope.clone();
                async move {
                    DeliverClient::new(channel)
                        .deliver(tokio_stream::once(envelope))
                        .await
                }
            })
            .await?;
        let mut blocks = Vec::new();
        while let Some(response) = stream
            .message()
            .await
            .map_err(|s| gateway_error("block delivery", s))?
        {
            match response.r#type {
                Some(deliver_response::Type::Block(block)) => blocks.push(block),
                Some(deliver_response::Type::Status(status)) => {
                    if status == medcert_fabric_protos::common::Status::Success as i32 {
                        return Ok(blocks);
                    }
                    return Err(Error::DeliverStatus(status));
                }
                _ => {
                    return Err(Error::Incomplete(
                        "deliver response without a block or status",
                    ));
                }
            }
        }
        Err(Error::Incomplete("block delivery ended without a status"))
    }

    /// A fresh channel header and signature header, with the transaction id Fabric
    /// expects: hex SHA-256 of nonce ‖ creator.
    pub(crate) fn headers(
        &self,
        kind: HeaderType,
        extension: Option<Vec<u8>>,
    ) -> (ChannelHeader, SignatureHeader, String) {
        let mut nonce = vec![0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let creator = self.identity().serialized();
        let tx_id = hex::encode(
            Sha256::new()
                .chain_update(&nonce)
                .chain_update(&creator)
                .finalize(),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let channel_header = ChannelHeader {
            r#type: kind as i32,
            channel_id: self.channel.clone(),
            tx_id: tx_id.clone(),
            timestamp: Some(prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
            }),
            extension: extension.unwrap_or_default(),
            ..Default::default()
        };
        (channel_header, SignatureHeader { creator, nonce }, tx_id)
    }
}
