//! The world-state operations the contract needs, behind a trait with two real
//! implementations: the peer's ledger reached through the shim stream
//! ([`crate::shim`]) and an in-memory ledger for unit tests of the contract's state
//! machine (`memory`, for tests).
//!
//! Fabric semantics the contract relies on: reads see the state committed before the
//! transaction, never the transaction's own writes; writes become visible only when the
//! transaction commits, and a transaction that returns an error commits nothing.

/// A failure to reach or use the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The peer answered the request with an error (its message).
    #[error("the peer refused the ledger request: {0}")]
    Peer(String),
    /// The peer's stream ended.
    #[error("the peer stream closed during the transaction")]
    Disconnected,
    /// The peer's answer is not what the request expects.
    #[error("the peer sent an unexpected reply: {0}")]
    Protocol(String),
}

/// One past value of a key, newest first in [`Ledger::history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyModification {
    /// The writing transaction.
    pub tx_id: String,
    /// `None` when the transaction deleted the key.
    pub value: Option<Vec<u8>>,
    /// The transaction's time, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// World-state access for one transaction.
pub trait Ledger {
    /// The committed value of `key`, if any.
    fn get(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, LedgerError>> + Send;
    /// Writes `value` under `key` when the transaction commits.
    fn put(
        &mut self,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// Deletes `key` when the transaction commits.
    fn delete(&mut self, key: &str) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// Keys in `[start, end)` in key order, with their values.
    fn range(
        &mut self,
        start: &str,
        end: &str,
    ) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, LedgerError>> + Send;
    /// Past values of `key`, newest first.
    fn history(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<KeyModification>, LedgerError>> + Send;
}

#[cfg(test)]
pub mod memory {
    //! An in-memory ledger with Fabric's read-committed, write-at-commit semantics.

    use super::{KeyModification, Ledger, LedgerError};
    use std::collections::BTreeMap;

    /// Committed state, its history, and the pending writes of the running transaction.
    #[derive(Default)]
    pub struct MemoryLedger {
        committed: BTreeMap<String, Vec<u8>>,
        history: BTreeMap<String, Vec<KeyModification>>,
        pending: Vec<(String, Option<Vec<u8>>)>,
    }

    impl MemoryLedger {
        /// Applies the pending writes of a successful transaction.
        pub fn commit(&mut self, tx_id: &str, timestamp_ms: i64) {
            for (key, value) in self.pending.drain(..) {
                match &value {
                    Some(v) => self.committed.insert(key.clone(), v.clone()),
                    None => self.committed.remove(&key),
                };
                self.history.entry(key).or_default().insert(
                    0,
                    KeyModification {
                        tx_id: tx_id.to_owned(),
                        value,
                        timestamp_ms,
                    },
                );
            }
        }

        /// Drops the pending writes of a failed transaction.
        pub fn rollback(&mut self) {
            self.pending.clear();
        }

        /// Whether the running transaction wrote anything.
        pub fn has_pending_writes(&self) -> bool {
            !self.pending.is_empty()
        }

        /// Every committed key and value, for assertions on what state holds.
        pub fn committed(&self) -> &BTreeMap<String, Vec<u8>> {
            &self.committed
        }
    }

    impl Ledger for MemoryLedger {
        async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
            Ok(self.committed.get(key).cloned())
        }

        async fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), LedgerError> {
            self.pending.push((key.to_owned(), Some(value)));
            Ok(())
        }

        async fn delete(&mut self, key: &str) -> Result<(), LedgerError> {
            self.pending.push((key.to_owned(), None));
            Ok(())
        }

        async fn range(
            &mut self,
            start: &str,
            end: &str,
        ) -> Result<Vec<(String, Vec<u8>)>, LedgerError> {
            Ok(self
                .committed
                .range(start.to_owned()..end.to_owned())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        async fn history(&mut self, key: &str) -> Result<Vec<KeyModification>, LedgerError> {
            Ok(self.history.get(key).cloned().unwrap_or_default())
        }
    }
}
