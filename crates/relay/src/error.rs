//! What stops a step of the relay, and printing an error with its sources.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medcert_ethereum::EthereumError;

use crate::freeze::FreezeError;
use crate::store::StoreError;

/// An error and its sources on one line (`error: source: source`), for logs and for the
/// reasons the relay records: each error's own message names only its own cause.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Why the relay cannot go on (a step is retried, or the relay stops).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration or network description cannot be used, and why.
    #[error("relay configuration: {0}")]
    Config(String),
    /// A configured file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state directory cannot be created.
    #[error("cannot create the state directory {path}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {addr}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A hospital's MSP CA certificate is not a usable trust anchor.
    #[error("hospital {hospital}: unusable MSP CA certificate")]
    MspCa {
        /// The hospital.
        hospital: String,
        /// Why.
        #[source]
        source: medcert_fabric::msp::CaError,
    },
    /// The network description names no such hospital.
    #[error("the network description")]
    Network(#[from] medcert_network::NetworkError),
    /// The Ethereum RPC URL does not parse.
    #[error("the Ethereum RPC URL {url}")]
    RpcUrl {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The freeze file failed.
    #[error(transparent)]
    Freeze(#[from] FreezeError),
    /// A hospital's peer failed or refused (connection, blocks, events).
    #[error("hospital {hospital}")]
    Fabric {
        /// The hospital.
        hospital: String,
        /// Why.
        #[source]
        source: medcert_fabric::Error,
    },
    /// A hospital's chaincode call failed or was refused.
    #[error("hospital {hospital}")]
    Chaincode {
        /// The hospital.
        hospital: String,
        /// Why.
        #[source]
        source: medcert_hospital_api::ClientError,
    },
    /// The certificate chain failed or refused.
    #[error("certificate chain")]
    Ethereum(#[from] EthereumError),
    /// A proof about the certificate chain could not be made yet (the node unreachable,
    /// an answer malformed, a block not final); retried. A proof that failed freezes the
    /// chain instead.
    #[error("certificate chain proof")]
    Proof(#[source] medcert_ethereum::proof::ProofError),
    /// A chain the message needs is frozen.
    #[error("chain {chain} is frozen ({reason}) until an operator unfreezes it")]
    Frozen {
        /// The chain id.
        chain: String,
        /// Why it was frozen.
        reason: String,
    },
    /// The certificate chain did not answer in time.
    #[error("timed out after {0:?} waiting for the certificate chain")]
    Timeout(Duration),
    /// A stored message cannot be used.
    #[error("stored message {key} is unreadable: {reason}")]
    CorruptMessage {
        /// The message's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
