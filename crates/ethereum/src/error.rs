use std::time::Duration;

use ethers::types::{Address, H256};

use crate::bindings::MedicalCertificateErrors;

/// Why a call to the contract or the node failed.
#[derive(Debug, thiserror::Error)]
pub enum EthereumError {
    /// The contract refused the call with one of its custom errors; nothing was changed.
    #[error("the MedicalCertificate contract refused: {}", describe(.0))]
    Refused(MedicalCertificateErrors),
    /// The call reverted with data that is not one of the contract's errors (e.g. a panic).
    #[error("the call reverted (revert data 0x{data})")]
    Reverted {
        /// The revert data, in hex.
        data: String,
    },
    /// The transaction was mined but failed; its gas is spent, the state is unchanged.
    #[error("transaction {tx_hash:?} failed in block {block:?}")]
    Failed {
        /// The transaction.
        tx_hash: H256,
        /// The block it was mined in, if the receipt says.
        block: Option<u64>,
    },
    /// The node forgot the transaction before mining it; holds its hash.
    #[error("transaction {0:?} was dropped before it was mined; send it again")]
    Dropped(H256),
    /// A receipt or the deployment did not arrive within the configured timeout.
    #[error("timed out after {after:?} waiting for {what}; is the node at the RPC URL mining?")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The timeout that passed.
        after: Duration,
    },
    /// The node could not be reached, or its answer could not be read.
    #[error("Ethereum RPC failed: {0}")]
    Rpc(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The RPC URL does not parse.
    #[error("invalid RPC URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A receipt, or a log given to decode, is not the contract's expected event; holds
    /// the transaction hash and the event's name.
    #[error("the receipt of {0:?} lacks the contract's {1} event")]
    MissingEvent(H256, String),
    /// A log lacks its block, transaction or index, as a log not yet mined does.
    #[error("the node returned a log without its block, transaction or index")]
    PendingLog,
    /// The node answered no latest block.
    #[error("the node has no latest block")]
    NoBlock,
    /// A private key is not 32 bytes of hex or not a valid scalar.
    #[error("not a valid secp256k1 private key (expected 32 bytes of hex)")]
    InvalidPrivateKey,
    /// No `CertificateIssued` event names this certificate id.
    #[error("the certificate chain issued no certificate {0}")]
    UnknownCertificate(u64),
    /// A number from the chain does not fit the `u64` this client uses for it.
    #[error("{what} does not fit in 64 bits")]
    Overflow {
        /// What the number is, e.g. `a certificate id`.
        what: &'static str,
    },
}

/// A readable sentence for each of the contract's custom errors: what was refused and why.
fn describe(error: &MedicalCertificateErrors) -> String {
    use MedicalCertificateErrors as E;
    match error {
        E::NotAdmin(e) => format!("NotAdmin: {} is not the contract's admin", addr(e.caller)),
        E::NotRelay(e) => format!("NotRelay: {} is not the relay account", addr(e.caller)),
        E::NotHospital(e) => format!(
            "NotHospital: {} is not a registered hospital's account",
            addr(e.caller)
        ),
        E::UnknownHospital(e) => format!(
            "UnknownHospital: hospital {} is not registered",
            id(&e.hospital)
        ),
        E::HospitalAlreadyRegistered(e) => format!(
            "HospitalAlreadyRegistered: hospital {} is already registered",
            id(&e.hospital)
        ),
        E::AccountAlreadyRegistered(e) => format!(
            "AccountAlreadyRegistered: account {} already belongs to a hospital",
            addr(e.account)
        ),
        E::InvalidHospital(_) => {
            "InvalidHospital: a hospital needs a non-zero id and account".to_owned()
        }
        E::InvalidPublicKey(e) => format!(
            "InvalidPublicKey: a hospital's X25519 and watermark keys are 32 bytes each, got {}",
            e.length
        ),
        E::InvalidPatient(_) => "InvalidPatient: the patient is the zero address".to_owned(),
        E::InvalidSignature(_) => {
            "InvalidSignature: the signature is malformed (not 65 bytes, bad v, or high s)"
                .to_owned()
        }
        E::NotPatient(e) => format!(
            "NotPatient: the signature is by {}, not by the patient {}",
            addr(e.signer),
            addr(e.expected)
        ),
        E::NonceUsed(e) => format!(
            "NonceUsed: nonce {} of patient {} is already used or revoked",
            e.nonce,
            addr(e.patient)
        ),
        E::ConsentExpired(e) => format!(
            "ConsentExpired: the consent expired at {} (block time {})",
            e.expiry, e.timestamp
        ),
        E::UnknownCertificate(e) => {
            format!("UnknownCertificate: no certificate {}", e.certificate_id)
        }
        E::CertificateRevoked(e) => format!(
            "CertificateRevoked: the patient revoked certificate {} for recovery",
            e.certificate_id
        ),
        E::CertificateExists(e) => format!(
            "CertificateExists: record {} of hospital {} is already certified",
            id(&e.record_id),
            id(&e.hospital)
        ),
        E::CertificateMismatch(e) => format!(
            "CertificateMismatch: the certificate given as {} is not the one the contract committed to",
            e.certificate_id
        ),
        E::RequestAlreadyServed(e) => format!(
            "RequestAlreadyServed: request 0x{} was already served",
            hex(&e.request_id)
        ),
        E::DeadlinePassed(e) => format!(
            "DeadlinePassed: the request's deadline {} is before the block time {}",
            e.deadline, e.timestamp
        ),
        E::RequestNotServed(e) => format!(
            "RequestNotServed: request 0x{} was not served, so no key can be released for it",
            hex(&e.request_id)
        ),
        E::KeyAlreadyReleased(e) => format!(
            "KeyAlreadyReleased: the key of request 0x{} was already released",
            hex(&e.request_id)
        ),
        E::InvalidWrappedKey(_) => "InvalidWrappedKey: a released key is 1 to 256 bytes".to_owned(),
        E::InvalidAgent(_) => "InvalidAgent: an agent is a non-zero address".to_owned(),
        E::NoAgent(e) => format!(
            "NoAgent: patient {} has authorised no agent",
            addr(e.patient)
        ),
        E::NotPatientOrAgent(e) => format!(
            "NotPatientOrAgent: {} is neither patient {} nor the agent it authorised",
            addr(e.caller),
            addr(e.patient)
        ),
        E::RevertString(reason) => format!("reverted: {reason}"),
    }
}

fn addr(address: Address) -> String {
    format!("0x{}", hex(address.as_bytes()))
}

/// A hospital id as its name when it is one (see `medcert_eip712::hospital_id`), else hex.
fn id(id: &[u8; 32]) -> String {
    let name = id.split(|&b| b == 0).next().unwrap_or_default();
    let padded = id[name.len()..].iter().all(|&b| b == 0);
    match std::str::from_utf8(name) {
        Ok(name) if padded && !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic()) => {
            format!("\"{name}\"")
        }
        _ => format!("0x{}", hex(id)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{NotPatient, NotPatientOrAgent, UnknownHospital};

    #[test]
    fn refusals_name_the_error_and_its_fields() {
        let error = EthereumError::Refused(MedicalCertificateErrors::NotPatient(NotPatient {
            expected: Address::repeat_byte(0xaa),
            signer: Address::repeat_byte(0xbb),
        }));
        let text = error.to_string();
        assert!(text.contains("NotPatient"), "{text}");
        assert!(text.contains(&format!("0x{}", "bb".repeat(20))), "{text}");
        assert!(text.contains(&format!("0x{}", "aa".repeat(20))), "{text}");
    }

    #[test]
    fn an_agents_refusal_names_the_caller_and_the_patient() {
        let error = EthereumError::Refused(MedicalCertificateErrors::NotPatientOrAgent(
            NotPatientOrAgent {
                patient: Address::repeat_byte(0xaa),
                caller: Address::repeat_byte(0xcc),
            },
        ));
        assert_eq!(
            error.to_string(),
            format!(
                "the MedicalCertificate contract refused: NotPatientOrAgent: 0x{} is neither \
                 patient 0x{} nor the agent it authorised",
                "cc".repeat(20),
                "aa".repeat(20)
            )
        );
    }

    #[test]
    fn wallets_parse_from_hex_with_or_without_prefix() {
        use ethers::signers::Signer;
        // anvil's public account 0.
        let key = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let address: Address = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
            .parse()
            .unwrap();
        assert_eq!(crate::wallet_from_hex(key).unwrap().address(), address);
        assert_eq!(
            crate::wallet_from_hex(&format!("0x{key}"))
                .unwrap()
                .address(),
            address
        );
        for bad in ["", "0x12", &key[..62], &"zz".repeat(32), &"00".repeat(32)] {
            let error = crate::wallet_from_hex(bad).unwrap_err();
            assert!(matches!(error, EthereumError::InvalidPrivateKey), "{bad}");
        }
    }

    #[test]
    fn hospital_ids_print_as_names_or_hex() {
        let mut name = [0u8; 32];
        name[..9].copy_from_slice(b"hospital7");
        let error =
            EthereumError::Refused(MedicalCertificateErrors::UnknownHospital(UnknownHospital {
                hospital: name,
            }));
        assert!(error.to_string().contains("\"hospital7\""), "{error}");
        assert_eq!(id(&[0xff; 32]), format!("0x{}", "ff".repeat(32)));
    }
}
