//! Unit tests of the relay's certificate-chain side: refusal reasons, chain-reset
//! judgement, receipts and the CompleteRecovery result.

use super::*;
use medcert_ethereum::bindings::{ConsentExpired, NonceUsed};
use medcert_ethereum::ethers::types::Address;

#[test]
fn refusal_reasons_start_with_a_short_phrase() {
    let expired = refusal_reason(MedicalCertificateErrors::ConsentExpired(ConsentExpired {
        expiry: 10,
        timestamp: U256::from(20),
    }));
    assert!(
        expired.starts_with("consent expired (ConsentExpired"),
        "{expired}"
    );
    let replayed = refusal_reason(MedicalCertificateErrors::NonceUsed(NonceUsed {
        patient: Address::zero(),
        nonce: U256::from(3),
    }));
    assert!(
        replayed.starts_with("consent already used or revoked"),
        "{replayed}"
    );
    assert!(!replayed.contains('\n'));
}

#[test]
fn chain_resets_are_noticed_and_adopted_only_after_unfreeze() {
    let seen = |genesis: &str, head| ObservedChain {
        chain_id: 31337,
        genesis_hash: genesis.into(),
        head,
    };
    let first = judge_chain(31337, None, &seen("0xaa", 10), None, 100).unwrap();
    assert_eq!((first.floor, first.head), (10, 10));
    let later = judge_chain(31337, Some(&first), &seen("0xaa", 12), None, 200).unwrap();
    assert_eq!(
        (later.floor, later.head, later.updated_at_ms),
        (10, 12, 200)
    );

    let restarted = judge_chain(31337, Some(&later), &seen("0xbb", 3), None, 300);
    assert!(restarted.unwrap_err().starts_with("genesis 0xaa"));
    let rewound = judge_chain(31337, Some(&later), &seen("0xaa", 11), None, 300);
    assert_eq!(rewound.unwrap_err(), "head went back from block 12 to 11");
    let other_id = ObservedChain {
        chain_id: 1,
        ..seen("0xaa", 12)
    };
    assert!(judge_chain(31337, Some(&later), &other_id, None, 300).is_err());

    // An unfreeze older than the mark acknowledges nothing; a newer one adopts.
    assert!(judge_chain(31337, Some(&later), &seen("0xbb", 3), Some(150), 300).is_err());
    let adopted = judge_chain(31337, Some(&later), &seen("0xbb", 3), Some(250), 300).unwrap();
    assert_eq!(
        (adopted.genesis_hash.as_str(), adopted.floor, adopted.head),
        ("0xbb", 0, 3)
    );
    // Still never another chain id.
    assert!(judge_chain(31337, Some(&later), &other_id, Some(250), 300).is_err());
}

#[test]
fn recovery_result_follows_the_contract() {
    let event = RecoveryServedFilter {
        request_id: [1; 32],
        certificate_id: U256::from(42),
        hospital: [2; 32],
        cid: "bafy".into(),
        content_fingerprint: [0xc0; 32],
        watermark_fingerprint: [0x3a; 32],
        consent_nonce: U256::from(5),
    };
    let result = recovery_result(&event, 42, 9, H256::repeat_byte(0xab), [1; 32]);
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(json["certificate_id"], 42);
    assert_eq!(json["cid"], "bafy");
    assert_eq!(json["content_fingerprint"], "c0".repeat(32));
    assert_eq!(json["watermark_fingerprint"], "3a".repeat(32));
    assert_eq!(json["eth_tx"], format!("0x{}", "ab".repeat(32)));
    assert_eq!(json["eth_block"], 9);
    assert_eq!(json["request_id"], format!("0x{}", "01".repeat(32)));
}

mod faults {
    use super::*;
    use crate::ErrorChain;
    use crate::freeze::{FreezeBook, Refusal};
    use alloy_primitives::{Address as Account, B256};
    use medcert_ethereum::proof::fake::FakeNode;
    use medcert_ethereum::proof::{HashChainVerifier, HeaderVerifier, prove_storage};

    /// Records `fault` in a freeze book as the worker does; answers whether the
    /// certificate chain is then frozen.
    fn freezes(fault: ChainFault) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let book = FreezeBook::new(dir.path());
        let reason = ErrorChain(&fault).to_string();
        let refusal = Refusal {
            message: "fabric:hospital1/00000000000000000001".into(),
            reason: reason.clone(),
            at_ms: 1,
        };
        book.refuse("ethereum:31337", &reason, refusal).unwrap();
        book.frozen("ethereum:31337").unwrap().is_some()
    }

    fn verified(
        node: &FakeNode,
    ) -> HashChainVerifier<medcert_ethereum::ethers::providers::Provider<FakeNode>> {
        HashChainVerifier::new(node.provider(), 1, None)
    }

    #[tokio::test]
    async fn a_tampered_header_freezes_the_chain() {
        let node = FakeNode::new(4);
        let verifier = verified(&node);
        verifier.final_head().await.unwrap();
        node.mine();
        node.tamper(5, |h| h.state_root = B256::repeat_byte(0xee));
        let fault = judged(verifier.final_head().await).unwrap().unwrap_err();
        assert!(
            matches!(
                fault,
                ChainFault::Proof(ProofError::HeaderHash { number: 5, .. })
            ),
            "{fault}"
        );
        assert!(freezes(fault));
    }

    #[tokio::test]
    async fn a_broken_parent_link_freezes_the_chain() {
        let node = FakeNode::new(4);
        let verifier = verified(&node);
        verifier.final_head().await.unwrap();
        node.mine();
        node.rewrite(5, |h| h.parent_hash = B256::repeat_byte(0x01));
        let fault = judged(verifier.final_head().await).unwrap().unwrap_err();
        assert!(
            matches!(
                fault,
                ChainFault::Proof(ProofError::ParentLink { number: 5, .. })
            ),
            "{fault}"
        );
        assert!(freezes(fault));
    }

    #[tokio::test]
    async fn a_wrong_storage_proof_freezes_the_chain() {
        let node = FakeNode::new(4);
        let head = verified(&node).final_head().await.unwrap();
        let contract = Account::repeat_byte(0xc0);
        let slot = medcert_ethereum::proof::served_request_slot([7; 32]);
        // "Unserved", but with no path from the header's state root to the contract.
        node.set_proof(
            4,
            serde_json::json!({
                "address": contract,
                "accountProof": [],
                "balance": "0x0",
                "codeHash": B256::repeat_byte(0xcc),
                "nonce": "0x1",
                "storageHash": B256::repeat_byte(0x5e),
                "storageProof": [{"key": slot, "value": "0x0", "proof": []}],
            }),
        );
        let fault = judged(prove_storage(&node.provider(), &head, contract, slot).await)
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                fault,
                ChainFault::Proof(ProofError::Storage { number: 4, .. })
            ),
            "{fault}"
        );
        assert!(freezes(fault));
    }

    #[tokio::test]
    async fn a_malformed_number_from_the_node_is_retried_not_a_panic_nor_a_freeze() {
        let node = FakeNode::new(4);
        node.answer(
            "eth_blockNumber",
            serde_json::json!("0x1ffffffffffffffffffff"),
        );
        let error = judged(verified(&node).final_head().await).unwrap_err();
        assert!(
            matches!(error, RelayError::Proof(ProofError::Malformed { .. })),
            "{error}"
        );
    }
}
