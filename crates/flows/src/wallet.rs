//! A patient's wallet: one random 32-byte seed from which both of the wallet's keys are
//! derived (a secp256k1 account and the X25519 key that receives wrapped record keys),
//! plus the public facts the CLI needs later (which hospitals the patient is registered
//! at, under which treatment numbers, which consents the patient signed).
//!
//! Usually the seed's account is the patient's Ethereum identity: it signs the patient's
//! EIP-712 messages and sends the patient's transactions. A wallet made for an outside
//! address (a hardware or browser wallet's account, [`PatientWallet::open_or_create_for`])
//! holds no key of the patient's identity: every patient signature comes from that other
//! wallet, and the seed's account is only the patient's agent, which the patient
//! authorises once on the certificate contract to release keys and revoke for it.
//!
//! Layout of `<patients_dir>/<name>/` (mode 0700): `seed` (32 bytes, mode 0600) and
//! `wallet.json` (public data only, mode 0600). The seed is not sealed with a passphrase:
//! like an unencrypted SSH key, it relies on file permissions; one file to back up
//! restores both keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use medcert_crypto::HpkeKeyPair;
use medcert_eip712::{Address, PatientSigner};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const SEED: &str = "seed";
const PUBLIC: &str = "wallet.json";
/// Serialises this process's read-modify-writes of wallets' public files.
static WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why a patient's wallet cannot be opened or saved.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// A patient name breaks the wallet's naming rule.
    #[error(
        "patient name {0:?} is not 1 to 64 of A-Z a-z 0-9 . _ -; choose a name of those characters"
    )]
    BadName(String),
    /// The patient has no wallet yet: they have never registered.
    #[error("no wallet for patient {name} in {dir}")]
    Unknown {
        /// The patient name.
        name: String,
        /// The directory of patient wallets.
        dir: PathBuf,
    },
    /// A wallet file or directory cannot be read, created or written.
    #[error("patient wallet {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The wallet's seed file is not 32 bytes.
    #[error(
        "patient wallet file {path} is damaged ({len} bytes instead of 32); restore it from backup"
    )]
    DamagedSeed {
        /// The seed file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The wallet's public file is not JSON of the expected shape.
    #[error("patient wallet file {path} is damaged; restore it from backup")]
    DamagedInfo {
        /// The public file.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// The wallet's public file names keys other than those the seed derives.
    #[error(
        "patient wallet file {path} is damaged (its keys are not the seed's); restore it from backup"
    )]
    ForeignInfo {
        /// The public file.
        path: PathBuf,
    },
    /// The patient's account is in another wallet, so medcert's wallet cannot sign for it.
    #[error(
        "patient {name}'s account {address} is in another wallet, which alone signs for it: \
         print the message's typed data (--print-typed-data), sign it with that wallet, and \
         give it back with --typed-data FILE --signature 0x…"
    )]
    SignsElsewhere {
        /// The patient name.
        name: String,
        /// The patient's address, `0x` hex.
        address: String,
    },
    /// The patient already has a wallet, for another Ethereum account.
    #[error("patient {name}'s wallet is for account {address}, not {asked}")]
    OtherAddress {
        /// The patient name.
        name: String,
        /// The wallet's patient address, `0x` hex.
        address: String,
        /// The address asked for, `0x` hex.
        asked: String,
    },
    /// The zero address was given as the patient's.
    #[error("the zero address is no one's account")]
    ZeroAddress,
}

/// One registration of the patient at a hospital.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The hospital's id.
    pub hospital: String,
    /// The patient's treatment number there.
    pub treatment_number: String,
    /// The registration's transaction on the hospital chain.
    pub tx_id: String,
}

/// A consent the patient signed, as the patient's agent needs it: which served recovery
/// it may release a key for, and whether the patient has since withdrawn it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedConsent {
    /// The hospital it lets recover (H').
    pub hospital: String,
    /// The certificate it lets H' recover.
    pub certificate_id: u64,
    /// Its nonce, which `RecoveryServed` names.
    pub nonce: u64,
    /// Unix seconds after which the agent releases nothing for it.
    pub expiry: u64,
    /// The certificate chain's block when it was signed: its recovery is served later.
    #[serde(default)]
    pub from_block: u64,
    /// Set by `patient revoke-consent`: the agent releases nothing for it.
    #[serde(default)]
    pub revoked: bool,
    /// The served request (`0x` hex) the agent settled the consent with, by releasing
    /// the key or refusing to, or `unserved` for a consent that expired or was withdrawn
    /// before it was served; a settled consent is never looked at again.
    #[serde(default)]
    pub settled: Option<String>,
}

/// What the wallet keeps in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletInfo {
    /// The patient name the wallet is kept under.
    pub name: String,
    /// The patient's Ethereum address, which registrations record and certificate
    /// authorisations, consents and deletions are signed by: `0x` + 40 lowercase hex.
    pub address: String,
    /// Set when the patient's account is in another wallet: the seed's own account, which
    /// acts as the patient's agent on the certificate contract once the patient authorised
    /// it; `0x` + 40 lowercase hex. `None`: the seed's account is the patient's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Hex of the X25519 public key.
    pub x25519_public: String,
    /// The patient's latest registration at each hospital.
    pub registrations: Vec<Registration>,
    /// Every consent the patient signed.
    #[serde(default)]
    pub consents: Vec<IssuedConsent>,
}

/// An opened wallet: the patient's keys, zeroized when dropped.
pub struct PatientWallet {
    dir: PathBuf,
    info: WalletInfo,
    /// The patient's identity: the seed's account, or the outside one.
    patient: Address,
    signer: PatientSigner,
    x25519: HpkeKeyPair,
}

impl std::fmt::Debug for PatientWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientWallet")
            .field("dir", &self.dir)
            .field("address", &self.info.address)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), WalletError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(WalletError::BadName(name.to_owned()))
    }
}

impl PatientWallet {
    /// The directory of patient `name`'s wallet.
    pub fn dir(patients_dir: &Path, name: &str) -> Result<PathBuf, WalletError> {
        check_name(name)?;
        Ok(patients_dir.join(name))
    }

    /// Opens the wallet of `name`, creating it with a fresh seed whose account is the
    /// patient's if there is none. Returns the wallet and whether it was created now.
    pub fn open_or_create(patients_dir: &Path, name: &str) -> Result<(Self, bool), WalletError> {
        Self::open_or_create_for(patients_dir, name, None)
    }

    /// [`Self::open_or_create`] for the patient whose account is `outside`, when given:
    /// a new wallet takes it as the patient's identity and its seed's account becomes the
    /// patient's agent; an existing wallet must already be for it. `None` opens an
    /// existing wallet as it is, or creates one whose seed's account is the patient's.
    pub fn open_or_create_for(
        patients_dir: &Path,
        name: &str,
        outside: Option<Address>,
    ) -> Result<(Self, bool), WalletError> {
        if outside == Some([0; 20]) {
            return Err(WalletError::ZeroAddress);
        }
        let dir = Self::dir(patients_dir, name)?;
        if dir.join(SEED).exists() {
            let wallet = Self::open(patients_dir, name)?;
            if let Some(asked) = outside
                && asked != wallet.patient
            {
                return Err(WalletError::OtherAddress {
                    name: name.to_owned(),
                    address: wallet.info.address.clone(),
                    asked: hex_address(&asked),
                });
            }
            return Ok((wallet, false));
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| WalletError::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        let wallet = Self::from_seed(&dir, name, &seed, outside);
        // The public file first: a seed without it is still openable, never the reverse.
        wallet.save()?;
        write_private(&dir.join(SEED), seed.as_ref())?;
        Ok((wallet, true))
    }

    /// Opens an existing wallet.
    pub fn open(patients_dir: &Path, name: &str) -> Result<Self, WalletError> {
        let dir = Self::dir(patients_dir, name)?;
        let seed_path = dir.join(SEED);
        let bytes = Zeroizing::new(fs::read(&seed_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                WalletError::Unknown {
                    name: name.to_owned(),
                    dir: patients_dir.to_owned(),
                }
            } else {
                WalletError::Io {
                    path: seed_path.clone(),
                    source,
                }
            }
        })?);
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.as_slice().try_into().map_err(
            |_| WalletError::DamagedSeed {
                path: seed_path.clone(),
                len: bytes.len(),
            },
        )?);
        let own = Self::from_seed(&dir, name, &seed, None);
        let public_path = dir.join(PUBLIC);
        match fs::read(&public_path) {
            Ok(text) => {
                let saved: WalletInfo =
                    serde_json::from_slice(&text).map_err(|source| WalletError::DamagedInfo {
                        path: public_path.clone(),
                        source,
                    })?;
                // The seed's account is the patient's, or the agent of the outside one.
                let outside = match &saved.agent {
                    None => None,
                    Some(agent) => Some(
                        medcert_eip712::parse_address(&saved.address)
                            .ok()
                            .filter(|_| *agent == own.info.address)
                            .ok_or_else(|| WalletError::ForeignInfo {
                                path: public_path.clone(),
                            })?,
                    ),
                };
                let mut wallet = Self::from_seed(&dir, name, &seed, outside);
                if saved.address != wallet.info.address
                    || saved.x25519_public != wallet.info.x25519_public
                {
                    return Err(WalletError::ForeignInfo { path: public_path });
                }
                wallet.info.registrations = saved.registrations;
                wallet.info.consents = saved.consents;
                Ok(wallet)
            }
            // Rewritten from the seed alone: only an outside address is lost with it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                own.save()?;
                Ok(own)
            }
            Err(source) => Err(WalletError::Io {
                path: public_path,
                source,
            }),
        }
    }

    fn from_seed(dir: &Path, name: &str, seed: &[u8; 32], outside: Option<Address>) -> Self {
        let signer = PatientSigner::from_seed(seed);
        let x25519 = HpkeKeyPair::from_seed(seed);
        // The seed's own account given as "outside" is simply the patient's own.
        let outside = outside.filter(|address| *address != signer.address());
        let patient = outside.unwrap_or(signer.address());
        let info = WalletInfo {
            name: name.to_owned(),
            address: hex_address(&patient),
            agent: outside.map(|_| hex_address(&signer.address())),
            x25519_public: hex::encode(x25519.public_key().to_bytes()),
            registrations: Vec::new(),
            consents: Vec::new(),
        };
        Self {
            dir: dir.to_owned(),
            info,
            patient,
            signer,
            x25519,
        }
    }

    /// The wallet's public facts.
    pub fn info(&self) -> &WalletInfo {
        &self.info
    }

    /// The patient's Ethereum address: the identity the hospital chain registers and
    /// certificates name, which signs the patient's EIP-712 messages.
    pub fn patient_address(&self) -> Address {
        self.patient
    }

    /// The wallet's own account when it is the agent of a patient whose account is in
    /// another wallet; `None` when the wallet's account is the patient's.
    pub fn agent_address(&self) -> Option<Address> {
        (self.patient != self.signer.address()).then(|| self.signer.address())
    }

    /// The wallet's own secp256k1 key, derived from the seed: it sends the wallet's
    /// transactions on the certificate chain (key releases, revocations, the agent's
    /// authorisation). It is the patient's own key, and signs for the patient, only when
    /// [`Self::agent_address`] is `None`; [`Self::patient_signer`] says so.
    pub fn signer(&self) -> &PatientSigner {
        &self.signer
    }

    /// The signer of the patient's EIP-712 messages, when the wallet holds the patient's
    /// key; refused when the patient's account is in another wallet.
    pub fn patient_signer(&self) -> Result<&PatientSigner, WalletError> {
        if self.agent_address().is_some() {
            return Err(WalletError::SignsElsewhere {
                name: self.info.name.clone(),
                address: self.info.address.clone(),
            });
        }
        Ok(&self.signer)
    }

    /// The patient's X25519 pair, which opens record keys wrapped to them.
    pub fn x25519(&self) -> &HpkeKeyPair {
        &self.x25519
    }

    /// The patient's treatment number at `hospital`, if the wallet recorded one.
    pub fn treatment_number(&self, hospital: &str) -> Option<&str> {
        self.info
            .registrations
            .iter()
            .find(|r| r.hospital == hospital)
            .map(|r| r.treatment_number.as_str())
    }

    /// Records a registration and saves the public file.
    pub fn add_registration(&mut self, registration: Registration) -> Result<(), WalletError> {
        self.update(|info| {
            info.registrations
                .retain(|r| r.hospital != registration.hospital);
            info.registrations.push(registration);
        })
    }

    /// Records a consent the patient signed and saves the public file.
    pub fn add_consent(&mut self, consent: IssuedConsent) -> Result<(), WalletError> {
        self.update(|info| info.consents.push(consent))
    }

    /// Marks the consent with `nonce` withdrawn, so the agent releases nothing for it;
    /// `false` if the wallet issued no such consent.
    pub fn revoke_consent(&mut self, nonce: u64) -> Result<bool, WalletError> {
        self.update(|info| {
            let consent = info.consents.iter_mut().find(|c| c.nonce == nonce);
            consent.map(|c| c.revoked = true).is_some()
        })
    }

    /// Settles the consent with `nonce` by served request `request_id`.
    pub fn settle_consent(&mut self, nonce: u64, request_id: &str) -> Result<(), WalletError> {
        self.update(|info| {
            if let Some(consent) = info.consents.iter_mut().find(|c| c.nonce == nonce) {
                consent.settled = Some(request_id.to_owned());
            }
        })
    }

    /// Applies `change` to the public file as it is on disk now, not as this copy read
    /// it: an agent settling consents and a consent being signed (several tasks of one
    /// process, e.g. the benchmark) must not undo each other's writes.
    fn update<T>(&mut self, change: impl FnOnce(&mut WalletInfo) -> T) -> Result<T, WalletError> {
        let _writing = WRITES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.dir.join(PUBLIC);
        match fs::read(&path) {
            Ok(text) => {
                let saved: WalletInfo = serde_json::from_slice(&text)
                    .map_err(|source| WalletError::DamagedInfo { path, source })?;
                self.info.registrations = saved.registrations;
                self.info.consents = saved.consents;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(WalletError::Io { path, source }),
        }
        let out = change(&mut self.info);
        self.save()?;
        Ok(out)
    }

    /// The consent with `nonce`, if the patient signed it.
    pub fn consent(&self, nonce: u64) -> Option<&IssuedConsent> {
        self.info.consents.iter().find(|c| c.nonce == nonce)
    }

    fn save(&self) -> Result<(), WalletError> {
        let json = serde_json::to_vec_pretty(&self.info).expect("wallet info serialises");
        let path = self.dir.join(PUBLIC);
        let tmp = self.dir.join(format!("{PUBLIC}.tmp"));
        let _ = fs::remove_file(&tmp);
        write_private(&tmp, &json)?;
        fs::rename(&tmp, &path).map_err(|source| WalletError::Io { path, source })
    }
}

/// `0x` + 40 lowercase hex, as the wallet's public file writes addresses.
fn hex_address(address: &Address) -> String {
    format!("0x{}", hex::encode(address))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WalletError> {
    let io = |source| WalletError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_reopens_with_the_same_keys_and_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut first, created) = PatientWallet::open_or_create(tmp.path(), "alice").unwrap();
        assert!(created);
        first
            .add_registration(Registration {
                hospital: "hospital1".into(),
                treatment_number: "T-1".into(),
                tx_id: "tx".into(),
            })
            .unwrap();
        let (again, created) = PatientWallet::open_or_create(tmp.path(), "alice").unwrap();
        assert!(!created);
        assert_eq!(again.info(), first.info());
        assert_eq!(again.treatment_number("hospital1"), Some("T-1"));
        assert_eq!(again.treatment_number("hospital2"), None);
        assert_eq!(
            again.x25519().public_key().to_bytes(),
            first.x25519().public_key().to_bytes()
        );
        let dir = tmp.path().join("alice");
        for (path, mode) in [
            (dir.clone(), 0o700),
            (dir.join(SEED), 0o600),
            (dir.join(PUBLIC), 0o600),
        ] {
            let actual = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(actual, mode, "{}", path.display());
        }
        let other = PatientWallet::open_or_create(tmp.path(), "bob").unwrap().0;
        assert_ne!(other.info().address, first.info().address);
    }

    #[test]
    fn bad_names_and_unknown_or_damaged_wallets_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["", "..", "a/b", "x y", &"a".repeat(65)] {
            assert!(matches!(
                PatientWallet::open_or_create(tmp.path(), name),
                Err(WalletError::BadName(_))
            ));
        }
        let error = PatientWallet::open(tmp.path(), "carol").unwrap_err();
        assert!(matches!(error, WalletError::Unknown { .. }));

        PatientWallet::open_or_create(tmp.path(), "dave").unwrap();
        fs::write(tmp.path().join("dave").join(SEED), [1u8; 31]).unwrap();
        assert!(matches!(
            PatientWallet::open(tmp.path(), "dave"),
            Err(WalletError::DamagedSeed { .. })
        ));
    }

    #[test]
    fn a_wallet_for_an_outside_address_keeps_only_the_agents_key() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = PatientSigner::from_seed(&[8; 32]).address();
        let (wallet, created) =
            PatientWallet::open_or_create_for(tmp.path(), "olga", Some(outside)).unwrap();
        assert!(created);
        assert_eq!(wallet.patient_address(), outside);
        assert_eq!(wallet.info().address, hex_address(&outside));
        let agent = wallet
            .agent_address()
            .expect("the seed's account is the agent");
        assert_ne!(agent, outside);
        assert_eq!(agent, wallet.signer().address());
        assert_eq!(wallet.info().agent, Some(hex_address(&agent)));
        let error = wallet.patient_signer().unwrap_err();
        assert!(
            matches!(&error, WalletError::SignsElsewhere { name, address }
                if name == "olga" && *address == hex_address(&outside)),
            "{error}"
        );
        let text = error.to_string();
        for flag in ["--print-typed-data", "--typed-data", "--signature"] {
            assert!(text.contains(flag), "{text}");
        }

        // Reopened, with or without the address, it is the same patient and agent.
        let again = PatientWallet::open(tmp.path(), "olga").unwrap();
        assert_eq!(again.info(), wallet.info());
        assert_eq!(again.agent_address(), Some(agent));
        let (again, created) =
            PatientWallet::open_or_create_for(tmp.path(), "olga", Some(outside)).unwrap();
        assert!(!created);
        assert_eq!(again.patient_address(), outside);
        assert_eq!(
            PatientWallet::open_or_create(tmp.path(), "olga")
                .unwrap()
                .0
                .patient_address(),
            outside
        );
        // Another address for the same wallet is refused.
        let error =
            PatientWallet::open_or_create_for(tmp.path(), "olga", Some([3; 20])).unwrap_err();
        assert!(matches!(error, WalletError::OtherAddress { .. }), "{error}");
        assert!(matches!(
            PatientWallet::open_or_create_for(tmp.path(), "zed", Some([0; 20])),
            Err(WalletError::ZeroAddress)
        ));
        assert!(!tmp.path().join("zed").exists());

        // The public file must name the seed's account as the agent.
        let path = tmp.path().join("olga").join(PUBLIC);
        let mut info: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        info["agent"] = hex_address(&[5; 20]).into();
        fs::write(&path, serde_json::to_vec(&info).unwrap()).unwrap();
        assert!(matches!(
            PatientWallet::open(tmp.path(), "olga"),
            Err(WalletError::ForeignInfo { .. })
        ));
    }

    #[test]
    fn a_wallet_without_an_outside_address_is_the_patients_own_signer() {
        let tmp = tempfile::tempdir().unwrap();
        let (wallet, _) = PatientWallet::open_or_create(tmp.path(), "paul").unwrap();
        assert_eq!(wallet.agent_address(), None);
        assert_eq!(wallet.patient_address(), wallet.signer().address());
        assert_eq!(
            wallet.patient_signer().unwrap().address(),
            wallet.signer().address()
        );
        // Its public file is as before outside addresses existed: no agent named.
        let text = fs::read_to_string(tmp.path().join("paul").join(PUBLIC)).unwrap();
        assert!(!text.contains("agent"), "{text}");
        // An outside address is not taken up by a wallet that already has its patient.
        let error =
            PatientWallet::open_or_create_for(tmp.path(), "paul", Some([3; 20])).unwrap_err();
        assert!(matches!(error, WalletError::OtherAddress { .. }), "{error}");
        let own = Some(wallet.signer().address());
        let (same, _) = PatientWallet::open_or_create_for(tmp.path(), "paul", own).unwrap();
        assert_eq!(same.agent_address(), None);
    }

    #[test]
    fn debug_output_shows_no_key() {
        let tmp = tempfile::tempdir().unwrap();
        let (wallet, _) = PatientWallet::open_or_create(tmp.path(), "erin").unwrap();
        let seed = fs::read(tmp.path().join("erin").join(SEED)).unwrap();
        let shown = format!("{wallet:?}");
        assert!(shown.contains(&wallet.info().address));
        assert!(!shown.contains(&hex::encode(&seed)));
    }
}
