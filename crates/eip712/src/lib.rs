//! EIP-712 typed data signed by a medcert patient, and the patient's secp256k1 signer.
//!
//! Four messages exist:
//! - [`CertificateAuthorization`]: lets a hospital issue a certificate on the
//!   `MedicalCertificate` contract;
//! - [`Consent`]: lets the relay serve one recovery of one certificate to one hospital;
//! - [`AgentAuthorization`]: lets an account of the patient's medcert wallet act for a
//!   patient whose key lives in another wallet (release keys, revoke), on the contract;
//! - [`Deletion`]: a patient's request to delete a record, checked by the Fabric
//!   chaincode. Fabric has no verifying contract or chain id, so it has its own domain,
//!   `MedcertDeletion`.
//!
//! Each message is declared once as a Solidity struct (alloy's `sol!`), which gives its
//! EIP-712 type string and digest; the same declaration gives the typed-data JSON that
//! `eth_signTypedData_v4` takes ([`CertificateAuthorization::typed_data`] and its
//! siblings), so any standard Ethereum wallet can sign what medcert signs, and reads it
//! back ([`CertificateAuthorization::from_typed_data`]). A signature made elsewhere is
//! checked with [`parse_signature`] and [`verify_signer`]; an address a wallet shows is read
//! with [`parse_address`].
//!
//! The crate needs no Ethereum client, so the chaincode can verify deletion requests with
//! exactly the hashing the patient signed. The structs below must stay identical to the
//! ones in `contracts/MedicalCertificate.sol`; `medcert-ethereum`'s tests compare the
//! digests with the contract's own and with ethers.js.

#![warn(missing_docs)]

mod signer;
mod typed;

pub use signer::{
    AddressError, KeyError, PatientSigner, SignatureError, VerifyError, parse_address,
    parse_signature, recover_signer, verify_signer,
};
pub use typed::{
    AgentAuthorization, CertificateAuthorization, CertificateDomain, Consent, ConsentEncodingError,
    Deletion, SignedConsent, TypedDataError, deletion_digest,
};

/// A 20-byte Ethereum address.
pub type Address = [u8; 20];

/// A hospital's on-chain id: its name (e.g. "hospital1") as left-aligned, zero-padded
/// bytes32, so ids stay readable in events. Returns `None` for an empty name, one longer
/// than 32 bytes, or one holding a NUL byte (it would be ambiguous with the padding).
pub fn hospital_id(name: &str) -> Option<[u8; 32]> {
    if name.is_empty() || name.len() > 32 || name.contains('\0') {
        return None;
    }
    let mut id = [0u8; 32];
    id[..name.len()].copy_from_slice(name.as_bytes());
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hospital_ids_are_readable_padded_names() {
        let id = hospital_id("hospital1").unwrap();
        assert_eq!(&id[..9], b"hospital1");
        assert!(id[9..].iter().all(|&b| b == 0));
        assert_eq!(hospital_id(""), None);
        assert!(hospital_id(&"h".repeat(32)).is_some());
        assert_eq!(hospital_id(&"h".repeat(33)), None);
        assert_eq!(hospital_id("hospital1\0"), None);
    }
}
