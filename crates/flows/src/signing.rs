//! Who signs the patient's EIP-712 messages (certificate authorisation, consent, deletion,
//! agent authorisation): the patient's medcert wallet, or any standard Ethereum wallet
//! (hardware, browser, `cast wallet sign --data`) that signed the typed-data JSON a first
//! run of the flow gave. A wallet made for an outside address holds no key of the
//! patient's, so it never signs: every flow refuses [`SignatureSource::Wallet`] for it.

use medcert_eip712::verify_signer;
pub use medcert_eip712::{parse_address, parse_signature};
use serde::Serialize;

use crate::error::FlowError;
use crate::wallet::PatientWallet;

/// Where a flow takes the patient's signature from.
#[derive(Debug, Clone, Copy)]
pub enum SignatureSource<'a> {
    /// The patient's medcert wallet signs (refused when the patient's account is in
    /// another wallet).
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
    verify_signer(digest, signature, &wallet.patient_address()).map_err(|source| {
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
    fn for_an_outside_address_only_that_accounts_signature_is_the_patients() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = PatientSigner::from_seed(&[6; 32]);
        let (wallet, _) =
            PatientWallet::open_or_create_for(tmp.path(), "olga", Some(outside.address())).unwrap();
        let digest = deletion_digest();
        assert!(check_given(&wallet, &digest, &outside.sign_digest(&digest)).is_ok());
        // The wallet's own key is the agent's: never taken for the patient's.
        let by_agent = wallet.signer().sign_digest(&digest);
        let error = check_given(&wallet, &digest, &by_agent).unwrap_err();
        assert!(
            matches!(
                &error,
                FlowError::NotPatientsSignature {
                    source: VerifyError::WrongSigner { expected, .. },
                    ..
                } if *expected == outside.address()
            ),
            "{error}"
        );
        // A flow stopped for a signature asks the outside account for it.
        match Signed::<()>::ask(&wallet, serde_json::json!({})) {
            Signed::ToSign(to_sign) => {
                assert_eq!(
                    to_sign.signer,
                    format!("0x{}", hex::encode(outside.address()))
                );
            }
            Signed::Done(()) => panic!("asking for a signature finished the flow"),
        }
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
