//! Who signs the patient's EIP-712 messages (certificate authorisation, consent, deletion):
//! the patient's medcert wallet, or any standard Ethereum wallet (hardware, browser,
//! `cast wallet sign --data`) that signed the typed-data JSON a first run of the flow gave.

pub use medcert_eip712::parse_signature;
use medcert_eip712::verify_signer;
use serde::Serialize;

use crate::error::FlowError;
use crate::wallet::PatientWallet;

/// Where a flow takes the patient's signature from.
#[derive(Debug, Clone, Copy)]
pub enum SignatureSource<'a> {
    /// The patient's medcert wallet signs.
    Wallet,
    /// Nothing is signed and nothing is sent to a chain: the flow ends with the message's
    /// typed data ([`Signed::ToSign`]) for another wallet to sign.
    TypedDataOnly,
    /// Another wallet signed `typed_data`, as a [`SignatureSource::TypedDataOnly`] run of
    /// the same flow gave it. The flow checks the message is for this request and the
    /// signature the patient's.
    Given {
        /// The typed-data JSON that was signed.
        typed_data: &'a serde_json::Value,
        /// The signature, r ‖ s ‖ v.
        signature: [u8; 65],
    },
}

/// How a flow ended: done, or waiting for another wallet's signature.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Signed<T> {
    /// The flow ran to its end.
    Done(T),
    /// The flow stopped before signing (see [`SignatureSource::TypedDataOnly`]).
    ToSign(ToSign),
}

impl<T> Signed<T> {
    /// Stops the flow with `typed_data`, for the patient's other wallet to sign.
    pub(crate) fn ask(wallet: &PatientWallet, typed_data: serde_json::Value) -> Self {
        Signed::ToSign(ToSign {
            typed_data,
            signer: wallet.info().address.clone(),
        })
    }

    /// The report of a flow the patient's wallet signed in, which always runs to its end.
    pub(crate) fn signed_by_wallet(self) -> T {
        match self {
            Signed::Done(report) => report,
            Signed::ToSign(_) => unreachable!("a flow stops for a signature only when asked to"),
        }
    }
}

/// A message for another wallet to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToSign {
    /// The typed-data JSON that `eth_signTypedData_v4` takes.
    pub typed_data: serde_json::Value,
    /// The account that must sign it (the patient's), `0x` hex.
    pub signer: String,
}

/// Checks that the patient's account signed `digest` with `signature`.
pub(crate) fn check_given(
    wallet: &PatientWallet,
    digest: &[u8; 32],
    signature: &[u8; 65],
) -> Result<(), FlowError> {
    verify_signer(digest, signature, &wallet.signer().address()).map_err(|source| {
        FlowError::NotPatientsSignature {
            patient: wallet.info().name.clone(),
            source,
        }
    })
}

/// Checks that the signed message's `field` is this request's.
pub(crate) fn same_field<T: PartialEq + std::fmt::Debug>(
    field: &'static str,
    request: T,
    signed: T,
) -> Result<(), FlowError> {
    if request == signed {
        Ok(())
    } else {
        Err(FlowError::SignedOtherMessage {
            field,
            request: format!("{request:?}"),
            signed: format!("{signed:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medcert_eip712::{Deletion, PatientSigner, VerifyError};

    fn deletion_digest() -> [u8; 32] {
        Deletion {
            channel: "hospital1".into(),
            record_id: "R-1".into(),
            nonce: 7,
        }
        .digest()
    }

    #[test]
    fn a_given_signature_is_accepted_only_as_the_patients() {
        let tmp = tempfile::tempdir().unwrap();
        let (wallet, _) = PatientWallet::open_or_create(tmp.path(), "ann").unwrap();
        let digest = deletion_digest();
        let own = wallet.signer().sign_digest(&digest);
        assert!(check_given(&wallet, &digest, &own).is_ok());

        let stranger = PatientSigner::from_seed(&[4; 32]).sign_digest(&digest);
        let error = check_given(&wallet, &digest, &stranger).unwrap_err();
        assert!(
            matches!(
                &error,
                FlowError::NotPatientsSignature {
                    patient,
                    source: VerifyError::WrongSigner { .. },
                } if patient == "ann"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_message_signed_for_another_request_is_refused_naming_the_field() {
        assert!(same_field("recordId", "R-1", "R-1").is_ok());
        let error = same_field("recordId", "R-1", "R-2").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the signed typed data's recordId is \"R-2\", but this request's is \"R-1\""
        );
    }

    #[test]
    fn a_flow_stopped_for_a_signature_names_the_patients_account() {
        let tmp = tempfile::tempdir().unwrap();
        let (wallet, _) = PatientWallet::open_or_create(tmp.path(), "ann").unwrap();
        let typed_data = serde_json::json!({"primaryType": "Deletion"});
        match Signed::<()>::ask(&wallet, typed_data.clone()) {
            Signed::ToSign(to_sign) => {
                assert_eq!(to_sign.signer, wallet.info().address);
                assert_eq!(to_sign.typed_data, typed_data);
            }
            Signed::Done(()) => panic!("asking for a signature finished the flow"),
        }
    }
}
