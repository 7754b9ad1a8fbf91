//! What can stop a benchmark run.

use std::path::PathBuf;

/// Why a benchmark run stopped. Wrapped errors are sources, not part of the message.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Network(#[from] medcert_network::NetworkError),
    #[error("hospital chain")]
    Fabric(#[from] medcert_fabric::Error),
    #[error("CSP")]
    Csp(#[from] medcert_csp::CspError),
    #[error("IPFS")]
    Ipfs(#[from] medcert_ipfs::IpfsError),
    #[error("certificate chain")]
    Ethereum(#[from] medcert_ethereum::EthereumError),
    #[error(transparent)]
    Crypto(#[from] medcert_crypto::CryptoError),
    #[error(transparent)]
    Flow(#[from] medcert_flows::FlowError),
    #[error(transparent)]
    Verify(#[from] medcert_flows::VerifyError),
    /// The network has not been initialised (`medcert network init`).
    #[error("hospital keys of {hospital}")]
    Keys {
        hospital: String,
        source: medcert_flows::KeysError,
    },
    #[error("watermark")]
    Watermark(#[from] medcert_watermark::WatermarkError),
    #[error("{what} at {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("unexpected answer from {what}: {detail}")]
    Unexpected { what: &'static str, detail: String },
    #[error("retrieved record {record_id} did not verify: {detail}")]
    NotAuthentic { record_id: String, detail: String },
    #[error("plot {path}: {detail}")]
    Plot { path: PathBuf, detail: String },
    #[error("cannot start the relay")]
    Relay(#[source] medcert_relay::RelayError),
    #[error("the relay's start task failed")]
    RelayTask(#[source] tokio::task::JoinError),
    #[error("{0}")]
    Unavailable(String),
}

impl BenchError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
