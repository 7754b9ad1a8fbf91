//! Why a call is not served, as the service answers it: a gRPC status whose details hold
//! an [`ErrorDetail`] a client can act on.

use std::time::Duration;

use prost::Message;
use tonic::{Code, Status};

use crate::auth::error_chain;
use crate::proto::{ErrorDetail, ErrorKind};
use crate::store::StoreError;

/// Why a call is not served; each becomes a status with an [`ErrorDetail`]. Messages
/// never carry a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("the key service does not serve this request: {0}")]
    Refused(String),
    #[error("the key service releases no key: {0}")]
    Denied(String),
    #[error(
        "patient {treatment_number} is locked after too many wrong passwords; the hospital's \
         admin unlocks"
    )]
    Locked { treatment_number: String },
    #[error("too many attempts, retry in {}s", retry_after.as_secs_f64().ceil())]
    RateLimited { retry_after: Duration },
    #[error("transaction {tx_id} is not committed on channel {channel}")]
    NotCommitted { tx_id: String, channel: String },
    #[error("{0}")]
    NotFound(String),
    #[error("malformed request to the key service: {0}")]
    Malformed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the key service's peer: {0}")]
    Peer(String),
    #[error("the key service failed; its log says why")]
    Internal,
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        tracing::error!("{}", error_chain("state", &error));
        ServiceError::Internal
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let mut detail = ErrorDetail::default();
        let (code, kind) = match &error {
            ServiceError::Refused(_) => (Code::PermissionDenied, ErrorKind::Refused),
            ServiceError::Denied(_) => (Code::PermissionDenied, ErrorKind::Denied),
            ServiceError::Locked { treatment_number } => {
                detail.treatment_number = treatment_number.clone();
                (Code::FailedPrecondition, ErrorKind::Locked)
            }
            ServiceError::RateLimited { retry_after } => {
                detail.retry_after_ms = retry_after.as_millis() as u64;
                (Code::ResourceExhausted, ErrorKind::RateLimited)
            }
            ServiceError::NotCommitted { tx_id, channel } => {
                detail.tx_id = tx_id.clone();
                detail.channel = channel.clone();
                (Code::FailedPrecondition, ErrorKind::NotCommitted)
            }
            ServiceError::NotFound(_) => (Code::NotFound, ErrorKind::NotFound),
            ServiceError::Malformed(_) => (Code::InvalidArgument, ErrorKind::Malformed),
            ServiceError::Conflict(_) => (Code::AlreadyExists, ErrorKind::Conflict),
            ServiceError::Peer(_) => (Code::Unavailable, ErrorKind::PeerFailed),
            ServiceError::Internal => (Code::Internal, ErrorKind::Internal),
        };
        detail.kind = kind as i32;
        Status::with_details(code, error.to_string(), detail.encode_to_vec().into())
    }
}
