//! A doctor's audited query of a record (`QueryRecord`, recorded on the hospital chain,
//! with the key service's password ticket) and, optionally, its retrieval: the key
//! service releases the record's key for that committed query → CSP get → decrypt →
//! watermark and fingerprint check. No committed query, no key.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_crypto::{Dek, RecordAad};
use medcert_hospital_api::{Function, HospitalClient, Record, RecordState, args};
use medcert_key_service::Access;
use medcert_network::{Hospital, Network};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::connect::{Actor, csp, hospital_client, key_service};
use crate::error::FlowError;
use crate::gate::gated;
use crate::ids::{check_identifier, check_password};
use crate::observer::Observer;
use crate::verify::{VerdictReport, VerifyReport, verify_file};
use crate::{ms, scratch_dir};

/// The record's state on `channel`'s hospital chain: active, or deleted.
pub async fn record_state(
    client: &HospitalClient,
    channel: &str,
    record_id: &str,
) -> Result<RecordState, FlowError> {
    let args = args::GetRecord {
        record_id: record_id.to_owned(),
    };
    client
        .get_record(&args)
        .await
        .map_err(|e| FlowError::chain(channel, e))
}

/// The record, which must not be deleted.
pub(crate) async fn active_record(
    client: &HospitalClient,
    channel: &str,
    record_id: &str,
) -> Result<Record, FlowError> {
    match record_state(client, channel, record_id).await? {
        RecordState::Active { record } => Ok(record),
        RecordState::Deleted { tombstone } => Err(FlowError::RecordDeleted {
            record_id: record_id.to_owned(),
            channel: channel.to_owned(),
            deleted_tx: tombstone.deleted_tx,
        }),
    }
}

/// A doctor's audited query of a record, optionally retrieving the document.
#[derive(Debug, Clone, Copy)]
pub struct QueryRequest<'a> {
    /// The hospital holding the record.
    pub hospital: &'a str,
    /// The hospital's doctor (0-based) who queries.
    pub doctor: usize,
    /// The patient's treatment number at the hospital.
    pub treatment_number: &'a str,
    /// The record's id.
    pub record_id: &'a str,
    /// The patient's password at the hospital, which its key service checks.
    pub password: &'a Zeroizing<String>,
    /// Where to write the decrypted document; `None` queries the chain only.
    pub out: Option<&'a Path>,
}

/// The record as the chain holds it, the audit's transaction, and what was retrieved.
#[derive(Debug, Serialize)]
pub struct QueryReport {
    /// The hospital's id.
    pub hospital: String,
    /// The record as the hospital chain answered it.
    pub record: Record,
    /// The audited query's transaction.
    pub tx_id: String,
    /// The block holding `tx_id`.
    pub block_number: u64,
    /// Time for the key service to check the password, in milliseconds.
    pub password_check_ms: f64,
    /// Time for the audited query on the hospital chain, in milliseconds.
    pub query_ms: f64,
    /// The document retrieved; `None` when only the chain was queried.
    pub retrieved: Option<Retrieved>,
}

/// A record fetched from the CSP, decrypted and checked.
#[derive(Debug, Serialize)]
pub struct Retrieved {
    /// Where the decrypted document was written.
    pub path: PathBuf,
    /// The decrypted document's size in bytes.
    pub bytes: u64,
    /// The verdict on the document's watermark and fingerprints.
    pub verification: VerifyReport,
    /// Whether the document's content fingerprint is the one anchored on the chain.
    pub fingerprint_matches: bool,
    /// Time for the key service to release the record's key, in milliseconds.
    pub release_key_ms: f64,
    /// Time to fetch the encrypted record from the CSP, in milliseconds.
    pub csp_get_ms: f64,
    /// Time to decrypt it, in milliseconds.
    pub decrypt_ms: f64,
    /// Time to verify the document, in milliseconds.
    pub verify_ms: f64,
}

impl Retrieved {
    /// Whether the document has the anchored content fingerprint and carries an
    /// authentic mark, or no mark at all (a document too small for one is stored
    /// unmarked and relies on the anchored fingerprint).
    pub fn authentic(&self) -> bool {
        self.fingerprint_matches
            && matches!(
                self.verification.verdict,
                VerdictReport::Authentic { .. } | VerdictReport::Absent
            )
    }
}

/// The key service checks the password → `QueryRecord` with its ticket (audited on the
/// hospital chain; a wrong password is recorded there too, then refused), then, with
/// `out`, the key service releases the key for that committed query → CSP get → decrypt
/// → watermark and fingerprint check. The document is written all or nothing.
pub async fn query_record(
    network: &Network,
    request: &QueryRequest<'_>,
    observer: &dyn Observer,
) -> Result<QueryReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("treatment number", request.treatment_number)?;
    check_identifier("record id", request.record_id)?;
    check_password(request.password)?;
    let actor = Actor::Doctor(request.doctor);
    let keys = key_service(hospital, actor).await?;
    let client = hospital_client(network, hospital, actor).await?;
    let key_service_error = |source| FlowError::key_service(&hospital.id, source);

    let started = Instant::now();
    let ticket = keys
        .check_password(
            Function::QueryRecord,
            request.treatment_number,
            request.record_id,
            request.password.as_bytes(),
        )
        .await
        .map_err(key_service_error)?;
    let password_check_ms = ms(started);

    let started = Instant::now();
    let args = args::QueryRecord {
        treatment_number: request.treatment_number.to_owned(),
        record_id: request.record_id.to_owned(),
        ticket: ticket.encode(),
    };
    let committed =
        gated(&ticket, client.query_record(&args).await).map_err(|e| e.on(&hospital.channel))?;
    let query_ms = ms(started);
    let record = committed.answer;
    let retrieved = match request.out {
        Some(out) => {
            let started = Instant::now();
            let dek = keys
                .release_key(Access::Query {
                    tx_id: committed.tx_id.clone(),
                })
                .await
                .map_err(key_service_error)?;
            let released = (dek, ms(started));
            Some(retrieve(network, hospital, released, &record, out, observer).await?)
        }
        None => None,
    };
    Ok(QueryReport {
        hospital: hospital.id.clone(),
        record,
        tx_id: committed.tx_id,
        block_number: committed.block_number,
        password_check_ms,
        query_ms,
        retrieved,
    })
}

/// CSP get → decrypt with the released key (dropped, and zeroized, when done; released
/// in `release_key_ms`) → verify.
async fn retrieve(
    network: &Network,
    hospital: &Hospital,
    (dek, release_key_ms): (Dek, f64),
    record: &Record,
    out: &Path,
    observer: &dyn Observer,
) -> Result<Retrieved, FlowError> {
    let hash_c = record.hash_c;
    let scratch = scratch_dir()?;
    let encrypted = scratch.path().join("record.enc");
    let started = Instant::now();
    {
        let _step = observer.step("CSP get", None);
        csp(network)?.get_to_file(&hash_c, &encrypted).await?;
    }
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
    drop(dek);
    let decrypt_ms = ms(started);

    let started = Instant::now();
    let verification = verify_file(network, out).await?;
    let fingerprint_matches = verification.content_fingerprint == Some(record.content_fingerprint);
    Ok(Retrieved {
        path: out.to_owned(),
        bytes,
        verification,
        fingerprint_matches,
        release_key_ms,
        csp_get_ms,
        decrypt_ms,
        verify_ms: ms(started),
    })
}
