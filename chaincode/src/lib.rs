//! medcert's hospital chaincode, served to the Fabric peer as chaincode-as-a-service.
//!
//! [`contract`] holds the functions and their access control, written against the
//! [`ledger::Ledger`] trait; [`shim`] serves them to the peer over the shim protocol.

#![warn(missing_docs)]

// The binary's (main.rs) dependencies, not the library's.
use rustls as _;
use tracing_subscriber as _;

pub mod contract;
pub mod identity;
pub mod ledger;
pub mod shim;
