//! The error of every flow, and the exit code each kind of failure maps to.

use std::path::PathBuf;

use medcert_crypto::CryptoError;
use medcert_csp::CspError;
use medcert_ethereum::EthereumError;
use medcert_ipfs::IpfsError;
use medcert_network::NetworkError;

use crate::hospital_keys::KeysError;
use crate::store::StoreError;
use crate::wallet::WalletError;

/// What kind of failure ended a command; each has a stable exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Anything else, including bad input (exit 1).
    Failed,
    /// A record's watermark or fingerprint is not the issuing hospital's (exit 3).
    NotAuthentic,
    /// A chain refused: wrong password, unknown patient or record, expired or replayed
    /// consent, a failed recovery (exit 4).
    Refused,
    /// A service (peer, node, IPFS, CSP) could not be reached (exit 5).
    Unreachable,
}

impl FailureKind {
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Failed => 1,
            FailureKind::NotAuthentic => 3,
            FailureKind::Refused => 4,
            FailureKind::Unreachable => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Bad input: the message says what is wrong and what to do.
    #[error("{0}")]
    Input(String),
    #[error("cannot read {path}: {source}; check the path")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("hospital chain {channel}: {source}")]
    Fabric {
        channel: String,
        source: medcert_fabric::Error,
    },
    #[error("certificate chain: {0}")]
    Ethereum(#[from] EthereumError),
    #[error("IPFS: {0}")]
    Ipfs(#[from] IpfsError),
    #[error("CSP: {0}")]
    Csp(#[from] CspError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "record {record_id} is stored at {hospital} (transaction {tx_id}) but certifying it \
         failed: {source}; its IPFS copy was unpinned; retry with `medcert ehr certify \
         --hospital {hospital} --record {record_id} --patient {patient}`"
    )]
    CertifyAfterStore {
        hospital: String,
        record_id: String,
        tx_id: String,
        patient: String,
        source: Box<FlowError>,
    },
    #[error("not authentic: {0}; the record was not stored")]
    NotAuthentic(String),
    #[error("recovery {index} on {channel} failed: {reason}")]
    RecoveryFailed {
        channel: String,
        index: u64,
        reason: String,
    },
    #[error(
        "recovery {index} on {channel} has no outcome after {waited_s} s; is a relay running \
         (`medcert relay run`)? `medcert ehr recover --resume {index}` picks it up again"
    )]
    RecoveryTimeout {
        channel: String,
        index: u64,
        waited_s: u64,
    },
    #[error("{what} from {source_name} is malformed: {reason}")]
    Malformed {
        what: &'static str,
        source_name: String,
        reason: String,
    },
}

impl FlowError {
    pub(crate) fn fabric(channel: &str, source: medcert_fabric::Error) -> Self {
        FlowError::Fabric {
            channel: channel.to_owned(),
            source,
        }
    }

    pub fn kind(&self) -> FailureKind {
        match self {
            FlowError::NotAuthentic(_) => FailureKind::NotAuthentic,
            FlowError::RecoveryFailed { .. } => FailureKind::Refused,
            FlowError::CertifyAfterStore { source, .. } => source.kind(),
            FlowError::Fabric { source, .. } => fabric_kind(source),
            FlowError::Store(StoreError::Fabric(source)) => fabric_kind(source),
            FlowError::Store(StoreError::Csp(source)) | FlowError::Csp(source) => csp_kind(source),
            FlowError::Ethereum(source) => ethereum_kind(source),
            FlowError::Ipfs(IpfsError::Unreachable { .. } | IpfsError::Timeout { .. }) => {
                FailureKind::Unreachable
            }
            FlowError::RecoveryTimeout { .. } => FailureKind::Unreachable,
            _ => FailureKind::Failed,
        }
    }
}

fn fabric_kind(error: &medcert_fabric::Error) -> FailureKind {
    use medcert_fabric::Error;
    match error {
        Error::Connect { .. } => FailureKind::Unreachable,
        Error::Gateway { code, details, .. } => match code {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded if details.is_empty() => {
                FailureKind::Unreachable
            }
            _ => FailureKind::Refused,
        },
        Error::Chaincode { .. } | Error::Refused { .. } => FailureKind::Refused,
        _ => FailureKind::Failed,
    }
}

fn csp_kind(error: &CspError) -> FailureKind {
    match error {
        CspError::Store { source, .. } if unreachable(source.as_ref()) => FailureKind::Unreachable,
        _ => FailureKind::Failed,
    }
}

fn ethereum_kind(error: &EthereumError) -> FailureKind {
    match error {
        EthereumError::Refused(_) => FailureKind::Refused,
        EthereumError::Timeout { .. } => FailureKind::Unreachable,
        EthereumError::Rpc(source) if unreachable(source.as_ref()) => FailureKind::Unreachable,
        _ => FailureKind::Failed,
    }
}

/// Whether an error's chain holds a connection failure (refused, reset, timed out).
fn unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::TimedOut
                    | ErrorKind::NotConnected
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        // Clients that do not expose the io::Error say so in their message.
        let text = error.to_string().to_lowercase();
        if text.contains("connection refused") || text.contains("error trying to connect") {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_anywhere_in_the_chain_are_unreachable() {
        #[derive(Debug, thiserror::Error)]
        #[error("request failed")]
        struct Outer(#[source] std::io::Error);
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(unreachable(&refused));
        let denied = Outer(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(!unreachable(&denied));
    }

    #[test]
    fn exit_codes_are_stable() {
        let codes: Vec<u8> = [
            FailureKind::Failed,
            FailureKind::NotAuthentic,
            FailureKind::Refused,
            FailureKind::Unreachable,
        ]
        .into_iter()
        .map(FailureKind::exit_code)
        .collect();
        assert_eq!(codes, [1, 3, 4, 5]);
        assert_eq!(
            FlowError::NotAuthentic("x".into()).kind(),
            FailureKind::NotAuthentic
        );
        assert_eq!(
            FlowError::fabric(
                "hospital1",
                medcert_fabric::Error::Connect {
                    endpoint: "127.0.0.1:1".into(),
                    reason: "refused".into()
                }
            )
            .kind(),
            FailureKind::Unreachable
        );
    }
}
