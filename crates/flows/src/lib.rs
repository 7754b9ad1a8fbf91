//! The medcert flows as a library (DESIGN.md, "Flows"): register, store, certify,
//! query and retrieve, delete, consent, recover, verify, unlock, and network init. Each
//! flow takes the [`medcert_network::Network`] description and a request, and returns a
//! serialisable report (transaction ids, CIDs, timings) or a [`FlowError`]. Nothing here
//! draws on a terminal: long steps are told to an [`Observer`].
//!
//! No flow holds a hospital secret (DESIGN.md, "Trust"): each hospital's key service
//! checks passwords, keeps every record key and signs watermarks, and hands a doctor a
//! record key only for a committed, audited access on the hospital's chain.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

pub mod agent;
pub mod certificates;
pub mod certify;
pub mod connect;
pub mod consent;
pub mod delete;
pub mod digest;
pub mod error;
pub mod gate;
pub mod ids;
pub mod init;
pub mod observer;
pub mod query;
pub mod recover;
pub mod register;
pub mod revoke;
pub mod signing;
pub mod store;
pub mod unlock;
pub mod verify;
pub mod wallet;

use std::time::Instant;

/// The hospital chain's interface, whose answers the reports carry.
pub use medcert_hospital_api as hospital_api;

pub use agent::{AgentAuthorized, PatientAgent, ReleasePass, authorize_agent};
pub use certificates::{CertificatesRequest, list_certificates};
pub use certify::{CertifyRequest, certify_record, certify_record_with};
pub use connect::Actor;
pub use consent::{ConsentFile, ConsentRequest, sign_consent, sign_consent_with};
pub use delete::{DeleteRequest, delete_record, delete_record_with};
pub use error::{FailureKind, FlowError};
pub use gate::WrongPassword;
pub use init::{InitError, InitReport, init_network};
pub use observer::{Observer, Quiet, Step};
pub use query::{QueryRequest, query_record};
pub use recover::{RecoverRequest, recover};
pub use register::{RegisterRequest, register_patient, register_patient_as};
pub use revoke::{revoke_certificate, revoke_consent};
pub use signing::{SignatureSource, Signed, ToSign};
pub use store::{CreateRequest, StoreFlowRequest, create_record, store};
pub use unlock::{UnlockRequest, unlock_patient};
pub use verify::{VerifyError, verify_file};
pub use wallet::PatientWallet;

/// Milliseconds since `since`, for reports.
fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// A scratch directory, removed when dropped.
fn scratch_dir() -> Result<tempfile::TempDir, FlowError> {
    tempfile::tempdir().map_err(|source| FlowError::Write {
        path: std::env::temp_dir(),
        source,
    })
}
