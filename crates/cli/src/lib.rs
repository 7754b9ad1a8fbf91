//! The flows behind the `medcert` command, as a library so tests, benchmarks and the
//! demo reuse them. Each flow takes the [`medcert_network::Network`] description, plain
//! request structs, and returns a serialisable report (transaction ids, CIDs, timings).

pub mod config;
pub mod consent;
pub mod demo;
pub mod error;
pub mod hospital_keys;
pub mod ids;
pub mod init;
pub mod ledger;
pub mod patient;
pub mod progress;
pub mod records;
pub mod recover;
pub mod services;
pub mod store;
pub mod verify;
pub mod wallet;

pub use consent::{ConsentFile, ConsentRequest, sign_consent};
pub use error::{FailureKind, FlowError};
pub use hospital_keys::{HospitalKeys, KeysError};
pub use init::{InitError, InitReport, init_network};
pub use patient::{RegisterRequest, list_certificates, register_patient};
pub use progress::Progress;
pub use records::{
    CertifyRequest, CreateRequest, DeleteRequest, QueryRequest, StoreFlowRequest, certify_record,
    create_record, delete_record, query_record, store,
};
pub use recover::{RecoverRequest, recover};
pub use services::Actor;
pub use verify::{VerifyError, verify_file};
pub use wallet::PatientWallet;
