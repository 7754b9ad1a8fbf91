//! A certificate chain kept in memory that answers the JSON-RPC calls the proofs make, and
//! that a test can make lie: tamper with a header, break a parent link, reorganise,
//! answer a method with anything. For tests only (feature `fake-node`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U64, U256};
use async_trait::async_trait;
use ethers::providers::{JsonRpcClient, MockError, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::BlockHeader;

/// The chain a [`FakeNode`] serves.
#[derive(Debug, Default)]
struct FakeChain {
    /// Each block's header and the hash the node claims for it.
    blocks: Vec<(B256, BlockHeader)>,
    /// Answers given instead of the chain's, by method.
    overrides: HashMap<String, Value>,
    /// `eth_getProof` answers, by block number.
    proofs: HashMap<u64, Value>,
}

/// An in-memory chain behind the JSON-RPC interface (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FakeNode {
    chain: Arc<Mutex<FakeChain>>,
}

/// Block `number`'s header on the fake chain: linked to `parent`, 12 s after genesis at
/// time 1,000,000 per block, its extra data `fork` (so that forks differ).
fn header(number: u64, parent: B256, fork: u8) -> BlockHeader {
    BlockHeader {
        parent_hash: parent,
        ommers_hash: B256::repeat_byte(0x1d),
        beneficiary: Address::ZERO,
        state_root: B256::repeat_byte(0x51),
        transactions_root: B256::repeat_byte(0x7a),
        receipts_root: B256::repeat_byte(0x4e),
        logs_bloom: Bloom::ZERO,
        difficulty: U256::ZERO,
        number: U64::from(number),
        gas_limit: U64::from(30_000_000u64),
        gas_used: U64::ZERO,
        timestamp: U64::from(1_000_000 + 12 * number),
        extra_data: Bytes::from(vec![fork]),
        mix_hash: B256::ZERO,
        nonce: B64::ZERO,
        base_fee_per_gas: Some(U256::from(7u64)),
        withdrawals_root: Some(B256::repeat_byte(0x56)),
        blob_gas_used: Some(U64::ZERO),
        excess_blob_gas: Some(U64::ZERO),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(B256::repeat_byte(0xe3)),
    }
}

impl FakeNode {
    /// A chain of blocks 0 to `head`.
    pub fn new(head: u64) -> Self {
        let node = Self::default();
        for _ in 0..=head {
            node.mine();
        }
        node
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeChain) -> T) -> T {
        f(&mut self.chain.lock().expect("fake chain lock"))
    }

    /// A provider reading this chain.
    pub fn provider(&self) -> Provider<FakeNode> {
        Provider::new(self.clone())
    }

    /// Appends a block; returns its number.
    pub fn mine(&self) -> u64 {
        self.with(|chain| {
            let number = chain.blocks.len() as u64;
            let parent = chain
                .blocks
                .last()
                .map(|(hash, _)| *hash)
                .unwrap_or_default();
            let header = header(number, parent, 0);
            chain.blocks.push((header.hash(), header));
            number
        })
    }

    /// The newest block's number.
    pub fn head(&self) -> u64 {
        self.with(|chain| chain.blocks.len() as u64 - 1)
    }

    /// Block `number`'s hash as the node claims it.
    pub fn hash(&self, number: u64) -> B256 {
        self.with(|chain| chain.blocks[number as usize].0)
    }

    /// Changes block `number`'s fields but not the hash the node claims for it.
    pub fn tamper(&self, number: u64, change: impl FnOnce(&mut BlockHeader)) {
        self.with(|chain| change(&mut chain.blocks[number as usize].1));
    }

    /// Changes block `number`'s fields and claims their true hash (a header consistent
    /// in itself); the blocks after it keep their parent links to the old hash.
    pub fn rewrite(&self, number: u64, change: impl FnOnce(&mut BlockHeader)) {
        self.with(|chain| {
            let (hash, header) = &mut chain.blocks[number as usize];
            change(header);
            *hash = header.hash();
        });
    }

    /// Replaces the blocks from `number` on with a fork of `length` blocks.
    pub fn fork(&self, number: u64, length: u64) {
        self.with(|chain| {
            chain.blocks.truncate(number as usize);
            for n in number..number + length {
                let parent = chain
                    .blocks
                    .last()
                    .map(|(hash, _)| *hash)
                    .unwrap_or_default();
                let header = header(n, parent, 1);
                chain.blocks.push((header.hash(), header));
            }
        });
    }

    /// Answers `method` with `answer` from now on, whatever is asked.
    pub fn answer(&self, method: &str, answer: Value) {
        self.with(|chain| chain.overrides.insert(method.to_owned(), answer));
    }

    /// Answers `eth_getProof` at block `number` with `proof`.
    pub fn set_proof(&self, number: u64, proof: Value) {
        self.with(|chain| chain.proofs.insert(number, proof));
    }

    fn block_json(hash: B256, header: &BlockHeader) -> Value {
        let mut value = serde_json::to_value(header).expect("a header serialises");
        value["hash"] = json!(hash);
        value["transactions"] = json!([]);
        value
    }

    fn respond(&self, method: &str, params: Value) -> Value {
        self.with(|chain| {
            if let Some(answer) = chain.overrides.get(method) {
                return answer.clone();
            }
            let number_param = || {
                params[0]
                    .as_str()
                    .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            };
            match method {
                "eth_blockNumber" => json!(format!("{:#x}", chain.blocks.len() - 1)),
                "eth_getBlockByNumber" => number_param()
                    .and_then(|n| chain.blocks.get(n as usize))
                    .map(|(hash, header)| Self::block_json(*hash, header))
                    .unwrap_or(Value::Null),
                "eth_getBlockByHash" => {
                    let wanted: Option<B256> = serde_json::from_value(params[0].clone()).ok();
                    chain
                        .blocks
                        .iter()
                        .find(|(hash, _)| Some(*hash) == wanted)
                        .map(|(hash, header)| Self::block_json(*hash, header))
                        .unwrap_or(Value::Null)
                }
                "eth_getProof" => {
                    let number = params[2]
                        .as_str()
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
                    number
                        .and_then(|n| chain.proofs.get(&n).cloned())
                        .unwrap_or(Value::Null)
                }
                _ => Value::Null,
            }
        })
    }
}

#[async_trait]
impl JsonRpcClient for FakeNode {
    type Error = MockError;

    async fn request<T, R>(&self, method: &str, params: T) -> Result<R, MockError>
    where
        T: std::fmt::Debug + Serialize + Send + Sync,
        R: DeserializeOwned + Send,
    {
        let params = serde_json::to_value(params)?;
        Ok(serde_json::from_value(self.respond(method, params))?)
    }
}
