//! Why a proof about the certificate chain fails.

use alloy_primitives::B256;

/// Why a header, receipt or storage value could not be proven.
///
/// [`ProofError::is_chain_fault`] separates what the node proved wrong (its chain
/// contradicts itself or what was verified before: stop trusting it) from what may pass
/// (an unreachable node, a block not yet final, an answer that does not parse).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The node could not be reached or refused the call.
    #[error("Ethereum RPC {method} failed")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The node's answer is not what the method returns (a number out of range, a hash
    /// of the wrong length, a missing field).
    #[error("the node's answer to {method} is malformed")]
    Malformed {
        /// The JSON-RPC method.
        method: &'static str,
        /// What does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The node does not have something it should (a block below its head, a
    /// transaction's receipt).
    #[error("the node has no {0}")]
    Missing(String),
    /// The block does not have the required confirmations yet.
    #[error("block {number} is not final yet (the newest final block is {final_block:?})")]
    NotFinal {
        /// The block asked for.
        number: u64,
        /// The newest block with the confirmations, if any.
        final_block: Option<u64>,
    },
    /// A header's fields do not hash to the hash the node gives it.
    #[error("block {number}'s header hashes to {computed}, but the node calls it {claimed}")]
    HeaderHash {
        /// The block.
        number: u64,
        /// The hash the node gave.
        claimed: B256,
        /// The hash of its fields.
        computed: B256,
    },
    /// A header does not link to the verified header next to it.
    #[error(
        "block {number} names parent {parent}, but the verified block {} is {expected}",
        number.saturating_sub(1)
    )]
    ParentLink {
        /// The block whose parent link is broken.
        number: u64,
        /// The parent hash in its header.
        parent: B256,
        /// The hash of the verified block before it.
        expected: B256,
    },
    /// A block at or below the checkpoint changed: the chain was reorganised below the
    /// confirmations, or reset.
    #[error("block {number} was {checkpoint} and is now {now}: the chain was reorganised or reset")]
    Reorganised {
        /// The block.
        number: u64,
        /// Its verified hash.
        checkpoint: B256,
        /// The hash the node gives it now.
        now: B256,
    },
    /// The node's newest final block is below the checkpoint: the chain went back.
    #[error("the newest final block {final_block} is below the checkpoint at block {checkpoint}")]
    WentBack {
        /// The checkpoint's block.
        checkpoint: u64,
        /// The newest final block the node has.
        final_block: u64,
    },
    /// The node's answers about one block contradict the verified header (a receipt in
    /// another block, a transaction at another index).
    #[error("the node's answers contradict the verified block {number}: {what}")]
    Inconsistent {
        /// The block.
        number: u64,
        /// What contradicts it.
        what: String,
    },
    /// A receipt does not verify against the verified header's `receiptsRoot`.
    #[error("receipt proof in block {number}")]
    Receipt {
        /// The block.
        number: u64,
        /// Why.
        #[source]
        source: ReceiptProofError,
    },
    /// A storage value does not verify against the verified header's `stateRoot`.
    #[error("storage proof at block {number}")]
    Storage {
        /// The block.
        number: u64,
        /// Why.
        #[source]
        source: StorageProofError,
    },
}

impl ProofError {
    /// Whether the node's chain proved wrong: a header that does not hash to its hash, a
    /// broken parent link, a changed or rewound chain, answers that contradict a verified
    /// header, or a proof that does not verify. Anything else (the node unreachable,
    /// malformed answers, a block not final yet) may pass and is worth retrying.
    pub fn is_chain_fault(&self) -> bool {
        matches!(
            self,
            Self::HeaderHash { .. }
                | Self::ParentLink { .. }
                | Self::Reorganised { .. }
                | Self::WentBack { .. }
                | Self::Inconsistent { .. }
                | Self::Receipt { .. }
                | Self::Storage { .. }
        )
    }

    pub(crate) fn rpc(
        method: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Rpc {
            method,
            source: Box::new(source),
        }
    }
}

/// Why a receipt proof fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptProofError {
    /// The proof does not lead from the root to the receipt.
    #[error("the receipt of transaction {index} does not verify against receiptsRoot {root}")]
    Mismatch {
        /// The transaction's index in the block.
        index: u64,
        /// The block's receipts root.
        root: B256,
        /// Why.
        // Boxed: the error carries the trie path and values, and is rare.
        source: Box<alloy_trie::proof::ProofVerificationError>,
    },
    /// The transaction is not in the block.
    #[error("transaction index {index} is outside the block's {count} receipts")]
    NoSuchReceipt {
        /// The transaction's index.
        index: u64,
        /// The block's receipts.
        count: usize,
    },
    /// An empty receipt.
    #[error("empty receipt")]
    Empty,
    /// The receipt is not RLP of a receipt.
    #[error("malformed receipt encoding")]
    Rlp(#[source] alloy_rlp::Error),
    /// Bytes after the receipt's RLP.
    #[error("{0} bytes after the receipt")]
    Trailing(usize),
}

/// Why a storage proof fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageProofError {
    /// The account's path does not lead from the state root to the account's fields.
    #[error("account {address} does not verify against stateRoot {root}")]
    Account {
        /// The account.
        address: alloy_primitives::Address,
        /// The header's state root.
        root: B256,
        /// Why.
        source: Box<alloy_trie::proof::ProofVerificationError>,
    },
    /// The slot's path does not lead from the account's storage root to its value.
    #[error("slot {slot} does not verify against the storage root {root}")]
    Slot {
        /// The slot.
        slot: B256,
        /// The account's storage root.
        root: B256,
        /// Why.
        source: Box<alloy_trie::proof::ProofVerificationError>,
    },
    /// The node answered for another account or slot than the one asked about.
    #[error("the proof is for {what}, not the one asked about")]
    OtherKey {
        /// What it is for.
        what: String,
    },
}
