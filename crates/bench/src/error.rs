//! What can stop a benchmark run.

use std::path::PathBuf;

/// Why a benchmark run stopped. Wrapped errors are sources, not part of the message.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The network description cannot be read or used.
    #[error(transparent)]
    Network(#[from] medcert_network::NetworkError),
    /// A hospital's gateway refused or failed a call.
    #[error("hospital chain")]
    Fabric(#[from] medcert_fabric::Error),
    /// The CSP refused or failed a call.
    #[error("CSP")]
    Csp(#[from] medcert_csp::CspError),
    /// IPFS refused or failed a call.
    #[error("IPFS")]
    Ipfs(#[from] medcert_ipfs::IpfsError),
    /// The certificate chain refused or failed a call.
    #[error("certificate chain")]
    Ethereum(#[from] medcert_ethereum::EthereumError),
    /// Encrypting, decrypting or keeping a key failed.
    #[error(transparent)]
    Crypto(#[from] medcert_crypto::CryptoError),
    /// A flow failed.
    #[error(transparent)]
    Flow(#[from] medcert_flows::FlowError),
    /// Verifying a document failed.
    #[error(transparent)]
    Verify(#[from] medcert_flows::VerifyError),
    /// Watermarking or reading a mark failed.
    #[error("watermark")]
    Watermark(#[from] medcert_watermark::WatermarkError),
    /// A file cannot be read, written or removed.
    #[error("{what} at {path}")]
    Io {
        /// What the run was doing with the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A measuring tool or a raw service call (for a floor) failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The tool or call.
        tool: String,
        /// What it reported.
        detail: String,
    },
    /// A flow, a service or the network description answered other than expected.
    #[error("unexpected answer from {what}: {detail}")]
    Unexpected {
        /// Where the answer came from.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A record retrieved in the run did not verify as authentic.
    #[error("retrieved record {record_id} did not verify: {detail}")]
    NotAuthentic {
        /// The record's id.
        record_id: String,
        /// The verdict and fingerprint check.
        detail: String,
    },
    /// A plot cannot be drawn or written.
    #[error("plot {path}: {detail}")]
    Plot {
        /// The plot's file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The in-process relay cannot be started.
    #[error("cannot start the relay")]
    Relay(#[source] medcert_relay::RelayError),
    /// The task starting the relay panicked or was cancelled.
    #[error("the relay's start task failed")]
    RelayTask(#[source] tokio::task::JoinError),
    /// Something the run needs is missing or cannot be reached; the message says what.
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
