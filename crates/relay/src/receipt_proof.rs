//! Ethereum receipts as the block header commits to them: EIP-2718 encodings, the
//! receipts trie (Merkle-Patricia, keyed by RLP of the transaction index) and inclusion
//! proofs checked with alloy-trie against the header's `receiptsRoot`.

use alloy_primitives::{Address, B256, Bytes, FixedBytes};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use alloy_trie::proof::{ProofRetainer, verify_proof};
use alloy_trie::{HashBuilder, Nibbles, root::adjust_index_for_rlp};

use crate::proto::EthereumProof;

/// Why a receipt proof fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptProofError {
    /// The proof does not lead from the root to the receipt.
    #[error("the receipt of transaction {index} does not verify against receiptsRoot {root}")]
    Mismatch {
        /// The transaction's index in the block.
        index: u64,
        /// The block's receipts root.
        root: String,
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
    /// A proof field has the wrong size.
    #[error("malformed proof field {0}")]
    MalformedField(&'static str),
}

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
    logs_bloom: FixedBytes<256>,
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
    pub logs_bloom: [u8; 256],
    /// Its logs.
    pub logs: Vec<ReceiptLog>,
}

impl Receipt {
    /// The trie value: `type ‖ rlp(body)` for typed receipts, bare `rlp(body)` for legacy.
    pub fn encode_2718(&self) -> Vec<u8> {
        let body = ReceiptBody {
            success: self.success,
            cumulative_gas_used: self.cumulative_gas_used,
            logs_bloom: FixedBytes(self.logs_bloom),
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
        let (tx_type, mut rest) = match bytes.first() {
            None => return Err(ReceiptProofError::Empty),
            // An RLP list starts at 0xc0; anything below is an EIP-2718 type byte.
            Some(&first) if first < 0xc0 => (first, &bytes[1..]),
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
            logs_bloom: body.logs_bloom.0,
            logs: body.logs,
        })
    }
}

fn trie_key(index: usize) -> Nibbles {
    Nibbles::unpack(alloy_rlp::encode_fixed_size(&index))
}

/// Rebuilds the receipts trie of a block from all its receipts (EIP-2718 encodings, in
/// transaction order) and returns its root and the proof nodes of receipt `index`.
pub fn build_proof(
    receipts: &[Vec<u8>],
    index: usize,
) -> Result<(B256, Vec<Bytes>), ReceiptProofError> {
    if index >= receipts.len() {
        return Err(ReceiptProofError::NoSuchReceipt {
            index: index as u64,
            count: receipts.len(),
        });
    }
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
    Ok((root, nodes))
}

/// Checks that `proof.receipt` is the receipt at `proof.tx_index` under
/// `proof.receipts_root`, and returns it decoded.
pub fn verify(proof: &EthereumProof) -> Result<Receipt, ReceiptProofError> {
    let root: [u8; 32] = proof
        .receipts_root
        .as_slice()
        .try_into()
        .map_err(|_| ReceiptProofError::MalformedField("receipts_root"))?;
    let root = B256::from(root);
    let index = usize::try_from(proof.tx_index)
        .map_err(|_| ReceiptProofError::MalformedField("tx_index"))?;
    let nodes: Vec<Bytes> = proof
        .trie_nodes
        .iter()
        .map(|n| Bytes::copy_from_slice(n))
        .collect();
    verify_proof(root, trie_key(index), Some(proof.receipt.clone()), &nodes).map_err(|source| {
        ReceiptProofError::Mismatch {
            index: proof.tx_index,
            root: format!("{root}"),
            source: Box::new(source),
        }
    })?;
    Receipt::decode_2718(&proof.receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(i: u8, tx_type: u8) -> Receipt {
        Receipt {
            tx_type,
            success: i % 5 != 3,
            cumulative_gas_used: 21_000 * (u64::from(i) + 1),
            logs_bloom: [i; 256],
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

    fn proof_of(receipts: &[Vec<u8>], index: usize) -> EthereumProof {
        let (root, nodes) = build_proof(receipts, index).unwrap();
        EthereumProof {
            chain_id: 31337,
            block_number: 7,
            block_hash: vec![0; 32],
            receipts_root: root.to_vec(),
            tx_index: index as u64,
            receipt: receipts[index].clone(),
            trie_nodes: nodes.iter().map(|n| n.to_vec()).collect(),
        }
    }

    #[test]
    fn encodings_round_trip_for_every_type() {
        for tx_type in [0, 1, 2, 3, 4] {
            let r = receipt(4, tx_type);
            let encoded = r.encode_2718();
            assert_eq!(encoded[0] == tx_type, tx_type != 0);
            assert_eq!(Receipt::decode_2718(&encoded).unwrap(), r);
        }
        assert!(Receipt::decode_2718(&[]).is_err());
        let mut trailing = receipt(1, 2).encode_2718();
        trailing.push(0);
        assert!(Receipt::decode_2718(&trailing).is_err());
    }

    #[test]
    fn root_matches_alloy_ordered_root() {
        for count in [1, 2, 3, 17, 130, 300] {
            let receipts = block(count);
            let expected = alloy_trie::root::ordered_trie_root_encoded(&receipts);
            for index in [0, count / 2, count - 1] {
                let (root, _) = build_proof(&receipts, index).unwrap();
                assert_eq!(root, expected, "{count} receipts");
            }
        }
    }

    #[test]
    fn every_receipt_proves_against_the_root() {
        for count in [1, 2, 5, 129, 200] {
            let receipts = block(count);
            for index in 0..count {
                let proof = proof_of(&receipts, index);
                let decoded = verify(&proof).unwrap();
                assert_eq!(decoded.encode_2718(), receipts[index]);
            }
        }
    }

    #[test]
    fn a_tampered_receipt_or_root_is_refused() {
        let receipts = block(20);
        let good = proof_of(&receipts, 7);

        // A forged log in the claimed receipt.
        let mut forged = receipt(7, [0, 1, 2][7 % 3]);
        forged.logs.push(ReceiptLog {
            address: Address::repeat_byte(0xee),
            topics: vec![B256::repeat_byte(0xee)],
            data: Bytes::new(),
        });
        let mut tampered = good.clone();
        tampered.receipt = forged.encode_2718();
        assert!(matches!(
            verify(&tampered),
            Err(ReceiptProofError::Mismatch { .. })
        ));

        // A flipped bit anywhere in the encoding.
        let mut flipped = good.clone();
        let last = flipped.receipt.len() - 1;
        flipped.receipt[last] ^= 1;
        assert!(verify(&flipped).is_err());

        // Another block's root.
        let mut other_root = good.clone();
        other_root.receipts_root = proof_of(&block(21), 7).receipts_root;
        assert!(matches!(
            verify(&other_root),
            Err(ReceiptProofError::Mismatch { .. })
        ));

        // The right receipt claimed at another index.
        let mut moved = good.clone();
        moved.tx_index = 8;
        assert!(verify(&moved).is_err());

        // A truncated proof, and a tampered inner node.
        let mut truncated = good.clone();
        truncated.trie_nodes.pop();
        assert!(verify(&truncated).is_err());
        let mut bad_node = good.clone();
        bad_node.trie_nodes[0][3] ^= 0x40;
        assert!(verify(&bad_node).is_err());

        assert!(verify(&good).is_ok());
    }

    #[test]
    fn index_outside_the_block_is_refused() {
        assert_eq!(
            build_proof(&block(3), 3).unwrap_err(),
            ReceiptProofError::NoSuchReceipt { index: 3, count: 3 }
        );
    }
}
