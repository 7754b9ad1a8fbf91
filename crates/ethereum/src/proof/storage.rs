//! Contract storage as a block header commits to it: the account's path in the state
//! trie (keyed by keccak256 of the address) to its fields, then the slot's path in the
//! account's storage trie (keyed by keccak256 of the slot) to its value. A zero value is
//! proven by the slot's absence.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::RlpEncodable;
use alloy_trie::Nibbles;
use alloy_trie::proof::verify_proof;
use ethers::providers::Middleware;

use super::rpc;
use super::{ProofError, StorageProofError, VerifiedHeader, digest_parts};

/// An account's fields as the state trie holds them.
#[derive(RlpEncodable)]
struct AccountLeaf {
    nonce: u64,
    balance: U256,
    storage_root: B256,
    code_hash: B256,
}

/// One storage slot of one account, with the paths that prove it (`eth_getProof`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageProof {
    /// The account.
    pub address: Address,
    /// The account's nonce.
    pub nonce: u64,
    /// The account's balance.
    pub balance: U256,
    /// The account's storage root.
    pub storage_root: B256,
    /// The account's code hash.
    pub code_hash: B256,
    /// The account's path in the state trie, RLP nodes from the root.
    pub account_nodes: Vec<Bytes>,
    /// The slot.
    pub slot: B256,
    /// The slot's value (zero: the slot is absent).
    pub value: U256,
    /// The slot's path in the storage trie, RLP nodes from the root.
    pub slot_nodes: Vec<Bytes>,
}

impl StorageProof {
    /// SHA3-256 of the account, slot and value and every node, in order (each part
    /// length-prefixed): the digest the proof is recorded under.
    pub fn digest(&self) -> [u8; 32] {
        let nonce = self.nonce.to_be_bytes();
        let balance = self.balance.to_be_bytes::<32>();
        let value = self.value.to_be_bytes::<32>();
        let account_count = (self.account_nodes.len() as u64).to_be_bytes();
        let fixed: [&[u8]; 8] = [
            self.address.as_slice(),
            &nonce,
            &balance,
            self.storage_root.as_slice(),
            self.code_hash.as_slice(),
            self.slot.as_slice(),
            &value,
            &account_count,
        ];
        digest_parts(
            fixed
                .into_iter()
                .chain(self.account_nodes.iter().map(|n| n.as_ref()))
                .chain(self.slot_nodes.iter().map(|n| n.as_ref())),
        )
    }
}

/// Checks `proof` against the verified `header`'s `stateRoot` and returns the slot's
/// value at that block.
pub fn verify_storage(header: &VerifiedHeader, proof: &StorageProof) -> Result<U256, ProofError> {
    verify_against(header.state_root(), proof).map_err(|source| ProofError::Storage {
        number: header.number(),
        source,
    })
}

fn verify_against(state_root: B256, proof: &StorageProof) -> Result<U256, StorageProofError> {
    let account = alloy_rlp::encode(AccountLeaf {
        nonce: proof.nonce,
        balance: proof.balance,
        storage_root: proof.storage_root,
        code_hash: proof.code_hash,
    });
    verify_proof(
        state_root,
        Nibbles::unpack(keccak256(proof.address)),
        Some(account),
        &proof.account_nodes,
    )
    .map_err(|source| StorageProofError::Account {
        address: proof.address,
        root: state_root,
        source: Box::new(source),
    })?;
    let value = (!proof.value.is_zero()).then(|| alloy_rlp::encode(proof.value));
    verify_proof(
        proof.storage_root,
        Nibbles::unpack(keccak256(proof.slot)),
        value,
        &proof.slot_nodes,
    )
    .map_err(|source| StorageProofError::Slot {
        slot: proof.slot,
        root: proof.storage_root,
        source: Box::new(source),
    })?;
    Ok(proof.value)
}

/// The slot of `mapping[key]` for a Solidity mapping declared at slot `mapping` whose key
/// is a value type of 32 bytes: keccak256(key ‖ mapping).
pub fn mapping_slot(key: B256, mapping: u64) -> B256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(key.as_slice());
    preimage[56..].copy_from_slice(&mapping.to_be_bytes());
    keccak256(preimage)
}

/// The slot of the `MedicalCertificate` contract's `served` mapping (the compiler's
/// layout in `contracts/out` is checked against it by a test).
pub const SERVED_REQUEST_SLOT: u64 = 5;

/// The slot of `served[request_id]`: the patient, certificate and key release of the
/// served request packed in one word, 0 while it is not served.
pub fn served_request_slot(request_id: [u8; 32]) -> B256 {
    mapping_slot(B256::from(request_id), SERVED_REQUEST_SLOT)
}

/// A storage value proven against a verified header.
#[derive(Debug, Clone)]
pub struct VerifiedStorage {
    /// The header it was proven against.
    pub header: VerifiedHeader,
    /// The value.
    pub value: U256,
    /// The proof.
    pub proof: StorageProof,
}

/// Proves the value of `address`'s slot `slot` at the verified `header`'s block: fetches
/// `eth_getProof` and checks it against the header's `stateRoot`.
pub async fn prove_storage<M>(
    provider: &M,
    header: &VerifiedHeader,
    address: Address,
    slot: B256,
) -> Result<VerifiedStorage, ProofError>
where
    M: Middleware,
{
    let answer = rpc::account_proof(provider, address, slot, header.number()).await?;
    let other = |what: String| ProofError::Storage {
        number: header.number(),
        source: StorageProofError::OtherKey { what },
    };
    if answer.address != address {
        return Err(other(format!("account {}", answer.address)));
    }
    let [slot_answer] = answer.storage_proof.as_slice() else {
        return Err(other(format!("{} slots", answer.storage_proof.len())));
    };
    if B256::from(slot_answer.key) != slot {
        return Err(other(format!("slot {}", B256::from(slot_answer.key))));
    }
    let proof = StorageProof {
        address,
        nonce: answer.nonce.to(),
        balance: answer.balance,
        storage_root: answer.storage_hash,
        code_hash: answer.code_hash,
        account_nodes: answer.account_proof,
        slot,
        value: slot_answer.value,
        slot_nodes: slot_answer.proof.clone(),
    };
    let value = verify_storage(header, &proof)?;
    Ok(VerifiedStorage {
        header: header.clone(),
        value,
        proof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_trie::HashBuilder;
    use alloy_trie::proof::ProofRetainer;

    /// A trie of `leaves` (hashed keys and values): its root and the path to `target`.
    fn trie(leaves: &[(B256, Vec<u8>)], target: B256) -> (B256, Vec<Bytes>) {
        let mut leaves = leaves.to_vec();
        leaves.sort();
        let wanted = Nibbles::unpack(target);
        let mut builder =
            HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![wanted]));
        for (key, value) in &leaves {
            builder.add_leaf(Nibbles::unpack(key), value);
        }
        let root = builder.root();
        let nodes = builder
            .take_proof_nodes()
            .matching_nodes_sorted(&wanted)
            .into_iter()
            .map(|(_, node)| node)
            .collect();
        (root, nodes)
    }

    const CONTRACT: Address = Address::repeat_byte(0xc0);

    /// A state with the contract (some requests served) and other accounts; the proof of
    /// `request`'s slot in mapping 9, with the value the state holds.
    fn state_with(request: B256) -> (B256, StorageProof) {
        let served: Vec<(B256, Vec<u8>)> = (1u8..=20)
            .map(|i| {
                let slot = mapping_slot(B256::repeat_byte(i), 9);
                (keccak256(slot), alloy_rlp::encode(U256::from(i)))
            })
            .collect();
        let slot = mapping_slot(request, 9);
        let (storage_root, slot_nodes) = trie(&served, keccak256(slot));
        let value = served
            .iter()
            .find(|(key, _)| *key == keccak256(slot))
            .map(|(_, v)| alloy_rlp::decode_exact::<U256>(v).unwrap())
            .unwrap_or_default();
        let leaf = |address: Address, storage_root| {
            let account = AccountLeaf {
                nonce: 1,
                balance: U256::from(5u64),
                storage_root,
                code_hash: B256::repeat_byte(0xcc),
            };
            (keccak256(address), alloy_rlp::encode(account))
        };
        let accounts: Vec<_> = (0u8..30)
            .map(|i| leaf(Address::repeat_byte(i), B256::repeat_byte(i)))
            .chain([leaf(CONTRACT, storage_root)])
            .collect();
        let (state_root, account_nodes) = trie(&accounts, keccak256(CONTRACT));
        let proof = StorageProof {
            address: CONTRACT,
            nonce: 1,
            balance: U256::from(5u64),
            storage_root,
            code_hash: B256::repeat_byte(0xcc),
            account_nodes,
            slot,
            value,
            slot_nodes,
        };
        (state_root, proof)
    }

    #[test]
    fn an_unserved_request_is_proven_zero_and_a_served_one_is_not() {
        let (root, unserved) = state_with(B256::repeat_byte(0x77));
        assert_eq!(verify_against(root, &unserved), Ok(U256::ZERO));
        let (root, served) = state_with(B256::repeat_byte(4));
        assert_eq!(verify_against(root, &served), Ok(U256::from(4u64)));
    }

    #[test]
    fn a_wrong_storage_proof_is_refused() {
        let (root, served) = state_with(B256::repeat_byte(4));
        let slot_error = |proof: &StorageProof| {
            matches!(
                verify_against(root, proof),
                Err(StorageProofError::Slot { .. })
            )
        };
        // A served request claimed unserved, or served with another certificate.
        let zero = StorageProof {
            value: U256::ZERO,
            ..served.clone()
        };
        assert!(slot_error(&zero));
        let other = StorageProof {
            value: U256::from(5u64),
            ..served.clone()
        };
        assert!(slot_error(&other));
        // The absence proof of another slot passed off as this one's.
        let (_, unserved) = state_with(B256::repeat_byte(0x77));
        let borrowed = StorageProof {
            slot: unserved.slot,
            value: U256::ZERO,
            ..served.clone()
        };
        assert!(slot_error(&borrowed));
        // Another storage root (the account's fields changed) breaks the account path.
        let (_, elsewhere) = state_with(B256::repeat_byte(0x77));
        let moved = StorageProof {
            storage_root: B256::repeat_byte(0x01),
            ..elsewhere
        };
        assert!(matches!(
            verify_against(root, &moved),
            Err(StorageProofError::Account { .. })
        ));
        // Another block's state root.
        assert!(matches!(
            verify_against(B256::repeat_byte(0x99), &served),
            Err(StorageProofError::Account { .. })
        ));
        // A tampered node.
        let mut tampered = served.clone();
        let mut node = tampered.slot_nodes[0].to_vec();
        node[5] ^= 1;
        tampered.slot_nodes[0] = node.into();
        assert!(verify_against(root, &tampered).is_err());
        assert_ne!(tampered.digest(), served.digest());
    }

    #[test]
    fn the_served_request_slot_is_the_compilers() {
        let layout: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../contracts/out/MedicalCertificate.storage.json"
        ))
        .unwrap();
        let entry = layout
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["label"] == "served")
            .unwrap();
        assert_eq!(entry["slot"], SERVED_REQUEST_SLOT.to_string());
    }

    #[test]
    fn mapping_slots_follow_solidity() {
        // keccak256(bytes32(0) ‖ uint256(0)), a value any Solidity tool agrees on.
        assert_eq!(
            mapping_slot(B256::ZERO, 0).to_string(),
            "0xad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5"
        );
    }
}
