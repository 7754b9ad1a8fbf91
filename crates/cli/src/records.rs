//! The record flows of a hospital (DESIGN.md, "Flows"): store (and, at the patient's
//! request, certify), certify an existing record, query (audited) and retrieve, and the
//! patient's deletion with its cleanup.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_crypto::{CryptoError, Dek, EnvelopeHeader, RecordAad};
use medcert_csp::CspError;
use medcert_eip712::{CertificateAuthorization, hospital_id};
use medcert_ethereum::EthereumError;
use medcert_ethereum::ethers::types::{Address, U256};
use medcert_network::{Hospital, Network};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::error::FlowError;
use crate::hospital_keys::HospitalKeys;
use crate::ids::{
    certificate_record_id, check_identifier, check_password, check_record_id, new_id,
};
use crate::ledger::{Record, RecordState, hex32, parse};
use crate::progress::Progress;
use crate::services::{
    Actor, certificate_client_as_hospital, contract_address, csp, hospital_contract, ipfs,
};
use crate::store::{Fingerprints, StoreRequest, Stored, store_keeping_ciphertext};
use crate::verify::{VerdictReport, VerifyReport, verify_file};
use crate::wallet::PatientWallet;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn hospital_keys(network: &Network, hospital: &Hospital) -> Result<HospitalKeys, FlowError> {
    Ok(HospitalKeys::open_existing(&HospitalKeys::dir(
        &network.run_dir,
        &hospital.id,
    ))?)
}

/// A doctor storing a visit's record.
#[derive(Debug, Clone, Copy)]
pub struct StoreFlowRequest<'a> {
    pub hospital: &'a str,
    pub doctor: usize,
    pub treatment_number: &'a str,
    /// A fresh id is chosen when `None`.
    pub record_id: Option<&'a str>,
    /// The C-CDA document.
    pub source: &'a Path,
    pub password: &'a Zeroizing<String>,
    /// At the patient's request, certify the record for this patient's wallet.
    pub certify_for: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct StoreReport {
    pub hospital: String,
    pub treatment_number: String,
    #[serde(flatten)]
    pub stored: Stored,
    pub certificate: Option<Certified>,
}

/// A certificate issued for a record.
#[derive(Debug, Serialize)]
pub struct Certified {
    pub certificate_id: u64,
    /// Hash I: the CID of the envelope on IPFS.
    pub cid: String,
    pub patient_address: String,
    /// `None` when the record was certified before (nothing was sent).
    pub eth_tx: Option<String>,
    pub eth_block: Option<u64>,
    pub already_certified: bool,
    pub ipfs_add_ms: f64,
    pub issue_ms: f64,
}

/// Stores a record at the hospital and, when asked, certifies it. When certification
/// fails after the record is on the hospital chain, the IPFS copy is unpinned and the
/// error says the record stands and `ehr certify` retries.
pub async fn store(
    network: &Network,
    patients_dir: &Path,
    request: &StoreFlowRequest<'_>,
    progress: &Progress,
) -> Result<StoreReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("treatment number", request.treatment_number)?;
    check_password(request.password)?;
    let record_id = match request.record_id {
        Some(id) => id.to_owned(),
        None => new_id("R"),
    };
    check_record_id(&record_id)?;
    // Everything certification needs is checked before anything is stored.
    let wallet = match request.certify_for {
        Some(patient) => {
            contract_address(network)?;
            Some(PatientWallet::open(patients_dir, patient)?)
        }
        None => None,
    };
    let keys = hospital_keys(network, hospital)?;
    let csp = csp(network)?;
    let contract = hospital_contract(network, hospital, Actor::Doctor(request.doctor)).await?;
    let store_request = StoreRequest {
        hospital_id: &hospital.id,
        treatment_number: request.treatment_number,
        record_id: &record_id,
        source: request.source,
        password: request.password,
    };
    let (stored, ciphertext) =
        store_keeping_ciphertext(&store_request, &keys, &csp, &contract, progress).await?;
    let certificate = match wallet {
        None => None,
        Some(wallet) => {
            let fingerprints = Fingerprints {
                content: hex32(
                    "content fingerprint",
                    "the store",
                    &stored.content_fingerprint,
                )?,
                watermark: hex32(
                    "watermark fingerprint",
                    "the store",
                    &stored.watermark_fingerprint,
                )?,
            };
            let certified = async {
                let dek = keys.key_store.get(&record_id)?;
                certify_ciphertext(
                    network,
                    hospital,
                    &wallet,
                    &record_id,
                    &fingerprints,
                    &dek,
                    ciphertext,
                    progress,
                )
                .await
            }
            .await;
            match certified {
                Ok(certified) => Some(certified),
                Err(source) => {
                    return Err(FlowError::CertifyAfterStore {
                        hospital: hospital.id.clone(),
                        record_id,
                        tx_id: stored.tx_id,
                        patient: wallet.info().name.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
    };
    Ok(StoreReport {
        hospital: hospital.id.clone(),
        treatment_number: request.treatment_number.to_owned(),
        stored,
        certificate,
    })
}

/// A doctor creating a visit's record: a C-CDA document generated for the patient
/// (medcert-ccda), then stored like any other.
#[derive(Debug, Clone, Copy)]
pub struct CreateRequest<'a> {
    pub hospital: &'a str,
    pub doctor: usize,
    pub treatment_number: &'a str,
    pub record_id: Option<&'a str>,
    pub password: &'a Zeroizing<String>,
    /// Size of the generated document in bytes.
    pub size: u64,
    pub certify_for: Option<&'a str>,
    /// Also keep the generated (unmarked) document here.
    pub keep: Option<&'a Path>,
}

/// Generates the record and stores it (see [`store`]).
pub async fn create_record(
    network: &Network,
    patients_dir: &Path,
    request: &CreateRequest<'_>,
    progress: &Progress,
) -> Result<StoreReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    if request.size < 4_096 {
        return Err(FlowError::Input(format!(
            "a record of {} bytes is too small to carry a watermark; give --size 4096 or more",
            request.size
        )));
    }
    let scratch = tempfile::tempdir().map_err(|source| FlowError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = scratch.path().join("record.xml");
    let config = medcert_ccda::GeneratorConfig {
        seed: rand::random(),
        target_size: request.size,
        patient_id: request.treatment_number.to_owned(),
        hospital: hospital.id.clone(),
    };
    let file = File::create(&path).map_err(|source| FlowError::Write {
        path: path.clone(),
        source,
    })?;
    medcert_ccda::generate(&config, file).map_err(|source| FlowError::Write {
        path: path.clone(),
        source,
    })?;
    if let Some(keep) = request.keep {
        std::fs::copy(&path, keep).map_err(|source| FlowError::Write {
            path: keep.to_owned(),
            source,
        })?;
    }
    let store_request = StoreFlowRequest {
        hospital: request.hospital,
        doctor: request.doctor,
        treatment_number: request.treatment_number,
        record_id: request.record_id,
        source: &path,
        password: request.password,
        certify_for: request.certify_for,
    };
    store(network, patients_dir, &store_request, progress).await
}

/// Builds the envelope (header sealed to the patient ‖ E'), adds it to IPFS and issues
/// the certificate with the patient's authorisation. A refused issuance unpins the
/// envelope, so no certificate-less copy stays pinned.
#[allow(clippy::too_many_arguments)]
async fn certify_ciphertext(
    network: &Network,
    hospital: &Hospital,
    wallet: &PatientWallet,
    record_id: &str,
    fingerprints: &Fingerprints,
    dek: &Dek,
    ciphertext: File,
    progress: &Progress,
) -> Result<Certified, FlowError> {
    let client = certificate_client_as_hospital(network, hospital)?;
    let hospital_word = hospital_id(&hospital.id).ok_or_else(|| {
        FlowError::Input(format!(
            "hospital id {:?} does not fit a certificate (1 to 32 bytes)",
            hospital.id
        ))
    })?;
    let record_word = certificate_record_id(record_id)?;

    let started = Instant::now();
    let aad = RecordAad {
        record_id,
        hospital_id: &hospital.id,
    };
    let header = EnvelopeHeader::seal(dek, &aad, &wallet.x25519().public_key())?.encode()?;
    let length = ciphertext
        .metadata()
        .map_err(|source| FlowError::Read {
            path: PathBuf::from("the encrypted record"),
            source,
        })?
        .len()
        + header.len() as u64;
    let ipfs = ipfs(network)?;
    let bar = progress.bytes(length, "IPFS add");
    let envelope = AsyncReadExt::chain(
        std::io::Cursor::new(header),
        tokio::fs::File::from_std(ciphertext),
    );
    let cid = ipfs.add(bar.wrap_async_read(envelope)).await;
    bar.finish_and_clear();
    let cid = cid?;
    let ipfs_add_ms = ms(started);

    let started = Instant::now();
    let authorization = CertificateAuthorization {
        hospital: hospital_word,
        record_id: record_word,
        cid: cid.clone(),
        content_fingerprint: fingerprints.content,
        watermark_fingerprint: fingerprints.watermark,
        nonce: rand::random(),
    };
    let signature = wallet
        .signer()
        .sign_certificate_authorization(&authorization, &client.domain());
    let patient = Address::from(wallet.signer().address());
    let issued = issue_with_retry(&client, &authorization, patient, &signature).await;
    let issued = match issued {
        Ok(issued) => issued,
        Err(e) => {
            if let Err(undo) = ipfs.unpin(&cid).await {
                tracing::warn!(error = %undo, %cid, "could not unpin the envelope of a refused certificate");
            }
            return Err(e.into());
        }
    };
    Ok(Certified {
        certificate_id: issued.certificate_id,
        cid,
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

/// Certifying a record already on the hospital chain (a retry of `ehr store --certify`).
#[derive(Debug, Clone, Copy)]
pub struct CertifyRequest<'a> {
    pub hospital: &'a str,
    pub doctor: usize,
    pub record_id: &'a str,
    pub patient: &'a str,
}

/// Certifies a stored record for the patient; a record certified before is reported,
/// not certified twice.
pub async fn certify_record(
    network: &Network,
    patients_dir: &Path,
    request: &CertifyRequest<'_>,
    progress: &Progress,
) -> Result<Certified, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_record_id(request.record_id)?;
    let wallet = PatientWallet::open(patients_dir, request.patient)?;
    let contract = hospital_contract(network, hospital, Actor::Doctor(request.doctor)).await?;
    let record = active_record(&contract, &hospital.channel, request.record_id).await?;

    let client = certificate_client_as_hospital(network, hospital)?;
    let hospital_word = hospital_id(&hospital.id).expect("checked when the network was made");
    let existing = client
        .contract()
        .certificate_of_record(hospital_word, certificate_record_id(request.record_id)?)
        .call()
        .await
        .map_err(|e| EthereumError::Rpc(Box::new(e)))?;
    if existing != U256::zero() {
        let certificate_id = existing.as_u64();
        let certificate = client.certificate(certificate_id).await?;
        if certificate.patient != Address::from(wallet.signer().address()) {
            return Err(FlowError::Input(format!(
                "record {} is already certified (certificate {certificate_id}) for another patient",
                request.record_id
            )));
        }
        return Ok(Certified {
            certificate_id,
            cid: certificate.cid,
            patient_address: wallet.info().address.clone(),
            eth_tx: None,
            eth_block: None,
            already_certified: true,
            ipfs_add_ms: 0.0,
            issue_ms: 0.0,
        });
    }

    let keys = hospital_keys(network, hospital)?;
    let dek = keys.key_store.get(request.record_id)?;
    let hash_c = hex32("Hash C", "the hospital chain", &record.hash_c)?;
    let scratch = tempfile::tempdir().map_err(|source| FlowError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = scratch.path().join("record.enc");
    csp(network)?.get_to_file(&hash_c, &path).await?;
    let ciphertext = File::open(&path).map_err(|source| FlowError::Read {
        path: path.clone(),
        source,
    })?;
    let fingerprints = Fingerprints {
        content: hex32(
            "content fingerprint",
            "the hospital chain",
            &record.content_fingerprint,
        )?,
        watermark: hex32(
            "watermark fingerprint",
            "the hospital chain",
            &record.watermark_fingerprint,
        )?,
    };
    certify_ciphertext(
        network,
        hospital,
        &wallet,
        request.record_id,
        &fingerprints,
        &dek,
        ciphertext,
        progress,
    )
    .await
}

/// `GetRecord`: the record's state on the hospital chain.
pub async fn record_state(
    contract: &medcert_fabric::Contract,
    channel: &str,
    record_id: &str,
) -> Result<RecordState, FlowError> {
    let bytes = contract
        .evaluate("GetRecord", &[record_id])
        .await
        .map_err(|e| FlowError::fabric(channel, e))?;
    parse("GetRecord answer", channel, &bytes)
}

async fn active_record(
    contract: &medcert_fabric::Contract,
    channel: &str,
    record_id: &str,
) -> Result<Record, FlowError> {
    match record_state(contract, channel, record_id).await? {
        RecordState::Active { record } => Ok(record),
        RecordState::Deleted { tombstone } => Err(FlowError::Input(format!(
            "record {record_id} was deleted from {channel} in transaction {}; it can only be recovered",
            tombstone.deleted_tx
        ))),
    }
}

/// A doctor's audited query of a record, optionally retrieving the document.
#[derive(Debug, Clone, Copy)]
pub struct QueryRequest<'a> {
    pub hospital: &'a str,
    pub doctor: usize,
    pub treatment_number: &'a str,
    pub record_id: &'a str,
    pub password: &'a Zeroizing<String>,
    /// Where to write the decrypted document; `None` queries the chain only.
    pub out: Option<&'a Path>,
}

#[derive(Debug, Serialize)]
pub struct QueryReport {
    pub hospital: String,
    pub record: Record,
    /// The audited query's transaction.
    pub tx_id: String,
    pub block_number: u64,
    pub query_ms: f64,
    pub retrieved: Option<Retrieved>,
}

/// A record fetched from the CSP, decrypted and checked.
#[derive(Debug, Serialize)]
pub struct Retrieved {
    pub path: PathBuf,
    pub bytes: u64,
    pub verification: VerifyReport,
    /// Whether the document's content fingerprint is the one anchored on the chain.
    pub fingerprint_matches: bool,
    pub csp_get_ms: f64,
    pub decrypt_ms: f64,
    pub verify_ms: f64,
}

impl Retrieved {
    pub fn authentic(&self) -> bool {
        self.fingerprint_matches
            && matches!(self.verification.verdict, VerdictReport::Authentic { .. })
    }
}

/// `QueryRecord` (audited on the hospital chain), then, with `out`, CSP get → decrypt →
/// watermark and fingerprint check. The document is written all or nothing.
pub async fn query_record(
    network: &Network,
    request: &QueryRequest<'_>,
    progress: &Progress,
) -> Result<QueryReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("treatment number", request.treatment_number)?;
    check_identifier("record id", request.record_id)?;
    check_password(request.password)?;
    let keys = match request.out {
        Some(_) => Some(hospital_keys(network, hospital)?),
        None => None,
    };
    let contract = hospital_contract(network, hospital, Actor::Doctor(request.doctor)).await?;
    let started = Instant::now();
    let committed = contract
        .new_proposal("QueryRecord")
        .args([request.treatment_number, request.record_id])
        .transient("password", request.password.as_bytes().to_vec())
        .submit()
        .await
        .map_err(|e| FlowError::fabric(&hospital.channel, e))?;
    let query_ms = ms(started);
    let record: Record = parse("QueryRecord answer", &hospital.channel, &committed.result)?;
    let retrieved = match (request.out, keys) {
        (Some(out), Some(keys)) => {
            Some(retrieve(network, hospital, &keys, &record, out, progress).await?)
        }
        _ => None,
    };
    Ok(QueryReport {
        hospital: hospital.id.clone(),
        record,
        tx_id: committed.tx_id,
        block_number: committed.block_number,
        query_ms,
        retrieved,
    })
}

async fn retrieve(
    network: &Network,
    hospital: &Hospital,
    keys: &HospitalKeys,
    record: &Record,
    out: &Path,
    progress: &Progress,
) -> Result<Retrieved, FlowError> {
    let dek = keys.key_store.get(&record.record_id)?;
    let hash_c = hex32("Hash C", "the hospital chain", &record.hash_c)?;
    let scratch = tempfile::tempdir().map_err(|source| FlowError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let encrypted = scratch.path().join("record.enc");
    let started = Instant::now();
    let bar = progress.spinner("CSP get");
    let fetched = csp(network)?.get_to_file(&hash_c, &encrypted).await;
    bar.finish_and_clear();
    fetched?;
    let csp_get_ms = ms(started);

    let started = Instant::now();
    let aad = RecordAad {
        record_id: &record.record_id,
        hospital_id: &hospital.id,
    };
    let file = File::open(&encrypted).map_err(|source| FlowError::Read {
        path: encrypted.clone(),
        source,
    })?;
    let bytes = medcert_crypto::decrypt_to_file(&dek, &aad, BufReader::new(file), out)?;
    let decrypt_ms = ms(started);

    let started = Instant::now();
    let verification = verify_file(network, out).map_err(|e| FlowError::Input(e.to_string()))?;
    let anchored = hex32(
        "content fingerprint",
        "the hospital chain",
        &record.content_fingerprint,
    )?;
    let fingerprint_matches =
        verification.content_fingerprint.as_deref() == Some(hex::encode(anchored).as_str());
    Ok(Retrieved {
        path: out.to_owned(),
        bytes,
        verification,
        fingerprint_matches,
        csp_get_ms,
        decrypt_ms,
        verify_ms: ms(started),
    })
}

/// A patient's deletion of a record at a hospital.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    pub patient: &'a str,
    pub hospital: &'a str,
    pub record_id: &'a str,
    /// Who submits the patient's signed request on the hospital chain.
    pub submitter: Actor,
}

/// What happened to one copy of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    Removed,
    /// Already gone (a re-run finishing an earlier deletion).
    AlreadyAbsent,
    /// The record was deleted on the chain by an earlier run whose note of Hash C is
    /// lost, so the CSP object cannot be named.
    Unknown,
}

#[derive(Debug, Serialize)]
pub struct DeleteReport {
    pub hospital: String,
    pub record_id: String,
    /// `None` when an earlier run had already deleted the record on the chain.
    pub tx_id: Option<String>,
    pub block_number: Option<u64>,
    pub deleted_tx: String,
    pub deleted_by: String,
    pub hash_c: Option<String>,
    pub csp_object: Cleanup,
    pub hospital_key: Cleanup,
    pub delete_record_ms: f64,
    pub cleanup_ms: f64,
}

/// The hospital's note of a deletion in progress, so a re-run can finish the cleanup
/// after `DeleteRecord` has removed Hash C from world state.
#[derive(Debug, Serialize, Deserialize)]
struct PendingDeletion {
    record_id: String,
    hash_c: String,
}

fn pending_path(network: &Network, hospital: &Hospital, record_id: &str) -> PathBuf {
    use sha3::{Digest, Sha3_256};
    HospitalKeys::dir(&network.run_dir, &hospital.id)
        .join("pending-deletions")
        .join(format!(
            "{}.json",
            hex::encode(Sha3_256::digest(record_id.as_bytes()))
        ))
}

/// The patient signs the deletion request, the hospital chain deletes the record (leaving
/// a tombstone), then the hospital deletes the CSP object by Hash C and shreds its key.
/// Running it again after a failure part-way finishes the cleanup.
pub async fn delete_record(
    network: &Network,
    patients_dir: &Path,
    request: &DeleteRequest<'_>,
) -> Result<DeleteReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("record id", request.record_id)?;
    let wallet = PatientWallet::open(patients_dir, request.patient)?;
    let keys = hospital_keys(network, hospital)?;
    let csp = csp(network)?;
    let contract = hospital_contract(network, hospital, request.submitter).await?;
    let pending = pending_path(network, hospital, request.record_id);

    let started = Instant::now();
    let (tx_id, block_number, deleted_tx, deleted_by, hash_c) =
        match record_state(&contract, &hospital.channel, request.record_id).await? {
            RecordState::Active { record } => {
                write_pending(
                    &pending,
                    &PendingDeletion {
                        record_id: record.record_id.clone(),
                        hash_c: record.hash_c.clone(),
                    },
                )?;
                let nonce: u64 = rand::random();
                let signature =
                    wallet
                        .signer()
                        .sign_deletion(&hospital.channel, request.record_id, nonce);
                let nonce_arg = nonce.to_string();
                let signature_hex = hex::encode(signature);
                let committed = contract
                    .new_proposal("DeleteRecord")
                    .args([request.record_id, &nonce_arg, &signature_hex])
                    .submit()
                    .await;
                let committed = match committed {
                    Ok(committed) => committed,
                    Err(e) => {
                        let _ = std::fs::remove_file(&pending);
                        return Err(FlowError::fabric(&hospital.channel, e));
                    }
                };
                (
                    Some(committed.tx_id.clone()),
                    Some(committed.block_number),
                    committed.tx_id,
                    wallet.info().address.clone(),
                    Some(record.hash_c),
                )
            }
            RecordState::Deleted { tombstone } => {
                let hash_c = read_pending(&pending)?.map(|p| p.hash_c);
                (
                    None,
                    None,
                    tombstone.deleted_tx,
                    tombstone.deleted_by,
                    hash_c,
                )
            }
        };
    let delete_record_ms = ms(started);

    let started = Instant::now();
    let csp_object = match &hash_c {
        None => Cleanup::Unknown,
        Some(hash_c) => {
            match csp
                .delete(&hex32("Hash C", "the hospital chain", hash_c)?)
                .await
            {
                Ok(()) => Cleanup::Removed,
                Err(CspError::NotFound { .. }) => Cleanup::AlreadyAbsent,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let hospital_key = match keys.key_store.delete(request.record_id) {
        Ok(()) => Cleanup::Removed,
        Err(CryptoError::UnknownRecord { .. }) => Cleanup::AlreadyAbsent,
        Err(e) => return Err(e.into()),
    };
    match std::fs::remove_file(&pending) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(FlowError::Write {
                path: pending,
                source,
            });
        }
    }
    Ok(DeleteReport {
        hospital: hospital.id.clone(),
        record_id: request.record_id.to_owned(),
        tx_id,
        block_number,
        deleted_tx,
        deleted_by,
        hash_c,
        csp_object,
        hospital_key,
        delete_record_ms,
        cleanup_ms: ms(started),
    })
}

fn write_pending(path: &Path, pending: &PendingDeletion) -> Result<(), FlowError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let write = |source| FlowError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(write)?;
    file.write_all(&serde_json::to_vec(pending).expect("serialises"))
        .map_err(write)?;
    file.sync_all().map_err(write)
}

fn read_pending(path: &Path) -> Result<Option<PendingDeletion>, FlowError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(parse(
            "pending deletion note",
            &path.display().to_string(),
            &bytes,
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FlowError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The patient's copy of a record's key, for the consent flow.
pub(crate) fn unwrap_envelope_key(
    wallet: &PatientWallet,
    header: &EnvelopeHeader,
) -> Result<Dek, FlowError> {
    header.unwrap_dek(wallet.x25519()).map_err(|e| match e {
        CryptoError::WrongKey(_) => FlowError::Input(format!(
            "the envelope of record {} is not sealed to patient {}'s key; use the wallet of the certificate's patient",
            header.record_id,
            wallet.info().name
        )),
        other => other.into(),
    })
}

/// Reads just the envelope header of `cid` from IPFS.
pub(crate) async fn envelope_header(
    ipfs: &medcert_ipfs::Ipfs,
    cid: &str,
) -> Result<EnvelopeHeader, FlowError> {
    let chunks = Box::pin(ipfs.cat(cid).await?);
    let mut reader =
        tokio_util::io::StreamReader::new(futures_util::StreamExt::map(chunks, |chunk| {
            chunk.map_err(std::io::Error::other)
        }));
    Ok(EnvelopeHeader::read_async(&mut reader).await?)
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

    #[test]
    fn pending_deletion_notes_round_trip_privately() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notes").join("n.json");
        assert!(read_pending(&path).unwrap().is_none());
        write_pending(
            &path,
            &PendingDeletion {
                record_id: "R-1".into(),
                hash_c: "ab".repeat(32),
            },
        )
        .unwrap();
        let read = read_pending(&path).unwrap().unwrap();
        assert_eq!(read.hash_c, "ab".repeat(32));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
