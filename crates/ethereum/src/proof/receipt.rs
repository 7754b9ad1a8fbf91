//! Receipts as a block header commits to them: EIP-2718 encodings, the receipts trie
//! (Merkle-Patricia, keyed by the RLP of the transaction index) and inclusion proofs
//! checked with alloy-trie against a verified header's `receiptsRoot`.

use alloy_primitives::{Address, B256, Bloom, Bytes};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use alloy_trie::proof::{ProofRetainer, verify_proof};
use alloy_trie::{HashBuilder, Nibbles, root::adjust_index_for_rlp};
use ethers::providers::Middleware;

use super::rpc::{self, RpcReceipt};
use super::{HeaderVerifier, ProofError, ReceiptProofError, VerifiedHeader, digest_parts};

/// One log of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct ReceiptLog {
    /// The emitting contract.
    pub address: Address,
    /// The indexed topics.
    pub topics: Vec<B256>,
    /// The unindexed data.
    pub data: Bytes,
}

/// The consensus fields of a post-Byzantium receipt, in their RLP order.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct ReceiptBody {
    success: bool,
    cumulative_gas_used: u64,
    logs_bloom: Bloom,
    logs: Vec<ReceiptLog>,
}

/// A transaction receipt as committed in the receipts trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// EIP-2718 transaction type (0 legacy, 1 access list, 2 dynamic fee, ...).
    pub tx_type: u8,
    /// Whether the transaction succeeded.
    pub success: bool,
    /// Gas used in the block up to and including it.
    pub cumulative_gas_used: u64,
    /// The logs' bloom filter.
    pub logs_bloom: Bloom,
    /// Its logs.
    pub logs: Vec<ReceiptLog>,
}

impl Receipt {
    /// The trie value: `type ‖ rlp(body)` for typed receipts, bare `rlp(body)` for legacy.
    pub fn encode_2718(&self) -> Vec<u8> {
        let body = ReceiptBody {
            success: self.success,
            cumulative_gas_used: self.cumulative_gas_used,
            logs_bloom: self.logs_bloom,
            logs: self.logs.clone(),
        };
        let mut out = Vec::with_capacity(body.length() + 1);
        if self.tx_type != 0 {
            out.push(self.tx_type);
        }
        body.encode(&mut out);
        out
    }

    /// Decodes the EIP-2718 encoding ([`Self::encode_2718`]).
    pub fn decode_2718(bytes: &[u8]) -> Result<Self, ReceiptProofError> {
        let (tx_type, mut rest) = match bytes.split_first() {
            None => return Err(ReceiptProofError::Empty),
            // An RLP list starts at 0xc0; anything below is an EIP-2718 type byte.
            Some((&first, rest)) if first < 0xc0 => (first, rest),
            Some(_) => (0, bytes),
        };
        let body = ReceiptBody::decode(&mut rest).map_err(ReceiptProofError::Rlp)?;
        if !rest.is_empty() {
            return Err(ReceiptProofError::Trailing(rest.len()));
        }
        Ok(Self {
            tx_type,
            success: body.success,
            cumulative_gas_used: body.cumulative_gas_used,
            logs_bloom: body.logs_bloom,
            logs: body.logs,
        })
    }

    /// The consensus fields of a node's receipt, checked: a status other than 0 or 1 (or
    /// none, as before Byzantium) is malformed.
    fn from_rpc(receipt: &RpcReceipt) -> Result<Self, String> {
        let success = match receipt.status.map(|s| s.to::<u64>()) {
            Some(0) => false,
            Some(1) => true,
            other => return Err(format!("receipt status {other:?}")),
        };
        Ok(Self {
            tx_type: receipt.tx_type.map(|t| t.to::<u8>()).unwrap_or(0),
            success,
            cumulative_gas_used: receipt.cumulative_gas_used.to(),
            logs_bloom: receipt.logs_bloom,
            logs: receipt
                .logs
                .iter()
                .map(|log| ReceiptLog {
                    address: log.address,
                    topics: log.topics.clone(),
                    data: log.data.clone(),
                })
                .collect(),
        })
    }
}

/// A receipt's path in its block's receipts trie: what a verifier needs besides the
/// header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptProof {
    /// The transaction's index in the block.
    pub tx_index: u64,
    /// The receipt's EIP-2718 encoding.
    pub receipt: Vec<u8>,
    /// The trie nodes from the root to the receipt's leaf, RLP.
    pub nodes: Vec<Bytes>,
}

impl ReceiptProof {
    /// SHA3-256 of the index, the receipt and the nodes, in order (each part length-
    /// prefixed): the digest the proof is recorded under.
    pub fn digest(&self) -> [u8; 32] {
        let index = self.tx_index.to_be_bytes();
        digest_parts(
            [index.as_slice(), self.receipt.as_slice()]
                .into_iter()
                .chain(self.nodes.iter().map(|n| n.as_ref())),
        )
    }
}

fn trie_key(index: usize) -> Nibbles {
    Nibbles::unpack(alloy_rlp::encode_fixed_size(&index))
}

/// Rebuilds the receipts trie of a block from all its receipts (EIP-2718 encodings, in
/// transaction order) and returns its root and the proof of receipt `index`.
pub fn build_receipt_proof(
    receipts: &[Vec<u8>],
    index: usize,
) -> Result<(B256, ReceiptProof), ReceiptProofError> {
    let Some(receipt) = receipts.get(index) else {
        return Err(ReceiptProofError::NoSuchReceipt {
            index: index as u64,
            count: receipts.len(),
        });
    };
    let target = trie_key(index);
    let mut builder = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![target]));
    // Leaves must arrive in key order; RLP(i) sorts 1..=0x7f, then 0, then 0x80.. .
    for i in 0..receipts.len() {
        let item = adjust_index_for_rlp(i, receipts.len());
        builder.add_leaf(trie_key(item), &receipts[item]);
    }
    let root = builder.root();
    let nodes = builder
        .take_proof_nodes()
        .matching_nodes_sorted(&target)
        .into_iter()
        .map(|(_, node)| node)
        .collect();
    let proof = ReceiptProof {
        tx_index: index as u64,
        receipt: receipt.clone(),
        nodes,
    };
    Ok((root, proof))
}

/// Checks that `proof.receipt` is the receipt at `proof.tx_index` under `root`, and
/// returns it decoded.
fn verify_against(root: B256, proof: &ReceiptProof) -> Result<Receipt, ReceiptProofError> {
    let index = usize::try_from(proof.tx_index).map_err(|_| ReceiptProofError::NoSuchReceipt {
        index: proof.tx_index,
        count: 0,
    })?;
    verify_proof(
        root,
        trie_key(index),
        Some(proof.receipt.clone()),
        &proof.nodes,
    )
    .map_err(|source| ReceiptProofError::Mismatch {
        index: proof.tx_index,
        root,
        source: Box::new(source),
    })?;
    Receipt::decode_2718(&proof.receipt)
}

/// Checks `proof` against the verified `header`'s `receiptsRoot` and returns the receipt
/// (its status and logs) as the block commits to it.
pub fn verify_receipt(
    header: &VerifiedHeader,
    proof: &ReceiptProof,
) -> Result<Receipt, ProofError> {
    verify_against(header.receipts_root(), proof).map_err(|source| ProofError::Receipt {
        number: header.number(),
        source,
    })
}

/// A receipt proven against a verified header.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    /// The header it was proven against.
    pub header: VerifiedHeader,
    /// The transaction, as the node names it: the receipts trie commits to the index and
    /// the receipt, not to the transaction's hash.
    pub tx_hash: B256,
    /// The receipt, as the block commits to it.
    pub receipt: Receipt,
    /// The proof.
    pub proof: ReceiptProof,
}

impl VerifiedReceipt {
    /// The receipt's logs.
    pub fn logs(&self) -> &[ReceiptLog] {
        &self.receipt.logs
    }
}

/// Proves transaction `tx`'s receipt: finds its block, has `verifier` verify the block's
/// header (so the block must be final), rebuilds the block's receipts trie from the
/// node's receipts and checks the path to `tx`'s receipt against the verified
/// `receiptsRoot`. `Ok(None)` while the node has no receipt for `tx` (not mined, or
/// unknown).
pub async fn prove_receipt<M, V>(
    provider: &M,
    verifier: &V,
    tx: B256,
) -> Result<Option<VerifiedReceipt>, ProofError>
where
    M: Middleware,
    V: HeaderVerifier,
{
    let Some(claimed) = rpc::transaction_receipt(provider, tx).await? else {
        return Ok(None);
    };
    let (Some(number), Some(block_hash)) = (claimed.block_number, claimed.block_hash) else {
        return Ok(None);
    };
    let number: u64 = number.to();
    let header = verifier.header(number).await?;
    let inconsistent = |what: String| ProofError::Inconsistent { number, what };
    if header.hash() != block_hash {
        return Err(inconsistent(format!(
            "the receipt of {tx} is in block {block_hash}, the verified block is {}",
            header.hash()
        )));
    }
    let receipts = rpc::block_receipts(provider, number).await?;
    let index: usize = claimed.transaction_index.to();
    match receipts.get(index) {
        Some(at) if at.transaction_hash == tx && at.block_hash == Some(block_hash) => {}
        _ => {
            return Err(inconsistent(format!(
                "{tx} is not at index {index} of the block's {} receipts",
                receipts.len()
            )));
        }
    }
    let encoded = receipts
        .iter()
        .map(|r| Receipt::from_rpc(r).map(|r| r.encode_2718()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|what| inconsistent(format!("a receipt of the block is malformed: {what}")))?;
    let (_, proof) = build_receipt_proof(&encoded, index)
        .map_err(|source| ProofError::Receipt { number, source })?;
    // The verified header's receiptsRoot is the anchor; the node's receipts are not.
    let receipt = verify_receipt(&header, &proof)?;
    Ok(Some(VerifiedReceipt {
        header,
        tx_hash: tx,
        receipt,
        proof,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(i: u8, tx_type: u8) -> Receipt {
        Receipt {
            tx_type,
            success: i % 5 != 3,
            cumulative_gas_used: 21_000 * (u64::from(i) + 1),
            logs_bloom: Bloom::repeat_byte(i),
            logs: (0..i % 3)
                .map(|k| ReceiptLog {
                    address: Address::repeat_byte(i),
                    topics: vec![B256::repeat_byte(k), B256::repeat_byte(i)],
                    data: Bytes::from(vec![k; usize::from(i)]),
                })
                .collect(),
        }
    }

    fn block(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| receipt(i as u8, [0, 1, 2][i % 3]).encode_2718())
            .collect()
    }

    #[test]
    fn encodings_round_trip_for_every_type() {
        for tx_type in [0, 1, 2, 3, 4] {
            let r = receipt(4, tx_type);
            let encoded = r.encode_2718();
            assert_eq!(encoded[0] == tx_type, tx_type != 0);
            assert_eq!(Receipt::decode_2718(&encoded).unwrap(), r);
        }
        assert_eq!(Receipt::decode_2718(&[]), Err(ReceiptProofError::Empty));
        let mut trailing = receipt(1, 2).encode_2718();
        trailing.push(0);
        assert_eq!(
            Receipt::decode_2718(&trailing),
            Err(ReceiptProofError::Trailing(1))
        );
    }

    #[test]
    fn root_matches_alloy_ordered_root() {
        for count in [1, 2, 3, 17, 130, 300] {
            let receipts = block(count);
            let expected = alloy_trie::root::ordered_trie_root_encoded(&receipts);
            for index in [0, count / 2, count - 1] {
                let (root, _) = build_receipt_proof(&receipts, index).unwrap();
                assert_eq!(root, expected, "{count} receipts");
            }
        }
    }

    #[test]
    fn every_receipt_proves_against_the_root() {
        for count in [1, 2, 5, 129, 200] {
            let receipts = block(count);
            for index in 0..count {
                let (root, proof) = build_receipt_proof(&receipts, index).unwrap();
                let decoded = verify_against(root, &proof).unwrap();
                assert_eq!(decoded.encode_2718(), receipts[index]);
            }
        }
    }

    #[test]
    fn a_tampered_receipt_or_root_is_refused() {
        let receipts = block(20);
        let (root, good) = build_receipt_proof(&receipts, 7).unwrap();
        let mismatch = |root, proof: &ReceiptProof| {
            matches!(
                verify_against(root, proof),
                Err(ReceiptProofError::Mismatch { .. })
            )
        };

        // A forged log in the claimed receipt.
        let mut forged = receipt(7, [0, 1, 2][7 % 3]);
        forged.logs.push(ReceiptLog {
            address: Address::repeat_byte(0xee),
            topics: vec![B256::repeat_byte(0xee)],
            data: Bytes::new(),
        });
        let tampered = ReceiptProof {
            receipt: forged.encode_2718(),
            ..good.clone()
        };
        assert!(mismatch(root, &tampered));

        // A flipped bit anywhere in the encoding.
        let mut flipped = good.clone();
        let last = flipped.receipt.len() - 1;
        flipped.receipt[last] ^= 1;
        assert!(verify_against(root, &flipped).is_err());

        // Another block's root.
        let (other_root, _) = build_receipt_proof(&block(21), 7).unwrap();
        assert!(mismatch(other_root, &good));

        // The right receipt claimed at another index.
        let moved = ReceiptProof {
            tx_index: 8,
            ..good.clone()
        };
        assert!(verify_against(root, &moved).is_err());

        // A truncated proof, and a tampered inner node.
        let mut truncated = good.clone();
        truncated.nodes.pop();
        assert!(verify_against(root, &truncated).is_err());
        let mut bad_node = good.clone();
        let mut node = bad_node.nodes[0].to_vec();
        node[3] ^= 0x40;
        bad_node.nodes[0] = node.into();
        assert!(verify_against(root, &bad_node).is_err());

        assert!(verify_against(root, &good).is_ok());
        assert_ne!(good.digest(), tampered.digest());
        assert_ne!(good.digest(), moved.digest());
    }

    #[test]
    fn index_outside_the_block_is_refused() {
        assert_eq!(
            build_receipt_proof(&block(3), 3).unwrap_err(),
            ReceiptProofError::NoSuchReceipt { index: 3, count: 3 }
        );
    }
}
