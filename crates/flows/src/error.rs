//! The error of every flow, and the kind of failure each is (which the binary maps to an
//! exit code). Messages say what is wrong; what to type next is the binary's to say.

use std::path::PathBuf;

use medcert_crypto::CryptoError;
use medcert_csp::CspError;
use medcert_ethereum::EthereumError;
use medcert_hospital_api::{ClientError, IDENTIFIER_RULE};
use medcert_ipfs::IpfsError;
use medcert_network::NetworkError;

use crate::keys::KeysError;
use crate::store::StoreError;
use crate::verify::VerifyError;
use crate::wallet::WalletError;

/// What kind of failure ended a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Anything else, including bad input.
    Failed,
    /// A record's watermark or fingerprint is not the issuing hospital's.
    NotAuthentic,
    /// A chain refused: wrong password, unknown patient or record, expired or replayed
    /// consent, a failed recovery.
    Refused,
    /// A service (peer, node, IPFS, CSP) could not be reached.
    Unreachable,
}

/// Why a flow failed. Each variant that wraps another error returns it from
/// [`std::error::Error::source`] and leaves it out of its own message.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{what} {id:?} is not {IDENTIFIER_RULE}; pick one of those characters")]
    BadIdentifier { what: &'static str, id: String },
    #[error("record id {id:?} is {len} bytes; at most {max} fit a certificate, pick a shorter one")]
    RecordIdTooLong { id: String, len: usize, max: usize },
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the password is over {max} bytes; choose a shorter one")]
    PasswordTooLong { max: usize },
    #[error("the patient's ID number is empty")]
    EmptyIdNumber,
    #[error("a record of {size} bytes is too small to carry a watermark (at least {minimum})")]
    RecordTooSmall { size: u64, minimum: u64 },
    #[error("hospital id {hospital:?} does not fit a certificate (1 to 32 bytes)")]
    HospitalIdTooLong { hospital: String },
    #[error(
        "{hospital} has {count} doctor identities, so there is no doctor {doctor}; pick 0 to {}",
        count.saturating_sub(1)
    )]
    NoSuchDoctor {
        hospital: String,
        count: usize,
        doctor: usize,
    },
    #[error("the network description has no certificate contract")]
    NoContract,
    #[error(
        "the network description has no Ethereum account {index} for {hospital}; run deploy/up again"
    )]
    NoAccount { hospital: String, index: usize },
    #[error("the network description lists no Ethereum account")]
    NoAccounts,
    #[error(
        "record {record_id} is already certified (certificate {certificate_id}) for another patient"
    )]
    CertifiedForAnother {
        record_id: String,
        certificate_id: u64,
    },
    #[error(
        "record {record_id} was deleted from {channel} in transaction {deleted_tx}; it can only be recovered"
    )]
    RecordDeleted {
        record_id: String,
        channel: String,
        deleted_tx: String,
    },
    #[error("{path} is not a medcert consent file")]
    NotAConsentFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("consent file {path} has version {version}, this medcert reads version {supported}")]
    ConsentVersion {
        path: PathBuf,
        version: u32,
        supported: u32,
    },
    #[error(
        "consent file {path} contradicts itself (its signed consent is for another hospital or certificate); ask the patient for a new one"
    )]
    ConsentContradicts { path: PathBuf },
    #[error("the consent file's {field} is not hex")]
    ConsentHex {
        field: &'static str,
        source: hex::FromHexError,
    },
    #[error("the consent file's signed consent")]
    ConsentEncoding(#[source] medcert_eip712::ConsentEncodingError),
    #[error("{path} already exists")]
    OutputExists { path: PathBuf },
    #[error("a consent must be valid for some time")]
    ZeroValidity,
    #[error("certificate {certificate_id} is not patient {patient}'s")]
    NotPatientsCertificate {
        certificate_id: u64,
        patient: String,
    },
    #[error("certificate {certificate_id} was withdrawn from recovery by its patient")]
    NotRecoverable { certificate_id: u64 },
    #[error("{hospital}'s key on the certificate contract is not the one in its key store")]
    KeyNotRegistered { hospital: String },
    #[error(
        "the envelope of record {record_id} is not sealed to patient {patient}'s key; use the wallet of the certificate's patient"
    )]
    EnvelopeNotForPatient {
        record_id: String,
        patient: String,
        source: CryptoError,
    },
    #[error(
        "the consent is for {consent_hospital}, not {hospital}; recover at {consent_hospital} or ask the patient for a consent for {hospital}"
    )]
    ConsentForOtherHospital {
        consent_hospital: String,
        hospital: String,
    },
    #[error(
        "recovery {index} of {hospital} was requested with another consent than {consent}; resume it with the consent file it was made with"
    )]
    ResumedWithOtherConsent {
        index: u64,
        hospital: String,
        consent: PathBuf,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
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
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The hospital's gateway cannot be opened.
    #[error("hospital chain {channel}")]
    Fabric {
        channel: String,
        source: medcert_fabric::Error,
    },
    /// The hospital chain refused or failed a call.
    #[error("hospital chain {channel}")]
    HospitalChain {
        channel: String,
        source: ClientError,
    },
    #[error("certificate chain")]
    Ethereum(#[from] EthereumError),
    #[error("IPFS")]
    Ipfs(#[from] IpfsError),
    #[error("CSP")]
    Csp(#[from] CspError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "record {record_id} is stored at {hospital} (transaction {tx_id}), its IPFS copy unpinned, but certifying it for {patient} failed"
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
    #[error("not authentic: the envelope on IPFS; the record was not stored")]
    TamperedEnvelope(#[source] CryptoError),
    #[error("not authentic: the recovered record cannot be verified; it was not stored")]
    Unverifiable(#[source] VerifyError),
    #[error("recovery {index} on {channel} failed: {reason}")]
    RecoveryFailed {
        channel: String,
        index: u64,
        reason: String,
    },
    #[error("recovery {index} on {channel} has no outcome after {waited_s} s")]
    RecoveryTimeout {
        channel: String,
        index: u64,
        waited_s: u64,
    },
    #[error("{what} from {from} is not JSON of the expected shape")]
    MalformedJson {
        what: &'static str,
        from: String,
        source: serde_json::Error,
    },
    #[error("{what} from {from} is not 32 bytes of hex")]
    MalformedHex {
        what: &'static str,
        from: String,
        source: hex::FromHexError,
    },
    #[error("the contract address {address:?} in the network description is not an address")]
    MalformedAddress { address: String },
    #[error("{hospital}'s public key on the certificate contract is {len} bytes instead of 32")]
    MalformedHospitalKey { hospital: String, len: usize },
}

impl FlowError {
    pub(crate) fn fabric(channel: &str, source: medcert_fabric::Error) -> Self {
        FlowError::Fabric {
            channel: channel.to_owned(),
            source,
        }
    }

    pub(crate) fn chain(channel: &str, source: ClientError) -> Self {
        FlowError::HospitalChain {
            channel: channel.to_owned(),
            source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            FlowError::NotAuthentic(_)
            | FlowError::TamperedEnvelope(_)
            | FlowError::Unverifiable(_) => FailureKind::NotAuthentic,
            FlowError::RecoveryFailed { .. } => FailureKind::Refused,
            FlowError::CertifyAfterStore { source, .. } => source.kind(),
            FlowError::Fabric { source, .. } => fabric_kind(source),
            FlowError::HospitalChain { source, .. }
            | FlowError::Store(StoreError::Chain(source)) => client_kind(source),
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

fn client_kind(error: &ClientError) -> FailureKind {
    match error {
        ClientError::Fabric { source, .. } => fabric_kind(source),
        ClientError::Answer { .. } => FailureKind::Failed,
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
    use std::error::Error;

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
    fn kinds_of_failure() {
        assert_eq!(
            FlowError::NotAuthentic("x".into()).kind(),
            FailureKind::NotAuthentic
        );
        assert_eq!(
            FlowError::fabric(
                "hospital1",
                medcert_fabric::Error::Connect {
                    endpoint: "127.0.0.1:1".into(),
                    source: tonic::transport::Endpoint::from_shared("not a uri").unwrap_err()
                }
            )
            .kind(),
            FailureKind::Unreachable
        );
    }

    #[test]
    fn messages_leave_their_source_to_the_chain() {
        let error = FlowError::Read {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let source = error.source().expect("the io error").to_string();
        assert!(!error.to_string().contains(&source), "{error}");
    }
}
