//! A hospital's key store: a directory holding the hospital's X25519 key pair and, per record,
//! the record's DEK wrapped to that key. Deleting a record's entry is the crypto-shredding step
//! of deletion.
//!
//! Layout: `hospital.x25519` (the 32-byte secret key, mode 0600) and one `<SHA3-256(record
//! id) in hex>.dek` file per record holding the wrapped DEK (mode 0600); the directory itself
//! is mode 0700. File names are hashes so that record ids need no escaping and do not show in
//! a directory listing.
//!
//! Limits of shredding: the file's blocks are overwritten in place and synced, but a
//! copy-on-write or log-structured file system, or an SSD's flash translation layer, may keep
//! the old blocks; keep the store on a file system that overwrites in place when that matters.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::keys::random_bytes;
use crate::{
    CryptoError, Dek, HpkeKeyPair, KeyBinding, PublicKey, WrapPurpose, WrappedKey, unwrap_key,
    wrap_key,
};

const SECRET_KEY_FILE: &str = "hospital.x25519";
const WRAPPED_KEY_EXT: &str = "dek";

/// See the module documentation.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    key_pair: HpkeKeyPair,
}

impl KeyStore {
    /// Opens the key store in `dir`, creating the directory and a fresh hospital key pair if
    /// they do not exist yet.
    pub fn open(dir: &Path) -> Result<Self, CryptoError> {
        let at = |path: &Path| {
            let path = path.to_owned();
            move |source| CryptoError::KeyFile { path, source }
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(at(dir))?;
        let key_path = dir.join(SECRET_KEY_FILE);
        let key_pair = match File::open(&key_path) {
            Ok(mut file) => {
                let mut secret = Zeroizing::new([0u8; 32]);
                file.read_exact(secret.as_mut()).map_err(at(&key_path))?;
                if file.read(&mut [0u8; 1]).map_err(at(&key_path))? != 0 {
                    return Err(CryptoError::Malformed {
                        what: "hospital key file",
                        reason: "longer than 32 bytes",
                    });
                }
                HpkeKeyPair::from_secret_bytes(&secret)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key_pair = HpkeKeyPair::generate();
                write_new_file(dir, &key_path, key_pair.secret_bytes().as_ref())
                    .map_err(at(&key_path))?;
                key_pair
            }
            Err(e) => return Err(at(&key_path)(e)),
        };
        Ok(KeyStore {
            dir: dir.to_owned(),
            key_pair,
        })
    }

    /// The hospital's public key, which others wrap record keys to (e.g. a patient's
    /// [`WrapPurpose::Recovery`] copy).
    pub fn public_key(&self) -> PublicKey {
        self.key_pair.public_key()
    }

    /// Stores `dek` for `record_id`, wrapped to the hospital's key. A key already stored for
    /// the record is shredded first.
    pub fn put(&self, record_id: &str, dek: &Dek) -> Result<(), CryptoError> {
        let wrapped = wrap_key(dek, &self.public_key(), &binding(record_id))?;
        let path = self.record_path(record_id);
        match shred(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(CryptoError::KeyFile { path, source }),
        }
        write_new_file(&self.dir, &path, wrapped.as_bytes())
            .map_err(|source| CryptoError::KeyFile { path, source })
    }

    /// The DEK stored for `record_id`.
    pub fn get(&self, record_id: &str) -> Result<Dek, CryptoError> {
        let path = self.record_path(record_id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(unknown(record_id));
            }
            Err(source) => return Err(CryptoError::KeyFile { path, source }),
        };
        let wrapped = WrappedKey::from_bytes(&bytes)?;
        unwrap_key(&wrapped, &self.key_pair, &binding(record_id))
    }

    /// Opens a key someone else wrapped to this hospital (such as a patient's recovery copy).
    pub fn unwrap(
        &self,
        wrapped: &WrappedKey,
        binding: &KeyBinding<'_>,
    ) -> Result<Dek, CryptoError> {
        unwrap_key(wrapped, &self.key_pair, binding)
    }

    /// Crypto-shreds the key of `record_id`: overwrites the wrapped key with random bytes,
    /// syncs, removes the file and syncs the directory.
    pub fn delete(&self, record_id: &str) -> Result<(), CryptoError> {
        let path = self.record_path(record_id);
        match shred(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(unknown(record_id)),
            Err(source) => return Err(CryptoError::KeyFile { path, source }),
        }
        sync_dir(&self.dir).map_err(|source| CryptoError::KeyFile {
            path: self.dir.clone(),
            source,
        })
    }

    fn record_path(&self, record_id: &str) -> PathBuf {
        let name = hex::encode(Sha3_256::digest(record_id.as_bytes()));
        self.dir.join(format!("{name}.{WRAPPED_KEY_EXT}"))
    }
}

fn binding(record_id: &str) -> KeyBinding<'_> {
    KeyBinding {
        record_id,
        purpose: WrapPurpose::HospitalKeyStore,
    }
}

fn unknown(record_id: &str) -> CryptoError {
    CryptoError::UnknownRecord {
        record_id: record_id.to_owned(),
    }
}

/// Writes `bytes` to a 0600 temporary file in `dir`, syncs it, renames it to `path` and syncs
/// the directory, so a crash leaves either no file or a complete one.
fn write_new_file(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut partial = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)?;
    partial.write_all(bytes)?;
    partial.as_file().sync_all()?;
    partial.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

fn shred(path: &Path) -> io::Result<()> {
    // O_NOFOLLOW: never overwrite whatever a planted symlink points at.
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let len = file.metadata()?.len() as usize;
    let mut noise = Vec::with_capacity(len);
    while noise.len() < len {
        noise.extend_from_slice(random_bytes::<32>().as_ref());
    }
    noise.truncate(len);
    file.write_all(&noise)?;
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
