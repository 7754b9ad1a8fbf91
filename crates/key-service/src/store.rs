//! The service's durable state, in its state directory (0700, every file 0600):
//!
//! | path | what |
//! |---|---|
//! | `keys/` | the X25519 key pair and each record's wrapped key ([`KeyStore`]) |
//! | `watermark.ed25519`, `ticket.ed25519` | the watermark and ticket signing keys' seeds |
//! | `patients/<SHA-256 of the treatment number>.json` | a verifier, its failure count, the lock |
//! | `records/<SHA-256 of the record id>.json` | whose record a deposited key is, who deposited it |
//! | `tickets/<nonce>.json` | an issued ticket, and whether it released a key |
//! | `tls/` | the service's TLS CA and server certificate ([`crate::tls`]) |
//!
//! Every write goes to a temporary file that is synced, renamed into place, and then the
//! directory is synced: a crash leaves the old file or the new one, never a part, and a
//! write that returned is on disk. File names are hashes, so identifiers need no escaping
//! and do not show in a listing.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use medcert_crypto::{
    CryptoError, Dek, KeyBinding, KeyStore, PasswordVerifier, PublicKey, WrappedKey,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How long an issued ticket is kept: well past its lifetime on the chain (five
/// minutes), so a key is released for any transaction that could still carry it.
pub(crate) const TICKET_RETENTION_MS: i64 = 60 * 60 * 1000;
const TEMP_PREFIX: &str = ".partial-";

/// Why the state directory cannot be used. Messages name files, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory of the state cannot be read or written.
    #[error("state file {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A state file does not parse.
    #[error("state file {path} is malformed")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A state file parses but holds an impossible value.
    #[error("state file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key store failed.
    #[error("the key store")]
    Keys(#[from] CryptoError),
    /// The TLS certificates cannot be made.
    #[error("making the TLS certificates")]
    Certificate(#[from] rcgen::Error),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (and its parents) with mode 0700, and makes it 0700 if it existed.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_at(dir))
}

/// Writes `bytes` to `dir/name` atomically and durably, mode `mode` from creation (the
/// temporary file is created 0600 and only widened for a public file).
pub(crate) fn write_atomic(
    dir: &Path,
    name: impl AsRef<Path>,
    bytes: &[u8],
    mode: u32,
) -> Result<(), StoreError> {
    let path = dir.join(name);
    let write = || -> io::Result<()> {
        let mut partial = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)?;
        partial.write_all(bytes)?;
        if mode != 0o600 {
            partial
                .as_file()
                .set_permissions(fs::Permissions::from_mode(mode))?;
        }
        partial.as_file().sync_all()?;
        partial.persist(&path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(io_at(&path))
}

/// Removes `dir/name` durably; answers whether it was there.
fn remove_durably(dir: &Path, name: &str) -> Result<bool, StoreError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_at(&path)(e)),
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))?;
    Ok(true)
}

/// The file read whole, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Every JSON file of `dir`, parsed; leftovers of interrupted writes are removed.
fn read_all<T: DeserializeOwned>(dir: &Path) -> Result<Vec<(String, T)>, StoreError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            remove_durably(dir, &name)?;
            continue;
        }
        let path = entry.path();
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Malformed { path, source })?;
        entries.push((name, value));
    }
    Ok(entries)
}

fn json_name(id: &str) -> String {
    format!("{}.json", hex::encode(Sha256::digest(id.as_bytes())))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state values serialize")
}

/// A seed file of 32 bytes, made on first use.
fn seed(dir: &Path, name: &str) -> Result<SigningKey, StoreError> {
    let path = dir.join(name);
    if let Some(bytes) = read_optional(&path)? {
        let seed: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Invalid {
                path: path.clone(),
                reason: "not a 32-byte seed",
            })?;
        return Ok(SigningKey::from_bytes(seed));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
    write_atomic(dir, name, seed.as_ref(), 0o600)?;
    Ok(SigningKey::from_bytes(&seed))
}

#[derive(Serialize, Deserialize)]
struct PatientFile {
    treatment_number: String,
    verifier: String,
    failures: u32,
    locked: bool,
}

struct Patient {
    verifier: PasswordVerifier,
    failures: u32,
    locked: bool,
}

/// Where a patient stands before a password check.
pub(crate) enum PatientStatus {
    /// Not enrolled.
    Unknown,
    /// Locked out.
    Locked,
    /// May try: the verifier to check against.
    Open(PasswordVerifier),
}

/// What a checked password did to the patient's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Right: the failures are reset.
    Accepted,
    /// Wrong: the `attempt`-th in a row of `limit` (the patient is locked at the limit).
    Rejected { attempt: u32, limit: u32 },
    /// The patient was locked while the password was being checked.
    Locked,
}

/// An issued ticket as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuedTicket {
    /// The gated function's name.
    pub(crate) function: String,
    pub(crate) treatment_number: String,
    pub(crate) record_id: String,
    /// Hex.
    pub(crate) doctor_cert_id: String,
    pub(crate) issued_at_ms: i64,
    /// Whether the verdict was accepted (only those can release a key).
    pub(crate) accepted: bool,
    /// Whether a key was released for it.
    pub(crate) redeemed: bool,
}

#[derive(Default)]
struct Tickets {
    by_nonce: HashMap<String, IssuedTicket>,
    pruned_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct RecordFile {
    record_id: String,
    treatment_number: String,
    /// The depositing doctor's cert id, hex.
    depositor: String,
}

/// Whose record a deposited key is, and who deposited it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordOwner {
    pub(crate) treatment_number: String,
    /// The depositing doctor's cert id, hex.
    pub(crate) depositor: String,
}

/// What a deposit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deposit {
    /// The key is now held.
    Stored,
    /// The same key was already held for the record and patient.
    AlreadyHeld,
    /// The record already holds another key, or is another patient's.
    Conflict(String),
}

/// See the module documentation.
pub(crate) struct Store {
    dir: PathBuf,
    keys: KeyStore,
    watermark: SigningKey,
    ticket: SigningKey,
    patients: Mutex<HashMap<String, Patient>>,
    tickets: Mutex<Tickets>,
    /// Serialises the two files of a record's deposit and removal.
    records: Mutex<()>,
}

const PATIENTS: &str = "patients";
const RECORDS: &str = "records";
const TICKETS: &str = "tickets";

impl Store {
    /// Opens the state in `dir`, creating what is missing (keys on first start).
    pub(crate) fn open(dir: &Path, now_ms: i64) -> Result<Self, StoreError> {
        private_dir(dir)?;
        for sub in [PATIENTS, RECORDS, TICKETS] {
            private_dir(&dir.join(sub))?;
        }
        let keys = KeyStore::open(&dir.join("keys"))?;
        let watermark = seed(dir, "watermark.ed25519")?;
        let ticket = seed(dir, "ticket.ed25519")?;
        let mut patients = HashMap::new();
        let patients_dir = dir.join(PATIENTS);
        for (name, file) in read_all::<PatientFile>(&patients_dir)? {
            let verifier =
                PasswordVerifier::from_phc(&file.verifier).map_err(|_| StoreError::Invalid {
                    path: patients_dir.join(&name),
                    reason: "not an Argon2id verifier",
                })?;
            patients.insert(
                file.treatment_number,
                Patient {
                    verifier,
                    failures: file.failures,
                    locked: file.locked,
                },
            );
        }
        let store = Self {
            dir: dir.to_owned(),
            keys,
            watermark,
            ticket,
            patients: Mutex::new(patients),
            tickets: Mutex::default(),
            records: Mutex::new(()),
        };
        let tickets_dir = dir.join(TICKETS);
        let mut tickets = Tickets::default();
        for (name, ticket) in read_all::<IssuedTicket>(&tickets_dir)? {
            if let Some(nonce) = name.strip_suffix(".json") {
                tickets.by_nonce.insert(nonce.to_owned(), ticket);
            }
        }
        store.prune(&mut tickets, now_ms)?;
        *store.tickets.lock().unwrap_or_else(|e| e.into_inner()) = tickets;
        Ok(store)
    }

    /// The hospital's X25519 public key.
    pub(crate) fn hospital_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The watermark signing key.
    pub(crate) fn watermark_key(&self) -> &SigningKey {
        &self.watermark
    }

    /// The ticket signing key.
    pub(crate) fn ticket_key(&self) -> &SigningKey {
        &self.ticket
    }

    fn patients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Patient>> {
        self.patients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save_patient(&self, treatment_number: &str, patient: &Patient) -> Result<(), StoreError> {
        let file = PatientFile {
            treatment_number: treatment_number.to_owned(),
            verifier: patient.verifier.as_phc().to_owned(),
            failures: patient.failures,
            locked: patient.locked,
        };
        write_atomic(
            &self.dir.join(PATIENTS),
            json_name(treatment_number),
            &to_json(&file),
            0o600,
        )
    }

    /// Stores a new patient's verifier; `false` if the patient is already enrolled.
    pub(crate) fn enroll(
        &self,
        treatment_number: &str,
        verifier: PasswordVerifier,
    ) -> Result<bool, StoreError> {
        let mut patients = self.patients();
        if patients.contains_key(treatment_number) {
            return Ok(false);
        }
        let patient = Patient {
            verifier,
            failures: 0,
            locked: false,
        };
        self.save_patient(treatment_number, &patient)?;
        patients.insert(treatment_number.to_owned(), patient);
        Ok(true)
    }

    /// Where the patient stands.
    pub(crate) fn patient(&self, treatment_number: &str) -> PatientStatus {
        match self.patients().get(treatment_number) {
            None => PatientStatus::Unknown,
            Some(p) if p.locked => PatientStatus::Locked,
            Some(p) => PatientStatus::Open(p.verifier.clone()),
        }
    }

    /// Records a checked password, persisted before it returns; at `limit` wrong ones in
    /// a row the patient is locked. `None` for a patient not enrolled.
    pub(crate) fn record_attempt(
        &self,
        treatment_number: &str,
        right: bool,
        limit: u32,
    ) -> Result<Option<Attempt>, StoreError> {
        let mut patients = self.patients();
        let Some(patient) = patients.get_mut(treatment_number) else {
            return Ok(None);
        };
        if patient.locked {
            return Ok(Some(Attempt::Locked));
        }
        if right {
            if patient.failures != 0 {
                patient.failures = 0;
                self.save_patient(treatment_number, patient)?;
            }
            return Ok(Some(Attempt::Accepted));
        }
        patient.failures = patient.failures.saturating_add(1);
        patient.locked = patient.failures >= limit;
        let attempt = patient.failures;
        self.save_patient(treatment_number, patient)?;
        Ok(Some(Attempt::Rejected { attempt, limit }))
    }

    /// Lifts the patient's lock and resets the failures; `false` if not enrolled.
    pub(crate) fn unlock(&self, treatment_number: &str) -> Result<bool, StoreError> {
        let mut patients = self.patients();
        let Some(patient) = patients.get_mut(treatment_number) else {
            return Ok(false);
        };
        patient.failures = 0;
        patient.locked = false;
        self.save_patient(treatment_number, patient)?;
        Ok(true)
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, Tickets> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops tickets past their retention, at most once a minute.
    fn prune(&self, tickets: &mut Tickets, now_ms: i64) -> Result<(), StoreError> {
        if now_ms - tickets.pruned_at_ms < 60_000 {
            return Ok(());
        }
        let old: Vec<String> = tickets
            .by_nonce
            .iter()
            .filter(|(_, t)| now_ms - t.issued_at_ms > TICKET_RETENTION_MS)
            .map(|(nonce, _)| nonce.clone())
            .collect();
        for nonce in old {
            remove_durably(&self.dir.join(TICKETS), &format!("{nonce}.json"))?;
            tickets.by_nonce.remove(&nonce);
        }
        tickets.pruned_at_ms = now_ms;
        Ok(())
    }

    /// Keeps an issued ticket, persisted before it returns.
    pub(crate) fn issue(
        &self,
        nonce: &[u8],
        ticket: IssuedTicket,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let nonce = hex::encode(nonce);
        let mut tickets = self.tickets();
        self.prune(&mut tickets, now_ms)?;
        write_atomic(
            &self.dir.join(TICKETS),
            format!("{nonce}.json"),
            &to_json(&ticket),
            0o600,
        )?;
        tickets.by_nonce.insert(nonce, ticket);
        Ok(())
    }

    /// The ticket issued with `nonce` (hex), if it is still kept.
    pub(crate) fn ticket(&self, nonce_hex: &str) -> Option<IssuedTicket> {
        self.tickets().by_nonce.get(nonce_hex).cloned()
    }

    /// Marks the ticket as having released a key, persisted before it returns; `false`
    /// if it already had (or is no longer kept).
    pub(crate) fn redeem(&self, nonce_hex: &str) -> Result<bool, StoreError> {
        let mut tickets = self.tickets();
        let Some(ticket) = tickets.by_nonce.get_mut(nonce_hex) else {
            return Ok(false);
        };
        if ticket.redeemed {
            return Ok(false);
        }
        let mut redeemed = ticket.clone();
        redeemed.redeemed = true;
        write_atomic(
            &self.dir.join(TICKETS),
            format!("{nonce_hex}.json"),
            &to_json(&redeemed),
            0o600,
        )?;
        *ticket = redeemed;
        Ok(true)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, ()> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `dek` for `record_id` of patient `treatment_number`, deposited by the doctor
    /// with cert id `depositor` (hex), persisted before it returns.
    pub(crate) fn deposit(
        &self,
        record_id: &str,
        treatment_number: &str,
        depositor: &str,
        dek: &Dek,
    ) -> Result<Deposit, StoreError> {
        let _records = self.records();
        if let Some(owner) = self.record_owner(record_id)?
            && owner.treatment_number != treatment_number
        {
            return Ok(Deposit::Conflict(format!(
                "record {record_id} holds a key of another patient"
            )));
        }
        match self.keys.get(record_id) {
            Ok(held) if held == *dek => return Ok(Deposit::AlreadyHeld),
            Ok(_) => {
                return Ok(Deposit::Conflict(format!(
                    "record {record_id} already holds another key"
                )));
            }
            Err(CryptoError::UnknownRecord { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // The owner first: a key on disk always has one.
        let file = RecordFile {
            record_id: record_id.to_owned(),
            treatment_number: treatment_number.to_owned(),
            depositor: depositor.to_owned(),
        };
        write_atomic(
            &self.dir.join(RECORDS),
            json_name(record_id),
            &to_json(&file),
            0o600,
        )?;
        self.keys.put(record_id, dek)?;
        Ok(Deposit::Stored)
    }

    /// Whose record a deposited key is.
    pub(crate) fn record_owner(&self, record_id: &str) -> Result<Option<RecordOwner>, StoreError> {
        let path = self.dir.join(RECORDS).join(json_name(record_id));
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let file: RecordFile = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Malformed { path, source })?;
        Ok(Some(RecordOwner {
            treatment_number: file.treatment_number,
            depositor: file.depositor,
        }))
    }

    /// The record's key, if held.
    pub(crate) fn record_key(&self, record_id: &str) -> Result<Option<Dek>, StoreError> {
        match self.keys.get(record_id) {
            Ok(dek) => Ok(Some(dek)),
            Err(CryptoError::UnknownRecord { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Crypto-shreds the record's key and forgets its owner; `false` if no key was held.
    pub(crate) fn drop_key(&self, record_id: &str) -> Result<bool, StoreError> {
        let _records = self.records();
        let destroyed = match self.keys.delete(record_id) {
            Ok(()) => true,
            Err(CryptoError::UnknownRecord { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        remove_durably(&self.dir.join(RECORDS), &json_name(record_id))?;
        Ok(destroyed)
    }

    /// Opens a key someone wrapped to the hospital (a patient's recovery copy).
    pub(crate) fn unwrap(
        &self,
        wrapped: &WrappedKey,
        binding: &KeyBinding<'_>,
    ) -> Result<Dek, CryptoError> {
        self.keys.unwrap(wrapped, binding)
    }
}
