//! The chaincode side of Fabric's shim protocol, served as a gRPC server
//! (chaincode-as-a-service): the peer dials `protos.Chaincode/Connect`, the chaincode
//! sends REGISTER with its package id, the peer answers REGISTERED then READY, and from
//! then on sends TRANSACTION messages. While a transaction runs, the chaincode sends
//! GET_STATE / PUT_STATE / DEL_STATE / GET_STATE_BY_RANGE / QUERY_STATE_NEXT /
//! GET_HISTORY_FOR_KEY and waits for the peer's RESPONSE or ERROR, then ends the
//! transaction with COMPLETED carrying a `protos.Response` and the chaincode event.
//!
//! Several transactions may be in flight on one stream; replies are matched to their
//! transaction by (channel id, transaction id), and a transaction has at most one request
//! outstanding.

use crate::contract::{Config, Contract, Outcome, TxContext};
use crate::ledger::{KeyModification, Ledger, LedgerError};
use medcert_fabric_protos::common::{ChannelHeader, Header, SignatureHeader};
use medcert_fabric_protos::protos::chaincode_message::Type as MsgType;
use medcert_fabric_protos::protos::chaincode_server::Chaincode;
use medcert_fabric_protos::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, DelState, GetHistoryForKey,
    GetState, GetStateByRange, Proposal, PutState, QueryResponse, QueryStateNext, Response,
    SignedProposal,
};
use medcert_fabric_protos::queryresult::{KeyModification as PbKeyModification, Kv};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

type Outbound = mpsc::Sender<Result<ChaincodeMessage, Status>>;
type Pending = Arc<Mutex<HashMap<(String, String), oneshot::Sender<ChaincodeMessage>>>>;

/// The gRPC service the peer connects to.
pub struct ChaincodeService {
    chaincode_id: String,
    contract: Arc<Contract>,
}

impl ChaincodeService {
    /// `chaincode_id` is the package id the peer computed at install (`CHAINCODE_ID`).
    pub fn new(chaincode_id: String, config: Config) -> Self {
        Self {
            chaincode_id,
            contract: Arc::new(Contract::new(config)),
        }
    }
}

#[tonic::async_trait]
impl Chaincode for ChaincodeService {
    type ConnectStream = ReceiverStream<Result<ChaincodeMessage, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::ConnectStream>, Status> {
        let inbound = request.into_inner();
        let (out, rx) = mpsc::channel(64);
        let register = ChaincodeMessage {
            r#type: MsgType::Register as i32,
            payload: ChaincodeId {
                name: self.chaincode_id.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        };
        out.send(Ok(register))
            .await
            .map_err(|_| Status::internal("response stream closed"))?;
        tracing::info!(chaincode_id = %self.chaincode_id, "peer connected, REGISTER sent");
        tokio::spawn(run_session(inbound, out, Arc::clone(&self.contract)));
        Ok(tonic::Response::new(ReceiverStream::new(rx)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Created,
    Established,
    Ready,
}

async fn run_session(
    mut inbound: Streaming<ChaincodeMessage>,
    out: Outbound,
    contract: Arc<Contract>,
) {
    let pending: Pending = Arc::default();
    let mut state = SessionState::Created;
    loop {
        let msg = match inbound.message().await {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                tracing::info!("peer closed the chaincode stream");
                break;
            }
            Err(status) => {
                tracing::warn!(%status, "chaincode stream failed");
                break;
            }
        };
        let ty = MsgType::try_from(msg.r#type).unwrap_or(MsgType::Undefined);
        if ty == MsgType::Keepalive {
            if out.send(Ok(msg)).await.is_err() {
                break;
            }
            continue;
        }
        match (state, ty) {
            (SessionState::Created, MsgType::Registered) => {
                tracing::info!("REGISTERED by the peer");
                state = SessionState::Established;
            }
            (SessionState::Established, MsgType::Ready) => {
                tracing::info!("READY: accepting transactions");
                state = SessionState::Ready;
            }
            (SessionState::Ready, MsgType::Transaction | MsgType::Init) => {
                let out = out.clone();
                let pending = Arc::clone(&pending);
                let contract = Arc::clone(&contract);
                tokio::spawn(async move {
                    let reply = run_transaction(&contract, msg, out.clone(), pending).await;
                    // The peer ends the stream if this fails; the session loop notices.
                    let _ = out.send(Ok(reply)).await;
                });
            }
            (SessionState::Ready, MsgType::Response | MsgType::Error) => {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                let waiter = pending.lock().expect("pending map poisoned").remove(&key);
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(msg);
                    }
                    None => tracing::warn!(txid = %msg.txid, "reply for no pending request"),
                }
            }
            (state, ty) => {
                tracing::error!(?state, ?ty, "unexpected message from the peer");
                let error = ChaincodeMessage {
                    r#type: MsgType::Error as i32,
                    payload: format!("chaincode cannot handle {ty:?} in state {state:?}")
                        .into_bytes(),
                    txid: msg.txid,
                    channel_id: msg.channel_id,
                    ..Default::default()
                };
                let _ = out.send(Ok(error)).await;
                break;
            }
        }
    }
}

/// Runs one TRANSACTION and returns the COMPLETED (or ERROR) message that ends it.
async fn run_transaction(
    contract: &Contract,
    msg: ChaincodeMessage,
    out: Outbound,
    pending: Pending,
) -> ChaincodeMessage {
    let channel_id = msg.channel_id.clone();
    let txid = msg.txid.clone();
    let reply = |ty: MsgType, payload: Vec<u8>, event: Option<ChaincodeEvent>| ChaincodeMessage {
        r#type: ty as i32,
        payload,
        txid: txid.clone(),
        channel_id: channel_id.clone(),
        chaincode_event: event,
        ..Default::default()
    };
    let ctx = match tx_context(&msg) {
        Ok(ctx) => ctx,
        Err(reason) => {
            tracing::warn!(%txid, %reason, "malformed transaction message");
            return reply(MsgType::Error, reason.into_bytes(), None);
        }
    };
    let mut stub = ShimStub {
        channel_id: channel_id.clone(),
        txid: txid.clone(),
        out,
        pending,
    };
    let outcome: Outcome = contract.invoke(&ctx, &mut stub).await;
    tracing::info!(
        %txid,
        channel = %channel_id,
        function = %ctx.function,
        status = outcome.status,
        "transaction done"
    );
    let response = Response {
        status: outcome.status,
        message: outcome.message,
        payload: outcome.payload,
    };
    let event = outcome.event.map(|e| ChaincodeEvent {
        event_name: e.name,
        payload: e.payload,
        ..Default::default()
    });
    reply(MsgType::Completed, response.encode_to_vec(), event)
}

/// Decodes the invocation arguments, the creator and the transaction time from a
/// TRANSACTION message. The peer has already checked the proposal's
/// signature and the creator's membership of the channel before sending it.
fn tx_context(msg: &ChaincodeMessage) -> Result<TxContext, String> {
    let input = ChaincodeInput::decode(msg.payload.as_slice())
        .map_err(|e| format!("transaction payload is not a ChaincodeInput: {e}"))?;
    let signed: &SignedProposal = msg
        .proposal
        .as_ref()
        .ok_or("transaction carries no signed proposal")?;
    let proposal = Proposal::decode(signed.proposal_bytes.as_slice())
        .map_err(|e| format!("bad proposal: {e}"))?;
    let header =
        Header::decode(proposal.header.as_slice()).map_err(|e| format!("bad header: {e}"))?;
    let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| format!("bad signature header: {e}"))?;
    let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("bad channel header: {e}"))?;
    let timestamp_ms = channel_header
        .timestamp
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or_default();
    let mut args = input.args.into_iter();
    let function = args
        .next()
        .map(|f| String::from_utf8_lossy(&f).into_owned())
        .unwrap_or_default();
    Ok(TxContext {
        channel: msg.channel_id.clone(),
        tx_id: msg.txid.clone(),
        timestamp_ms,
        creator: signature_header.creator,
        function,
        args: args.collect(),
    })
}

/// The ledger of one transaction, reached through the peer stream.
struct ShimStub {
    channel_id: String,
    txid: String,
    out: Outbound,
    pending: Pending,
}

impl ShimStub {
    async fn call(&mut self, ty: MsgType, payload: Vec<u8>) -> Result<Vec<u8>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending map poisoned")
            .insert((self.channel_id.clone(), self.txid.clone()), tx);
        let request = ChaincodeMessage {
            r#type: ty as i32,
            payload,
            txid: self.txid.clone(),
            channel_id: self.channel_id.clone(),
            ..Default::default()
        };
        self.out
            .send(Ok(request))
            .await
            .map_err(|_| LedgerError::Disconnected)?;
        let reply = rx.await.map_err(|_| LedgerError::Disconnected)?;
        match MsgType::try_from(reply.r#type) {
            Ok(MsgType::Response) => Ok(reply.payload),
            Ok(MsgType::Error) => Err(LedgerError::Peer(
                String::from_utf8_lossy(&reply.payload).into_owned(),
            )),
            _ => Err(LedgerError::Protocol(format!(
                "message type {} in reply to {ty:?}",
                reply.r#type
            ))),
        }
    }

    /// Drains a paged query (range or history) into its raw result entries.
    async fn drain_query(&mut self, first: Vec<u8>) -> Result<Vec<Vec<u8>>, LedgerError> {
        let mut entries = Vec::new();
        let mut page = decode_query_response(&first)?;
        loop {
            entries.extend(page.results.into_iter().map(|r| r.result_bytes));
            if !page.has_more {
                break;
            }
            let next = QueryStateNext {
                id: page.id.clone(),
            };
            let bytes = self
                .call(MsgType::QueryStateNext, next.encode_to_vec())
                .await?;
            page = decode_query_response(&bytes)?;
        }
        // The peer drops its iterator once it reports no more results.
        Ok(entries)
    }
}

fn decode_query_response(bytes: &[u8]) -> Result<QueryResponse, LedgerError> {
    QueryResponse::decode(bytes).map_err(|e| LedgerError::Protocol(format!("query response: {e}")))
}

impl Ledger for ShimStub {
    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let request = GetState {
            key: key.to_owned(),
            collection: String::new(),
        };
        let value = self
            .call(MsgType::GetState, request.encode_to_vec())
            .await?;
        // The peer answers an absent key with an empty value.
        Ok((!value.is_empty()).then_some(value))
    }

    async fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), LedgerError> {
        let request = PutState {
            key: key.to_owned(),
            value,
            collection: String::new(),
        };
        self.call(MsgType::PutState, request.encode_to_vec())
            .await
            .map(drop)
    }

    async fn delete(&mut self, key: &str) -> Result<(), LedgerError> {
        let request = DelState {
            key: key.to_owned(),
            collection: String::new(),
        };
        self.call(MsgType::DelState, request.encode_to_vec())
            .await
            .map(drop)
    }

    async fn range(
        &mut self,
        start: &str,
        end: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, LedgerError> {
        let request = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            ..Default::default()
        };
        let first = self
            .call(MsgType::GetStateByRange, request.encode_to_vec())
            .await?;
        self.drain_query(first)
            .await?
            .into_iter()
            .map(|bytes| {
                Kv::decode(bytes.as_slice())
                    .map(|kv| (kv.key, kv.value))
                    .map_err(|e| LedgerError::Protocol(format!("range entry: {e}")))
            })
            .collect()
    }

    async fn history(&mut self, key: &str) -> Result<Vec<KeyModification>, LedgerError> {
        let request = GetHistoryForKey {
            key: key.to_owned(),
        };
        let first = self
            .call(MsgType::GetHistoryForKey, request.encode_to_vec())
            .await?;
        self.drain_query(first)
            .await?
            .into_iter()
            .map(|bytes| {
                let m = PbKeyModification::decode(bytes.as_slice())
                    .map_err(|e| LedgerError::Protocol(format!("history entry: {e}")))?;
                let timestamp_ms = m
                    .timestamp
                    .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
                    .unwrap_or_default();
                Ok(KeyModification {
                    tx_id: m.tx_id,
                    value: (!m.is_delete).then_some(m.value),
                    timestamp_ms,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! Drives the session as the peer would, over a real gRPC stream on loopback: the
    //! handshake, a transaction that reads state, and the COMPLETED reply.

    use super::*;
    use medcert_fabric_protos::protos::ChaincodeProposalPayload;
    use medcert_fabric_protos::protos::chaincode_client::ChaincodeClient;
    use medcert_fabric_protos::protos::chaincode_server::ChaincodeServer;

    fn config() -> Config {
        Config {
            relay_msp_id: "RelayMSP".into(),
        }
    }

    fn transaction(txid: &str, args: &[&str]) -> ChaincodeMessage {
        let header = Header {
            channel_header: ChannelHeader {
                channel_id: "hospital1".into(),
                tx_id: txid.into(),
                ..Default::default()
            }
            .encode_to_vec(),
            signature_header: SignatureHeader::default().encode_to_vec(),
        };
        let proposal = Proposal {
            header: header.encode_to_vec(),
            payload: ChaincodeProposalPayload::default().encode_to_vec(),
            extension: Vec::new(),
        };
        ChaincodeMessage {
            r#type: MsgType::Transaction as i32,
            payload: ChaincodeInput {
                args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
                ..Default::default()
            }
            .encode_to_vec(),
            txid: txid.into(),
            channel_id: "hospital1".into(),
            proposal: Some(SignedProposal {
                proposal_bytes: proposal.encode_to_vec(),
                signature: Vec::new(),
            }),
            ..Default::default()
        }
    }

    fn message(ty: MsgType) -> ChaincodeMessage {
        ChaincodeMessage {
            r#type: ty as i32,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn registers_then_answers_a_transaction() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = ChaincodeService::new("hospital:abc".into(), config());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ChaincodeServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = ChaincodeClient::new(channel);
        let (to_chaincode, rx) = mpsc::channel(8);
        let mut from_chaincode = client
            .connect(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();

        let register = from_chaincode.message().await.unwrap().unwrap();
        assert_eq!(register.r#type, MsgType::Register as i32);
        let id = ChaincodeId::decode(register.payload.as_slice()).unwrap();
        assert_eq!(id.name, "hospital:abc");

        to_chaincode
            .send(message(MsgType::Registered))
            .await
            .unwrap();
        to_chaincode.send(message(MsgType::Ready)).await.unwrap();
        let keepalive = message(MsgType::Keepalive);
        to_chaincode.send(keepalive.clone()).await.unwrap();
        assert_eq!(from_chaincode.message().await.unwrap().unwrap(), keepalive);

        to_chaincode
            .send(transaction("tx1", &["GetRecoveryStatus", "1"]))
            .await
            .unwrap();
        let get = from_chaincode.message().await.unwrap().unwrap();
        assert_eq!(get.r#type, MsgType::GetState as i32);
        assert_eq!(get.txid, "tx1");
        let key = GetState::decode(get.payload.as_slice()).unwrap().key;
        assert!(key.contains("recovery"), "{key}");
        // An absent key: the peer answers with an empty value.
        to_chaincode
            .send(ChaincodeMessage {
                r#type: MsgType::Response as i32,
                txid: "tx1".into(),
                channel_id: "hospital1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let completed = from_chaincode.message().await.unwrap().unwrap();
        assert_eq!(completed.r#type, MsgType::Completed as i32);
        assert_eq!(completed.txid, "tx1");
        let response = Response::decode(completed.payload.as_slice()).unwrap();
        assert_eq!(response.status, 404, "{}", response.message);
        assert!(
            response.message.contains("unknown recovery index 1"),
            "{}",
            response.message
        );
    }
}
