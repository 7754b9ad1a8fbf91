//! What can go wrong talking to a gateway.

use medcert_fabric_protos::gateway::ErrorDetail;
use medcert_fabric_protos::protos::TxValidationCode;
use prost::Message;

use crate::IdentityError;

/// Errors of the gateway client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client's identity cannot be loaded.
    #[error("cannot load the Fabric identity")]
    Identity(#[from] IdentityError),
    /// No gateway can be reached.
    #[error("cannot connect to the gateway at {endpoint}")]
    Connect {
        /// `host:port` of each gateway tried, comma-separated.
        endpoint: String,
        /// Why the last one tried cannot be reached.
        #[source]
        source: tonic::transport::Error,
    },
    /// A gateway was asked for with no peer to connect to.
    #[error("no peer to connect to")]
    NoPeers,
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
    /// The transaction did not commit, though it was submitted again.
    #[error("transaction {tx_id} did not commit within {waited:?}")]
    CommitTimeout {
        /// The transaction.
        tx_id: String,
        /// How long its commit was awaited in all.
        waited: std::time::Duration,
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

pub(crate) fn gateway_error(operation: &'static str, status: tonic::Status) -> Error {
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
