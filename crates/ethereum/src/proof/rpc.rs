//! The JSON-RPC calls the proofs read, each answer parsed into checked types: a value
//! out of range or of the wrong shape is a [`ProofError::Malformed`], never a panic.

use alloy_primitives::{Address, B256, Bloom, Bytes, U8, U64, U256};
use ethers::providers::Middleware;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ProofError;
use super::header::BlockHeader;

/// Calls `method` and parses its answer; `null` is `None`.
async fn call<M, T>(
    provider: &M,
    method: &'static str,
    params: impl serde::Serialize + std::fmt::Debug + Send + Sync,
) -> Result<Option<T>, ProofError>
where
    M: Middleware,
    T: DeserializeOwned,
{
    let value: Value = provider
        .provider()
        .request(method, params)
        .await
        .map_err(|e| ProofError::rpc(method, e))?;
    if value.is_null() {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|source| ProofError::Malformed { method, source })
}

fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// The node's newest block number.
pub(crate) async fn block_number<M>(provider: &M) -> Result<u64, ProofError>
where
    M: Middleware,
{
    let number: U64 = call(provider, "eth_blockNumber", ())
        .await?
        .ok_or_else(|| ProofError::Missing("newest block".into()))?;
    Ok(number.to())
}

/// A block header as the node gives it: its fields and the hash it claims for them.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedHeader {
    pub(crate) hash: B256,
    pub(crate) header: BlockHeader,
}

#[derive(Deserialize)]
struct HashOnly {
    hash: B256,
}

fn claimed(method: &'static str, value: Value) -> Result<ClaimedHeader, ProofError> {
    let malformed = |source| ProofError::Malformed { method, source };
    let HashOnly { hash } = serde_json::from_value(value.clone()).map_err(malformed)?;
    let header = serde_json::from_value(value).map_err(malformed)?;
    Ok(ClaimedHeader { hash, header })
}

/// Block `number`'s header, or `None` if the node has no such block.
pub(crate) async fn header_by_number<M>(
    provider: &M,
    number: u64,
) -> Result<Option<ClaimedHeader>, ProofError>
where
    M: Middleware,
{
    const METHOD: &str = "eth_getBlockByNumber";
    call::<_, Value>(provider, METHOD, (quantity(number), false))
        .await?
        .map(|value| claimed(METHOD, value))
        .transpose()
}

/// The header of the block with hash `hash`, or `None` if the node has none.
pub(crate) async fn header_by_hash<M>(
    provider: &M,
    hash: B256,
) -> Result<Option<ClaimedHeader>, ProofError>
where
    M: Middleware,
{
    const METHOD: &str = "eth_getBlockByHash";
    call::<_, Value>(provider, METHOD, (hash, false))
        .await?
        .map(|value| claimed(METHOD, value))
        .transpose()
}

/// One log as a node gives it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RpcLog {
    pub(crate) address: Address,
    pub(crate) topics: Vec<B256>,
    pub(crate) data: Bytes,
}

/// A transaction receipt as a node gives it: the consensus fields and where it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcReceipt {
    pub(crate) transaction_hash: B256,
    pub(crate) transaction_index: U64,
    pub(crate) block_hash: Option<B256>,
    pub(crate) block_number: Option<U64>,
    /// Absent on nodes that predate EIP-2718: a legacy transaction.
    #[serde(rename = "type", default)]
    pub(crate) tx_type: Option<U8>,
    /// Absent before Byzantium (a state root instead), which these proofs do not cover.
    pub(crate) status: Option<U64>,
    pub(crate) cumulative_gas_used: U64,
    pub(crate) logs_bloom: Bloom,
    pub(crate) logs: Vec<RpcLog>,
}

/// The receipt of transaction `tx`, or `None` while it is not mined (or unknown).
pub(crate) async fn transaction_receipt<M>(
    provider: &M,
    tx: B256,
) -> Result<Option<RpcReceipt>, ProofError>
where
    M: Middleware,
{
    call(provider, "eth_getTransactionReceipt", [tx]).await
}

/// Every receipt of block `number`, in transaction order.
pub(crate) async fn block_receipts<M>(
    provider: &M,
    number: u64,
) -> Result<Vec<RpcReceipt>, ProofError>
where
    M: Middleware,
{
    call(provider, "eth_getBlockReceipts", [quantity(number)])
        .await?
        .ok_or_else(|| ProofError::Missing(format!("receipts of block {number}")))
}

/// One slot's value and path, as in `eth_getProof`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RpcSlotProof {
    pub(crate) key: U256,
    pub(crate) value: U256,
    pub(crate) proof: Vec<Bytes>,
}

/// `eth_getProof`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcAccountProof {
    pub(crate) address: Address,
    pub(crate) account_proof: Vec<Bytes>,
    pub(crate) balance: U256,
    pub(crate) code_hash: B256,
    pub(crate) nonce: U64,
    pub(crate) storage_hash: B256,
    pub(crate) storage_proof: Vec<RpcSlotProof>,
}

/// The account `address` and its slot `slot` at block `number`, with their trie paths.
pub(crate) async fn account_proof<M>(
    provider: &M,
    address: Address,
    slot: B256,
    number: u64,
) -> Result<RpcAccountProof, ProofError>
where
    M: Middleware,
{
    call(
        provider,
        "eth_getProof",
        (address, [slot], quantity(number)),
    )
    .await?
    .ok_or_else(|| ProofError::Missing(format!("proof of {address} at block {number}")))
}
