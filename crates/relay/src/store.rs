//! The relay's durable state: one redb file in the state directory.
//!
//! - `pairs`: per source→destination pair, the next index expected;
//! - `messages`: each request's record and status, keyed by `<source chain>/<index>`;
//! - `checkpoints`: per channel, where the chaincode event stream resumes;
//! - `meta`: what the relay saw of the Ethereum chain (genesis, head, scan floor) and
//!   the newest final header it verified (the checkpoint every later header links to);
//!   per hospital channel, the last block its light client verified.
//!
//! Each status transition is committed before the side effect that follows it, so a
//! restart knows, for every message, the last thing that certainly happened.

use std::path::{Path, PathBuf};

use medcert_ethereum::proof::HeaderCheckpoint;

use crate::fabric_light_client::FabricHead;
use medcert_hospital_api::ChainProof;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

const PAIRS: TableDefinition<&str, u64> = TableDefinition::new("pairs");
const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const ETHEREUM_META: &str = "ethereum";
const ETHEREUM_CHECKPOINT: &str = "ethereum-checkpoint";
/// Followed by the channel: its light-client checkpoint.
const FABRIC_HEAD: &str = "fabric-head/";

/// File name of the store in the state directory.
pub const STORE_FILE: &str = "relay.redb";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("relay store {path}")]
    Db {
        /// The store file.
        path: PathBuf,
        /// Why.
        source: Box<redb::Error>,
    },
    #[error(
        "relay store {path} is in use by another process (a running relay?); stop it or use another state directory"
    )]
    /// Another process holds the store.
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// A stored value does not parse.
    #[error("relay store {path}: corrupt entry {key}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The entry.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A status change the state machine does not allow.
    #[error("message {key}: cannot go from {from} to {to}")]
    Transition {
        /// The message.
        key: String,
        /// Its status.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },
    /// No message has this key.
    #[error("message {0} is not in the store")]
    UnknownMessage(String),
}

/// Where a message stands. Each variant is written before the step that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Read from the source chain and its proof verified; nothing sent yet.
    Received,
    /// `serveRecovery` was sent in this transaction (it may or may not be mined).
    EthSent {
        /// The transaction, `0x` hex.
        tx_hash: String,
    },
    /// The recovery was served, proven against a verified header; `result` is the
    /// CompleteRecovery JSON, `receipt` the encoded SUCCESS_RECEIPT message.
    EthConfirmed {
        /// The CompleteRecovery result JSON.
        result: String,
        /// The SUCCESS_RECEIPT message, hex.
        receipt: String,
        /// What was proven, recorded with the answer.
        proof: ChainProof,
    },
    /// The request cannot be served; `rollback` is true for a timeout, which is proven
    /// (`proof`: the request unserved in a verified block past its deadline).
    Failing {
        /// Why, for FailRecovery.
        reason: String,
        /// Whether it is a rollback after a timeout.
        rollback: bool,
        /// What was proven, recorded with the answer (none for a refusal).
        #[serde(default)]
        proof: Option<ChainProof>,
    },
    /// The channel holds the answer; `message` is the encoded answer (success receipt,
    /// failure receipt or rollback), hex.
    Answered {
        /// What the channel holds.
        outcome: Outcome,
        /// The transaction that answered on the channel.
        fabric_tx: String,
        /// The encoded answer message, hex.
        message: String,
    },
}

impl Status {
    /// The status's name, as logs and metrics give it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::EthSent { .. } => "eth_sent",
            Self::EthConfirmed { .. } => "eth_confirmed",
            Self::Failing { .. } => "failing",
            Self::Answered { .. } => "answered",
        }
    }

    /// Whether `next` may follow `self`. A sent transaction can come back to `Received`
    /// when the node dropped it, and anything unanswered can turn into a failure.
    fn allows(&self, next: &Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (
                Received,
                EthSent { .. } | EthConfirmed { .. } | Failing { .. }
            ) | (
                EthSent { .. },
                Received | EthSent { .. } | EthConfirmed { .. } | Failing { .. }
            ) | (EthConfirmed { .. } | Failing { .. }, Answered { .. })
        )
    }
}

/// What the channel recorded for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Completed.
    Completed {
        /// The relay's result JSON.
        result: String,
        /// What the relay proved (the `RecoveryServed` receipt).
        proof: ChainProof,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: String,
        /// What the relay proved (for a timeout); none for a refusal.
        #[serde(default)]
        proof: Option<ChainProof>,
    },
}

/// One request and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The hospital channel it came from.
    pub channel: String,
    /// Its index on the channel.
    pub index: u64,
    /// The encoded REQUEST interchain message (payload and Fabric proof), hex.
    pub request: String,
    /// When it was admitted (Unix milliseconds).
    pub received_at_ms: u64,
    /// Where it stands.
    pub status: Status,
}

impl MessageRecord {
    /// Its key in the store ([`message_key`]).
    pub fn key(&self) -> String {
        message_key(&self.channel, self.index)
    }
}

/// The store key of request `index` of `channel`: `fabric:<channel>/<index, 20 digits>`.
pub fn message_key(channel: &str, index: u64) -> String {
    format!("{}/{index:020}", crate::fabric_chain(channel))
}

/// Where a channel's event stream resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The block to resume at.
    pub block_number: u64,
    /// The last transaction of that block already handled.
    pub after_tx_id: Option<String>,
}

/// What the relay remembers of the certificate chain, to notice a reset under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthereumMark {
    /// The chain id.
    pub chain_id: u64,
    /// The genesis block hash, `0x` hex.
    pub genesis_hash: String,
    /// The newest block seen.
    pub head: u64,
    /// The head when the store was created: the relay served nothing before it, so
    /// searching for its own `RecoveryServed` events starts there.
    pub floor: u64,
    /// When the relay last confirmed the chain was the same (Unix milliseconds).
    pub updated_at_ms: u64,
}

/// How an index compares with the next one expected on its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The expected one (or the first one ever seen on a new store).
    Next,
    /// Already admitted: ignore.
    Duplicate {
        /// The next index expected.
        expected: u64,
    },
    /// Indices `expected..index` were missed: fetch them first.
    Gap {
        /// The next index expected.
        expected: u64,
    },
}

/// Where `index` stands against the `expected` next index of its pair.
pub fn admit(expected: Option<u64>, index: u64) -> Admission {
    match expected {
        None => Admission::Next,
        Some(expected) if index == expected => Admission::Next,
        Some(expected) if index < expected => Admission::Duplicate { expected },
        Some(expected) => Admission::Gap { expected },
    }
}

/// The relay's durable state (see the module docs).
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(STORE_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse { path });
            }
            Err(e) => {
                return Err(StoreError::Db {
                    path,
                    source: Box::new(e.into()),
                });
            }
        };
        let store = Self { db, path };
        store.write(|txn| {
            let error = |e| store.db_error(e);
            txn.open_table(PAIRS).map_err(error)?;
            txn.open_table(MESSAGES).map_err(error)?;
            txn.open_table(CHECKPOINTS).map_err(error)?;
            txn.open_table(META).map_err(error)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn db_error(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.db_error(e))?;
        let value = f(&txn)?;
        txn.commit().map_err(|e| self.db_error(e))?;
        Ok(value)
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            key: key.to_owned(),
            source,
        })
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let table = txn.open_table(table).map_err(|e| self.db_error(e))?;
        let value = table.get(key).map_err(|e| self.db_error(e))?;
        value.map(|v| self.decode(key, v.value())).transpose()
    }

    /// Stores `value` as JSON under `key` in `table`, in a transaction of its own.
    fn put_json<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).expect("the relay's records serialise");
        self.write(|txn| {
            let mut table = txn.open_table(table).map_err(|e| self.db_error(e))?;
            table
                .insert(key, json.as_slice())
                .map_err(|e| self.db_error(e))?;
            Ok(())
        })
    }

    /// The next index expected on `pair`, if any was admitted.
    pub fn next_index(&self, pair: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let table = txn.open_table(PAIRS).map_err(|e| self.db_error(e))?;
        let value = table.get(pair).map_err(|e| self.db_error(e))?;
        Ok(value.map(|v| v.value()))
    }

    /// Where `channel`'s event stream resumes.
    pub fn checkpoint(&self, channel: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.get_json(CHECKPOINTS, channel)
    }

    /// Moves `channel`'s checkpoint.
    pub fn set_checkpoint(&self, channel: &str, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.put_json(CHECKPOINTS, channel, checkpoint)
    }

    /// Records a new message as `Received`, advances its pair to `index + 1` and the
    /// channel's checkpoint past its event, in one transaction.
    pub fn admit(
        &self,
        pair: &str,
        message: &MessageRecord,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let key = message.key();
        let json = serde_json::to_vec(message).expect("a message serialises");
        let checkpoint = serde_json::to_vec(checkpoint).expect("a checkpoint serialises");
        self.write(|txn| {
            let mut pairs = txn.open_table(PAIRS).map_err(|e| self.db_error(e))?;
            pairs
                .insert(pair, message.index + 1)
                .map_err(|e| self.db_error(e))?;
            let mut messages = txn.open_table(MESSAGES).map_err(|e| self.db_error(e))?;
            messages
                .insert(key.as_str(), json.as_slice())
                .map_err(|e| self.db_error(e))?;
            let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(|e| self.db_error(e))?;
            checkpoints
                .insert(message.channel.as_str(), checkpoint.as_slice())
                .map_err(|e| self.db_error(e))?;
            Ok(())
        })
    }

    /// The message `key`, if stored.
    pub fn message(&self, key: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.get_json(MESSAGES, key)
    }

    /// Moves a message to `next`, refusing transitions the state machine does not have.
    pub fn transition(&self, key: &str, next: Status) -> Result<MessageRecord, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(MESSAGES).map_err(|e| self.db_error(e))?;
            let mut record: MessageRecord = {
                let current = table
                    .get(key)
                    .map_err(|e| self.db_error(e))?
                    .ok_or_else(|| StoreError::UnknownMessage(key.to_owned()))?;
                self.decode(key, current.value())?
            };
            if !record.status.allows(&next) {
                return Err(StoreError::Transition {
                    key: key.to_owned(),
                    from: record.status.name(),
                    to: next.name(),
                });
            }
            record.status = next;
            let json = serde_json::to_vec(&record).expect("a message serialises");
            table
                .insert(key, json.as_slice())
                .map_err(|e| self.db_error(e))?;
            Ok(record)
        })
    }

    /// Every message not yet answered, in key order.
    pub fn unanswered(&self) -> Result<Vec<MessageRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let table = txn.open_table(MESSAGES).map_err(|e| self.db_error(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.db_error(e))? {
            let (key, value) = entry.map_err(|e| self.db_error(e))?;
            let record: MessageRecord = self.decode(key.value(), value.value())?;
            if !matches!(record.status, Status::Answered { .. }) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// What the relay last saw of the certificate chain.
    pub fn ethereum_mark(&self) -> Result<Option<EthereumMark>, StoreError> {
        self.get_json(META, ETHEREUM_META)
    }

    /// Records what the relay saw of the certificate chain.
    pub fn set_ethereum_mark(&self, mark: &EthereumMark) -> Result<(), StoreError> {
        self.put_json(META, ETHEREUM_META, mark)
    }

    /// The light-client checkpoint of hospital channel `channel`: the last block verified.
    pub fn fabric_head(&self, channel: &str) -> Result<Option<FabricHead>, StoreError> {
        self.get_json(META, &format!("{FABRIC_HEAD}{channel}"))
    }

    /// Moves the light-client checkpoint of `channel`.
    pub fn set_fabric_head(&self, channel: &str, head: &FabricHead) -> Result<(), StoreError> {
        self.put_json(META, &format!("{FABRIC_HEAD}{channel}"), head)
    }

    /// The newest final certificate-chain header the relay verified.
    pub fn ethereum_checkpoint(&self) -> Result<Option<HeaderCheckpoint>, StoreError> {
        self.get_json(META, ETHEREUM_CHECKPOINT)
    }

    /// Records the newest final certificate-chain header the relay verified.
    pub fn set_ethereum_checkpoint(&self, checkpoint: &HeaderCheckpoint) -> Result<(), StoreError> {
        self.put_json(META, ETHEREUM_CHECKPOINT, checkpoint)
    }

    /// Forgets the header checkpoint (an operator adopted the chain as it is now).
    pub fn clear_ethereum_checkpoint(&self) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(META).map_err(|e| self.db_error(e))?;
            table
                .remove(ETHEREUM_CHECKPOINT)
                .map_err(|e| self.db_error(e))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u64) -> MessageRecord {
        MessageRecord {
            channel: "hospital1".into(),
            index,
            request: "0a01".into(),
            received_at_ms: 1,
            status: Status::Received,
        }
    }

    fn checkpoint(block: u64) -> Checkpoint {
        Checkpoint {
            block_number: block,
            after_tx_id: Some(format!("tx{block}")),
        }
    }

    const PAIR: &str = "fabric:hospital1->ethereum:31337";

    fn proof() -> ChainProof {
        ChainProof {
            kind: medcert_hospital_api::ProofKind::Receipt,
            chain_id: 31337,
            block_number: 4,
            block_hash: [0xab; 32],
            block_time: 1_700_000_000,
            digest: [0xcd; 32],
        }
    }

    #[test]
    fn indices_are_admitted_in_order_only() {
        assert_eq!(admit(None, 7), Admission::Next);
        assert_eq!(admit(Some(7), 7), Admission::Next);
        assert_eq!(admit(Some(7), 6), Admission::Duplicate { expected: 7 });
        assert_eq!(admit(Some(7), 1), Admission::Duplicate { expected: 7 });
        assert_eq!(admit(Some(7), 9), Admission::Gap { expected: 7 });
    }

    #[test]
    fn admission_advances_pair_and_checkpoint_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_index(PAIR).unwrap(), None);
        assert_eq!(store.checkpoint("hospital1").unwrap(), None);
        store.admit(PAIR, &record(4), &checkpoint(10)).unwrap();
        assert_eq!(store.next_index(PAIR).unwrap(), Some(5));
        assert_eq!(store.checkpoint("hospital1").unwrap(), Some(checkpoint(10)));
        assert_eq!(
            store.message(&message_key("hospital1", 4)).unwrap(),
            Some(record(4))
        );
    }

    #[test]
    fn transitions_follow_the_state_machine_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let key = message_key("hospital1", 1);
        {
            let store = Store::open(dir.path()).unwrap();
            store.admit(PAIR, &record(1), &checkpoint(3)).unwrap();
            // Cannot answer what was never served or failed.
            let skip = Status::Answered {
                outcome: Outcome::Completed {
                    result: "{}".into(),
                    proof: proof(),
                },
                fabric_tx: "t".into(),
                message: String::new(),
            };
            assert!(matches!(
                store.transition(&key, skip),
                Err(StoreError::Transition {
                    from: "received",
                    to: "answered",
                    ..
                })
            ));
            store
                .transition(
                    &key,
                    Status::EthSent {
                        tx_hash: "0xab".into(),
                    },
                )
                .unwrap();
        }
        // A restart finds the message where it was left.
        let store = Store::open(dir.path()).unwrap();
        let unanswered = store.unanswered().unwrap();
        assert_eq!(unanswered.len(), 1);
        assert_eq!(
            unanswered[0].status,
            Status::EthSent {
                tx_hash: "0xab".into()
            }
        );
        store
            .transition(
                &key,
                Status::EthConfirmed {
                    result: "{}".into(),
                    receipt: "00".into(),
                    proof: proof(),
                },
            )
            .unwrap();
        // Once served, a request can no longer go back to sending.
        assert!(store.transition(&key, Status::Received).is_err());
        store
            .transition(
                &key,
                Status::Answered {
                    outcome: Outcome::Completed {
                        result: "{}".into(),
                        proof: proof(),
                    },
                    fabric_tx: "t".into(),
                    message: String::new(),
                },
            )
            .unwrap();
        assert!(store.unanswered().unwrap().is_empty());
        // An answered message is final.
        assert!(
            store
                .transition(
                    &key,
                    Status::Failing {
                        reason: "x".into(),
                        rollback: false,
                        proof: None,
                    }
                )
                .is_err()
        );
        assert!(matches!(
            store.transition("fabric:hospital1/x", Status::Received),
            Err(StoreError::UnknownMessage(_))
        ));
    }

    #[test]
    fn a_second_process_is_told_the_store_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let second = Store::open(dir.path()).err().unwrap();
        assert!(matches!(second, StoreError::InUse { .. }), "{second}");
    }

    #[test]
    fn ethereum_mark_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.ethereum_mark().unwrap(), None);
        let mark = EthereumMark {
            chain_id: 31337,
            genesis_hash: "0x01".into(),
            head: 5,
            floor: 2,
            updated_at_ms: 7,
        };
        store.set_ethereum_mark(&mark).unwrap();
        assert_eq!(store.ethereum_mark().unwrap(), Some(mark));
    }

    #[test]
    fn the_header_checkpoint_survives_reopening_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = HeaderCheckpoint {
            number: 12,
            hash: [7; 32].into(),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.ethereum_checkpoint().unwrap(), None);
            store.set_ethereum_checkpoint(&checkpoint).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.ethereum_checkpoint().unwrap(), Some(checkpoint));
        store.clear_ethereum_checkpoint().unwrap();
        assert_eq!(store.ethereum_checkpoint().unwrap(), None);
    }
}
