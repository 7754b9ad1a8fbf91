//! The flows behind the `medcert` command, as a library so tests and benchmarks reuse them.

pub mod hospital_keys;
pub mod init;
pub mod store;
pub mod verify;
pub mod wallet;

pub use hospital_keys::{HospitalKeys, KeysError};
pub use init::{InitError, InitReport, init_network};
pub use verify::{VerifyError, verify_file};
