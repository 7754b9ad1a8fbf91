//! Proofs about the certificate chain that do not take a node's word: headers whose
//! hashes are recomputed and linked from a trusted checkpoint, receipts proven against a
//! verified header's `receiptsRoot`, and contract storage proven against its `stateRoot`.
//!
//! - [`HeaderVerifier`] turns a block number into a [`VerifiedHeader`], or says why it
//!   cannot. Its one implementation here, [`HashChainVerifier`], recomputes each header's
//!   hash from its RLP fields, links every header to its parent from a persisted
//!   [`HeaderCheckpoint`], waits the configured confirmations and notices a chain that was
//!   reorganised or reset under the checkpoint.
//! - [`verify_receipt`] checks a [`ReceiptProof`] (a receipts-trie path) against a verified
//!   header and gives the receipt's logs; [`prove_receipt`] fetches and checks one for a
//!   transaction.
//! - [`verify_storage`] checks a [`StorageProof`] (`eth_getProof`: the account's path in
//!   the state trie, then the slot's path in its storage trie); [`prove_storage`] fetches
//!   and checks one.
//!
//! # What this proves on anvil, and what it cannot
//! anvil (or any dev chain without a consensus protocol) has no signatures on its blocks.
//! What the hash chain gives is consistency and continuity: every header, receipt and
//! storage value checked here belongs to one chain of headers that extends the checkpoint,
//! so a node cannot answer one question from one chain and the next from another, cannot
//! change a receipt or a storage slot without changing the header hash, and cannot rewind
//! or replace the chain below the checkpoint without being caught
//! ([`ProofError::is_chain_fault`]). It cannot tell whether the chain is the one the
//! network agreed on: a node that controls the chain (anvil's operator) can build a
//! different, internally consistent chain on top of the checkpoint, and the first
//! checkpoint is trusted on first use. A consensus light client (sync-committee
//! signatures for Ethereum's beacon chain, validator signatures for a PoA chain) would
//! implement [`HeaderVerifier`] and take [`HashChainVerifier`]'s place; the receipt and
//! storage checks stay as they are.
//!
//! Every number, hash and proof node a node sends is parsed with checked conversions: a
//! malformed answer is a [`ProofError::Malformed`], never a panic.

mod error;
#[cfg(any(test, feature = "fake-node"))]
pub mod fake;
mod header;
mod receipt;
mod rpc;
mod storage;

pub use error::{ProofError, ReceiptProofError, StorageProofError};
pub use header::{
    BlockHeader, HashChainVerifier, HeaderCheckpoint, HeaderVerifier, VerifiedHeader,
};
pub use receipt::{
    Receipt, ReceiptLog, ReceiptProof, VerifiedReceipt, build_receipt_proof, prove_receipt,
    verify_receipt,
};
pub use storage::{
    SERVED_REQUEST_SLOT, StorageProof, VerifiedStorage, mapping_slot, prove_storage,
    served_request_slot, verify_storage,
};

use sha3::{Digest, Sha3_256};

/// SHA3-256 over each part, each preceded by its length (8 bytes, big-endian), so that no
/// two lists of parts digest alike: the digest a proof is recorded under.
fn digest_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}
