//! The Store flow (DESIGN.md, "Flows" and "Trust"): the key service checks the
//! patient's password and answers a ticket → watermark (the key service signs it) →
//! encrypt with a fresh DEK → CSP put → the DEK deposited in the key service → HB
//! `CreateRecord` with the ticket; then, at the patient's request, certification
//! ([`crate::certify`]). The doctor holds the DEK in memory for this flow only. A step
//! that fails undoes the ones before it, so a failed store leaves no orphan object or
//! key; after an ambiguous `CreateRecord` the chain is asked what happened first.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medcert_ccda::CcdaError;
use medcert_crypto::{CryptoError, Dek, RecordAad, encrypt_stream};
use medcert_csp::{Csp, CspError};
use medcert_hospital_api::ticket::{SignedTicket, Verdict};
use medcert_hospital_api::{ClientError, Function, HospitalClient, Record, RecordState, args};
use medcert_key_service::{KeyServiceClient, KeyServiceError};
use medcert_network::Network;
use medcert_watermark::{Mark, TooSmall, WatermarkError, prepare};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::certify::{Certified, Sealed, certify_ciphertext};
use crate::connect::{Actor, contract_address, csp, hospital_client, key_service};
use crate::error::{FlowError, chain_says};
use crate::gate::{GateError, WrongPassword, expires_soon, gated, rejected};
use crate::ids::{check_identifier, check_password, check_record_id, new_id};
use crate::scratch_dir;
use crate::wallet::PatientWallet;

use crate::digest::{ContentFingerprint, Fingerprints, HashC, WatermarkFingerprint};
use crate::ms;
use crate::observer::{Observed, Observer, Quiet};

/// How often, and how far apart, the chain is asked whether a `CreateRecord` whose answer
/// was lost committed after all: a submitted transaction commits within a few blocks.
const CONFIRM_TRIES: u32 = 6;
const CONFIRM_INTERVAL: Duration = Duration::from_secs(2);

/// Why the hospital half of a store failed; nothing of the record is left behind, except
/// as [`StoreError::Unconfirmed`] says.
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
    /// Encrypting the record failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The CSP refused or failed the put.
    #[error("CSP")]
    Csp(#[from] CspError),
    /// The hospital's key service refused or failed a call (the password check, the
    /// watermark signature, keeping the record's key), or cannot be reached.
    #[error("the hospital's key service; nothing was stored")]
    KeyService(#[from] KeyServiceError),
    /// The patient's password was wrong; the chain recorded the failed attempt.
    #[error(transparent)]
    WrongPassword(#[from] WrongPassword),
    /// The hospital chain refused or failed `CreateRecord`.
    #[error("hospital chain refused or failed CreateRecord; nothing was stored")]
    Chain(#[source] ClientError),
    /// `CreateRecord` failed and the chain could not be asked whether it committed after
    /// all, so the CSP object and the deposited key were kept.
    #[error(
        "CreateRecord of record {record_id} failed and whether it committed is unknown; its \
         CSP object and key were kept: `medcert doctor query` shows whether it stands"
    )]
    Unconfirmed {
        /// The record's id.
        record_id: String,
        /// Why `CreateRecord` failed.
        source: ClientError,
    },
}

impl From<GateError> for StoreError {
    fn from(error: GateError) -> Self {
        match error {
            GateError::WrongPassword(wrong) => StoreError::WrongPassword(wrong),
            GateError::Chain(source) => StoreError::Chain(source),
        }
    }
}

/// Where a stored record is and how long each step took.
#[derive(Debug, Serialize)]
pub struct Stored {
    /// The record's id.
    pub record_id: String,
    /// The `CreateRecord` transaction.
    pub tx_id: String,
    /// The block holding `tx_id`; `None` when the answer to `CreateRecord` was lost and
    /// the chain, asked afterwards, showed the record.
    pub block_number: Option<u64>,
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
    /// The key service checking the patient's password.
    pub password_check: f64,
    /// Embedding the watermark, the key service's signature included.
    pub watermark: f64,
    /// Encrypting the marked document into E'.
    pub encrypt: f64,
    /// Putting E' to the CSP.
    pub csp_put: f64,
    /// Depositing the record's key in the key service.
    pub deposit_key: f64,
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
    /// The patient's password at the hospital, which its key service checks.
    pub password: &'a Zeroizing<String>,
}

/// The hospital's services a store goes through, all as one doctor.
#[derive(Clone, Copy)]
pub(crate) struct Services<'a> {
    pub keys: &'a KeyServiceClient,
    pub csp: &'a Csp,
    pub chain: &'a HospitalClient,
}

/// Stores the record at the hospital whose doctor `keys` and `client` are connected as.
pub async fn store_record(
    request: &StoreRequest<'_>,
    keys: &KeyServiceClient,
    csp: &Csp,
    client: &HospitalClient,
) -> Result<Stored, StoreError> {
    let services = Services {
        keys,
        csp,
        chain: client,
    };
    Ok(store_keeping_ciphertext(request, services, &Quiet).await?.0)
}

/// [`store_record`], also returning E' (rewound) for certification.
pub(crate) async fn store_keeping_ciphertext(
    request: &StoreRequest<'_>,
    services: Services<'_>,
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

    // The password first: a wrong one costs no watermark, encryption or upload.
    let started = Instant::now();
    let ticket = create_ticket(request, services).await?;
    let password_check_ms = ms(started);

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
    let not_a_record = |e| match e {
        WatermarkError::Io(error) => read(error),
        error => StoreError::NotARecord {
            path: source.to_path_buf(),
            source: error,
        },
    };
    let prepared = prepare(&mut input, &mark).map_err(not_a_record)?;
    let signature = services.keys.sign_watermark(prepared.unsigned()).await?;
    let embedded = prepared
        .embed(&mut input, &mut marked, signature, TooSmall::WriteUnchanged)
        .map_err(not_a_record)?;
    let watermark_ms = ms(started);
    let fingerprints = Fingerprints {
        content: ContentFingerprint(embedded.content_fingerprint),
        watermark: WatermarkFingerprint(embedded.watermark_fingerprint),
    };
    let (mut stored, encrypted) =
        store_marked(request, marked, &fingerprints, ticket, services, observer).await?;
    stored.timings_ms.password_check = password_check_ms;
    stored.timings_ms.watermark = watermark_ms;
    Ok((stored, encrypted))
}

/// An accepted ticket for `CreateRecord` of the request's record. A rejected one is
/// submitted with `CreateRecord` all the same, so the chain records the failed attempt
/// (its other arguments are zero: the chain refuses before it reads them, and nothing
/// was prepared for a wrong password); then [`StoreError::WrongPassword`].
pub(crate) async fn create_ticket(
    request: &StoreRequest<'_>,
    services: Services<'_>,
) -> Result<SignedTicket, StoreError> {
    let ticket = services
        .keys
        .check_password(
            Function::CreateRecord,
            request.treatment_number,
            request.record_id,
            request.password.as_bytes(),
        )
        .await?;
    if ticket.ticket.verdict == Verdict::Accepted {
        return Ok(ticket);
    }
    let refused = services
        .chain
        .create_record(&args::CreateRecord {
            treatment_number: request.treatment_number.to_owned(),
            record_id: request.record_id.to_owned(),
            hash_c: [0; 32],
            size: 0,
            content_fingerprint: [0; 32],
            watermark_fingerprint: [0; 32],
            ticket: ticket.encode(),
        })
        .await;
    Err(rejected(&ticket, refused.map(|c| c.tx_id)).into())
}

/// Encrypts an already marked document under a fresh DEK, puts E' to the CSP, deposits
/// the DEK in the key service and records the record with `CreateRecord` and `ticket`
/// (an accepted one for this record). Returns E' rewound.
pub(crate) async fn store_marked(
    request: &StoreRequest<'_>,
    mut marked: File,
    fingerprints: &Fingerprints,
    mut ticket: SignedTicket,
    services: Services<'_>,
    observer: &dyn Observer,
) -> Result<(Stored, File), StoreError> {
    let started = Instant::now();
    marked
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::Scratch)?;
    // Dropped (and zeroized) when this flow ends: the key service keeps the only copy.
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
    // encrypt_stream hashed E' as it wrote it.
    let size = services.csp.put_hashed(hash_c.as_bytes(), upload).await?;
    timings.csp_put = ms(started);

    // The key is kept before the record exists, so a record never stands without one.
    let started = Instant::now();
    let undo = Undo {
        services,
        record_id: request.record_id,
        hash_c: &hash_c,
    };
    if let Err(e) = services
        .keys
        .deposit_key(request.record_id, request.treatment_number, &dek)
        .await
    {
        // The answer may be lost after the key was kept: abandon it too.
        undo.run().await;
        return Err(e.into());
    }
    drop(dek);
    timings.deposit_key = ms(started);

    let started = Instant::now();
    if expires_soon(&ticket) {
        // A long upload outlived the ticket: the password is checked again.
        ticket = match create_ticket(request, services).await {
            Ok(fresh) => fresh,
            Err(e) => {
                undo.run().await;
                return Err(e);
            }
        };
    }
    let args = args::CreateRecord {
        treatment_number: request.treatment_number.to_owned(),
        record_id: request.record_id.to_owned(),
        hash_c: *hash_c.as_bytes(),
        size,
        content_fingerprint: fingerprints.content.0,
        watermark_fingerprint: fingerprints.watermark.0,
        ticket: ticket.encode(),
    };
    let (tx_id, block_number) = match gated(&ticket, services.chain.create_record(&args).await) {
        Ok(committed) => (committed.tx_id, Some(committed.block_number)),
        Err(GateError::WrongPassword(wrong)) => {
            undo.run().await;
            return Err(wrong.into());
        }
        Err(GateError::Chain(error)) => match undo.confirm_or_run(&error).await {
            Ok(Some(record)) => (record.created_tx, None),
            Ok(None) => return Err(StoreError::Chain(error)),
            Err(()) => {
                return Err(StoreError::Unconfirmed {
                    record_id: request.record_id.to_owned(),
                    source: error,
                });
            }
        },
    };
    timings.create_record = ms(started);
    encrypted
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::Scratch)?;
    let stored = Stored {
        record_id: request.record_id.to_string(),
        tx_id,
        block_number,
        hash_c,
        size,
        content_fingerprint: fingerprints.content,
        watermark_fingerprint: fingerprints.watermark,
        timings_ms: timings,
    };
    Ok((stored, encrypted))
}

/// What a store that did not create its record undoes: the deposited key and the CSP
/// object.
struct Undo<'a> {
    services: Services<'a>,
    record_id: &'a str,
    hash_c: &'a HashC,
}

impl Undo<'_> {
    /// Abandons the key (the service drops it only if the chain has no such record) and
    /// deletes the CSP object; failures are logged, the store has failed already.
    async fn run(&self) {
        match self.services.keys.abandon_key(self.record_id).await {
            Ok(()) | Err(KeyServiceError::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, record = self.record_id, "could not abandon the key of a failed store");
            }
        }
        if let Err(e) = self.services.csp.delete(self.hash_c.as_bytes()).await {
            tracing::warn!(error = %e, "could not remove the CSP object of a failed store");
        }
    }

    /// After `CreateRecord` failed with `error`: the record, if the chain shows it was
    /// created after all (with this Hash C); else undoes the store and answers `None`.
    /// `Err` when the chain cannot tell, and nothing is undone.
    async fn confirm_or_run(&self, error: &ClientError) -> Result<Option<Record>, ()> {
        // A refusal at endorsement or at validation never commits; anything else may
        // still be ordered, so the chain is asked for a few blocks' time.
        let tries = if never_committed(error) {
            1
        } else {
            CONFIRM_TRIES
        };
        let get = args::GetRecord {
            record_id: self.record_id.to_owned(),
        };
        for attempt in 1..=tries {
            match self.services.chain.get_record(&get).await {
                Ok(RecordState::Active { record }) if record.hash_c == *self.hash_c.as_bytes() => {
                    return Ok(Some(record));
                }
                // Another record, or a deleted one, holds the id: ours was refused.
                Ok(_) => break,
                Err(e) if chain_says(&e, "unknown record") => {}
                Err(e) => {
                    tracing::warn!(error = %e, record = self.record_id, "cannot ask the chain whether CreateRecord committed");
                    return Err(());
                }
            }
            if attempt < tries {
                tokio::time::sleep(CONFIRM_INTERVAL).await;
            }
        }
        self.run().await;
        Ok(None)
    }
}

/// Whether a failed `CreateRecord` cannot have committed: the chaincode or the peers
/// refused it before ordering, or the peer invalidated it.
fn never_committed(error: &ClientError) -> bool {
    use medcert_fabric::Error;
    match error {
        ClientError::Fabric { source, .. } => match source {
            Error::Chaincode { .. } | Error::Refused { .. } | Error::NotCommitted { .. } => true,
            Error::Gateway { operation, .. } => *operation == "endorsement",
            _ => false,
        },
        ClientError::Answer { .. } => false,
    }
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
    /// The patient's password at the hospital, which its key service checks.
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
    let actor = Actor::Doctor(request.doctor);
    let keys = key_service(hospital, actor).await?;
    let csp = csp(network)?;
    let client = hospital_client(network, hospital, actor).await?;
    let services = Services {
        keys: &keys,
        csp: &csp,
        chain: &client,
    };
    let store_request = StoreRequest {
        hospital_id: &hospital.id,
        treatment_number: request.treatment_number,
        record_id: &record_id,
        source: request.source,
        password: request.password,
    };
    let (stored, ciphertext) = store_keeping_ciphertext(&store_request, services, observer).await?;
    let certificate = match wallet {
        None => None,
        Some(wallet) => {
            let fingerprints = Fingerprints {
                content: stored.content_fingerprint,
                watermark: stored.watermark_fingerprint,
            };
            let sealed = Sealed {
                record_id: &record_id,
                fingerprints: &fingerprints,
                ciphertext,
            };
            let certified =
                certify_ciphertext(network, hospital, &keys, &wallet, sealed, observer).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(source: medcert_fabric::Error) -> ClientError {
        ClientError::Fabric {
            function: Function::CreateRecord,
            source,
        }
    }

    #[test]
    fn only_a_create_refused_before_ordering_or_invalidated_is_undone_at_once() {
        let endorsement = failed(medcert_fabric::Error::Gateway {
            operation: "endorsement",
            code: tonic::Code::Aborted,
            message: "refused".into(),
            details: Vec::new(),
        });
        assert!(never_committed(&endorsement));
        // Lost after it was sent to the orderer: it may still commit.
        let commit_status = failed(medcert_fabric::Error::Gateway {
            operation: "commit status",
            code: tonic::Code::Unavailable,
            message: "connection reset".into(),
            details: Vec::new(),
        });
        assert!(!never_committed(&commit_status));
        assert!(!never_committed(&failed(
            medcert_fabric::Error::Incomplete("no answer")
        )));
    }
}
