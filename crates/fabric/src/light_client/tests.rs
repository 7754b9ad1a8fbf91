use std::time::{Duration, SystemTime};

use medcert_fabric_protos::common::Block;
use prost::Message;

use super::testing::{TestChannel, TestIdentity, valid_today};
use super::*;
use crate::block;

const HOUR: Duration = Duration::from_secs(3600);
const EVENT: (&str, &[u8]) = ("InterchainRequest", br#"{"index":1}"#);

fn text(error: &(dyn std::error::Error + 'static)) -> String {
    chain(error)
}

fn policy(bytes: &[u8]) -> EndorsementPolicy {
    EndorsementPolicy::from_validation_parameter(bytes).unwrap()
}

/// One transaction of the client endorsed by every peer, now.
fn some_transaction(test: &TestChannel) -> Vec<Vec<u8>> {
    let endorsers: Vec<_> = test.peers.iter().collect();
    vec![
        test.transaction(&test.client, &endorsers, SystemTime::now(), EVENT)
            .1,
    ]
}

/// A channel with `peers` peers, one block ordered after the configuration, and a light
/// client bootstrapped on it.
fn channel(peers: usize) -> (TestChannel, LightClient) {
    let mut test = TestChannel::new("hospital1", "Hospital1MSP", peers);
    test.order(some_transaction(&test));
    let client = LightClient::bootstrap("hospital1", &test.blocks()[0], &test.blocks()[1]).unwrap();
    (test, client)
}

/// Orders one transaction by `endorsers` at `time`; verifies its block; answers the
/// transaction's check under `validation_parameter`.
fn endorse_and_check(
    test: &mut TestChannel,
    client: &mut LightClient,
    endorsers: &[&TestIdentity],
    time: SystemTime,
    validation_parameter: &[u8],
) -> Result<VerifiedTransaction, TransactionError> {
    let (tx_id, tx) = test.transaction(&test.client, endorsers, time, EVENT);
    let block = test.order(vec![tx]).clone();
    let verified = client.verify([block]).unwrap();
    let policy = policy(validation_parameter);
    client.transaction(
        &verified[0],
        &tx_id,
        &Endorsing {
            msp_id: "Hospital1MSP",
            chaincode: "hospital",
            policy: &policy,
        },
    )
}

#[test]
fn blocks_of_a_real_fabric_channel_verify() {
    // Blocks 0–3 of a channel of `deploy/up` (Fabric 3.1.1, one Raft orderer): the
    // configuration, the chaincode's approval and commit, then a hospital transaction.
    let mut bytes: &[u8] = include_bytes!("testdata/fabric-3.1-channel.blocks");
    let mut blocks = Vec::new();
    while !bytes.is_empty() {
        blocks.push(Block::decode_length_delimited(&mut bytes).unwrap());
    }
    assert_eq!(last_config(&blocks[3]), Some(0));
    let mut client = LightClient::bootstrap("hospital1", &blocks[0], &blocks[1]).unwrap();
    let verified = client.verify(blocks[2..].to_vec()).unwrap();
    assert_eq!(client.head().number, 3);
    assert_eq!(
        client.head().hash,
        block_hash(blocks[3].header.as_ref().unwrap())
    );

    // deploy/lib/fabric.sh commits the chaincode with OR('Hospital1MSP.peer').
    let test = TestChannel::new("hospital1", "Hospital1MSP", 0);
    let tx = block::transactions(verified[1].block()).unwrap().remove(0);
    let check = |n| {
        let policy = policy(&test.peers_policy(n));
        client.transaction(
            &verified[1],
            &tx.tx_id,
            &Endorsing {
                msp_id: "Hospital1MSP",
                chaincode: "hospital",
                policy: &policy,
            },
        )
    };
    let proven = check(1).unwrap();
    assert_eq!(proven.endorsers[0].name, "peer0.hospital1.medcert.local");
    let refused = check(2).unwrap_err();
    assert!(
        text(&refused).contains("too few endorsements"),
        "{}",
        text(&refused)
    );
}

#[test]
fn a_chain_verifies_block_by_block_and_resumes_from_its_head() {
    let (mut test, mut client) = channel(2);
    assert_eq!(client.head().number, 1);
    test.order(some_transaction(&test));
    test.order(some_transaction(&test));
    let verified = client.verify(test.blocks()[2..].to_vec()).unwrap();
    assert_eq!(verified.len(), 2);
    assert_eq!(client.head().number, 3);

    // A resumed client goes on from the persisted head and configuration block.
    let mut resumed =
        LightClient::resume("hospital1", client.config().block(), client.head()).unwrap();
    test.order(some_transaction(&test));
    resumed.verify(test.blocks()[4..].to_vec()).unwrap();
    assert_eq!(resumed.head().number, 4);

    // Blocks at or below the head verify by their links to it, however far back.
    let again = resumed.verify(test.blocks()[1..].to_vec()).unwrap();
    assert_eq!(again.len(), 4);
    assert_eq!(resumed.head().number, 4);
    let short = resumed.verify(test.blocks()[1..3].to_vec()).unwrap_err();
    assert!(
        matches!(short, BlockError::ShortOfHead { last: 2, head: 4 }),
        "{short}"
    );
    let mut altered = test.blocks()[4].clone();
    altered.header.as_mut().unwrap().data_hash[0] ^= 1;
    let error = resumed.verify([altered]).unwrap_err();
    assert!(
        matches!(error, BlockError::DataHash { number: 4 }),
        "{error}"
    );
}

#[test]
fn a_forged_orderer_signature_is_refused() {
    let (mut test, mut client) = channel(1);
    let mut block = test.next_block(some_transaction(&test));
    // orderer0's identity, orderer1's key.
    test.seal(&mut block, &test.orderers[0], &test.orderers[1]);
    let head = client.head();
    let error = client.verify([block.clone()]).unwrap_err();
    assert!(matches!(
        error,
        BlockError::Signatures {
            number: 2,
            counted: 0,
            ..
        }
    ));
    assert_eq!(
        text(&error),
        "block 2: the orderer signatures do not satisfy /Channel/Orderer/BlockValidation \
         (ANY Writers); 0 signer(s) counted; signature 0: forged signature of \
         orderer0.medcert.local: signature does not verify under the member's certificate"
    );
    assert_eq!(
        client.head(),
        head,
        "a refused block does not move the head"
    );

    let refused = |block: &Block, client: &mut LightClient| {
        text(&client.verify([block.clone()]).unwrap_err())
    };
    // A genuine signature counts only from a consenter with the orderer role...
    let outsider = test
        .orderer_org
        .identity("orderer9.medcert.local", "orderer", valid_today());
    test.seal(&mut block, &outsider, &outsider);
    assert!(
        refused(&block, &mut client)
            .ends_with("orderer9.medcert.local is not a consenter of the channel")
    );
    let client_cert = test
        .orderer_org
        .identity("orderer0.medcert.local", "client", valid_today());
    test.seal(&mut block, &client_cert, &client_cert);
    assert!(
        refused(&block, &mut client)
            .ends_with("orderer0.medcert.local is a client, not an orderer (orderer role)")
    );
    // ...of an ordering organisation.
    let peer = test.peers[0].clone();
    test.seal(&mut block, &peer, &peer);
    assert!(
        refused(&block, &mut client)
            .ends_with("of Hospital1MSP is not of an ordering organisation")
    );
    // A consenter's certificate renewed by the ordering organisation's CA counts.
    let renewed = test
        .orderer_org
        .identity("orderer2.medcert.local", "orderer", valid_today());
    test.seal(&mut block, &renewed, &renewed);
    client.verify([test.push(block).clone()]).unwrap();
    assert_eq!(client.head().number, 2);
}

#[test]
fn an_orderer_certificate_must_be_valid_at_the_blocks_time() {
    let (test, mut client) = channel(1);
    let now = SystemTime::now();
    let (_, tx) = test.transaction(&test.client, &[&test.peers[0]], now - 3 * HOUR, EVENT);
    let mut block = test.next_block(vec![tx]);
    // orderer0 again, certified anew from an hour ago: not yet valid when the block was cut.
    let renewed =
        test.orderer_org
            .identity("orderer0.medcert.local", "orderer", now - HOUR..now + HOUR);
    test.seal(&mut block, &renewed, &renewed);
    let reason = text(&client.verify([block]).unwrap_err());
    assert!(
        reason.contains("certificate orderer0.medcert.local is valid from"),
        "{reason}"
    );
}

#[test]
fn a_broken_previous_hash_link_is_refused() {
    let (mut test, mut client) = channel(1);
    let mut block = test.next_block(some_transaction(&test));
    block.header.as_mut().unwrap().previous_hash = vec![0xab; 32];
    // Genuinely signed: the orderer signed a fork, the chain still refuses it.
    let orderer = test.orderers[0].clone();
    test.seal(&mut block, &orderer, &orderer);
    let error = client.verify([block]).unwrap_err();
    assert!(
        matches!(error, BlockError::PreviousHash { number: 2, .. }),
        "{error}"
    );
    assert!(text(&error).starts_with("broken hash chain: block 2's previous hash abab"));

    // Skipping a block is refused too, before anything else.
    test.order(some_transaction(&test));
    test.order(some_transaction(&test));
    let gap = client.verify([test.blocks()[3].clone()]).unwrap_err();
    assert!(
        matches!(gap, BlockError::Gap { head: 1, found: 3 }),
        "{gap}"
    );
}

#[test]
fn an_endorsement_by_a_client_certificate_is_refused() {
    let (mut test, mut client) = channel(1);
    let doctor = test.client.clone();
    let error = endorse_and_check(
        &mut test,
        &mut client,
        &[&doctor],
        SystemTime::now(),
        &TestChannel::new("x", "Hospital1MSP", 0).peers_policy(1),
    )
    .unwrap_err();
    assert_eq!(
        text(&error),
        "endorsement 0: endorser User1@hospital1.medcert.local is a client, not a peer"
    );
}

#[test]
fn too_few_endorsements_for_the_policy_are_refused() {
    let (mut test, mut client) = channel(3);
    let policy = test.peers_policy(2);
    let (one, two) = (test.peers[0].clone(), test.peers[1].clone());
    let error =
        endorse_and_check(&mut test, &mut client, &[&one], SystemTime::now(), &policy).unwrap_err();
    assert_eq!(
        text(&error),
        "too few endorsements: 1 distinct peer(s) of Hospital1MSP (peer0.hospital1.medcert.local) \
         do not satisfy the endorsement policy OutOf(2, 'Hospital1MSP.peer', 'Hospital1MSP.peer')"
    );
    // The same peer twice is one endorser.
    let twice = endorse_and_check(
        &mut test,
        &mut client,
        &[&one, &one],
        SystemTime::now(),
        &policy,
    );
    assert!(matches!(
        twice,
        Err(TransactionError::PolicyNotSatisfied { .. })
    ));
    // Two of three is a majority.
    let proven = endorse_and_check(
        &mut test,
        &mut client,
        &[&one, &two],
        SystemTime::now(),
        &policy,
    )
    .unwrap();
    assert_eq!(proven.endorsers.len(), 2);
    // The channel's default policy (MAJORITY Endorsement, of one organisation whose
    // Endorsement is one peer) is read from the configuration.
    let default = test.channel_policy();
    endorse_and_check(&mut test, &mut client, &[&one], SystemTime::now(), &default).unwrap();
}

#[test]
fn endorsers_are_judged_at_the_blocks_time_not_today() {
    let (mut test, mut client) = channel(1);
    let policy = test.peers_policy(1);
    let now = SystemTime::now();
    let block_time = now - 2 * HOUR;

    // Valid today, but issued after the block: refused.
    let late = test.org.identity(
        "peer0.hospital1.medcert.local",
        "peer",
        now - HOUR..now + HOUR,
    );
    let error =
        endorse_and_check(&mut test, &mut client, &[&late], block_time, &policy).unwrap_err();
    let reason = text(&error);
    assert!(
        reason.starts_with(
            "endorsement 0: endorser: not a member of Hospital1MSP: certificate peer0.hospital1.medcert.local is valid from"
        ),
        "{reason}"
    );

    // Expired today, but valid when the block was cut: proven.
    let expired = test.org.identity(
        "peer0.hospital1.medcert.local",
        "peer",
        now - 3 * HOUR..now - HOUR,
    );
    let proven =
        endorse_and_check(&mut test, &mut client, &[&expired], block_time, &policy).unwrap();
    assert_eq!(
        proven.timestamp.duration_since(block_time).unwrap(),
        Duration::ZERO
    );
}

#[test]
fn the_valid_flag_is_the_peers_unsigned_claim() {
    let (mut test, mut client) = channel(1);
    let (tx_id, tx) = test.transaction(&test.client, &[&test.peers[0]], SystemTime::now(), EVENT);
    let mut block = test.order(vec![tx]).clone();
    // The filter is outside what the orderers sign: the block still verifies...
    block.metadata.as_mut().unwrap().metadata[2][0] = 11;
    let verified = client.verify([block]).unwrap();
    // ...and the peer's verdict is what decides.
    let policy = policy(&test.peers_policy(1));
    let error = client
        .transaction(
            &verified[0],
            &tx_id,
            &Endorsing {
                msp_id: "Hospital1MSP",
                chaincode: "hospital",
                policy: &policy,
            },
        )
        .unwrap_err();
    assert_eq!(
        text(&error),
        "the peer marks the transaction MvccReadConflict, not VALID"
    );
}

#[test]
fn a_transaction_must_be_the_endorsed_one_of_the_expected_chaincode() {
    let (mut test, mut client) = channel(1);
    let policy = policy(&test.peers_policy(1));
    let (tx_id, tx) = test.transaction(&test.client, &[&test.peers[0]], SystemTime::now(), EVENT);
    let verified = client.verify([test.order(vec![tx]).clone()]).unwrap();
    let check = |chaincode, msp_id| {
        client.transaction(
            &verified[0],
            &tx_id,
            &Endorsing {
                msp_id,
                chaincode,
                policy: &policy,
            },
        )
    };
    check("hospital", "Hospital1MSP").unwrap();
    assert_eq!(
        text(&check("other", "Hospital1MSP").unwrap_err()),
        "the endorsed action is chaincode \"hospital\"'s, not other's"
    );
    assert!(
        text(&check("hospital", "Hospital2MSP").unwrap_err())
            .contains("is of Hospital1MSP, not Hospital2MSP")
    );
    assert!(matches!(
        client.transaction(
            &verified[0],
            "no-such-tx",
            &Endorsing {
                msp_id: "Hospital1MSP",
                chaincode: "hospital",
                policy: &policy,
            }
        ),
        Err(TransactionError::NotInBlock { block: 2, .. })
    ));
}

#[test]
fn a_configuration_block_must_be_the_channels() {
    let test = TestChannel::new("hospital1", "Hospital1MSP", 1);
    let error = ChannelConfig::from_block("hospital2", &test.blocks()[0]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the configuration is channel hospital1's, not hospital2's"
    );
    let config = ChannelConfig::from_block("hospital1", &test.blocks()[0]).unwrap();
    let anchor =
        crate::msp::MspTrust::from_pem("Hospital1MSP", test.org.ca_pem.as_bytes()).unwrap();
    assert!(config.msp("Hospital1MSP").unwrap().same_ca(&anchor));
    assert!(!config.msp("OrdererMSP").unwrap().same_ca(&anchor));
}

#[test]
fn a_configuration_block_governs_the_blocks_after_it() {
    let (mut test, mut client) = channel(1);
    let retired = test.orderers[0].clone();
    // orderer0, still a consenter, orders the configuration that retires it.
    test.reconfigure(test.orderers[1..].to_vec());
    client.verify([test.blocks()[2].clone()]).unwrap();
    assert_eq!(client.config().block_number(), 2);

    let mut block = test.next_block(some_transaction(&test));
    test.seal(&mut block, &retired, &retired);
    let reason = text(&client.verify([block]).unwrap_err());
    assert!(
        reason.ends_with("signature 0: orderer0.medcert.local is not a consenter of the channel"),
        "{reason}"
    );
    test.order(some_transaction(&test));
    client.verify([test.blocks()[3].clone()]).unwrap();

    // A client resumed from the persisted configuration block goes on under it, and
    // refuses a block that names the configuration before it.
    let mut resumed =
        LightClient::resume("hospital1", client.config().block(), client.head()).unwrap();
    let mut stale = test.next_block(some_transaction(&test));
    let orderer = test.orderers[0].clone();
    TestChannel::new("hospital1", "Hospital1MSP", 0).seal(&mut stale, &orderer, &orderer);
    let error = resumed.verify([stale]).unwrap_err();
    assert!(
        matches!(
            error,
            BlockError::LastConfig {
                number: 4,
                claimed: 0,
                known: 2
            }
        ),
        "{error}"
    );
    test.order(some_transaction(&test));
    resumed.verify([test.blocks()[4].clone()]).unwrap();
}
