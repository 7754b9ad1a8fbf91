//! The hospital half of the Store flow (DESIGN.md, "Flows"): watermark → encrypt with a
//! fresh DEK → CSP put → HB `CreateRecord` → hospital key store `put`. A step that fails
//! undoes the ones before it, so a failed store leaves no orphan object or key.
//!
//! [`crate::records`] adds the rest of the flow (certification) on top.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medcert_ccda::CcdaError;
use medcert_crypto::{CryptoError, Dek, RecordAad, encrypt_stream};
use medcert_csp::{Csp, CspError};
use medcert_fabric::Contract;
use medcert_watermark::{Mark, WatermarkError, embed};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::hospital_keys::HospitalKeys;
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {reason}; check the path")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path} cannot carry a watermark: {reason}; give a C-CDA XML document")]
    NotARecord {
        path: PathBuf,
        reason: WatermarkError,
    },
    #[error("{path} is not a C-CDA document: {reason}; give an HL7 C-CDA XML file")]
    NotCcda { path: PathBuf, reason: CcdaError },
    #[error("scratch file: {0}")]
    Scratch(std::io::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("CSP: {0}")]
    Csp(#[from] CspError),
    #[error("hospital chain refused or failed CreateRecord: {0}; nothing was stored")]
    Fabric(#[from] medcert_fabric::Error),
}

/// Where a stored record is and how long each step took.
#[derive(Debug, Serialize)]
pub struct Stored {
    pub record_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub hash_c: String,
    pub size: u64,
    pub content_fingerprint: String,
    pub watermark_fingerprint: String,
    pub timings_ms: StoreTimings,
}

#[derive(Debug, Serialize, Default)]
pub struct StoreTimings {
    pub watermark: f64,
    pub encrypt: f64,
    pub csp_put: f64,
    pub create_record: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// What the doctor stores: whose record, under which id, from which file.
pub struct StoreRequest<'a> {
    pub hospital_id: &'a str,
    pub treatment_number: &'a str,
    pub record_id: &'a str,
    pub source: &'a Path,
    pub password: &'a Zeroizing<String>,
}

/// Stores the record at the hospital whose doctor `contract` is connected as.
pub async fn store_record(
    request: &StoreRequest<'_>,
    keys: &HospitalKeys,
    csp: &Csp,
    contract: &Contract,
) -> Result<Stored, StoreError> {
    Ok(
        store_keeping_ciphertext(request, keys, csp, contract, &Progress::hidden())
            .await?
            .0,
    )
}

/// [`store_record`], also returning E' (rewound) for certification.
pub(crate) async fn store_keeping_ciphertext(
    request: &StoreRequest<'_>,
    keys: &HospitalKeys,
    csp: &Csp,
    contract: &Contract,
    progress: &Progress,
) -> Result<(Stored, File), StoreError> {
    let source = request.source;
    let read = |reason| StoreError::Read {
        path: source.to_path_buf(),
        reason,
    };
    let mut input = BufReader::new(File::open(source).map_err(read)?);
    medcert_ccda::parse_header(&mut input).map_err(|e| match e {
        CcdaError::Io(reason) => read(reason),
        reason => StoreError::NotCcda {
            path: source.to_path_buf(),
            reason,
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
    let embedded =
        embed(&mut input, &mut marked, &mark, keys.watermark_key()).map_err(|e| match e {
            WatermarkError::Io(reason) => read(reason),
            reason => StoreError::NotARecord {
                path: source.to_path_buf(),
                reason,
            },
        })?;
    let watermark_ms = ms(started);
    let fingerprints = Fingerprints {
        content: embedded.content_fingerprint,
        watermark: embedded.watermark_fingerprint,
    };
    let (mut stored, encrypted) = store_marked(
        request,
        marked,
        &fingerprints,
        keys,
        csp,
        contract,
        progress,
    )
    .await?;
    stored.timings_ms.watermark = watermark_ms;
    Ok((stored, encrypted))
}

/// A record's fingerprints, as anchored on both chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprints {
    pub content: [u8; 32],
    pub watermark: [u8; 32],
}

/// Encrypts an already marked document under a fresh DEK, puts E' to the CSP and records
/// it with `CreateRecord`; the DEK goes to the key store last. Returns E' rewound.
pub(crate) async fn store_marked(
    request: &StoreRequest<'_>,
    mut marked: File,
    fingerprints: &Fingerprints,
    keys: &HospitalKeys,
    csp: &Csp,
    contract: &Contract,
    progress: &Progress,
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
    let bar = progress.bytes(length, "CSP put");
    let size = csp
        .put(
            hash_c.as_bytes(),
            bar.wrap_async_read(tokio::fs::File::from_std(upload)),
        )
        .await;
    bar.finish_and_clear();
    let size = size?;
    timings.csp_put = ms(started);

    let started = Instant::now();
    let hash_c_hex = hex::encode(hash_c.as_bytes());
    let content_fingerprint = hex::encode(fingerprints.content);
    let watermark_fingerprint = hex::encode(fingerprints.watermark);
    let size_arg = size.to_string();
    let committed = contract
        .new_proposal("CreateRecord")
        .args([
            request.treatment_number,
            request.record_id,
            hash_c_hex.as_str(),
            size_arg.as_str(),
            content_fingerprint.as_str(),
            watermark_fingerprint.as_str(),
        ])
        .transient("password", request.password.as_bytes().to_vec())
        .submit()
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
        hash_c: hash_c_hex,
        size,
        content_fingerprint,
        watermark_fingerprint,
        timings_ms: timings,
    };
    Ok((stored, encrypted))
}
