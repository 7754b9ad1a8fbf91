//! Where the certificate chain is, how long to wait for it, and the signing client
//! every call goes through.

use std::sync::Arc;
use std::time::Duration;

use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Provider};
use ethers::signers::{LocalWallet, Signer};

use crate::EthereumError;

/// The middleware every call goes through: an HTTP provider and one signing account.
pub type Client = SignerMiddleware<Provider<Http>, LocalWallet>;

/// Where the certificate chain is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// The node's JSON-RPC endpoint, e.g. `http://127.0.0.1:8545`.
    pub rpc_url: String,
    /// The chain's EIP-155 id; transactions are signed for it and it is in the EIP-712 domain.
    pub chain_id: u64,
    /// Blocks, counting the transaction's own, before a transaction or event counts as
    /// final. anvil mines only when it receives a transaction, so on anvil without a
    /// block time anything above 1 waits until other transactions arrive.
    pub confirmations: usize,
    /// How often receipts, blocks and logs are polled.
    pub poll_interval: Duration,
    /// Upper bound on waiting for one transaction's receipt and confirmations.
    pub timeout: Duration,
}

impl ChainConfig {
    /// 1 confirmation, polling every 5 ms, 30 s timeout. On loopback a receipt query
    /// takes about a millisecond and anvil mines a transaction as it arrives, so the
    /// first poll after the send (one interval later) usually finds it: every interval
    /// of this wait is added to each transaction a recovery waits for.
    pub fn new(rpc_url: impl Into<String>, chain_id: u64) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            chain_id,
            confirmations: 1,
            poll_interval: Duration::from_millis(5),
            timeout: Duration::from_secs(30),
        }
    }

    pub(crate) fn client(&self, wallet: LocalWallet) -> Result<Arc<Client>, EthereumError> {
        let provider = Provider::<Http>::try_from(self.rpc_url.as_str())
            .map_err(|e| EthereumError::InvalidUrl {
                url: self.rpc_url.clone(),
                reason: e.to_string(),
            })?
            .interval(self.poll_interval);
        let wallet = wallet.with_chain_id(self.chain_id);
        Ok(Arc::new(SignerMiddleware::new(provider, wallet)))
    }
}
