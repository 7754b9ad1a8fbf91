//! The patient's certificates on the certificate chain.

use std::path::Path;

use medcert_ethereum::ethers::types::Address;
use medcert_network::Network;
use serde::Serialize;

use crate::connect::certificate_reader;
use crate::digest::{ContentFingerprint, WatermarkFingerprint};
use crate::error::FlowError;
use crate::ids::word_text;
use crate::wallet::PatientWallet;

/// Whose certificates to list.
#[derive(Debug, Clone, Copy)]
pub struct CertificatesRequest<'a> {
    /// The patient's wallet.
    pub patient: &'a str,
}

/// One certificate of the patient on the certificate chain.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    /// The certificate's id on the contract.
    pub certificate_id: u64,
    /// The issuing hospital's id.
    pub hospital: String,
    /// The record's id at the issuing hospital.
    pub record_id: String,
    /// Hash I: the CID of the record's envelope on IPFS.
    pub cid: String,
    /// When the certificate was issued, Unix seconds.
    pub issued_at: u64,
    /// Whether the patient still allows the record to be recovered.
    pub recoverable: bool,
    /// Hash of the record's content, as certified.
    pub content_fingerprint: ContentFingerprint,
    /// Hash of the record's watermark, as certified.
    pub watermark_fingerprint: WatermarkFingerprint,
}

/// The patient's certificates.
#[derive(Debug, Serialize)]
pub struct CertificatesReport {
    /// The patient's wallet name.
    pub patient: String,
    /// The patient's Ethereum address.
    pub address: String,
    /// The patient's certificates, in issuing order.
    pub certificates: Vec<CertificateView>,
}

/// The patient's certificates, from the contract's `CertificateIssued` events.
pub async fn list_certificates(
    network: &Network,
    patients_dir: &Path,
    request: &CertificatesRequest<'_>,
) -> Result<CertificatesReport, FlowError> {
    let wallet = PatientWallet::open(patients_dir, request.patient)?;
    let client = certificate_reader(network)?;
    let address = Address::from(wallet.patient_address());
    let mut certificates = Vec::new();
    for certificate in client.certificates_of(address).await? {
        certificates.push(CertificateView {
            certificate_id: certificate.id,
            hospital: word_text(&certificate.hospital),
            record_id: word_text(&certificate.record_id),
            cid: certificate.cid,
            issued_at: certificate.issued_at,
            recoverable: certificate.recoverable,
            content_fingerprint: ContentFingerprint(certificate.content_fingerprint),
            watermark_fingerprint: WatermarkFingerprint(certificate.watermark_fingerprint),
        });
    }
    Ok(CertificatesReport {
        patient: request.patient.to_owned(),
        address: wallet.info().address.clone(),
        certificates,
    })
}
