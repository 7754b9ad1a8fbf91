//! The relay the recovery figures go through: started in this process on a runtime of
//! its own whose threads are named `relay…`, so Figure 7 can tell its CPU from the
//! CLI flows'.

use std::path::Path;

use medcert_network::Network;
use medcert_relay::{Relay, RelayConfig, RelayHandle};

use crate::error::BenchError;

/// Worker threads of the relay's runtime.
const RELAY_THREADS: usize = 2;

/// A relay running in this process, on its own runtime.
pub struct InProcessRelay {
    runtime: tokio::runtime::Runtime,
    handle: RelayHandle,
}

impl InProcessRelay {
    /// Starts a relay serving `hospitals`, keeping its state under `state_dir`.
    pub async fn start(
        network: &Network,
        hospitals: &[String],
        state_dir: &Path,
    ) -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RELAY_THREADS)
            .thread_name("relay")
            .enable_all()
            .build()
            .map_err(BenchError::io(
                "cannot start the relay's runtime",
                state_dir,
            ))?;
        let mut config = RelayConfig::new(network.clone(), state_dir.to_owned());
        config.only_hospitals = Some(hospitals.to_vec());
        let started = runtime
            .spawn(Relay::start(config))
            .await
            .map_err(BenchError::RelayTask)
            .and_then(|outcome| outcome.map_err(BenchError::Relay));
        match started {
            Ok(handle) => Ok(Self { runtime, handle }),
            Err(e) => {
                // Dropping a runtime may block; in async code it has to go in the background.
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    /// Shuts the relay down and lets its runtime go.
    pub async fn stop(self) {
        if let Err(e) = self.runtime.spawn(self.handle.shutdown()).await {
            tracing::warn!(error = %e, "the relay did not shut down cleanly");
        }
        // Dropping a runtime may block; in async code it has to be let go in the background.
        self.runtime.shutdown_background();
    }
}
