//! The error of every flow, and the kind of failure each is (which the binary maps to an
//! exit code). Messages say what is wrong; what to type next is the binary's to say.

use std::path::PathBuf;

use medcert_crypto::CryptoError;
use medcert_csp::CspError;
use medcert_ethereum::EthereumError;
use medcert_hospital_api::{ClientError, IDENTIFIER_RULE};
use medcert_ipfs::IpfsError;
use medcert_key_service::KeyServiceError;
use medcert_network::NetworkError;

use crate::gate::WrongPassword;
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
    /// A chain or a key service refused: wrong password, locked patient, too many
    /// attempts, unknown patient or record, expired or replayed consent, a failed recovery.
    Refused,
    /// A service (peer, node, IPFS, CSP, key service) could not be reached.
    Unreachable,
}

/// Why a flow failed. Each variant that wraps another error returns it from
/// [`std::error::Error::source`] and leaves it out of its own message.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// An identifier (patient, record, hospital) breaks the chaincode's identifier rule.
    #[error("{what} {id:?} is not {IDENTIFIER_RULE}; pick one of those characters")]
    BadIdentifier {
        /// What the identifier names, for the message.
        what: &'static str,
        /// The identifier as given.
        id: String,
    },
    /// A record id is too long for the certificate's record id word.
    #[error("record id {id:?} is {len} bytes; at most {max} fit a certificate, pick a shorter one")]
    RecordIdTooLong {
        /// The record id as given.
        id: String,
        /// Its length in bytes.
        len: usize,
        /// The most bytes a certificate holds.
        max: usize,
    },
    /// The patient's password is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// The patient's password is longer than the chaincode accepts (1024 bytes).
    #[error("the password is over {max} bytes; choose a shorter one")]
    PasswordTooLong {
        /// The longest password accepted, in bytes.
        max: usize,
    },
    /// The patient's ID number is empty.
    #[error("the patient's ID number is empty")]
    EmptyIdNumber,
    /// A record to be generated is asked for at a size too small to carry the watermark.
    #[error("a record of {size} bytes is too small to carry a watermark (at least {minimum})")]
    RecordTooSmall {
        /// The size asked for, in bytes.
        size: u64,
        /// The smallest record that carries a watermark, in bytes.
        minimum: u64,
    },
    /// A hospital id does not fit the certificate's 32-byte word.
    #[error("hospital id {hospital:?} does not fit a certificate (1 to 32 bytes)")]
    HospitalIdTooLong {
        /// The hospital id as given.
        hospital: String,
    },
    /// A doctor index is past the hospital's doctor identities.
    #[error(
        "{hospital} has {count} doctor identities, so there is no doctor {doctor}; pick 0 to {}",
        count.saturating_sub(1)
    )]
    NoSuchDoctor {
        /// The hospital's id.
        hospital: String,
        /// How many doctor identities the hospital has.
        count: usize,
        /// The doctor index asked for.
        doctor: usize,
    },
    /// The network description names no certificate contract yet.
    #[error("the network description has no certificate contract")]
    NoContract,
    /// The network description has no Ethereum account at a hospital's account index.
    #[error(
        "the network description has no Ethereum account {index} for {hospital}; run deploy/up again"
    )]
    NoAccount {
        /// The hospital's id.
        hospital: String,
        /// The hospital's account index.
        index: usize,
    },
    /// The network description lists no Ethereum account at all.
    #[error("the network description lists no Ethereum account")]
    NoAccounts,
    /// A record id already has a certificate, for a patient other than the one asked.
    #[error(
        "record {record_id} is already certified (certificate {certificate_id}) for another patient"
    )]
    CertifiedForAnother {
        /// The record's id.
        record_id: String,
        /// The existing certificate's id.
        certificate_id: u64,
    },
    /// A record was deleted from the hospital chain, so only recovery can bring it back.
    #[error(
        "record {record_id} was deleted from {channel} in transaction {deleted_tx}; it can only be recovered"
    )]
    RecordDeleted {
        /// The record's id.
        record_id: String,
        /// The hospital chain's channel.
        channel: String,
        /// The id of the transaction that deleted it.
        deleted_tx: String,
    },
    /// A consent file is not JSON of the consent file's shape.
    #[error("{path} is not a medcert consent file")]
    NotAConsentFile {
        /// The consent file.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// A consent file has a format version this medcert does not read.
    #[error("consent file {path} has version {version}, this medcert reads version {supported}")]
    ConsentVersion {
        /// The consent file.
        path: PathBuf,
        /// The file's format version.
        version: u32,
        /// The format version this medcert reads.
        supported: u32,
    },
    /// A consent file's plain fields disagree with its signed consent.
    #[error(
        "consent file {path} contradicts itself (its signed consent is for another hospital or certificate); ask the patient for a new one"
    )]
    ConsentContradicts {
        /// The consent file.
        path: PathBuf,
    },
    /// A hex field of a consent file does not decode.
    #[error("the consent file's {field} is not hex")]
    ConsentHex {
        /// The field's name.
        field: &'static str,
        /// Why it does not decode.
        source: hex::FromHexError,
    },
    /// A consent file's signed consent does not decode.
    #[error("the consent file's signed consent")]
    ConsentEncoding(#[source] medcert_eip712::ConsentEncodingError),
    /// The typed data given with another wallet's signature is not the message a flow
    /// signs.
    #[error("the typed data given with the signature")]
    TypedData(#[source] medcert_eip712::TypedDataError),
    /// The typed data given with another wallet's signature is another request's.
    #[error("the signed typed data's {field} is {signed}, but this request's is {request}")]
    SignedOtherMessage {
        /// The message field that differs (its EIP-712 name).
        field: &'static str,
        /// The request's value.
        request: String,
        /// The signed message's value.
        signed: String,
    },
    /// The signature given is not the patient's.
    #[error("the signature given is not patient {patient}'s")]
    NotPatientsSignature {
        /// The patient's wallet name.
        patient: String,
        /// Whose signature it is, or why it cannot be read.
        source: medcert_eip712::VerifyError,
    },
    /// The consent given with another wallet's signature has already expired.
    #[error("the signed consent expired at {expiry} (Unix seconds)")]
    SignedConsentExpired {
        /// Its expiry.
        expiry: u64,
    },
    /// A flow would overwrite an existing file.
    #[error("{path} already exists")]
    OutputExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A consent was asked for with a validity of zero.
    #[error("a consent must be valid for some time")]
    ZeroValidity,
    /// A certificate belongs to a patient other than the one acting.
    #[error("certificate {certificate_id} is not patient {patient}'s")]
    NotPatientsCertificate {
        /// The certificate's id.
        certificate_id: u64,
        /// The patient acting.
        patient: String,
    },
    /// The certificate's patient has withdrawn it from recovery.
    #[error("certificate {certificate_id} was withdrawn from recovery by its patient")]
    NotRecoverable {
        /// The certificate's id.
        certificate_id: u64,
    },
    /// A hospital's public key on the certificate contract differs from the one its key
    /// service publishes.
    #[error(
        "{hospital}'s key on the certificate contract is not the one its key service publishes"
    )]
    KeyNotRegistered {
        /// The hospital's id.
        hospital: String,
    },
    /// A record's envelope cannot be opened with the patient's wallet key.
    #[error(
        "the envelope of record {record_id} is not sealed to patient {patient}'s key; use the wallet of the certificate's patient"
    )]
    EnvelopeNotForPatient {
        /// The record's id.
        record_id: String,
        /// The patient whose key was tried.
        patient: String,
        /// Why the envelope did not open.
        source: CryptoError,
    },
    /// A recovery was asked at a hospital other than the one the consent names.
    #[error(
        "the consent is for {consent_hospital}, not {hospital}; recover at {consent_hospital} or ask the patient for a consent for {hospital}"
    )]
    ConsentForOtherHospital {
        /// The hospital the consent names.
        consent_hospital: String,
        /// The hospital asked to recover.
        hospital: String,
    },
    /// A resumed recovery was given a consent other than the one it was requested with.
    #[error(
        "recovery {index} of {hospital} was requested with another consent than {consent}; resume it with the consent file it was made with"
    )]
    ResumedWithOtherConsent {
        /// The recovery's index on the hospital chain.
        index: u64,
        /// The recovering hospital's id.
        hospital: String,
        /// The consent file given to resume with.
        consent: PathBuf,
    },
    /// A file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The network description cannot be read or used.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A hospital's key service refused or failed a call, or cannot be reached.
    #[error("the key service of {hospital}")]
    KeyService {
        /// The hospital's id.
        hospital: String,
        /// The service's answer.
        source: KeyServiceError,
    },
    /// The key service at a hospital's endpoint serves another hospital.
    #[error(
        "the key service at {endpoint} serves {serves}, not {hospital}; check the network description"
    )]
    ForeignKeyService {
        /// The hospital whose service was asked for.
        hospital: String,
        /// The endpoint in the network description.
        endpoint: String,
        /// The hospital it serves.
        serves: String,
    },
    /// The patient's password was wrong; the chain recorded the failed attempt.
    #[error(transparent)]
    WrongPassword(#[from] WrongPassword),
    /// The patient is registered on the hospital chain, but the hospital's key service
    /// did not enroll the password; registering again with the same treatment number
    /// finishes it.
    #[error(
        "patient {treatment_number:?} is registered on {hospital}'s chain, but its key service did not enroll the password"
    )]
    NotEnrolled {
        /// The hospital's id.
        hospital: String,
        /// The patient's treatment number there.
        treatment_number: String,
        /// The key service's failure.
        source: KeyServiceError,
    },
    /// The patient is already registered at the hospital, password and all.
    #[error("patient {treatment_number:?} is already registered at {hospital}")]
    AlreadyRegistered {
        /// The hospital's id.
        hospital: String,
        /// The patient's treatment number there.
        treatment_number: String,
    },
    /// A patient's wallet cannot be opened or saved.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// A document could not be given a watermark verdict.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The hospital's gateway cannot be opened.
    #[error("hospital chain {channel}")]
    Fabric {
        /// The hospital chain's channel.
        channel: String,
        /// The gateway's failure.
        source: medcert_fabric::Error,
    },
    /// The hospital chain refused or failed a call.
    #[error("hospital chain {channel}")]
    HospitalChain {
        /// The hospital chain's channel.
        channel: String,
        /// The call's failure.
        source: ClientError,
    },
    /// The certificate chain refused or failed a call.
    #[error("certificate chain")]
    Ethereum(#[from] EthereumError),
    /// IPFS refused or failed a call.
    #[error("IPFS")]
    Ipfs(#[from] IpfsError),
    /// The CSP refused or failed a call.
    #[error("CSP")]
    Csp(#[from] CspError),
    /// Encrypting, decrypting, wrapping a key or the key store failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The hospital half of a store failed; nothing of the record is left behind.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record was stored, but certifying it afterwards failed.
    #[error(
        "record {record_id} is stored at {hospital} (transaction {tx_id}), its IPFS copy unpinned, but certifying it for {patient} failed"
    )]
    CertifyAfterStore {
        /// The storing hospital's id.
        hospital: String,
        /// The record's id.
        record_id: String,
        /// The id of the transaction that stored it.
        tx_id: String,
        /// The patient it was to be certified for.
        patient: String,
        /// Why certifying failed.
        source: Box<FlowError>,
    },
    /// A record, its envelope or its certificate does not match what it should; the
    /// message says what.
    #[error("not authentic: {0}; the record was not stored")]
    NotAuthentic(String),
    /// An envelope fetched from IPFS is tampered with, truncated or malformed.
    #[error("not authentic: the envelope on IPFS; the record was not stored")]
    TamperedEnvelope(#[source] CryptoError),
    /// A recovered record fails verification.
    #[error("not authentic: the recovered record cannot be verified; it was not stored")]
    Unverifiable(#[source] VerifyError),
    /// The relay reported a recovery as failed.
    #[error("recovery {index} on {channel} failed: {reason}")]
    RecoveryFailed {
        /// The hospital chain's channel.
        channel: String,
        /// The recovery's index on the hospital chain.
        index: u64,
        /// The relay's reason.
        reason: String,
    },
    /// A recovery still had no outcome when the wait for it ran out.
    #[error("recovery {index} on {channel} has no outcome after {waited_s} s")]
    RecoveryTimeout {
        /// The hospital chain's channel.
        channel: String,
        /// The recovery's index on the hospital chain.
        index: u64,
        /// How long the flow waited, in seconds.
        waited_s: u64,
    },
    /// The relay served the recovery, but the patient's agent had not released the
    /// record's key when the wait ran out.
    #[error(
        "recovery {index} was served (request {request_id}) but the patient's agent has not released the key after {waited_s} s"
    )]
    KeyNotReleased {
        /// The recovery's index on the hospital chain.
        index: u64,
        /// The served request's id, `0x` hex.
        request_id: String,
        /// How long the flow waited, in seconds.
        waited_s: u64,
    },
    /// The patient's account is in another wallet and has not authorised (or has revoked)
    /// the wallet's account as its agent on the certificate contract.
    #[error(
        "patient {patient}'s account {address} has not authorised this wallet's account {agent} \
         as its agent on the certificate contract; the patient signs that authorisation once \
         (patient authorize-agent)"
    )]
    AgentNotAuthorized {
        /// The patient's wallet name.
        patient: String,
        /// The patient's address, `0x` hex.
        address: String,
        /// The wallet's account, `0x` hex.
        agent: String,
    },
    /// An agent was to be authorised for a wallet that holds the patient's own key.
    #[error(
        "patient {patient}'s wallet holds the patient's own key, which acts for the patient \
         itself; only a wallet made for an outside address has an agent"
    )]
    NoAgentNeeded {
        /// The patient's wallet name.
        patient: String,
    },
    /// The patient's wallet holds no consent with this nonce.
    #[error("patient {patient} signed no consent with nonce {nonce} (see their wallet.json)")]
    UnknownConsent {
        /// The patient.
        patient: String,
        /// The nonce asked for.
        nonce: u64,
    },
    /// A `RecoveryServed` the node reported could not be proven against the chain's
    /// verified headers; the agent releases nothing for it.
    #[error("the service of request {request_id} is not proven: {what}")]
    ServiceUnproven {
        /// The request, `0x` hex.
        request_id: String,
        /// What failed.
        what: String,
    },
    /// A proof about the certificate chain failed: its node's answers are inconsistent,
    /// or the chain was reorganised or reset under a verified checkpoint.
    #[error("certificate chain proof")]
    Proof(#[from] medcert_ethereum::proof::ProofError),
    /// An answer or file is not JSON of the shape expected.
    #[error("{what} from {from} is not JSON of the expected shape")]
    MalformedJson {
        /// What was expected, for the message.
        what: &'static str,
        /// Where it came from (a file or an answer).
        from: String,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// The network description's contract address does not parse.
    #[error("the contract address {address:?} in the network description is not an address")]
    MalformedAddress {
        /// The address as written.
        address: String,
    },
    /// A hospital's public key on the certificate contract is not 32 bytes.
    #[error("{hospital}'s public key on the certificate contract is {len} bytes instead of 32")]
    MalformedHospitalKey {
        /// The hospital's id.
        hospital: String,
        /// The key's length in bytes.
        len: usize,
    },
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

    pub(crate) fn key_service(hospital: &str, source: KeyServiceError) -> Self {
        FlowError::KeyService {
            hospital: hospital.to_owned(),
            source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            FlowError::Verify(source)
            | FlowError::Unverifiable(source @ VerifyError::Keys { .. }) => source.kind(),
            FlowError::NotAuthentic(_)
            | FlowError::TamperedEnvelope(_)
            | FlowError::Unverifiable(_) => FailureKind::NotAuthentic,
            FlowError::RecoveryFailed { .. }
            | FlowError::WrongPassword(_)
            | FlowError::Store(StoreError::WrongPassword(_))
            | FlowError::AlreadyRegistered { .. }
            | FlowError::AgentNotAuthorized { .. } => FailureKind::Refused,
            FlowError::KeyService { source, .. }
            | FlowError::NotEnrolled { source, .. }
            | FlowError::Store(StoreError::KeyService(source)) => key_service_kind(source),
            FlowError::CertifyAfterStore { source, .. } => source.kind(),
            FlowError::Fabric { source, .. } => fabric_kind(source),
            FlowError::HospitalChain { source, .. }
            | FlowError::Store(
                StoreError::Chain(source) | StoreError::Unconfirmed { source, .. },
            ) => client_kind(source),
            FlowError::Store(StoreError::Csp(source)) | FlowError::Csp(source) => csp_kind(source),
            FlowError::Ethereum(source) => ethereum_kind(source),
            FlowError::Ipfs(IpfsError::Unreachable { .. } | IpfsError::Timeout { .. }) => {
                FailureKind::Unreachable
            }
            FlowError::RecoveryTimeout { .. } | FlowError::KeyNotReleased { .. } => {
                FailureKind::Unreachable
            }
            _ => FailureKind::Failed,
        }
    }
}

/// Whether the chaincode's own message in a failed call says `words` (e.g. "already
/// exists", "unknown record"): the chaincode's refusals reach a client only as text, in
/// an evaluation's answer or in the peers' endorsement details.
pub(crate) fn chain_says(error: &ClientError, words: &str) -> bool {
    use medcert_fabric::Error;
    let ClientError::Fabric { source, .. } = error else {
        return false;
    };
    match source {
        Error::Chaincode { message, .. } | Error::Refused { message, .. } => {
            message.contains(words)
        }
        Error::Gateway {
            message, details, ..
        } => message.contains(words) || details.iter().any(|d| d.contains(words)),
        _ => false,
    }
}

fn key_service_kind(error: &KeyServiceError) -> FailureKind {
    match error {
        // The service's own peer is a service too.
        KeyServiceError::Unreachable { .. } | KeyServiceError::PeerFailed { .. } => {
            FailureKind::Unreachable
        }
        KeyServiceError::Refused { .. }
        | KeyServiceError::Denied { .. }
        | KeyServiceError::Locked { .. }
        | KeyServiceError::RateLimited { .. }
        | KeyServiceError::NotCommitted { .. }
        | KeyServiceError::NotFound { .. }
        | KeyServiceError::Conflict { .. } => FailureKind::Refused,
        _ => FailureKind::Failed,
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
    fn key_service_failures_are_unreachable_or_refusals() {
        let unreachable = KeyServiceError::Unreachable {
            endpoint: "127.0.0.1:1".into(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let locked = KeyServiceError::Locked {
            treatment_number: "T-1".into(),
        };
        let limited = KeyServiceError::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        };
        let kinds = [unreachable, locked, limited]
            .map(|source| FlowError::key_service("hospital1", source).kind());
        assert_eq!(
            kinds,
            [
                FailureKind::Unreachable,
                FailureKind::Refused,
                FailureKind::Refused
            ]
        );
        let in_store = FlowError::Store(StoreError::KeyService(KeyServiceError::Locked {
            treatment_number: "T-1".into(),
        }));
        assert_eq!(in_store.kind(), FailureKind::Refused);
        let wrong = FlowError::from(WrongPassword {
            treatment_number: "T-1".into(),
            attempt: 1,
            limit: 5,
            tx_id: "tx".into(),
        });
        assert_eq!(wrong.kind(), FailureKind::Refused);
    }

    #[test]
    fn the_chaincodes_words_are_found_in_evaluations_and_endorsements() {
        let evaluated = ClientError::Fabric {
            function: medcert_hospital_api::Function::GetRecord,
            source: medcert_fabric::Error::Chaincode {
                status: 404,
                message: "unknown record \"R-1\"".into(),
            },
        };
        assert!(chain_says(&evaluated, "unknown record"));
        assert!(!chain_says(&evaluated, "already exists"));
        let endorsed = ClientError::Fabric {
            function: medcert_hospital_api::Function::RegisterPatient,
            source: medcert_fabric::Error::Gateway {
                operation: "endorsement",
                code: tonic::Code::Aborted,
                message: "failed to endorse transaction, see attached details for more info"
                    .into(),
                details: vec![
                    "Hospital1MSP peer0:7051: chaincode response 409, patient \"T-1\" already exists"
                        .into(),
                ],
            },
        };
        assert!(chain_says(&endorsed, "already exists"));
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
