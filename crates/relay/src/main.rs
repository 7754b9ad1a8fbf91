//! `medcert-relay`: run the relay, or inspect and clear frozen chains in its state dir.

#![allow(unused_crate_dependencies)] // the binary links the library's dependencies

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use medcert_network::Network;
use medcert_relay::freeze::FreezeBook;
use medcert_relay::{PauseStep, Relay, RelayConfig};

/// Environment variable that stops the relay at a step (crash tests).
const PAUSE_ENV: &str = "MEDCERT_RELAY_PAUSE_AT";

#[derive(Parser)]
#[command(
    version,
    about = "medcert's cross-chain relay between the hospital channels and the certificate chain"
)]
struct Cli {
    /// The network description (default: $MEDCERT_NETWORK or <repo>/.run/network.json).
    #[arg(long, global = true)]
    network: Option<PathBuf>,
    /// The relay's state directory (default: <run dir of the network>/relay).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every hospital channel until interrupted (Ctrl-C or SIGTERM).
    Run {
        /// Ethereum blocks, counting the transaction's own, before a receipt is final.
        #[arg(long, default_value_t = 1)]
        confirmations: usize,
        /// Serve Prometheus metrics on this loopback address, e.g. 127.0.0.1:9464.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// Seconds a transaction may wait to be mined before the relay looks whether its
        /// request's deadline passed on the certificate chain (a request is failed only
        /// with proof that it was not served by its deadline).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Serve only these hospitals (comma-separated ids); default all.
        #[arg(long, value_delimiter = ',')]
        hospitals: Option<Vec<String>>,
    },
    /// List frozen chains, why, and the messages refused since.
    Frozen,
    /// Clear a chain's freeze (e.g. fabric:hospital3 or ethereum:31337).
    Unfreeze { chain: String },
    /// Re-check the proof a relay recorded with its answer to recovery INDEX against the
    /// certificate chain as it is now.
    Prove {
        /// The recovery's index on the hospital's channel.
        index: u64,
        /// The hospital whose channel holds it.
        #[arg(long)]
        hospital: String,
    },
}

fn load_network(path: Option<&Path>) -> anyhow::Result<Network> {
    Ok(match path {
        Some(path) => Network::load_from(path)?,
        None => Network::load()?,
    })
}

fn state_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    match &cli.state_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(load_network(cli.network.as_deref())?.run_dir.join("relay")),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Errors are printed as one line (with their causes), never as a backtrace.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medcert-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let state_dir = state_dir(&cli)?;
    match cli.command {
        Command::Run {
            confirmations,
            metrics,
            timeout,
            ref hospitals,
        } => {
            let network = load_network(cli.network.as_deref())?;
            let mut config = RelayConfig::new(network, state_dir);
            config.confirmations = confirmations;
            config.metrics_addr = metrics;
            config.request_timeout = Duration::from_secs(timeout);
            config.only_hospitals = hospitals.clone();
            config.pause_at = match std::env::var(PAUSE_ENV) {
                Ok(step) => Some(step.parse::<PauseStep>().map_err(anyhow::Error::msg)?),
                Err(_) => None,
            };
            let relay = Relay::start(config).await.context("starting the relay")?;
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            relay.shutdown().await;
        }
        Command::Frozen => {
            let state = FreezeBook::new(&state_dir).load()?;
            if state.frozen.is_empty() {
                println!("no chain is frozen");
            }
            for (chain, freeze) in &state.frozen {
                println!(
                    "{chain} frozen since {} ms: {}",
                    freeze.since_ms, freeze.reason
                );
                for refusal in &freeze.refusals {
                    println!(
                        "  refused {} at {} ms: {}",
                        refusal.message, refusal.at_ms, refusal.reason
                    );
                }
            }
        }
        Command::Prove {
            index,
            ref hospital,
        } => {
            let network = load_network(cli.network.as_deref())?;
            let recheck = medcert_relay::prove::recheck(&network, hospital, index).await?;
            let recovery = &recheck.recovery;
            println!(
                "recovery {index} of {hospital}: {}",
                serde_json::to_string(&recovery.outcome)?
            );
            let Some(proof) = &recovery.proof else {
                println!("no proof recorded (pending, or refused by the certificate chain)");
                return Ok(());
            };
            println!("recorded proof: {proof}");
            match recheck.verdict {
                Some(Ok(())) => println!("re-checked against the certificate chain: holds"),
                Some(Err(reason)) => anyhow::bail!("the recorded proof does not hold: {reason}"),
                None => {}
            }
        }
        Command::Unfreeze { chain } => {
            let freeze = FreezeBook::new(&state_dir).unfreeze(&chain, now_ms())?;
            println!(
                "{chain} unfrozen ({} refused messages will be taken up again); it was frozen for: {}",
                freeze.refusals.len(),
                freeze.reason
            );
        }
    }
    Ok(())
}
