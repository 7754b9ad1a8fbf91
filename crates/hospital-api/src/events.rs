//! The chaincode's events: at most one per transaction (Fabric's limit), named by these
//! constants. Payloads are JSON: an [`AuditEntry`](crate::AuditEntry) for the patient and
//! record events and the refusals, the [`KeyService`](crate::KeyService) for its
//! registration, [`RecordDeleted`] for a deletion, an
//! [`InterchainRequest`](crate::InterchainRequest) for a recovery request, the
//! [`Recovery`](crate::Recovery) for its answer.

use serde::{Deserialize, Serialize};

use crate::Tombstone;

/// A patient was registered.
pub const PATIENT_REGISTERED: &str = "PatientRegistered";
/// A hospital admin registered the key service's ticket key.
pub const KEY_SERVICE_SET: &str = "KeyServiceSet";
/// The key service's ticket said the password was wrong: a failed attempt, recorded.
pub const PASSWORD_REJECTED: &str = "PasswordRejected";
/// A password-gated action came without a valid ticket (none, malformed, not the key
/// service's, for another action, expired or used before): a failed attempt, recorded.
pub const ACCESS_REFUSED: &str = "AccessRefused";
/// A record was created.
pub const RECORD_CREATED: &str = "RecordCreated";
/// A record was queried.
pub const RECORD_QUERIED: &str = "RecordQueried";
/// A record was deleted.
pub const RECORD_DELETED: &str = "RecordDeleted";
/// A recovery was requested: the relay's cue.
pub const INTERCHAIN_REQUEST: &str = "InterchainRequest";
/// The relay recorded a served recovery.
pub const RECOVERY_COMPLETED: &str = "RecoveryCompleted";
/// The relay recorded a failed recovery.
pub const RECOVERY_FAILED: &str = "RecoveryFailed";

/// Payload of [`RECORD_DELETED`]: the tombstone, and Hash C, which the hospital needs to
/// delete the CSP object (Hash C is no content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDeleted {
    /// What is left of the record.
    pub tombstone: Tombstone,
    /// The deleted record's Hash C.
    #[serde(with = "crate::digest::hex32")]
    pub hash_c: [u8; 32],
}
