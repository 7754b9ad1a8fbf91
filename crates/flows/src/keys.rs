//! A hospital's local secrets: its key store (X25519 pair and wrapped record keys) and
//! its Ed25519 watermark key, under `<run_dir>/hospitals/<id>/` (0700).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use medcert_crypto::{CryptoError, KeyStore};
use medcert_network::{Hospital, Network};
use rand::RngCore;
use zeroize::Zeroizing;

const WATERMARK_SEED: &str = "watermark.seed";
const KEY_STORE: &str = "keystore";

/// Why a hospital's secrets cannot be opened or created.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The hospital's key directory or a file in it cannot be read, created or written.
    #[error("cannot use hospital key directory {path}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The watermark key file does not hold a 32-byte seed.
    #[error("watermark key {path} is not a 32-byte seed; restore it from backup or remove it")]
    BadSeed {
        /// The watermark key file.
        path: PathBuf,
    },
    /// The key store cannot be opened.
    #[error(transparent)]
    KeyStore(#[from] CryptoError),
}

/// The opened secrets of one hospital.
pub struct HospitalKeys {
    /// The X25519 pair and the wrapped record keys.
    pub key_store: KeyStore,
    watermark: SigningKey,
}

impl HospitalKeys {
    /// The directory holding hospital `id`'s secrets.
    pub fn dir(run_dir: &Path, id: &str) -> PathBuf {
        run_dir.join("hospitals").join(id)
    }

    /// Opens the hospital's secrets, creating any that are missing (idempotent).
    pub fn open_or_create(dir: &Path) -> Result<Self, KeysError> {
        let io = |source| KeysError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        let key_store = KeyStore::open(&dir.join(KEY_STORE))?;
        let watermark = load_or_create_seed(&dir.join(WATERMARK_SEED))?;
        Ok(Self {
            key_store,
            watermark,
        })
    }

    /// Opens `hospital`'s existing secrets in `network`'s run directory.
    pub fn of(network: &Network, hospital: &Hospital) -> Result<Self, KeysError> {
        Self::open_existing(&Self::dir(&network.run_dir, &hospital.id))
    }

    /// Opens existing secrets only, for commands that must not create keys.
    pub fn open_existing(dir: &Path) -> Result<Self, KeysError> {
        let seed_path = dir.join(WATERMARK_SEED);
        let watermark = read_seed(&seed_path)?;
        Ok(Self {
            key_store: KeyStore::open(&dir.join(KEY_STORE))?,
            watermark,
        })
    }

    /// The key that signs the hospital's watermarks.
    pub fn watermark_key(&self) -> &SigningKey {
        &self.watermark
    }

    /// The key that verifies the hospital's watermarks.
    pub fn watermark_verifying_key(&self) -> VerifyingKey {
        self.watermark.verifying_key()
    }
}

fn read_seed(path: &Path) -> Result<SigningKey, KeysError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|source| KeysError::Io {
        path: path.to_path_buf(),
        source,
    })?);
    let seed: Zeroizing<[u8; 32]> =
        Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeysError::BadSeed {
                    path: path.to_path_buf(),
                })?,
        );
    Ok(SigningKey::from_bytes(&seed))
}

fn load_or_create_seed(path: &Path) -> Result<SigningKey, KeysError> {
    if path.exists() {
        return read_seed(path);
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let io = |source| KeysError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(seed.as_ref()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_reopening_and_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = HospitalKeys::dir(tmp.path(), "hospital1");
        let first = HospitalKeys::open_or_create(&dir).unwrap();
        let again = HospitalKeys::open_or_create(&dir).unwrap();
        assert_eq!(
            first.watermark_verifying_key(),
            again.watermark_verifying_key()
        );
        assert_eq!(
            first.key_store.public_key().to_bytes(),
            again.key_store.public_key().to_bytes()
        );
        let mode = fs::metadata(dir.join(WATERMARK_SEED))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn missing_keys_are_not_created_by_open_existing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = HospitalKeys::dir(tmp.path(), "hospital9");
        assert!(matches!(
            HospitalKeys::open_existing(&dir),
            Err(KeysError::Io { .. })
        ));
        assert!(!dir.exists());
    }
}
