//! The cross-chain relay (BitXHub's part in the paper): carries each hospital's recovery
//! request from its Fabric channel to the MedicalCertificate contract on Ethereum and the
//! answer back, verifying both chains' proofs, exactly once.

pub mod fabric_proof;
pub mod receipt_proof;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medcert_network::Network;
use sha3::{Digest, Keccak256};

/// The project's interchain messages (`proto/interchain.proto`).
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/medcert.interchain.v1.rs"));
}

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

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay configuration: {0}")]
    Config(String),
}

/// What the relay serves and how.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub network: Network,
    /// Directory of the relay's durable store.
    pub state_dir: PathBuf,
    /// Blocks, counting the transaction's own, before an Ethereum receipt is final.
    pub confirmations: usize,
    /// Longest time a request may take on Ethereum before it is rolled back.
    pub request_timeout: Duration,
    /// Where to serve Prometheus metrics (loopback only).
    pub metrics_addr: Option<SocketAddr>,
    /// Serve only these hospital ids (all when `None`).
    pub only_hospitals: Option<Vec<String>>,
}

impl RelayConfig {
    pub fn new(network: Network, state_dir: PathBuf) -> Self {
        Self {
            network,
            state_dir,
            confirmations: 1,
            request_timeout: Duration::from_secs(60),
            metrics_addr: None,
            only_hospitals: None,
        }
    }
}

/// A running relay.
pub struct RelayHandle {}

/// The relay service.
pub struct Relay;

impl Relay {
    pub async fn start(_config: RelayConfig) -> Result<RelayHandle, RelayError> {
        Err(RelayError::Config("not yet implemented".into()))
    }
}

impl RelayHandle {
    pub async fn shutdown(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_separate_channels_and_indices() {
        let a = request_id("hospital1", 1);
        assert_ne!(a, request_id("hospital1", 2));
        assert_ne!(a, request_id("hospital11", 1));
        // The 0x00 separator keeps ("hospital1", 256) and ("hospital1\x01", 0) apart.
        assert_ne!(request_id("hospital1", 256), request_id("hospital1\u{1}", 0));
    }
}
