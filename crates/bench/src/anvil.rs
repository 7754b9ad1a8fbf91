//! Throw-away accounts on anvil for the transactions the benchmark sends itself (the anvil
//! floor's transfers, the baseline's grants), so they never compete for a nonce with the
//! accounts other clients of the network are using.

use std::time::Duration;

use medcert_ethereum::ethers;
use medcert_network::Network;

use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Middleware, Provider};
use ethers::signers::{LocalWallet, Signer};
use ethers::types::U256;

use crate::error::BenchError;

/// A failed call to anvil.
pub(crate) fn rpc<E: std::error::Error + Send + Sync + 'static>(e: E) -> BenchError {
    BenchError::Ethereum(medcert_ethereum::EthereumError::Rpc(Box::new(e)))
}

/// A funded account, ready to send.
pub(crate) struct Funded {
    /// Signs with the account and polls anvil at the interval asked for.
    pub(crate) client: SignerMiddleware<Provider<Http>, LocalWallet>,
    /// The account's next nonce.
    pub(crate) nonce: U256,
    /// Twice anvil's gas price, so a transaction is never priced out.
    pub(crate) gas_price: U256,
}

/// Funds `wallet`'s account with `anvil_setBalance`; the client polls every `poll`.
pub(crate) async fn fund(
    network: &Network,
    wallet: LocalWallet,
    poll: Duration,
) -> Result<Funded, BenchError> {
    let provider = Provider::<Http>::try_from(network.ethereum.rpc_url.as_str())
        .map_err(|e| BenchError::Unavailable(format!("anvil RPC URL: {e}")))?
        .interval(poll);
    provider
        .request::<_, ()>("anvil_setBalance", (wallet.address(), U256::exp10(21)))
        .await
        .map_err(rpc)?;
    let gas_price = provider.get_gas_price().await.map_err(rpc)? * 2;
    let nonce = provider
        .get_transaction_count(wallet.address(), None)
        .await
        .map_err(rpc)?;
    Ok(Funded {
        client: SignerMiddleware::new(provider, wallet),
        nonce,
        gas_price,
    })
}
