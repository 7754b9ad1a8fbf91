//! The patient withdraws what they signed: a consent (by its nonce) or a certificate.
//!
//! Revoking a consent marks it in the wallet, so the patient's agent releases nothing for
//! it even if its recovery was already served, and burns its nonce on the contract when
//! it is still unused, so the relay can no longer serve it. Revoking a certificate
//! withdraws it from recovery on the contract for good. Both are sent from the wallet's
//! own account: the patient's, or the patient's authorised agent when the patient's key is
//! in another wallet.

use std::path::Path;

use medcert_ethereum::ethers::types::Address;
use medcert_network::Network;
use serde::Serialize;

use crate::agent::{may_act, patient_chain};
use crate::error::FlowError;
use crate::wallet::PatientWallet;

/// What revoking a consent did.
#[derive(Debug, Serialize)]
pub struct ConsentRevoked {
    /// The consent's nonce.
    pub nonce: u64,
    /// The `revokeConsentNonce` transaction, `0x` hex; `None` when the nonce was already
    /// spent by a served recovery (the agent then releases nothing for it).
    pub tx: Option<String>,
}

/// Withdraws the patient's consent with `nonce`.
pub async fn revoke_consent(
    network: &Network,
    patients_dir: &Path,
    patient: &str,
    nonce: u64,
) -> Result<ConsentRevoked, FlowError> {
    let mut wallet = PatientWallet::open(patients_dir, patient)?;
    if !wallet.revoke_consent(nonce)? {
        return Err(FlowError::UnknownConsent {
            patient: patient.to_owned(),
            nonce,
        });
    }
    let chain = patient_chain(network, &wallet).await?;
    let address = Address::from(wallet.patient_address());
    let tx = if chain.nonce_used(address, nonce).await? {
        None
    } else {
        may_act(&chain, &wallet).await?;
        let receipt = chain.revoke_consent_nonce(address, nonce).await?;
        Some(format!("{:#x}", receipt.transaction_hash))
    };
    Ok(ConsentRevoked { nonce, tx })
}

/// What revoking a certificate did.
#[derive(Debug, Serialize)]
pub struct CertificateRevoked {
    /// The certificate.
    pub certificate_id: u64,
    /// The `revokeCertificate` transaction, `0x` hex.
    pub tx: String,
}

/// Withdraws the patient's certificate `certificate_id` from recovery for good.
pub async fn revoke_certificate(
    network: &Network,
    patients_dir: &Path,
    patient: &str,
    certificate_id: u64,
) -> Result<CertificateRevoked, FlowError> {
    let wallet = PatientWallet::open(patients_dir, patient)?;
    let chain = patient_chain(network, &wallet).await?;
    may_act(&chain, &wallet).await?;
    let receipt = chain.revoke_certificate(certificate_id).await?;
    Ok(CertificateRevoked {
        certificate_id,
        tx: format!("{:#x}", receipt.transaction_hash),
    })
}
