//! `medcert relay run`: the cross-chain relay for every hospital, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use medcert_relay::{Relay, RelayConfig};

use crate::args::Context;

#[derive(Subcommand)]
pub(crate) enum RelayCmd {
    /// Run the relay for every hospital until Ctrl-C.
    Run {
        /// The relay's durable state (default: <run_dir>/relay-cli).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Serve Prometheus metrics here (loopback), e.g. 127.0.0.1:9898.
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
}

impl RelayCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let RelayCmd::Run { state_dir, metrics } = self;
        let network = ctx.network()?;
        let state_dir = state_dir
            .clone()
            .or_else(|| ctx.settings.relay_state_dir.clone())
            .unwrap_or_else(|| network.run_dir.join("relay-cli"));
        let mut config = RelayConfig::new(network, state_dir.clone());
        config.confirmations = ctx.settings.relay_confirmations;
        config.request_timeout = ctx.settings.relay_timeout;
        config.metrics_addr = *metrics;
        let handle = Relay::start(config)
            .await
            .context("cannot start the relay")?;
        if !ctx.json {
            eprintln!(
                "relay running (state in {}); Ctrl-C stops it",
                state_dir.display()
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    }
}
