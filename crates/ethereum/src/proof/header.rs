//! Block headers: their hash recomputed from their fields, linked by parent hash from a
//! trusted checkpoint.

use std::collections::BTreeMap;
use std::future::Future;

use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U64, U256, keccak256};
use alloy_rlp::RlpEncodable;
use ethers::providers::Middleware;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::ProofError;
use super::rpc::{self, ClaimedHeader};

/// An Ethereum block header: the fields its hash is taken over, in their RLP order. The
/// optional fields came with later forks (London's base fee, Shanghai's withdrawals,
/// Cancun's blob gas and beacon root, Prague's requests) and are absent before them.
/// Parsed from a node's block JSON (its other fields, such as `hash`, are ignored).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, Serialize, Deserialize)]
#[rlp(trailing)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeader {
    /// The parent block's hash.
    pub parent_hash: B256,
    /// Hash of the ommers list.
    #[serde(rename = "sha3Uncles")]
    pub ommers_hash: B256,
    /// The fee recipient.
    #[serde(rename = "miner")]
    pub beneficiary: Address,
    /// Root of the state trie after the block.
    pub state_root: B256,
    /// Root of the transactions trie.
    pub transactions_root: B256,
    /// Root of the receipts trie.
    pub receipts_root: B256,
    /// Bloom filter of the block's logs.
    pub logs_bloom: Bloom,
    /// Proof-of-work difficulty (0 after the merge).
    pub difficulty: U256,
    /// The block's number.
    pub number: U64,
    /// Gas limit.
    pub gas_limit: U64,
    /// Gas used.
    pub gas_used: U64,
    /// The block's time, Unix seconds.
    pub timestamp: U64,
    /// Extra data.
    pub extra_data: Bytes,
    /// Mix hash (the beacon chain's randomness after the merge).
    pub mix_hash: B256,
    /// Proof-of-work nonce (0 after the merge).
    pub nonce: B64,
    /// London: base fee per gas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<U256>,
    /// Shanghai: root of the withdrawals trie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals_root: Option<B256>,
    /// Cancun: blob gas used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_gas_used: Option<U64>,
    /// Cancun: excess blob gas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excess_blob_gas: Option<U64>,
    /// Cancun: the parent beacon block's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_beacon_block_root: Option<B256>,
    /// Prague: hash of the execution-layer requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_hash: Option<B256>,
}

impl BlockHeader {
    /// The block hash: keccak256 of the header's RLP.
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }
}

/// A header whose hash was recomputed from its fields and linked to a trusted checkpoint
/// (or proven by whatever [`HeaderVerifier`] produced it). Only verifiers make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHeader {
    hash: B256,
    header: BlockHeader,
}

impl VerifiedHeader {
    /// Accepts `claimed` if its fields hash to its claimed hash.
    fn recomputed(claimed: ClaimedHeader) -> Result<Self, ProofError> {
        let computed = claimed.header.hash();
        if computed != claimed.hash {
            return Err(ProofError::HeaderHash {
                number: claimed.header.number.to(),
                claimed: claimed.hash,
                computed,
            });
        }
        Ok(Self {
            hash: computed,
            header: claimed.header,
        })
    }

    /// The block's hash.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The block's number.
    pub fn number(&self) -> u64 {
        self.header.number.to()
    }

    /// The block's time, Unix seconds.
    pub fn timestamp(&self) -> u64 {
        self.header.timestamp.to()
    }

    /// The parent block's hash.
    pub fn parent_hash(&self) -> B256 {
        self.header.parent_hash
    }

    /// Root of the receipts trie: what receipt proofs are checked against.
    pub fn receipts_root(&self) -> B256 {
        self.header.receipts_root
    }

    /// Root of the state trie: what storage proofs are checked against.
    pub fn state_root(&self) -> B256 {
        self.header.state_root
    }

    /// All the header's fields.
    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// The checkpoint this header makes.
    pub fn checkpoint(&self) -> HeaderCheckpoint {
        HeaderCheckpoint {
            number: self.number(),
            hash: self.hash,
        }
    }
}

/// A block the verifier trusts: every later header must link back to it. Persist it and
/// give it back to [`HashChainVerifier::new`] after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderCheckpoint {
    /// The block's number.
    pub number: u64,
    /// The block's hash.
    pub hash: B256,
}

/// Turns block numbers into verified headers. [`HashChainVerifier`] checks the hash chain
/// (all a chain without consensus signatures allows); a consensus light client would
/// implement this trait and take its place.
pub trait HeaderVerifier: Send + Sync {
    /// The verified header of block `number`, once the block is final (it has the
    /// confirmations the verifier requires); [`ProofError::NotFinal`] before.
    fn header(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<VerifiedHeader, ProofError>> + Send;

    /// The newest final block's verified header.
    fn final_head(&self) -> impl Future<Output = Result<VerifiedHeader, ProofError>> + Send;
}

/// How many verified headers are kept in memory, so that proving in a recent block does
/// not walk the chain again.
const KEPT_HEADERS: usize = 65_536;

/// The hash-chain verifier: each header's hash is recomputed from its fields, each header
/// links to its parent, and every final block links back to the checkpoint (see the
/// [module docs](super) for what this proves on a chain without consensus signatures).
pub struct HashChainVerifier<M> {
    provider: M,
    confirmations: u64,
    state: Mutex<Chain>,
}

/// What the verifier has verified: the checkpoint (the newest final block verified, or
/// the persisted one until it is checked again) and the verified headers kept, by number.
struct Chain {
    checkpoint: Option<HeaderCheckpoint>,
    kept: BTreeMap<u64, VerifiedHeader>,
}

impl Chain {
    fn keep(&mut self, header: VerifiedHeader) {
        self.kept.insert(header.number(), header);
        while self.kept.len() > KEPT_HEADERS {
            self.kept.pop_first();
        }
    }
}

impl<M> HashChainVerifier<M>
where
    M: Middleware,
{
    /// A verifier reading headers from `provider`. A block is final once `confirmations`
    /// blocks (counting its own; at least 1) are on the chain. Without a checkpoint, the
    /// newest final block at the first call is trusted as it is (trust on first use).
    pub fn new(provider: M, confirmations: u64, checkpoint: Option<HeaderCheckpoint>) -> Self {
        Self {
            provider,
            confirmations: confirmations.max(1),
            state: Mutex::new(Chain {
                checkpoint,
                kept: BTreeMap::new(),
            }),
        }
    }

    /// The node the headers come from.
    pub fn provider(&self) -> &M {
        &self.provider
    }

    /// The checkpoint: the newest final block verified so far. Persist it to resume from
    /// it after a restart.
    pub async fn checkpoint(&self) -> Option<HeaderCheckpoint> {
        self.state.lock().await.checkpoint
    }

    async fn claimed_by_number(&self, number: u64) -> Result<VerifiedHeader, ProofError> {
        let claimed = rpc::header_by_number(&self.provider, number)
            .await?
            .ok_or_else(|| ProofError::Missing(format!("block {number}")))?;
        if claimed.header.number != U64::from(number) {
            return Err(ProofError::Inconsistent {
                number,
                what: format!("the node answered with block {}", claimed.header.number),
            });
        }
        VerifiedHeader::recomputed(claimed)
    }

    /// The newest final block's number.
    async fn final_number(&self) -> Result<u64, ProofError> {
        let head = rpc::block_number(&self.provider).await?;
        (head + 1)
            .checked_sub(self.confirmations)
            .ok_or(ProofError::NotFinal {
                number: head,
                final_block: None,
            })
    }

    /// Extends the verified chain from the checkpoint to the newest final block, after
    /// checking that the checkpoint is still the block at its height; returns the new
    /// checkpoint's header.
    async fn advance(&self, state: &mut Chain) -> Result<VerifiedHeader, ProofError> {
        let final_number = self.final_number().await?;
        let Some(anchor) = state.checkpoint else {
            let first = self.claimed_by_number(final_number).await?;
            state.keep(first.clone());
            state.checkpoint = Some(first.checkpoint());
            return Ok(first);
        };
        let went_back = ProofError::WentBack {
            checkpoint: anchor.number,
            final_block: final_number,
        };
        if final_number < anchor.number {
            return Err(went_back);
        }
        let mut previous = match self.claimed_by_number(anchor.number).await {
            Err(ProofError::Missing(_)) => return Err(went_back),
            other => other?,
        };
        if previous.hash != anchor.hash {
            return Err(ProofError::Reorganised {
                number: anchor.number,
                checkpoint: anchor.hash,
                now: previous.hash,
            });
        }
        state.keep(previous.clone());
        for number in anchor.number + 1..=final_number {
            let next = self.claimed_by_number(number).await?;
            if next.parent_hash() != previous.hash {
                return Err(ProofError::ParentLink {
                    number,
                    parent: next.parent_hash(),
                    expected: previous.hash,
                });
            }
            state.keep(next.clone());
            // Committed block by block: a later failure keeps what was verified.
            state.checkpoint = Some(next.checkpoint());
            previous = next;
        }
        Ok(previous)
    }

    /// Block `number` below the checkpoint: walked back by parent hash from the nearest
    /// verified header above it.
    async fn behind(&self, state: &mut Chain, number: u64) -> Result<VerifiedHeader, ProofError> {
        let mut above = state
            .kept
            .range(number..)
            .next()
            .map(|(_, header)| header.clone())
            .ok_or_else(|| ProofError::Missing(format!("verified block above {number}")))?;
        while above.number() > number {
            let parent = above.parent_hash();
            let claimed = rpc::header_by_hash(&self.provider, parent)
                .await?
                .ok_or_else(|| ProofError::Missing(format!("block {parent}")))?;
            let header = VerifiedHeader::recomputed(claimed)?;
            if header.hash != parent {
                return Err(ProofError::ParentLink {
                    number: above.number(),
                    parent,
                    expected: header.hash,
                });
            }
            if header.number() + 1 != above.number() {
                return Err(ProofError::Inconsistent {
                    number: above.number(),
                    what: format!("its parent {parent} is block {}", header.number()),
                });
            }
            state.keep(header.clone());
            above = header;
        }
        Ok(above)
    }
}

impl<M> HeaderVerifier for HashChainVerifier<M>
where
    M: Middleware,
{
    async fn header(&self, number: u64) -> Result<VerifiedHeader, ProofError> {
        let mut state = self.state.lock().await;
        let newest = self.advance(&mut state).await?;
        if number > newest.number() {
            return Err(ProofError::NotFinal {
                number,
                final_block: Some(newest.number()),
            });
        }
        if let Some(header) = state.kept.get(&number) {
            return Ok(header.clone());
        }
        self.behind(&mut state, number).await
    }

    async fn final_head(&self) -> Result<VerifiedHeader, ProofError> {
        let mut state = self.state.lock().await;
        self.advance(&mut state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::fake::FakeNode;
    use serde_json::json;

    fn verifier(
        node: &FakeNode,
        confirmations: u64,
        checkpoint: Option<HeaderCheckpoint>,
    ) -> HashChainVerifier<ethers::providers::Provider<FakeNode>> {
        HashChainVerifier::new(node.provider(), confirmations, checkpoint)
    }

    #[tokio::test]
    async fn an_honest_chain_verifies_from_the_checkpoint_on() {
        let node = FakeNode::new(5);
        let verifier = verifier(&node, 1, None);
        let first = verifier.final_head().await.unwrap();
        assert_eq!((first.number(), first.hash()), (5, node.hash(5)));
        assert_eq!(verifier.checkpoint().await, Some(first.checkpoint()));
        for _ in 0..3 {
            node.mine();
        }
        let header = verifier.header(7).await.unwrap();
        assert_eq!(header.hash(), node.hash(7));
        assert_eq!(header.timestamp(), 1_000_000 + 12 * 7);
        assert_eq!(verifier.checkpoint().await.unwrap().number, 8);
        // Below the checkpoint: walked back by parent hash.
        let resumed = self::verifier(&node, 1, verifier.checkpoint().await);
        assert_eq!(resumed.header(2).await.unwrap().hash(), node.hash(2));
        // The header round-trips through the node's JSON and hashes as claimed.
        assert_eq!(node.hash(3), header_of(&node, 3).hash());
    }

    fn header_of(node: &FakeNode, number: u64) -> BlockHeader {
        let mut header = None;
        node.tamper(number, |h| header = Some(h.clone()));
        header.unwrap()
    }

    #[tokio::test]
    async fn a_tampered_header_is_a_chain_fault() {
        let node = FakeNode::new(5);
        let verifier = verifier(&node, 1, None);
        verifier.final_head().await.unwrap();
        node.mine();
        node.mine();
        node.tamper(6, |h| h.receipts_root = B256::repeat_byte(0xee));
        let error = verifier.header(7).await.unwrap_err();
        assert!(
            matches!(error, ProofError::HeaderHash { number: 6, .. }),
            "{error}"
        );
        assert!(error.is_chain_fault());
        // The checkpoint stays at the last block verified.
        assert_eq!(verifier.checkpoint().await.unwrap().number, 5);

        // Also below the checkpoint.
        let node = FakeNode::new(5);
        node.tamper(2, |h| h.timestamp = U64::from(1u64));
        let resumed = self::verifier(
            &node,
            1,
            Some(HeaderCheckpoint {
                number: 5,
                hash: node.hash(5),
            }),
        );
        let error = resumed.header(1).await.unwrap_err();
        assert!(
            matches!(error, ProofError::HeaderHash { number: 2, .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_broken_parent_link_is_a_chain_fault() {
        let node = FakeNode::new(5);
        let verifier = verifier(&node, 1, None);
        verifier.final_head().await.unwrap();
        node.mine();
        node.mine();
        node.rewrite(6, |h| h.parent_hash = B256::repeat_byte(0xab));
        let error = verifier.header(6).await.unwrap_err();
        assert!(
            matches!(error, ProofError::ParentLink { number: 6, .. }),
            "{error}"
        );
        assert!(error.is_chain_fault());
    }

    #[tokio::test]
    async fn a_reorganised_or_reset_chain_is_a_chain_fault() {
        let node = FakeNode::new(5);
        let checkpoint = verifier(&node, 1, None)
            .final_head()
            .await
            .unwrap()
            .checkpoint();

        // Replaced below the checkpoint, longer than before: a persisted checkpoint
        // catches it after a restart too.
        node.fork(4, 4);
        let error = verifier(&node, 1, Some(checkpoint))
            .final_head()
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProofError::Reorganised { number: 5, .. }),
            "{error}"
        );
        assert!(error.is_chain_fault());

        // Reset to a shorter chain.
        node.fork(1, 2);
        let error = verifier(&node, 1, Some(checkpoint))
            .header(1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ProofError::WentBack {
                    checkpoint: 5,
                    final_block: 2
                }
            ),
            "{error}"
        );
        assert!(error.is_chain_fault());
    }

    #[tokio::test]
    async fn blocks_wait_for_their_confirmations() {
        let node = FakeNode::new(5);
        let verifier = verifier(&node, 3, None);
        assert_eq!(verifier.final_head().await.unwrap().number(), 3);
        let error = verifier.header(4).await.unwrap_err();
        assert!(
            matches!(
                error,
                ProofError::NotFinal {
                    number: 4,
                    final_block: Some(3)
                }
            ),
            "{error}"
        );
        assert!(!error.is_chain_fault());
        node.mine();
        assert_eq!(verifier.header(4).await.unwrap().hash(), node.hash(4));
        let short = FakeNode::new(0);
        assert!(matches!(
            self::verifier(&short, 2, None).final_head().await,
            Err(ProofError::NotFinal {
                final_block: None,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn malformed_numbers_from_the_node_are_errors_not_panics() {
        let node = FakeNode::new(3);
        node.answer("eth_blockNumber", json!("0x1ffffffffffffffffff"));
        let error = verifier(&node, 1, None).final_head().await.unwrap_err();
        assert!(
            matches!(
                error,
                ProofError::Malformed {
                    method: "eth_blockNumber",
                    ..
                }
            ),
            "{error}"
        );
        assert!(!error.is_chain_fault());

        let node = FakeNode::new(3);
        let mut block = serde_json::to_value(header_of(&node, 3)).unwrap();
        block["hash"] = json!(node.hash(3));
        block["timestamp"] = json!("0x10000000000000000");
        node.answer("eth_getBlockByNumber", block);
        let error = verifier(&node, 1, None).final_head().await.unwrap_err();
        assert!(
            matches!(
                error,
                ProofError::Malformed {
                    method: "eth_getBlockByNumber",
                    ..
                }
            ),
            "{error}"
        );

        node.answer("eth_getBlockByNumber", json!({"hash": "0x12"}));
        assert!(matches!(
            verifier(&node, 1, None).final_head().await,
            Err(ProofError::Malformed { .. })
        ));
    }
}
