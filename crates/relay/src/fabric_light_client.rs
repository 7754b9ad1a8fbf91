//! The relay's light client of each hospital channel ([`medcert_fabric::light_client`]):
//! which blocks are the channel's, from a checkpoint persisted in the store, and which
//! interchain requests in them are proven.
//!
//! The first time a channel's block is needed, the relay trusts the channel's newest
//! block and the configuration block it names, once it has checked that the newest block
//! is signed as that configuration requires and that the configuration's MSP of the
//! hospital is anchored in the CA the network description names; it then persists the
//! checkpoint ([`FabricHead`]: the last verified block's number and hash and the
//! configuration block in force). From then on every block from the checkpoint forward
//! is fetched from the hospital's peers through the relay's own gateway (the deliver
//! service) and verified before a transaction in it is believed: a block that fails a
//! check is refused with its reason ([`ProofRefused`]: the relay freezes that channel),
//! and the checkpoint stays at the last block that passed. What a proven request proves,
//! and what it takes on the peer's word (the VALID flag, the chaincode definition), is
//! said in [`medcert_fabric::light_client`].

use std::collections::BTreeMap;
use std::future::Future;

use medcert_fabric::Block;
use medcert_fabric::light_client::{
    EndorsementPolicy, Endorsing, LightClient, TrustedHead, VerifiedBlock, last_config,
};
use medcert_fabric::msp::MspTrust;
use medcert_fabric_protos::lifecycle::{
    QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult,
};
use medcert_hospital_api::InterchainRequest;
use medcert_hospital_api::events::INTERCHAIN_REQUEST;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::fabric::{ProofRefused, ProvenRequest};
use crate::store::Store;
use crate::{ErrorChain, RelayError, Stopwatch, fabric_proof};

/// The `_lifecycle` system chaincode, which answers for committed chaincode definitions.
const LIFECYCLE: &str = "_lifecycle";

/// How many verified blocks a channel keeps at hand (several requests share a block).
const RECENT_BLOCKS: usize = 64;

/// Where a channel's blocks come from: the hospital's peers, through the relay's gateway
/// ([`medcert_fabric::Network`]), or a test's.
pub trait BlockSource: Sync {
    /// The channel's height (the number of its next block).
    fn height(&self) -> impl Future<Output = Result<u64, medcert_fabric::Error>> + Send;
    /// Block `number`.
    fn block(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Block, medcert_fabric::Error>> + Send;
    /// Every block from `start` through the newest.
    fn blocks_from(
        &self,
        start: u64,
    ) -> impl Future<Output = Result<Vec<Block>, medcert_fabric::Error>> + Send;
    /// The block that holds transaction `tx_id`.
    fn block_of(
        &self,
        tx_id: &str,
    ) -> impl Future<Output = Result<Block, medcert_fabric::Error>> + Send;
    /// The validation parameter (endorsement policy) of `chaincode`'s committed
    /// definition.
    fn validation_parameter(
        &self,
        chaincode: &str,
    ) -> impl Future<Output = Result<Vec<u8>, medcert_fabric::Error>> + Send;
}

impl BlockSource for medcert_fabric::Network {
    async fn height(&self) -> Result<u64, medcert_fabric::Error> {
        medcert_fabric::Network::height(self).await
    }

    async fn block(&self, number: u64) -> Result<Block, medcert_fabric::Error> {
        medcert_fabric::Network::block(self, number).await
    }

    async fn blocks_from(&self, start: u64) -> Result<Vec<Block>, medcert_fabric::Error> {
        self.blocks(start).await
    }

    async fn block_of(&self, tx_id: &str) -> Result<Block, medcert_fabric::Error> {
        self.block_by_tx_id(tx_id).await
    }

    async fn validation_parameter(
        &self,
        chaincode: &str,
    ) -> Result<Vec<u8>, medcert_fabric::Error> {
        let args = QueryChaincodeDefinitionArgs {
            name: chaincode.to_owned(),
        };
        let answer = self
            .contract(LIFECYCLE)
            .new_proposal("QueryChaincodeDefinition")
            .args([args.encode_to_vec()])
            .build()?
            .evaluate()
            .await?;
        QueryChaincodeDefinitionResult::decode(answer.as_slice())
            .map(|definition| definition.validation_parameter)
            .map_err(|source| medcert_fabric::Error::Decode {
                what: "chaincode definition",
                source,
            })
    }
}

/// A channel's light-client checkpoint as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FabricHead {
    /// The last block verified.
    pub number: u64,
    /// Its hash, hex.
    pub hash: String,
    /// The configuration block in force after it, encoded, hex.
    pub config_block: String,
}

impl FabricHead {
    fn of(client: &LightClient) -> Self {
        let head = client.head();
        Self {
            number: head.number,
            hash: hex::encode(head.hash),
            config_block: hex::encode(client.config().block().encode_to_vec()),
        }
    }

    /// The light client this checkpoint resumes.
    fn resume(&self, channel: &str) -> Result<LightClient, String> {
        let hash = hex::decode(&self.hash)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .ok_or("its block hash is not 32 bytes of hex")?;
        let block = hex::decode(&self.config_block)
            .map_err(|e| format!("its configuration block is not hex: {e}"))?;
        let block = Block::decode(block.as_slice())
            .map_err(|e| format!("its configuration block does not decode: {e}"))?;
        LightClient::resume(
            channel,
            &block,
            TrustedHead {
                number: self.number,
                hash,
            },
        )
        .map_err(|e| format!("its configuration: {}", ErrorChain(&e)))
    }
}

fn refused(what: impl std::fmt::Display) -> ProofRefused {
    ProofRefused(what.to_string())
}

/// The relay's light client of one hospital channel, and what it proves there.
pub struct ChannelLightClient {
    hospital: String,
    channel: String,
    msp_id: String,
    chaincode: String,
    /// The hospital's MSP CA from the network description: the channel's configuration
    /// must anchor the hospital's MSP in it.
    anchor: MspTrust,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `None` until the checkpoint is loaded or first taken.
    client: Option<LightClient>,
    /// The last verified blocks, by number.
    recent: BTreeMap<u64, VerifiedBlock>,
}

impl ChannelLightClient {
    /// The light client of `hospital`'s `channel`, whose transactions `msp_id`'s peers
    /// endorse for `chaincode`; `anchor` is the MSP CA the network description names.
    pub fn new(
        hospital: &str,
        channel: &str,
        msp_id: &str,
        chaincode: &str,
        anchor: MspTrust,
    ) -> Self {
        Self {
            hospital: hospital.to_owned(),
            channel: channel.to_owned(),
            msp_id: msp_id.to_owned(),
            chaincode: chaincode.to_owned(),
            anchor,
            state: Mutex::new(State::default()),
        }
    }

    fn fabric_error(&self, source: medcert_fabric::Error) -> RelayError {
        RelayError::Fabric {
            hospital: self.hospital.clone(),
            source,
        }
    }

    /// Proves that transaction `tx_id` of block `block_number` is the channel's, VALID,
    /// endorsed as the chaincode's policy requires and carries exactly `payload` as its
    /// interchain event. `Ok(Err(..))` is a refused proof.
    pub async fn prove_event(
        &self,
        source: &impl BlockSource,
        store: &Store,
        block_number: u64,
        tx_id: &str,
        payload: &[u8],
        own: &mut Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        // The policy is read while the block is fetched and verified: two round trips to
        // the peer at once rather than one after the other.
        let (block, parameter) = tokio::join!(
            self.verified_block(source, store, block_number, own),
            self.validation_parameter(source)
        );
        let block = match block? {
            Ok(block) => block,
            Err(refused) => return Ok(Err(refused)),
        };
        Ok(self
            .checked(&block, tx_id, Some(payload), &parameter?, own)
            .await)
    }

    /// Proves the interchain request of transaction `tx_id`, wherever the peer says it
    /// is (to fill a gap in the events): its block is verified like any other.
    pub async fn prove_transaction(
        &self,
        source: &impl BlockSource,
        store: &Store,
        tx_id: &str,
        own: &mut Stopwatch,
    ) -> Result<Result<ProvenRequest, ProofRefused>, RelayError> {
        let claimed = source
            .block_of(tx_id)
            .await
            .map_err(|e| self.fabric_error(e))?;
        let number = claimed.header.map(|h| h.number).unwrap_or_default();
        let block = match self.verified_block(source, store, number, own).await? {
            Ok(block) => block,
            Err(refused) => return Ok(Err(refused)),
        };
        let parameter = self.validation_parameter(source).await?;
        Ok(self.checked(&block, tx_id, None, &parameter, own).await)
    }

    /// The validation parameter (endorsement policy) of the chaincode's committed
    /// definition.
    async fn validation_parameter(&self, source: &impl BlockSource) -> Result<Vec<u8>, RelayError> {
        source
            .validation_parameter(&self.chaincode)
            .await
            .map_err(|e| self.fabric_error(e))
    }

    /// Proves the request of `tx_id` in verified `block` under the chaincode's
    /// `validation_parameter`; its event must carry `payload` when one was delivered.
    async fn checked(
        &self,
        block: &VerifiedBlock,
        tx_id: &str,
        payload: Option<&[u8]>,
        validation_parameter: &[u8],
        own: &mut Stopwatch,
    ) -> Result<ProvenRequest, ProofRefused> {
        own.start();
        let proven = self
            .check(block, tx_id, payload, validation_parameter)
            .await;
        own.stop();
        proven
    }

    async fn check(
        &self,
        block: &VerifiedBlock,
        tx_id: &str,
        payload: Option<&[u8]>,
        validation_parameter: &[u8],
    ) -> Result<ProvenRequest, ProofRefused> {
        let number = block.number();
        let in_block = |what: &dyn std::fmt::Display| {
            refused(format_args!(
                "transaction {tx_id} in block {number}: {what}"
            ))
        };
        let policy =
            EndorsementPolicy::from_validation_parameter(validation_parameter).map_err(|e| {
                refused(format_args!(
                    "the endorsement policy of chaincode {}: {}",
                    self.chaincode,
                    ErrorChain(&e)
                ))
            })?;
        let state = self.state.lock().await;
        let client = state
            .client
            .as_ref()
            .expect("a block was verified, so the light client exists");
        let verified = client
            .transaction(
                block,
                tx_id,
                &Endorsing {
                    msp_id: &self.msp_id,
                    chaincode: &self.chaincode,
                    policy: &policy,
                },
            )
            .map_err(|e| in_block(&ErrorChain(&e)))?;
        drop(state);
        let transaction = verified.transaction;
        let payload = match payload {
            Some(payload) => payload.to_vec(),
            None => transaction
                .event
                .as_ref()
                .map(|e| e.payload.clone())
                .unwrap_or_default(),
        };
        fabric_proof::verify(&transaction, &self.chaincode, INTERCHAIN_REQUEST, &payload)
            .map_err(|e| in_block(&e))?;
        let request: InterchainRequest = serde_json::from_slice(&payload)
            .map_err(|e| in_block(&format_args!("malformed InterchainRequest: {e}")))?;
        if request.channel != self.channel {
            return Err(in_block(&format_args!(
                "request names unknown chain fabric:{}",
                request.channel
            )));
        }
        if request.index == 0 {
            return Err(in_block(&"request index 0 (indices start at 1)"));
        }
        Ok(ProvenRequest {
            request,
            payload,
            proof: fabric_proof::proof_of(&transaction, number),
        })
    }

    /// Block `number`, verified from the checkpoint forward (the checkpoint moves to the
    /// newest block that passed). `Ok(Err(..))`: a block failed a check.
    pub async fn verified_block(
        &self,
        source: &impl BlockSource,
        store: &Store,
        number: u64,
        own: &mut Stopwatch,
    ) -> Result<Result<VerifiedBlock, ProofRefused>, RelayError> {
        let mut state = self.state.lock().await;
        if let Some(block) = state.recent.get(&number) {
            return Ok(Ok(block.clone()));
        }
        let mut client = match state.client.take() {
            Some(client) => client,
            None => match self.load_or_bootstrap(source, store, own).await? {
                Ok(client) => client,
                Err(refused) => return Ok(Err(refused)),
            },
        };
        let before = client.head();
        let fetched = source.blocks_from(number.min(before.number + 1)).await;
        let blocks = match fetched {
            Ok(blocks) => blocks,
            Err(e) => {
                state.client = Some(client);
                return Err(self.fabric_error(e));
            }
        };
        own.start();
        let verified = client.verify(blocks);
        own.stop();
        let persisted = if client.head() == before {
            Ok(())
        } else {
            store.set_fabric_head(&self.channel, &FabricHead::of(&client))
        };
        state.client = Some(client);
        persisted?;
        let verified = match verified {
            Ok(verified) => verified,
            Err(e) => return Ok(Err(refused(ErrorChain(&e)))),
        };
        for block in verified {
            state.recent.insert(block.number(), block);
        }
        while state.recent.len() > RECENT_BLOCKS {
            state.recent.pop_first();
        }
        match state.recent.get(&number) {
            Some(block) => Ok(Ok(block.clone())),
            // The peer announced a block it does not deliver yet: ask again later.
            None => Err(self.fabric_error(medcert_fabric::Error::Incomplete(
                "the peer delivered no block of the number it announced",
            ))),
        }
    }

    /// The light client from the stored checkpoint, or one that trusts the channel's
    /// newest block and its configuration now (persisting that checkpoint).
    async fn load_or_bootstrap(
        &self,
        source: &impl BlockSource,
        store: &Store,
        own: &mut Stopwatch,
    ) -> Result<Result<LightClient, ProofRefused>, RelayError> {
        if let Some(head) = store.fabric_head(&self.channel)? {
            return head.resume(&self.channel).map(Ok).map_err(|reason| {
                RelayError::Config(format!(
                    "the stored light-client checkpoint of channel {} is unusable: {reason}",
                    self.channel
                ))
            });
        }
        let fetch = |e| self.fabric_error(e);
        let height = source.height().await.map_err(fetch)?;
        let newest = source
            .block(height.saturating_sub(1))
            .await
            .map_err(fetch)?;
        let newest_number = newest.header.as_ref().map(|h| h.number).unwrap_or_default();
        let config_number = last_config(&newest).unwrap_or_default();
        let config = if config_number == newest_number {
            newest.clone()
        } else {
            source.block(config_number).await.map_err(fetch)?
        };
        own.start();
        let client = LightClient::bootstrap(&self.channel, &config, &newest);
        own.stop();
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                return Ok(Err(refused(format_args!(
                    "first checkpoint: {}",
                    ErrorChain(&e)
                ))));
            }
        };
        let anchored = client
            .config()
            .msp(&self.msp_id)
            .is_some_and(|msp| msp.same_ca(&self.anchor));
        if !anchored {
            return Ok(Err(refused(format_args!(
                "configuration block {} does not anchor {} in the CA the network description names",
                client.config().block_number(),
                self.msp_id
            ))));
        }
        store.set_fabric_head(&self.channel, &FabricHead::of(&client))?;
        tracing::info!(channel = %self.channel, block = client.head().number, config = client.config().block_number(), "light client: first checkpoint");
        Ok(Ok(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeze::{FreezeBook, Refusal};
    use medcert_fabric::light_client::testing::{TestChannel, TestIdentity, TestOrg};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    const HOUR: Duration = Duration::from_secs(3600);

    /// A hospital's peers as the relay sees them: the channel's blocks, the chaincode
    /// definition's endorsement policy, and how often the newest block was asked for.
    struct Peer {
        test: TestChannel,
        policy: Vec<u8>,
        height_asked: AtomicUsize,
    }

    fn missing(what: &'static str) -> medcert_fabric::Error {
        medcert_fabric::Error::Incomplete(what)
    }

    impl BlockSource for Peer {
        async fn height(&self) -> Result<u64, medcert_fabric::Error> {
            self.height_asked.fetch_add(1, Ordering::SeqCst);
            Ok(self.test.blocks().len() as u64)
        }

        async fn block(&self, number: u64) -> Result<Block, medcert_fabric::Error> {
            let block = self.test.blocks().get(number as usize);
            block.cloned().ok_or(missing("no such block"))
        }

        async fn blocks_from(&self, start: u64) -> Result<Vec<Block>, medcert_fabric::Error> {
            Ok(self.test.blocks()[start as usize..].to_vec())
        }

        async fn block_of(&self, tx_id: &str) -> Result<Block, medcert_fabric::Error> {
            let holds = |block: &&Block| {
                medcert_fabric::block::transactions(block)
                    .is_ok_and(|txs| txs.iter().any(|t| t.tx_id == tx_id))
            };
            self.test
                .blocks()
                .iter()
                .find(holds)
                .cloned()
                .ok_or(missing("no such transaction"))
        }

        async fn validation_parameter(&self, _: &str) -> Result<Vec<u8>, medcert_fabric::Error> {
            Ok(self.policy.clone())
        }
    }

    /// Hospital `n`'s channel, two peers, endorsement by both (a majority of two).
    fn hospital(n: u32) -> (Peer, ChannelLightClient) {
        let channel = format!("hospital{n}");
        let msp_id = format!("Hospital{n}MSP");
        let test = TestChannel::new(&channel, &msp_id, 2);
        let anchor = MspTrust::from_pem(&msp_id, test.org.ca_pem.as_bytes()).unwrap();
        let light_client = ChannelLightClient::new(&channel, &channel, &msp_id, "hospital", anchor);
        let peer = Peer {
            policy: test.peers_policy(2),
            test,
            height_asked: AtomicUsize::new(0),
        };
        (peer, light_client)
    }

    /// Request `index` of `channel`, as the chaincode's event carries it.
    fn payload(channel: &str, index: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "channel": channel,
            "index": index,
            "record_id": "R-1",
            "certificate_id": "1",
            "consent": "00",
            "requesting_hospital": "hospital9",
            "doctor": {
                "msp_id": "Hospital9MSP",
                "name": "User1@hospital9.medcert.local",
                "role": "client",
                "cert_id": "00",
            },
        }))
        .unwrap()
    }

    /// Request `index` endorsed by `endorsers` at `time`: its transaction id, envelope
    /// and payload.
    fn request(
        peer: &Peer,
        index: u64,
        endorsers: &[&TestIdentity],
        time: SystemTime,
    ) -> (String, Vec<u8>, Vec<u8>) {
        let payload = payload(&peer.test.channel, index);
        let (tx_id, tx) = peer.test.transaction(
            &peer.test.client,
            endorsers,
            time,
            (INTERCHAIN_REQUEST, &payload),
        );
        (tx_id, tx, payload)
    }

    /// Orders request `index`, endorsed by every peer now, and proves it.
    async fn prove_next(
        peer: &mut Peer,
        light_client: &ChannelLightClient,
        store: &Store,
        index: u64,
    ) -> Result<ProvenRequest, ProofRefused> {
        let peers = peer.test.peers.clone();
        let endorsers: Vec<_> = peers.iter().collect();
        let (tx_id, tx, payload) = request(peer, index, &endorsers, SystemTime::now());
        let number = peer.test.order(vec![tx]).header.as_ref().unwrap().number;
        prove(peer, light_client, store, number, &tx_id, &payload).await
    }

    async fn prove(
        peer: &Peer,
        light_client: &ChannelLightClient,
        store: &Store,
        number: u64,
        tx_id: &str,
        payload: &[u8],
    ) -> Result<ProvenRequest, ProofRefused> {
        let mut own = Stopwatch::default();
        light_client
            .prove_event(peer, store, number, tx_id, payload, &mut own)
            .await
            .unwrap()
    }

    /// Two hospitals proving one request each (block 1); then `bad` puts block 2 on
    /// hospital 1's channel, whose request (index 2) the relay must refuse, while
    /// hospital 2's next request is proven. Answers the refusal's reason and hospital
    /// 1's checkpoint after it, having checked that only hospital 1's channel froze.
    async fn refused_on_one_channel(
        bad: impl FnOnce(&mut TestChannel, u64) -> (u64, String, Vec<u8>),
    ) -> (String, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let freeze = FreezeBook::new(dir.path());
        let (mut peer1, client1) = hospital(1);
        let (mut peer2, client2) = hospital(2);
        prove_next(&mut peer1, &client1, &store, 1).await.unwrap();
        prove_next(&mut peer2, &client2, &store, 1).await.unwrap();

        let (number, tx_id, payload) = bad(&mut peer1.test, 2);
        let refused = prove(&peer1, &client1, &store, number, &tx_id, &payload)
            .await
            .unwrap_err();
        // What the relay does with a refused proof (Core::refuse): freeze that chain.
        freeze
            .refuse(
                &crate::fabric_chain("hospital1"),
                &refused.0,
                Refusal {
                    message: format!("fabric:hospital1/tx/{tx_id}"),
                    reason: refused.0.clone(),
                    at_ms: 1,
                },
            )
            .unwrap();

        let proven = prove_next(&mut peer2, &client2, &store, 2).await.unwrap();
        assert_eq!(proven.request.index, 2);
        assert_eq!(freeze.frozen("fabric:hospital2").unwrap(), None);
        assert_eq!(
            freeze.frozen("fabric:hospital1").unwrap(),
            Some(refused.0.clone())
        );
        assert_eq!(store.fabric_head("hospital2").unwrap().unwrap().number, 2);
        let checkpoint = store.fabric_head("hospital1").unwrap().unwrap().number;
        (refused.0, checkpoint)
    }

    /// Orders request `index` endorsed by `endorsers` at `time` into a genuine block.
    fn ordered(
        test: &mut TestChannel,
        index: u64,
        endorsers: &[&TestIdentity],
        time: SystemTime,
    ) -> (u64, String, Vec<u8>) {
        let payload = payload(&test.channel, index);
        let (tx_id, tx) = test.transaction(
            &test.client,
            endorsers,
            time,
            (INTERCHAIN_REQUEST, &payload),
        );
        let number = test.order(vec![tx]).header.as_ref().unwrap().number;
        (number, tx_id, payload)
    }

    #[tokio::test]
    async fn a_forged_orderer_signature_freezes_that_channel_only() {
        let (reason, checkpoint) = refused_on_one_channel(|test, index| {
            let payload = payload(&test.channel, index);
            let peers: Vec<_> = test.peers.iter().collect();
            let (tx_id, tx) = test.transaction(
                &test.client,
                &peers,
                SystemTime::now(),
                (INTERCHAIN_REQUEST, &payload),
            );
            let mut block = test.next_block(vec![tx]);
            test.seal(&mut block, &test.orderers[0], &test.peers[0]);
            let number = test.push(block).header.as_ref().unwrap().number;
            (number, tx_id, payload)
        })
        .await;
        assert_eq!(
            reason,
            "block 2: the orderer signatures do not satisfy /Channel/Orderer/BlockValidation \
             (ANY Writers); 0 signer(s) counted; signature 0: forged signature of \
             orderer0.medcert.local: signature does not verify under the member's certificate"
        );
        assert_eq!(checkpoint, 1, "the checkpoint stays on the last good block");
    }

    #[tokio::test]
    async fn an_endorsement_by_a_client_certificate_freezes_that_channel_only() {
        let (reason, checkpoint) = refused_on_one_channel(|test, index| {
            let (peer, doctor) = (test.peers[0].clone(), test.client.clone());
            ordered(test, index, &[&peer, &doctor], SystemTime::now())
        })
        .await;
        assert!(reason.starts_with("transaction "), "{reason}");
        assert!(
            reason.ends_with(
                " in block 2: endorsement 1: endorser User1@hospital1.medcert.local is a client, \
                 not a peer"
            ),
            "{reason}"
        );
        assert_eq!(
            checkpoint, 2,
            "the block is the channel's, its transaction is refused"
        );
    }

    #[tokio::test]
    async fn too_few_endorsements_freeze_that_channel_only() {
        let (reason, checkpoint) = refused_on_one_channel(|test, index| {
            let peer = test.peers[0].clone();
            ordered(test, index, &[&peer], SystemTime::now())
        })
        .await;
        assert!(
            reason.contains("too few endorsements: 1 distinct peer(s) of Hospital1MSP"),
            "{reason}"
        );
        assert!(
            reason.ends_with(
                "do not satisfy the endorsement policy OutOf(2, 'Hospital1MSP.peer', \
                 'Hospital1MSP.peer')"
            ),
            "{reason}"
        );
        assert_eq!(checkpoint, 2);
    }

    #[tokio::test]
    async fn a_broken_previous_hash_link_freezes_that_channel_only() {
        let (reason, checkpoint) = refused_on_one_channel(|test, index| {
            let payload = payload(&test.channel, index);
            let peers: Vec<_> = test.peers.iter().collect();
            let (tx_id, tx) = test.transaction(
                &test.client,
                &peers,
                SystemTime::now(),
                (INTERCHAIN_REQUEST, &payload),
            );
            let mut block = test.next_block(vec![tx]);
            block.header.as_mut().unwrap().previous_hash = vec![0; 32];
            let orderer = test.orderers[1].clone();
            test.seal(&mut block, &orderer, &orderer);
            let number = test.push(block).header.as_ref().unwrap().number;
            (number, tx_id, payload)
        })
        .await;
        assert!(
            reason.starts_with("broken hash chain: block 2's previous hash 0000"),
            "{reason}"
        );
        assert_eq!(checkpoint, 1, "the checkpoint stays on the last good block");
    }

    #[tokio::test]
    async fn an_endorser_certificate_not_yet_valid_at_the_blocks_time_freezes_that_channel_only() {
        let now = SystemTime::now();
        let (reason, checkpoint) = refused_on_one_channel(|test, index| {
            // Valid today, issued after the (backdated) transaction.
            let late = test.org.identity(
                "peer1.hospital1.medcert.local",
                "peer",
                now - HOUR..now + HOUR,
            );
            let peer = test.peers[0].clone();
            ordered(test, index, &[&peer, &late], now - 2 * HOUR)
        })
        .await;
        assert!(
            reason.contains(
                " in block 2: endorsement 1: endorser: not a member of Hospital1MSP: \
                 certificate peer1.hospital1.medcert.local is valid from"
            ),
            "{reason}"
        );
        assert_eq!(checkpoint, 2);
    }

    #[tokio::test]
    async fn an_endorser_certificate_expired_today_but_valid_at_the_blocks_time_is_proven() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (mut peer, light_client) = hospital(1);
        prove_next(&mut peer, &light_client, &store, 1)
            .await
            .unwrap();
        let now = SystemTime::now();
        let expired = peer.test.org.identity(
            "peer1.hospital1.medcert.local",
            "peer",
            now - 3 * HOUR..now - HOUR,
        );
        let current = peer.test.peers[0].clone();
        let (number, tx_id, payload) =
            ordered(&mut peer.test, 2, &[&current, &expired], now - 2 * HOUR);
        let proven = prove(&peer, &light_client, &store, number, &tx_id, &payload)
            .await
            .unwrap();
        assert_eq!(proven.request.index, 2);
        assert_eq!(proven.proof.endorsements.len(), 2);
    }

    #[tokio::test]
    async fn the_checkpoint_survives_a_restart_and_blocks_are_verified_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (mut peer, light_client) = hospital(1);
        prove_next(&mut peer, &light_client, &store, 1)
            .await
            .unwrap();
        assert_eq!(
            peer.height_asked.load(Ordering::SeqCst),
            1,
            "the first checkpoint is the newest block"
        );

        // A restarted relay resumes from the stored checkpoint, not from the peer's word.
        let anchor = MspTrust::from_pem("Hospital1MSP", peer.test.org.ca_pem.as_bytes()).unwrap();
        let restarted =
            ChannelLightClient::new("hospital1", "hospital1", "Hospital1MSP", "hospital", anchor);
        let peers = peer.test.peers.clone();
        let endorsers: Vec<_> = peers.iter().collect();
        ordered(&mut peer.test, 2, &endorsers, SystemTime::now());
        ordered(&mut peer.test, 3, &endorsers, SystemTime::now());
        // Request 3's block is proven through request 2's, verified on the way.
        let tx = medcert_fabric::block::transactions(&peer.test.blocks()[3])
            .unwrap()
            .remove(0);
        let (tx_id, payload) = (tx.tx_id, tx.event.unwrap().payload);
        let proven = prove(&peer, &restarted, &store, 3, &tx_id, &payload)
            .await
            .unwrap();
        assert_eq!(proven.request.index, 3);
        assert_eq!(peer.height_asked.load(Ordering::SeqCst), 1);
        assert_eq!(store.fabric_head("hospital1").unwrap().unwrap().number, 3);

        // A gap is filled from the ledger: request 2, by its transaction id.
        let tx_2 = medcert_fabric::block::transactions(&peer.test.blocks()[2])
            .unwrap()
            .remove(0)
            .tx_id;
        let mut own = Stopwatch::default();
        let filled = restarted
            .prove_transaction(&peer, &store, &tx_2, &mut own)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(filled.request.index, 2);
    }

    #[tokio::test]
    async fn a_channel_whose_configuration_names_another_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (mut peer, _) = hospital(1);
        let stranger = TestOrg::new("Hospital1MSP", "elsewhere");
        let anchor = MspTrust::from_pem("Hospital1MSP", stranger.ca_pem.as_bytes()).unwrap();
        let light_client =
            ChannelLightClient::new("hospital1", "hospital1", "Hospital1MSP", "hospital", anchor);
        let refused = prove_next(&mut peer, &light_client, &store, 1)
            .await
            .unwrap_err();
        assert_eq!(
            refused.0,
            "configuration block 0 does not anchor Hospital1MSP in the CA the network description names"
        );
        assert_eq!(store.fabric_head("hospital1").unwrap(), None);
    }
}
