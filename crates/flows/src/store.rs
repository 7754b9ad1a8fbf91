//! The Store flow (DESIGN.md, "Flows"): watermark → encrypt with a fresh DEK → CSP put →
//! HB `CreateRecord` → hospital key store `put`, then, at the patient's request,
//! certification ([`crate::certify`]). A step that fails undoes the ones before it, so a
//! failed store leaves no orphan object or key.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medcert_ccda::CcdaError;
use medcert_crypto::{CryptoError, Dek, RecordAad, encrypt_stream};
use medcert_csp::{Csp, CspError};
use medcert_hospital_api::{ClientError, HospitalClient, args};
use medcert_network::Network;
use medcert_watermark::{Mark, WatermarkError, embed_or_anchor};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::certify::{Certified, Sealed, certify_ciphertext};
use crate::connect::{Actor, contract_address, csp, hospital_client};
use crate::error::FlowError;
use crate::ids::{check_identifier, check_password, check_record_id, new_id};
use crate::scratch_dir;
use crate::wallet::PatientWallet;

use crate::digest::{ContentFingerprint, Fingerprints, HashC, WatermarkFingerprint};
use crate::keys::HospitalKeys;
use crate::ms;
use crate::observer::{Observed, Observer, Quiet};

/// Why the hospital half of a store failed; nothing of the record is left behind.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The source document cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The source document.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The source document cannot be watermarked.
    #[error("{path} cannot carry a watermark")]
    NotARecord {
        /// The source document.
        path: PathBuf,
        /// Why the watermark cannot be embedded.
        source: WatermarkError,
    },
    /// The source document is not a C-CDA document.
    #[error("{path} is not a C-CDA document")]
    NotCcda {
        /// The source document.
        path: PathBuf,
        /// Why its header does not parse.
        source: CcdaError,
    },
    /// A scratch file cannot be created, written or read.
    #[error("scratch file")]
    Scratch(#[source] std::io::Error),
    /// Encrypting the record or keeping its key failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The CSP refused or failed the put.
    #[error("CSP")]
    Csp(#[from] CspError),
    /// The hospital chain refused or failed `CreateRecord`.
    #[error("hospital chain refused or failed CreateRecord; nothing was stored")]
    Chain(#[from] ClientError),
}

/// Where a stored record is and how long each step took.
#[derive(Debug, Serialize)]
pub struct Stored {
    /// The record's id.
    pub record_id: String,
    /// The `CreateRecord` transaction.
    pub tx_id: String,
    /// The block holding `tx_id`.
    pub block_number: u64,
    /// Hash C: SHA3-256 of E', its key in the CSP.
    #[serde(with = "crate::digest::hash_c_hex")]
    pub hash_c: HashC,
    /// Bytes of E' in the CSP.
    pub size: u64,
    /// The hash of the document's content, as anchored.
    pub content_fingerprint: ContentFingerprint,
    /// The hash of the document's embedded watermark, as anchored.
    pub watermark_fingerprint: WatermarkFingerprint,
    /// How long each step took.
    pub timings_ms: StoreTimings,
}

/// How long each step of a store took, in ms.
#[derive(Debug, Serialize, Default)]
pub struct StoreTimings {
    /// Embedding the watermark.
    pub watermark: f64,
    /// Encrypting the marked document into E'.
    pub encrypt: f64,
    /// Putting E' to the CSP.
    pub csp_put: f64,
    /// Recording the record with `CreateRecord` on the hospital chain.
    pub create_record: f64,
}

/// What the doctor stores: whose record, under which id, from which file.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    /// The storing hospital's id.
    pub hospital_id: &'a str,
    /// The patient's treatment number at the hospital.
    pub treatment_number: &'a str,
    /// The record's id.
    pub record_id: &'a str,
    /// The C-CDA document to store.
    pub source: &'a Path,
    /// The patient's password at the hospital.
    pub password: &'a Zeroizing<String>,
}

/// Stores the record at the hospital whose doctor `client` is connected as.
pub async fn store_record(
    request: &StoreRequest<'_>,
    keys: &HospitalKeys,
    csp: &Csp,
    client: &HospitalClient,
) -> Result<Stored, StoreError> {
    Ok(store_keeping_ciphertext(request, keys, csp, client, &Quiet)
        .await?
        .0)
}

/// [`store_record`], also returning E' (rewound) for certification.
pub(crate) async fn store_keeping_ciphertext(
    request: &StoreRequest<'_>,
    keys: &HospitalKeys,
    csp: &Csp,
    client: &HospitalClient,
    observer: &dyn Observer,
) -> Result<(Stored, File), StoreError> {
    let source = request.source;
    let read = |error| StoreError::Read {
        path: source.to_path_buf(),
        source: error,
    };
    let mut input = BufReader::new(File::open(source).map_err(read)?);
    medcert_ccda::parse_header(&mut input).map_err(|e| match e {
        CcdaError::Io(error) => read(error),
        error => StoreError::NotCcda {
            path: source.to_path_buf(),
            source: error,
        },
    })?;
    input.seek(SeekFrom::Start(0)).map_err(read)?;

    let started = Instant::now();
    let mut marked = tempfile::tempfile().map_err(StoreError::Scratch)?;
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mark = Mark {
        hospital_id: request.hospital_id,
        record_id: request.record_id,
        issued_at,
    };
    let embedded = embed_or_anchor(&mut input, &mut marked, &mark, keys.watermark_key()).map_err(
        |e| match e {
            WatermarkError::Io(error) => read(error),
            error => StoreError::NotARecord {
                path: source.to_path_buf(),
                source: error,
            },
        },
    )?;
    let watermark_ms = ms(started);
    let fingerprints = Fingerprints {
        content: ContentFingerprint(embedded.content_fingerprint),
        watermark: WatermarkFingerprint(embedded.watermark_fingerprint),
    };
    let (mut stored, encrypted) =
        store_marked(request, marked, &fingerprints, keys, csp, client, observer).await?;
    stored.timings_ms.watermark = watermark_ms;
    Ok((stored, encrypted))
}

/// Encrypts an already marked document under a fresh DEK, puts E' to the CSP and records
/// it with `CreateRecord`; the DEK goes to the key store last. Returns E' rewound.
pub(crate) async fn store_marked(
    request: &StoreRequest<'_>,
    mut marked: File,
    fingerprints: &Fingerprints,
    keys: &HospitalKeys,
    csp: &Csp,
    client: &HospitalClient,
    observer: &dyn Observer,
) -> Result<(Stored, File), StoreError> {
    let started = Instant::now();
    marked
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::Scratch)?;
    let dek = Dek::generate();
    let aad = RecordAad {
        record_id: request.record_id,
        hospital_id: request.hospital_id,
    };
    let mut encrypted = tempfile::tempfile().map_err(StoreError::Scratch)?;
    let hash_c = encrypt_stream(&dek, &aad, BufReader::new(&marked), &mut encrypted)?;
    let mut timings = StoreTimings {
        encrypt: ms(started),
        ..StoreTimings::default()
    };

    let started = Instant::now();
    let length = encrypted
        .seek(SeekFrom::End(0))
        .map_err(StoreError::Scratch)?;
    encrypted
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::Scratch)?;
    let upload = encrypted.try_clone().map_err(StoreError::Scratch)?;
    let upload = Observed::new(
        tokio::fs::File::from_std(upload),
        observer.step("CSP put", Some(length)),
    );
    let size = csp.put(hash_c.as_bytes(), upload).await?;
    timings.csp_put = ms(started);

    let started = Instant::now();
    let args = args::CreateRecord {
        treatment_number: request.treatment_number.to_owned(),
        record_id: request.record_id.to_owned(),
        hash_c: *hash_c.as_bytes(),
        size,
        content_fingerprint: fingerprints.content.0,
        watermark_fingerprint: fingerprints.watermark.0,
    };
    let committed = client
        .create_record(&args, request.password.as_bytes())
        .await;
    let committed = match committed {
        Ok(committed) => committed,
        Err(e) => {
            // The ledger has no record, so the object would be an orphan.
            if let Err(undo) = csp.delete(hash_c.as_bytes()).await {
                tracing::warn!(error = %undo, "could not remove the CSP object of a failed store");
            }
            return Err(e.into());
        }
    };
    timings.create_record = ms(started);
    keys.key_store.put(request.record_id, &dek)?;
    encrypted
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::Scratch)?;
    let stored = Stored {
        record_id: request.record_id.to_string(),
        tx_id: committed.tx_id,
        block_number: committed.block_number,
        hash_c,
        size,
        content_fingerprint: fingerprints.content,
        watermark_fingerprint: fingerprints.watermark,
        timings_ms: timings,
    };
    Ok((stored, encrypted))
}

/// A doctor storing a visit's record.
#[derive(Debug, Clone, Copy)]
pub struct StoreFlowRequest<'a> {
    /// The hospital storing the record.
    pub hospital: &'a str,
    /// The hospital's doctor (0-based) who stores the record.
    pub doctor: usize,
    /// The patient's treatment number at the hospital.
    pub treatment_number: &'a str,
    /// A fresh id is chosen when `None`.
    pub record_id: Option<&'a str>,
    /// The C-CDA document.
    pub source: &'a Path,
    /// The patient's password at the hospital.
    pub password: &'a Zeroizing<String>,
    /// At the patient's request, certify the record for this patient's wallet.
    pub certify_for: Option<&'a str>,
}

/// A stored (and perhaps certified) record.
#[derive(Debug, Serialize)]
pub struct StoreReport {
    /// The hospital's id.
    pub hospital: String,
    /// The patient's treatment number at the hospital.
    pub treatment_number: String,
    /// Where the record is stored and how long each step took.
    #[serde(flatten)]
    pub stored: Stored,
    /// The certificate issued; `None` unless certification was asked for.
    pub certificate: Option<Certified>,
}

/// Stores a record at the hospital and, when asked, certifies it. When certification
/// fails after the record is on the hospital chain, the IPFS copy is unpinned and the
/// error ([`FlowError::CertifyAfterStore`]) says the record stands.
pub async fn store(
    network: &Network,
    patients_dir: &Path,
    request: &StoreFlowRequest<'_>,
    observer: &dyn Observer,
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
    let keys = HospitalKeys::of(network, hospital)?;
    let csp = csp(network)?;
    let client = hospital_client(network, hospital, Actor::Doctor(request.doctor)).await?;
    let store_request = StoreRequest {
        hospital_id: &hospital.id,
        treatment_number: request.treatment_number,
        record_id: &record_id,
        source: request.source,
        password: request.password,
    };
    let (stored, ciphertext) =
        store_keeping_ciphertext(&store_request, &keys, &csp, &client, observer).await?;
    let certificate = match wallet {
        None => None,
        Some(wallet) => {
            let fingerprints = Fingerprints {
                content: stored.content_fingerprint,
                watermark: stored.watermark_fingerprint,
            };
            let certified = async {
                let dek = keys.key_store.get(&record_id)?;
                let sealed = Sealed {
                    record_id: &record_id,
                    fingerprints: &fingerprints,
                    dek: &dek,
                    ciphertext,
                };
                certify_ciphertext(network, hospital, &wallet, sealed, observer).await
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

/// The smallest generated document that carries a watermark.
pub const MIN_GENERATED_SIZE: u64 = 4_096;

/// A doctor creating a visit's record: a C-CDA document generated for the patient
/// (medcert-ccda), then stored like any other.
#[derive(Debug, Clone, Copy)]
pub struct CreateRequest<'a> {
    /// The hospital creating the record.
    pub hospital: &'a str,
    /// The hospital's doctor (0-based) who creates the record.
    pub doctor: usize,
    /// The patient's treatment number at the hospital.
    pub treatment_number: &'a str,
    /// A fresh id is chosen when `None`.
    pub record_id: Option<&'a str>,
    /// The patient's password at the hospital.
    pub password: &'a Zeroizing<String>,
    /// Size of the generated document in bytes, at least [`MIN_GENERATED_SIZE`].
    pub size: u64,
    /// At the patient's request, certify the record for this patient's wallet.
    pub certify_for: Option<&'a str>,
    /// Also keep the generated (unmarked) document here.
    pub keep: Option<&'a Path>,
}

/// Generates the record and stores it (see [`store`]).
pub async fn create_record(
    network: &Network,
    patients_dir: &Path,
    request: &CreateRequest<'_>,
    observer: &dyn Observer,
) -> Result<StoreReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    if request.size < MIN_GENERATED_SIZE {
        return Err(FlowError::RecordTooSmall {
            size: request.size,
            minimum: MIN_GENERATED_SIZE,
        });
    }
    let scratch = scratch_dir()?;
    let path = scratch.path().join("record.xml");
    let config = medcert_ccda::GeneratorConfig {
        seed: rand::random(),
        target_size: request.size,
        patient_id: request.treatment_number.to_owned(),
        hospital: hospital.id.clone(),
    };
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| FlowError::Write { path, source }
    };
    let file = File::create(&path).map_err(write(&path))?;
    medcert_ccda::generate(&config, file).map_err(write(&path))?;
    if let Some(keep) = request.keep {
        std::fs::copy(&path, keep).map_err(write(keep))?;
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
    store(network, patients_dir, &store_request, observer).await
}
