//! The patient's deletion (DESIGN.md, "Flows", Delete): the patient signs (with medcert's
//! wallet or another one, [`SignatureSource`]) → HB `DeleteRecord` leaves a tombstone → the
//! hospital deletes the CSP object by Hash C and its key service, shown the committed
//! deletion, shreds the record's key.

use std::path::{Path, PathBuf};
use std::time::Instant;

use medcert_csp::CspError;
use medcert_eip712::Deletion;
use medcert_hospital_api::{RecordState, args};
use medcert_key_service::Shredded;
use medcert_network::{Hospital, Network};
use serde::{Deserialize, Serialize};

use crate::connect::{Actor, csp, hospital_client, key_service};
use crate::digest::HashC;
use crate::error::FlowError;
use crate::ids::check_identifier;
use crate::ms;
use crate::query::record_state;
use crate::signing::{SignatureSource, Signed, check_given, same_field};
use crate::wallet::PatientWallet;

/// A patient's deletion of a record at a hospital.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    /// The patient's wallet name.
    pub patient: &'a str,
    /// The hospital holding the record.
    pub hospital: &'a str,
    /// The record's id.
    pub record_id: &'a str,
    /// Who submits the patient's signed request on the hospital chain and has the key
    /// service shred the record's key (a doctor: the service serves doctors).
    pub submitter: Actor,
}

/// What happened to one copy of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// Removed by this run.
    Removed,
    /// Already gone (a re-run finishing an earlier deletion).
    AlreadyAbsent,
    /// The record was deleted on the chain by an earlier run whose note of Hash C is
    /// lost, so the CSP object cannot be named.
    Unknown,
}

/// The deletion on the chain and the cleanup of every copy the hospital held.
#[derive(Debug, Serialize)]
pub struct DeleteReport {
    /// The hospital's id.
    pub hospital: String,
    /// The record's id.
    pub record_id: String,
    /// `None` when an earlier run had already deleted the record on the chain.
    pub tx_id: Option<String>,
    /// The block holding `tx_id`; `None` with it.
    pub block_number: Option<u64>,
    /// The transaction that deleted the record, in this run or an earlier one.
    pub deleted_tx: String,
    /// The Ethereum address of the patient who signed the deletion.
    pub deleted_by: String,
    /// Hash C, naming the record's CSP object; `None` when the note of it is lost.
    #[serde(serialize_with = "crate::digest::option_hash_c_hex::serialize")]
    pub hash_c: Option<HashC>,
    /// What happened to the record's CSP object.
    pub csp_object: Cleanup,
    /// What happened to the record's key in the hospital's key service: destroyed by
    /// this run, or already gone.
    pub hospital_key: Cleanup,
    /// Time to delete the record on the hospital chain, in milliseconds.
    pub delete_record_ms: f64,
    /// Time to delete the CSP object and shred the key, in milliseconds.
    pub cleanup_ms: f64,
}

/// The hospital's note of a deletion in progress, so a re-run can finish the cleanup
/// after `DeleteRecord` has removed Hash C from world state. It holds no secret.
#[derive(Debug, Serialize, Deserialize)]
struct PendingDeletion {
    record_id: String,
    #[serde(with = "crate::digest::hash_c_hex")]
    hash_c: HashC,
}

/// Where the notes of `hospital`'s deletions in progress are kept in the run directory.
pub fn pending_deletions_dir(run_dir: &Path, hospital: &str) -> PathBuf {
    run_dir.join("pending-deletions").join(hospital)
}

fn pending_path(network: &Network, hospital: &Hospital, record_id: &str) -> PathBuf {
    use sha3::{Digest, Sha3_256};
    pending_deletions_dir(&network.run_dir, &hospital.id).join(format!(
        "{}.json",
        hex::encode(Sha3_256::digest(record_id.as_bytes()))
    ))
}

/// What the chain says of the deletion.
struct OnChain {
    tx_id: Option<String>,
    block_number: Option<u64>,
    deleted_tx: String,
    deleted_by: String,
    hash_c: Option<HashC>,
}

/// The patient's wallet signs the deletion request, the hospital chain deletes the record
/// (leaving a tombstone), then the hospital deletes the CSP object by Hash C and its key
/// service shreds the key for the committed deletion. Running it again after a failure
/// part-way finishes the cleanup.
pub async fn delete_record(
    network: &Network,
    patients_dir: &Path,
    request: &DeleteRequest<'_>,
) -> Result<DeleteReport, FlowError> {
    delete_record_with(network, patients_dir, request, SignatureSource::Wallet)
        .await
        .map(Signed::signed_by_wallet)
}

/// [`delete_record`] with the patient's signature from `signature`: for
/// [`SignatureSource::TypedDataOnly`], the deletion request's typed data once the record
/// is found active; for [`SignatureSource::Given`], a request for this hospital's channel
/// and this record, signed by the patient.
pub async fn delete_record_with(
    network: &Network,
    patients_dir: &Path,
    request: &DeleteRequest<'_>,
    signature: SignatureSource<'_>,
) -> Result<Signed<DeleteReport>, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    check_identifier("record id", request.record_id)?;
    let wallet = PatientWallet::open(patients_dir, request.patient)?;
    let keys = key_service(hospital, request.submitter).await?;
    let csp = csp(network)?;
    let client = hospital_client(network, hospital, request.submitter).await?;
    let pending = pending_path(network, hospital, request.record_id);

    let started = Instant::now();
    let on_chain = match record_state(&client, &hospital.channel, request.record_id).await? {
        RecordState::Active { record } => {
            let hash_c = HashC::from_bytes(record.hash_c);
            let (nonce, signature) = match signature {
                SignatureSource::Wallet => {
                    let nonce: u64 = rand::random();
                    let signature = wallet.patient_signer()?.sign_deletion(
                        &hospital.channel,
                        request.record_id,
                        nonce,
                    );
                    (nonce, signature)
                }
                SignatureSource::TypedDataOnly => {
                    let deletion = Deletion {
                        channel: hospital.channel.clone(),
                        record_id: request.record_id.to_owned(),
                        nonce: rand::random(),
                    };
                    return Ok(Signed::ask(&wallet, deletion.typed_data()));
                }
                SignatureSource::Given {
                    typed_data,
                    signature,
                } => {
                    let deletion =
                        Deletion::from_typed_data(typed_data).map_err(FlowError::TypedData)?;
                    same_field("channel", hospital.channel.as_str(), &deletion.channel)?;
                    same_field("recordId", request.record_id, &deletion.record_id)?;
                    check_given(&wallet, &deletion.digest(), &signature)?;
                    (deletion.nonce, signature)
                }
            };
            write_pending(
                &pending,
                &PendingDeletion {
                    record_id: record.record_id.clone(),
                    hash_c,
                },
            )?;
            let args = args::DeleteRecord {
                record_id: request.record_id.to_owned(),
                nonce,
                patient_signature: signature.to_vec(),
            };
            let committed = match client.delete_record(&args).await {
                Ok(committed) => committed,
                Err(e) => {
                    let _ = std::fs::remove_file(&pending);
                    return Err(FlowError::chain(&hospital.channel, e));
                }
            };
            OnChain {
                tx_id: Some(committed.tx_id.clone()),
                block_number: Some(committed.block_number),
                deleted_tx: committed.tx_id,
                deleted_by: wallet.info().address.clone(),
                hash_c: Some(hash_c),
            }
        }
        RecordState::Deleted { tombstone } => OnChain {
            tx_id: None,
            block_number: None,
            deleted_tx: tombstone.deleted_tx,
            deleted_by: tombstone.deleted_by,
            hash_c: read_pending(&pending)?.map(|p| p.hash_c),
        },
    };
    let delete_record_ms = ms(started);

    let started = Instant::now();
    let csp_object = match &on_chain.hash_c {
        None => Cleanup::Unknown,
        Some(hash_c) => match csp.delete(hash_c.as_bytes()).await {
            Ok(()) => Cleanup::Removed,
            Err(CspError::NotFound { .. }) => Cleanup::AlreadyAbsent,
            Err(e) => return Err(e.into()),
        },
    };
    let hospital_key = match keys
        .shred_key(request.record_id, &on_chain.deleted_tx)
        .await
        .map_err(|source| FlowError::key_service(&hospital.id, source))?
    {
        Shredded::Destroyed => Cleanup::Removed,
        Shredded::AlreadyGone => Cleanup::AlreadyAbsent,
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
    Ok(Signed::Done(DeleteReport {
        hospital: hospital.id.clone(),
        record_id: request.record_id.to_owned(),
        tx_id: on_chain.tx_id,
        block_number: on_chain.block_number,
        deleted_tx: on_chain.deleted_tx,
        deleted_by: on_chain.deleted_by,
        hash_c: on_chain.hash_c,
        csp_object,
        hospital_key,
        delete_record_ms,
        cleanup_ms: ms(started),
    }))
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
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| FlowError::MalformedJson {
                    what: "pending deletion note",
                    from: path.display().to_string(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FlowError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                hash_c: HashC::from_bytes([0xab; 32]),
            },
        )
        .unwrap();
        let read = read_pending(&path).unwrap().unwrap();
        assert_eq!(read.hash_c, HashC::from_bytes([0xab; 32]));
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains(&"ab".repeat(32)), "{written}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
