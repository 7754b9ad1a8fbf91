//! Frozen chains and the refusals recorded while they are frozen.
//!
//! Kept apart from the redb store (which one process holds open) in `freeze.json`, so
//! that the operator's `medcert-relay frozen` / `unfreeze` work while the relay runs; the
//! relay reads it again before acting on each message. Every change is a locked
//! read-modify-write followed by an atomic rename.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the freeze state in the state directory.
pub const FREEZE_FILE: &str = "freeze.json";
const LOCK_FILE: &str = "freeze.lock";

/// Why the freeze state cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    /// The file cannot be read or written.
    #[error("freeze state {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("freeze state {path} is malformed; fix or remove it")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// An unfreeze of a chain that is not frozen.
    #[error("chain {chain} is not frozen (frozen: {frozen})")]
    NotFrozen {
        /// The chain asked for.
        chain: String,
        /// The chains that are frozen.
        frozen: String,
    },
}

/// A message the relay refused to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// What was refused: `<chain>/<index>` and, for Fabric, the transaction id.
    pub message: String,
    /// Why it was refused.
    pub reason: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

/// Why and since when a chain is frozen, and what was refused since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// Why it was frozen.
    pub reason: String,
    /// Since when (Unix milliseconds).
    pub since_ms: u64,
    /// What was refused since.
    pub refusals: Vec<Refusal>,
    /// Set when an operator unfreezes the chain (then it moves to the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfrozen_at_ms: Option<u64>,
}

/// What the freeze file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    /// The frozen chains, by chain id.
    pub frozen: BTreeMap<String, Freeze>,
    /// Past freezes, oldest first, with their refusals.
    pub history: Vec<(String, Freeze)>,
}

/// The freeze file of one state directory.
#[derive(Debug, Clone)]
pub struct FreezeBook {
    dir: PathBuf,
}

impl FreezeBook {
    /// The freeze state kept in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.to_owned(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FREEZE_FILE)
    }

    fn io(&self, source: std::io::Error) -> FreezeError {
        FreezeError::Io {
            path: self.path(),
            source,
        }
    }

    /// The state as the file holds it now (empty without a file).
    pub fn load(&self) -> Result<FreezeState, FreezeError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| FreezeError::Malformed { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FreezeState::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// The reason `chain` is frozen, if it is.
    pub fn frozen(&self, chain: &str) -> Result<Option<String>, FreezeError> {
        Ok(self.load()?.frozen.remove(chain).map(|f| f.reason))
    }

    /// Freezes `chain` (keeping the first reason if it already is) and records `refusal`.
    /// Returns whether the chain was newly frozen and whether the refusal is new.
    pub fn refuse(
        &self,
        chain: &str,
        reason: &str,
        refusal: Refusal,
    ) -> Result<(bool, bool), FreezeError> {
        self.update(|state| {
            let newly_frozen = !state.frozen.contains_key(chain);
            let freeze = state
                .frozen
                .entry(chain.to_owned())
                .or_insert_with(|| Freeze {
                    reason: reason.to_owned(),
                    since_ms: refusal.at_ms,
                    refusals: Vec::new(),
                    unfrozen_at_ms: None,
                });
            // The same message refused again (re-read after a restart) is one refusal.
            let new_refusal = !freeze.refusals.iter().any(|r| r.message == refusal.message);
            if new_refusal {
                freeze.refusals.push(refusal);
            }
            Ok((newly_frozen, new_refusal))
        })
    }

    /// When an operator last unfroze `chain`, if ever.
    pub fn last_unfrozen_ms(&self, chain: &str) -> Result<Option<u64>, FreezeError> {
        Ok(self
            .load()?
            .history
            .iter()
            .filter(|(c, _)| c == chain)
            .filter_map(|(_, f)| f.unfrozen_at_ms)
            .max())
    }

    /// Clears the freeze of `chain`, moving it to the history.
    pub fn unfreeze(&self, chain: &str, now_ms: u64) -> Result<Freeze, FreezeError> {
        self.update(|state| {
            let Some(mut freeze) = state.frozen.remove(chain) else {
                return Err(FreezeError::NotFrozen {
                    chain: chain.to_owned(),
                    frozen: if state.frozen.is_empty() {
                        "none".to_owned()
                    } else {
                        state.frozen.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                });
            };
            freeze.unfrozen_at_ms = Some(now_ms);
            state.history.push((chain.to_owned(), freeze.clone()));
            Ok(freeze)
        })
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut FreezeState) -> Result<T, FreezeError>,
    ) -> Result<T, FreezeError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let lock = File::create(self.dir.join(LOCK_FILE)).map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        let mut state = self.load()?;
        let value = change(&mut state)?;
        let tmp = self.dir.join(format!("{FREEZE_FILE}.tmp"));
        let mut file = File::create(&tmp).map_err(|e| self.io(e))?;
        file.write_all(&serde_json::to_vec_pretty(&state).expect("freeze state serialises"))
            .map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, self.path()).map_err(|e| self.io(e))?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(message: &str) -> Refusal {
        Refusal {
            message: message.into(),
            reason: "endorsement 0: not issued by the CA".into(),
            at_ms: 5,
        }
    }

    #[test]
    fn freeze_records_refusals_once_and_unfreeze_keeps_history() {
        let dir = tempfile::tempdir().unwrap();
        let book = FreezeBook::new(dir.path());
        assert_eq!(book.frozen("fabric:hospital8").unwrap(), None);
        let first = book.refuse(
            "fabric:hospital8",
            "bad proof",
            refusal("fabric:hospital8/3"),
        );
        assert_eq!(first.unwrap(), (true, true));
        let again = book.refuse(
            "fabric:hospital8",
            "later reason",
            refusal("fabric:hospital8/3"),
        );
        assert_eq!(again.unwrap(), (false, false));
        let next = book.refuse(
            "fabric:hospital8",
            "later reason",
            refusal("fabric:hospital8/4"),
        );
        assert_eq!(next.unwrap(), (false, true));
        assert_eq!(book.last_unfrozen_ms("fabric:hospital8").unwrap(), None);
        assert_eq!(
            book.frozen("fabric:hospital8").unwrap().as_deref(),
            Some("bad proof")
        );
        assert_eq!(book.frozen("fabric:hospital9").unwrap(), None);
        let state = FreezeBook::new(dir.path()).load().unwrap();
        assert_eq!(state.frozen["fabric:hospital8"].refusals.len(), 2);

        let cleared = book.unfreeze("fabric:hospital8", 9).unwrap();
        assert_eq!(cleared.unfrozen_at_ms, Some(9));
        assert_eq!(book.frozen("fabric:hospital8").unwrap(), None);
        let state = book.load().unwrap();
        assert_eq!(state.history.len(), 1);
        assert_eq!(state.history[0].1.refusals.len(), 2);
        assert_eq!(book.last_unfrozen_ms("fabric:hospital8").unwrap(), Some(9));

        let error = book.unfreeze("fabric:hospital8", 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            "chain fabric:hospital8 is not frozen (frozen: none)"
        );
    }

    #[test]
    fn a_damaged_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FREEZE_FILE), b"{").unwrap();
        let error = FreezeBook::new(dir.path()).frozen("x").unwrap_err();
        assert!(matches!(error, FreezeError::Malformed { .. }), "{error}");
    }
}
