//! What a Fabric transaction must carry for the relay to act on it: the chaincode event
//! the relay was delivered is exactly the one the endorsers signed, and the proof the
//! relay records with the request.
//!
//! That the transaction is in a block of the channel, endorsed by enough peers of the
//! hospital for the chaincode's policy and marked VALID is checked before, by the relay's
//! light client of the channel ([`crate::fabric_light_client`]).

use medcert_fabric::block::BlockTransaction;

use crate::proto::{FabricEndorsement, FabricProof};

/// Why a transaction's event is not the delivered one, and how.
#[derive(Debug, thiserror::Error)]
#[error("the endorsed transaction {0}")]
pub struct EventMismatch(pub &'static str);

/// Checks that `transaction`'s endorsed chaincode action carries exactly the event
/// `(chaincode, name, payload)` of that transaction.
pub fn verify(
    transaction: &BlockTransaction,
    chaincode: &str,
    event_name: &str,
    payload: &[u8],
) -> Result<(), EventMismatch> {
    let event = transaction
        .event
        .as_ref()
        .ok_or(EventMismatch("carries no event"))?;
    if event.tx_id != transaction.tx_id {
        return Err(EventMismatch("event belongs to another transaction"));
    }
    if event.chaincode_id != chaincode {
        return Err(EventMismatch("event comes from another chaincode"));
    }
    if event.event_name != event_name {
        return Err(EventMismatch("event has another name"));
    }
    if event.payload != payload {
        return Err(EventMismatch(
            "event payload differs from the one delivered",
        ));
    }
    Ok(())
}

/// The proof of a committed transaction, from a block's copy of it.
pub fn proof_of(transaction: &BlockTransaction, block_number: u64) -> FabricProof {
    FabricProof {
        channel: transaction.channel.clone(),
        block_number,
        tx_id: transaction.tx_id.clone(),
        proposal_response_payload: transaction.proposal_response_payload.clone(),
        endorsements: transaction
            .endorsements
            .iter()
            .map(|e| FabricEndorsement {
                endorser: e.endorser.clone(),
                signature: e.signature.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medcert_fabric::block;
    use medcert_fabric::light_client::testing::TestChannel;
    use std::time::SystemTime;

    const PAYLOAD: &[u8] = br#"{"index":1}"#;

    /// A transaction of `chaincode` emitting `(name, payload)`, as a block holds it.
    fn transaction(chaincode: &str, name: &str, payload: &[u8]) -> BlockTransaction {
        let mut test = TestChannel::new("hospital1", "Hospital1MSP", 1);
        test.chaincode = chaincode.into();
        let (_, tx) = test.transaction(
            &test.client,
            &[&test.peers[0]],
            SystemTime::now(),
            (name, payload),
        );
        let block = test.order(vec![tx]).clone();
        block::transactions(&block).unwrap().remove(0)
    }

    #[test]
    fn the_endorsed_event_must_be_the_delivered_one() {
        let check = |t: &BlockTransaction| {
            verify(t, "hospital", "InterchainRequest", PAYLOAD).map_err(|e| e.to_string())
        };
        check(&transaction("hospital", "InterchainRequest", PAYLOAD)).unwrap();
        assert_eq!(
            check(&transaction(
                "hospital",
                "InterchainRequest",
                br#"{"index":2}"#
            )),
            Err("the endorsed transaction event payload differs from the one delivered".into())
        );
        assert_eq!(
            check(&transaction("hospital", "RecoveryCompleted", PAYLOAD)),
            Err("the endorsed transaction event has another name".into())
        );
        assert_eq!(
            check(&transaction("other", "InterchainRequest", PAYLOAD)),
            Err("the endorsed transaction event comes from another chaincode".into())
        );
        let mut silent = transaction("hospital", "InterchainRequest", PAYLOAD);
        silent.event = None;
        assert_eq!(
            check(&silent),
            Err("the endorsed transaction carries no event".into())
        );
    }

    #[test]
    fn the_proof_carries_the_endorsed_payload_and_every_endorsement() {
        let transaction = transaction("hospital", "InterchainRequest", PAYLOAD);
        let proof = proof_of(&transaction, 9);
        assert_eq!(proof.block_number, 9);
        assert_eq!(proof.tx_id, transaction.tx_id);
        assert_eq!(
            proof.proposal_response_payload,
            transaction.proposal_response_payload
        );
        assert_eq!(proof.endorsements.len(), 1);
        assert_eq!(
            proof.endorsements[0].endorser,
            transaction.endorsements[0].endorser
        );
    }
}
