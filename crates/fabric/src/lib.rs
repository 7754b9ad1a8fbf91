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

pub mod block;
mod identity;

pub use identity::{Identity, IdentityError};

use futures_util::{Stream, StreamExt};
use medcert_fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use medcert_fabric_protos::gateway::gateway_client::GatewayClient;
use medcert_fabric_protos::gateway::{
    ChaincodeEventsRequest, CommitStatusRequest, EndorseRequest, ErrorDetail, EvaluateRequest,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest,
};
use medcert_fabric_protos::orderer::{
    SeekInfo, SeekPosition, SeekSpecified, seek_info, seek_position,
};
use medcert_fabric_protos::protos::deliver_client::DeliverClient;
use medcert_fabric_protos::protos::{
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, ChaincodeSpec, Proposal as PbProposal, Response, SignedProposal,
    TxValidationCode, chaincode_spec, deliver_response,
};
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use medcert_fabric_protos::common::Block;

/// Errors of the gateway client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client's identity cannot be loaded.
    #[error("cannot load the Fabric identity")]
    Identity(#[from] IdentityError),
    /// The gateway cannot be reached.
    #[error("cannot connect to the gateway at {endpoint}")]
    Connect {
        /// `host:port` of the gateway.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The gateway refused or failed a request; `details` carries each peer's or
    /// orderer's reason (for a chaincode refusal, the chaincode's message).
    #[error("{operation}: {}", gateway_reason(.message, .details))]
    Gateway {
        /// What was asked: endorsement, evaluation, submission, commit status, chaincode
        /// events or block delivery.
        operation: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The gateway's message.
        message: String,
        /// Each peer's or orderer's reason, as `<MSP> <address>: <message>`.
        details: Vec<String>,
    },
    /// The chaincode refused the call (status 400 or more) during evaluation.
    #[error("chaincode refused with status {status}: {message}")]
    Chaincode {
        /// The chaincode's response status.
        status: i32,
        /// The chaincode's message.
        message: String,
    },
    /// The transaction committed a refusal that had to be recorded (status 300–399).
    #[error("chaincode refused with status {status} (recorded in transaction {tx_id}): {message}")]
    Refused {
        /// The committed transaction.
        tx_id: String,
        /// The chaincode's response status.
        status: i32,
        /// The chaincode's message.
        message: String,
    },
    /// The transaction was ordered but the peer marked it invalid.
    #[error("transaction {tx_id} was not committed: validation code {code:?}")]
    NotCommitted {
        /// The transaction.
        tx_id: String,
        /// Why the peer invalidated it (an MVCC conflict, a failed endorsement policy…).
        code: TxValidationCode,
        /// The block that holds it.
        block_number: u64,
    },
    /// A message from the peer does not decode.
    #[error("malformed {what} from the peer")]
    Decode {
        /// Which message.
        what: &'static str,
        /// Why it does not decode.
        #[source]
        source: prost::DecodeError,
    },
    /// A message from the peer lacks a part it must have.
    #[error("incomplete message from the peer: {0}")]
    Incomplete(&'static str),
    /// Block delivery ended without success.
    #[error("block delivery ended with status {0}")]
    DeliverStatus(i32),
}

/// What a gateway refusal says: the peers' and orderers' own reasons when it carries them
/// (its message then only points at them), else its message.
fn gateway_reason(message: &str, details: &[String]) -> String {
    let details = details.join("; ");
    if details.is_empty() {
        message.to_owned()
    } else if message.contains("see attached details") {
        details
    } else {
        format!("{message} ({details})")
    }
}

fn gateway_error(operation: &'static str, status: tonic::Status) -> Error {
    let details = medcert_fabric_protos::rpc::Status::decode(status.details())
        .map(|s| {
            s.details
                .iter()
                .filter_map(|any| ErrorDetail::decode(any.value.as_slice()).ok())
                .map(|d| format!("{} {}: {}", d.msp_id, d.address, d.message))
                .collect()
        })
        .unwrap_or_default();
    Error::Gateway {
        operation,
        code: status.code(),
        message: status.message().to_owned(),
        details,
    }
}

struct Inner {
    channel: Channel,
    identity: Identity,
}

/// A connection to one peer's gateway service as one identity.
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
        let connect_error = |source| Error::Connect {
            endpoint: endpoint.to_owned(),
            source,
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(tls_ca_pem))
            .domain_name(server_name);
        let channel = Endpoint::from_shared(format!("https://{endpoint}"))
            .map_err(connect_error)?
            .tls_config(tls)
            .map_err(connect_error)?
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .map_err(connect_error)?;
        Ok(Self {
            inner: Arc::new(Inner { channel, identity }),
        })
    }

    /// The identity the gateway signs as.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The channel `channel` through this gateway.
    pub fn network(&self, channel: &str) -> Network {
        Network {
            gateway: self.clone(),
            channel: channel.to_owned(),
        }
    }
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
    channel: String,
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
        Contract {
            network: self.clone(),
            chaincode: chaincode.to_owned(),
        }
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

    fn identity(&self) -> &Identity {
        &self.gateway.inner.identity
    }

    fn client(&self) -> GatewayClient<Channel> {
        GatewayClient::new(self.gateway.inner.channel.clone())
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
            .client()
            .chaincode_events(signed)
            .await
            .map_err(|s| gateway_error("chaincode events", s))?
            .into_inner();
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
        let mut stream = DeliverClient::new(self.gateway.inner.channel.clone())
            .deliver(tokio_stream::once(envelope))
            .await
            .map_err(|s| gateway_error("block delivery", s))?
            .into_inner();
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
    fn headers(
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

/// One chaincode on one channel.
#[derive(Clone)]
pub struct Contract {
    network: Network,
    chaincode: String,
}

impl Contract {
    /// A proposal to call `function`, to give arguments and transient data.
    pub fn new_proposal(&self, function: &str) -> ProposalBuilder {
        ProposalBuilder {
            contract: self.clone(),
            function: function.to_owned(),
            args: Vec::new(),
            transient: HashMap::new(),
        }
    }

    /// Runs `function` on a peer without committing, returning its result.
    pub async fn evaluate(&self, function: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
        self.new_proposal(function)
            .args(args.iter().copied())
            .build()?
            .evaluate()
            .await
    }

    /// Endorses, submits and waits for the commit of `function`, returning its result.
    pub async fn submit(&self, function: &str, args: &[&str]) -> Result<Committed, Error> {
        self.new_proposal(function)
            .args(args.iter().copied())
            .submit()
            .await
    }
}

/// A proposal being put together: arguments, transient data.
pub struct ProposalBuilder {
    contract: Contract,
    function: String,
    args: Vec<Vec<u8>>,
    transient: HashMap<String, Vec<u8>>,
}

impl ProposalBuilder {
    /// Appends arguments, in order.
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    /// Private input for the chaincode: it reaches the endorsing peers but never a block.
    pub fn transient(mut self, key: &str, value: Vec<u8>) -> Self {
        self.transient.insert(key.to_owned(), value);
        self
    }

    /// Builds, endorses, submits and waits for the commit, for callers that need no step
    /// in between.
    pub async fn submit(self) -> Result<Committed, Error> {
        self.build()?
            .endorse()
            .await?
            .submit()
            .await?
            .status()
            .await
    }

    /// Signs the proposal, with a fresh transaction id.
    pub fn build(self) -> Result<Proposal, Error> {
        let network = &self.contract.network;
        let chaincode_id = Some(ChaincodeId {
            name: self.contract.chaincode.clone(),
            ..Default::default()
        });
        let extension = ChaincodeHeaderExtension {
            chaincode_id: chaincode_id.clone(),
        }
        .encode_to_vec();
        let (channel_header, signature_header, tx_id) =
            network.headers(HeaderType::EndorserTransaction, Some(extension));
        let mut args = vec![self.function.into_bytes()];
        args.extend(self.args);
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                r#type: chaincode_spec::Type::Golang as i32,
                chaincode_id,
                input: Some(ChaincodeInput {
                    args,
                    ..Default::default()
                }),
                timeout: 0,
            }),
        };
        let proposal = PbProposal {
            header: Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: signature_header.encode_to_vec(),
            }
            .encode_to_vec(),
            payload: ChaincodeProposalPayload {
                input: invocation.encode_to_vec(),
                transient_map: self.transient,
            }
            .encode_to_vec(),
            extension: Vec::new(),
        };
        let proposal_bytes = proposal.encode_to_vec();
        Ok(Proposal {
            network: network.clone(),
            tx_id,
            signed: SignedProposal {
                signature: network.identity().sign(&proposal_bytes),
                proposal_bytes,
            },
        })
    }
}

/// A signed proposal, ready to evaluate or endorse.
pub struct Proposal {
    network: Network,
    tx_id: String,
    signed: SignedProposal,
}

impl Proposal {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// Runs the proposal on a peer without committing; returns the chaincode's answer.
    pub async fn evaluate(self) -> Result<Vec<u8>, Error> {
        let request = EvaluateRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed),
            target_organizations: Vec::new(),
        };
        let response = self
            .network
            .client()
            .evaluate(request)
            .await
            .map_err(|s| gateway_error("evaluation", s))?
            .into_inner()
            .result
            .ok_or(Error::Incomplete("evaluate response without a result"))?;
        if response.status >= 400 {
            return Err(Error::Chaincode {
                status: response.status,
                message: response.message,
            });
        }
        Ok(response.payload)
    }

    /// Has the proposal endorsed as the endorsement policy requires.
    pub async fn endorse(self) -> Result<Transaction, Error> {
        let request = EndorseRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed),
            endorsing_organizations: Vec::new(),
        };
        let envelope = self
            .network
            .client()
            .endorse(request)
            .await
            .map_err(|s| gateway_error("endorsement", s))?
            .into_inner()
            .prepared_transaction
            .ok_or(Error::Incomplete("endorse response without a transaction"))?;
        let response = block::chaincode_response(&envelope)?;
        Ok(Transaction {
            network: self.network,
            tx_id: self.tx_id,
            envelope,
            response,
        })
    }
}

/// An endorsed transaction, ready to submit to the orderer.
pub struct Transaction {
    network: Network,
    tx_id: String,
    envelope: Envelope,
    response: Response,
}

impl Transaction {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// The chaincode's result, as endorsed.
    pub fn result(&self) -> &[u8] {
        &self.response.payload
    }

    /// Signs the endorsed transaction and hands it to the orderer.
    pub async fn submit(mut self) -> Result<Submitted, Error> {
        self.envelope.signature = self.network.identity().sign(&self.envelope.payload);
        let request = SubmitRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            prepared_transaction: Some(self.envelope),
        };
        self.network
            .client()
            .submit(request)
            .await
            .map_err(|s| gateway_error("submission", s))?;
        Ok(Submitted {
            network: self.network,
            tx_id: self.tx_id,
            response: self.response,
        })
    }
}

/// A transaction handed to the orderer.
pub struct Submitted {
    network: Network,
    tx_id: String,
    response: Response,
}

/// A committed, valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The transaction id.
    pub tx_id: String,
    /// The block it committed in.
    pub block_number: u64,
    /// The chaincode's answer.
    pub result: Vec<u8>,
}

impl Submitted {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// Waits for the commit. A transaction the peer marked invalid is
    /// [`Error::NotCommitted`]; a committed refusal (status 300–399) is [`Error::Refused`].
    pub async fn status(self) -> Result<Committed, Error> {
        let request = CommitStatusRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            identity: self.network.identity().serialized(),
        }
        .encode_to_vec();
        let signed = SignedCommitStatusRequest {
            signature: self.network.identity().sign(&request),
            request,
        };
        let status = self
            .network
            .client()
            .commit_status(signed)
            .await
            .map_err(|s| gateway_error("commit status", s))?
            .into_inner();
        let code = TxValidationCode::try_from(status.result)
            .unwrap_or(TxValidationCode::InvalidOtherReason);
        if code != TxValidationCode::Valid {
            return Err(Error::NotCommitted {
                tx_id: self.tx_id,
                code,
                block_number: status.block_number,
            });
        }
        if self.response.status >= 300 {
            return Err(Error::Refused {
                tx_id: self.tx_id,
                status: self.response.status,
                message: self.response.message,
            });
        }
        Ok(Committed {
            tx_id: self.tx_id,
            block_number: status.block_number,
            result: self.response.payload,
        })
    }
}
