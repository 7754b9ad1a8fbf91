//! Certification (DESIGN.md, "Flows", Store): at the patient's request the envelope
//! {DEK sealed to the patient, E'} goes to IPFS and `issueCertificate` records its CID
//! (Hash I) with both fingerprints, authorised by the patient's EIP-712 signature. The
//! hospital's key service seals the DEK to the patient; the doctor never holds it here.
//! The patient signs with medcert's wallet or another one ([`SignatureSource`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_crypto::{EnvelopeHeader, RecordAad};
use medcert_eip712::{CertificateAuthorization, hospital_id};
use medcert_ethereum::EthereumError;
use medcert_ethereum::ethers::types::Address;
use medcert_ipfs::Ipfs;
use medcert_key_service::KeyServiceClient;
use medcert_network::{Hospital, Network};
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::agent::envelope_header;
use crate::connect::{
    Actor, certificate_client_as_hospital, csp, hospital_client, ipfs, key_service,
};
use crate::consent::unused_nonce;
use crate::digest::Fingerprints;
use crate::error::FlowError;
use crate::ids::{certificate_record_id, check_record_id, word_text};
use crate::observer::{Observed, Observer};
use crate::query::active_record;
use crate::signing::{SignatureSource, Signed, check_given, same_field};
use crate::wallet::PatientWallet;
use crate::{ms, scratch_dir};

/// A certificate issued for a record.
#[derive(Debug, Serialize)]
pub struct Certified {
    /// The certificate's id on the contract.
    pub certificate_id: u64,
    /// Hash I: the CID of the envelope on IPFS.
    pub cid: String,
    /// The patient's Ethereum address.
    pub patient_address: String,
    /// `None` when the record was certified before (nothing was sent).
    pub eth_tx: Option<String>,
    /// The block holding `eth_tx`; `None` when nothing was sent or the receipt has no block.
    pub eth_block: Option<u64>,
    /// Whether the record already had a certificate for this patient.
    pub already_certified: bool,
    /// Time to add the envelope to IPFS, in milliseconds (0 when already certified).
    pub ipfs_add_ms: f64,
    /// Time to issue the certificate on the certificate chain, in milliseconds.
    pub issue_ms: f64,
}

/// A stored record ready to be certified: its id, fingerprints and E' (rewound).
pub(crate) struct Sealed<'a> {
    pub record_id: &'a str,
    pub fingerprints: &'a Fingerprints,
    pub ciphertext: File,
}

/// Builds the envelope (header with the DEK that `keys`, the hospital's key service,
/// wraps to the patient ‖ E'), adds it to IPFS and issues the certificate with the
/// patient's authorisation, signed by their wallet (refused before anything is added when
/// the patient's key is in another wallet). A refused issuance unpins the envelope, so no
/// certificate-less copy stays pinned.
pub(crate) async fn certify_ciphertext(
    network: &Network,
    hospital: &Hospital,
    keys: &KeyServiceClient,
    wallet: &PatientWallet,
    sealed: Sealed<'_>,
    observer: &dyn Observer,
) -> Result<Certified, FlowError> {
    let signer = wallet.patient_signer()?;
    let client = certificate_client_as_hospital(network, hospital)?;
    let ipfs = ipfs(network)?;
    let nonce = unused_nonce(&client, wallet).await?;
    let (authorization, ipfs_add_ms) =
        add_envelope(&ipfs, hospital, keys, wallet, sealed, nonce, observer).await?;
    let signature = signer.sign_certificate_authorization(&authorization, &client.domain());
    issue(
        &ipfs,
        &client,
        wallet,
        authorization,
        &signature,
        ipfs_add_ms,
    )
    .await
}

/// Adds the envelope of `sealed` (header with the DEK that `keys`, the hospital's key
/// service, wraps to the patient ‖ E') to IPFS; returns the patient's authorisation to
/// certify it with `nonce`, unsigned, and the time the add took.
async fn add_envelope(
    ipfs: &Ipfs,
    hospital: &Hospital,
    keys: &KeyServiceClient,
    wallet: &PatientWallet,
    sealed: Sealed<'_>,
    nonce: u64,
    observer: &dyn Observer,
) -> Result<(CertificateAuthorization, f64), FlowError> {
    let hospital_word = hospital_id(&hospital.id).ok_or_else(|| FlowError::HospitalIdTooLong {
        hospital: hospital.id.clone(),
    })?;
    let record_word = certificate_record_id(sealed.record_id)?;

    let started = Instant::now();
    let aad = RecordAad {
        record_id: sealed.record_id,
        hospital_id: &hospital.id,
    };
    let wrapped = keys
        .wrap_for_patient(sealed.record_id, &wallet.x25519().public_key())
        .await
        .map_err(|source| FlowError::key_service(&hospital.id, source))?;
    let header = EnvelopeHeader::seal(&aad, wrapped).encode()?;
    let length = sealed
        .ciphertext
        .metadata()
        .map_err(|source| FlowError::Read {
            path: PathBuf::from("the encrypted record"),
            source,
        })?
        .len()
        + header.len() as u64;
    let envelope = AsyncReadExt::chain(
        std::io::Cursor::new(header),
        tokio::fs::File::from_std(sealed.ciphertext),
    );
    let envelope = Observed::new(envelope, observer.step("IPFS add", Some(length)));
    let cid = ipfs.add(envelope).await?;
    let authorization = CertificateAuthorization {
        hospital: hospital_word,
        record_id: record_word,
        cid,
        content_fingerprint: sealed.fingerprints.content.0,
        watermark_fingerprint: sealed.fingerprints.watermark.0,
        nonce,
    };
    Ok((authorization, ms(started)))
}

/// Issues the certificate the patient authorised with `signature`; a refusal unpins the
/// envelope, so no certificate-less copy stays pinned.
async fn issue(
    ipfs: &Ipfs,
    client: &medcert_ethereum::MedicalCertificateClient,
    wallet: &PatientWallet,
    authorization: CertificateAuthorization,
    signature: &[u8; 65],
    ipfs_add_ms: f64,
) -> Result<Certified, FlowError> {
    let started = Instant::now();
    let patient = Address::from(wallet.patient_address());
    let issued = match issue_with_retry(client, &authorization, patient, signature).await {
        Ok(issued) => issued,
        Err(e) => {
            let cid = &authorization.cid;
            if let Err(undo) = ipfs.unpin(cid).await {
                tracing::warn!(error = %undo, %cid, "could not unpin the envelope of a refused certificate");
            }
            return Err(e.into());
        }
    };
    Ok(Certified {
        certificate_id: issued.certificate_id,
        cid: authorization.cid,
        patient_address: wallet.info().address.clone(),
        eth_tx: Some(format!("{:#x}", issued.receipt.transaction_hash)),
        eth_block: issued.receipt.block_number.map(|b| b.as_u64()),
        already_certified: false,
        ipfs_add_ms,
        issue_ms: ms(started),
    })
}

/// Hospitals' accounts are shared by every process acting for the hospital; two sends at
/// once may pick the same account nonce, and the node rejects the second. Nothing was
/// sent then, so sending again is safe.
async fn issue_with_retry(
    client: &medcert_ethereum::MedicalCertificateClient,
    authorization: &CertificateAuthorization,
    patient: Address,
    signature: &[u8; 65],
) -> Result<medcert_ethereum::Issued, EthereumError> {
    let mut attempt = 0;
    loop {
        match client
            .issue_certificate(authorization, patient, signature)
            .await
        {
            Err(EthereumError::Rpc(e)) if attempt < 5 && account_nonce_race(&e.to_string()) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "account nonce taken; sending again");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            other => return other,
        }
    }
}

fn account_nonce_race(message: &str) -> bool {
    let message = message.to_lowercase();
    message.contains("nonce too low") || message.contains("underpriced")
}

/// Certifying a record already on the hospital chain (a retry of a store whose
/// certification failed).
#[derive(Debug, Clone, Copy)]
pub struct CertifyRequest<'a> {
    /// The hospital where the record is stored.
    pub hospital: &'a str,
    /// The hospital's doctor (0-based) who reads the record.
    pub doctor: usize,
    /// The record's id.
    pub record_id: &'a str,
    /// The wallet of the record's patient.
    pub patient: &'a str,
}

/// Certifies a stored record for the patient, whose wallet signs the authorisation; a
/// record certified before is reported, not certified twice.
pub async fn certify_record(
    network: &Network,
    patients_dir: &Path,
    request: &CertifyRequest<'_>,
    observer: &dyn Observer,
) -> Result<Certified, FlowError> {
    certify_record_with(
        network,
        patients_dir,
        request,
        SignatureSource::Wallet,
        observer,
    )
    .await
    .map(Signed::signed_by_wallet)
}

/// [`certify_record`] with the patient's authorisation from `signature`. For
/// [`SignatureSource::TypedDataOnly`] the envelope is added to IPFS (its CID is part of
/// what the patient signs) and the flow stops with the authorisation's typed data; for
/// [`SignatureSource::Given`] the authorisation must name this record, its fingerprints
/// and an envelope on IPFS of this record that opens with the patient's key.
pub async fn certify_record_with(
    network: &Network,
    patients_dir: &Path,
    request: &CertifyRequest<'_>,
    signature: SignatureSource<'_>,
    observer: &dyn Observer,
) -> Result<Signed<Certified>, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_record_id(request.record_id)?;
    let wallet = PatientWallet::open(patients_dir, request.patient)?;
    if let SignatureSource::Wallet = signature {
        wallet.patient_signer()?;
    }
    let chain = hospital_client(network, hospital, Actor::Doctor(request.doctor)).await?;
    let record = active_record(&chain, &hospital.channel, request.record_id).await?;

    let client = certificate_client_as_hospital(network, hospital)?;
    let hospital_word = hospital_id(&hospital.id).ok_or_else(|| FlowError::HospitalIdTooLong {
        hospital: hospital.id.clone(),
    })?;
    let existing = client
        .certificate_of_record(hospital_word, certificate_record_id(request.record_id)?)
        .await?;
    if let Some(certificate) = existing {
        let certificate_id = certificate.id;
        if certificate.patient != Address::from(wallet.patient_address()) {
            return Err(FlowError::CertifiedForAnother {
                record_id: request.record_id.to_owned(),
                certificate_id,
            });
        }
        return Ok(Signed::Done(Certified {
            certificate_id,
            cid: certificate.cid,
            patient_address: wallet.info().address.clone(),
            eth_tx: None,
            eth_block: None,
            already_certified: true,
            ipfs_add_ms: 0.0,
            issue_ms: 0.0,
        }));
    }

    let fingerprints = Fingerprints {
        content: record.content_fingerprint,
        watermark: record.watermark_fingerprint,
    };
    if let SignatureSource::Given {
        typed_data,
        signature,
    } = signature
    {
        let authorization = CertificateAuthorization::from_typed_data(typed_data, &client.domain())
            .map_err(FlowError::TypedData)?;
        same_field(
            "hospital",
            hospital.id.clone(),
            word_text(&authorization.hospital),
        )?;
        same_field(
            "recordId",
            request.record_id.to_owned(),
            word_text(&authorization.record_id),
        )?;
        same_field(
            "contentFingerprint",
            hex::encode(fingerprints.content.0),
            hex::encode(authorization.content_fingerprint),
        )?;
        same_field(
            "watermarkFingerprint",
            hex::encode(fingerprints.watermark.0),
            hex::encode(authorization.watermark_fingerprint),
        )?;
        check_given(&wallet, &authorization.digest(&client.domain()), &signature)?;
        let ipfs = ipfs(network)?;
        check_envelope(
            &ipfs,
            hospital,
            request.record_id,
            &wallet,
            &authorization.cid,
        )
        .await?;
        return issue(&ipfs, &client, &wallet, authorization, &signature, 0.0)
            .await
            .map(Signed::Done);
    }

    let keys = key_service(hospital, Actor::Doctor(request.doctor)).await?;
    let hash_c = record.hash_c;
    let scratch = scratch_dir()?;
    let path = scratch.path().join("record.enc");
    csp(network)?.get_to_file(&hash_c, &path).await?;
    let ciphertext = File::open(&path).map_err(|source| FlowError::Read {
        path: path.clone(),
        source,
    })?;
    let sealed = Sealed {
        record_id: request.record_id,
        fingerprints: &fingerprints,
        ciphertext,
    };
    if let SignatureSource::TypedDataOnly = signature {
        // The envelope stays pinned: the authorisation signed elsewhere names its CID.
        let nonce = unused_nonce(&client, &wallet).await?;
        let (authorization, _) = add_envelope(
            &ipfs(network)?,
            hospital,
            &keys,
            &wallet,
            sealed,
            nonce,
            observer,
        )
        .await?;
        return Ok(Signed::ask(
            &wallet,
            authorization.typed_data(&client.domain()),
        ));
    }
    certify_ciphertext(network, hospital, &keys, &wallet, sealed, observer)
        .await
        .map(Signed::Done)
}

/// Checks that the envelope at `cid` is record `record_id`'s at `hospital` and opens with
/// the patient's key, before a certificate points at it.
async fn check_envelope(
    ipfs: &Ipfs,
    hospital: &Hospital,
    record_id: &str,
    wallet: &PatientWallet,
    cid: &str,
) -> Result<(), FlowError> {
    let header = envelope_header(ipfs, cid).await?;
    if header.record_id != record_id || header.hospital_id != hospital.id {
        return Err(FlowError::NotAuthentic(format!(
            "the envelope {cid} holds record {} of {}, not record {record_id} of {}",
            header.record_id, header.hospital_id, hospital.id
        )));
    }
    header
        .unwrap_dek(wallet.x25519())
        .map_err(|source| FlowError::EnvelopeNotForPatient {
            record_id: record_id.to_owned(),
            patient: wallet.info().name.clone(),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_races_are_told_from_refusals() {
        assert!(account_nonce_race(
            "(code: -32003, message: nonce too low, data: None)"
        ));
        assert!(account_nonce_race("replacement transaction underpriced"));
        assert!(!account_nonce_race("execution reverted"));
    }
}
