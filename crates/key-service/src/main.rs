//! `medcert-key-service`: one hospital's key service, until SIGTERM or SIGINT.

#![allow(unused_crate_dependencies)] // the binary links the library's dependencies

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use medcert_key_service::{
    Config, DEFAULT_MAX_PASSWORD_FAILURES, DOCTOR_ATTEMPTS_PER_MINUTE, KeyServer,
    PATIENT_ATTEMPTS_PER_MINUTE, PeerAddress,
};

#[derive(Parser)]
#[command(
    version,
    about = "A hospital's key service: its record keys, password verifiers and signing keys"
)]
struct Cli {
    /// The loopback address to listen on, e.g. 127.0.0.1:7443.
    #[arg(long)]
    listen: SocketAddr,
    /// The service's durable state (created 0700).
    #[arg(long)]
    state_dir: PathBuf,
    /// The name on the service's TLS certificate, e.g. keys.hospital1.medcert.local.
    #[arg(long)]
    tls_host: String,
    /// Where to write the service's TLS CA certificate (PEM) for clients, at every start.
    #[arg(long)]
    tls_ca_out: PathBuf,
    /// The hospital's id, e.g. hospital1.
    #[arg(long)]
    hospital_id: String,
    /// The hospital's MSP, e.g. Hospital1MSP.
    #[arg(long)]
    msp_id: String,
    /// The MSP's root CA certificate (PEM).
    #[arg(long)]
    msp_ca: PathBuf,
    /// The hospital's channel.
    #[arg(long)]
    channel: String,
    /// The hospital chaincode's name.
    #[arg(long)]
    chaincode: String,
    /// One of the hospital's peers, host:port; repeated for each, in the order to try them.
    #[arg(long, required = true)]
    peer_endpoint: Vec<String>,
    /// The name on that peer's TLS certificate (one per --peer-endpoint, in order).
    #[arg(long, required = true)]
    peer_host: Vec<String>,
    /// That peer's TLS CA certificate, PEM (one per --peer-endpoint, in order).
    #[arg(long, required = true)]
    peer_tls_ca: Vec<PathBuf>,
    /// The service's own Fabric identity: its certificate (PEM).
    #[arg(long)]
    identity_cert: PathBuf,
    /// The service's own Fabric identity: its PKCS#8 private key (PEM).
    #[arg(long)]
    identity_key: PathBuf,
    /// Wrong passwords in a row that lock a patient.
    #[arg(long, default_value_t = DEFAULT_MAX_PASSWORD_FAILURES)]
    max_password_failures: u32,
    /// Password checks allowed per patient per minute.
    #[arg(long, default_value_t = PATIENT_ATTEMPTS_PER_MINUTE)]
    patient_checks_per_minute: u32,
    /// Password checks allowed per doctor per minute.
    #[arg(long, default_value_t = DOCTOR_ATTEMPTS_PER_MINUTE)]
    doctor_checks_per_minute: u32,
}

/// Errors are printed as one line (with their causes), never as a backtrace.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medcert-key-service: {e:#}");
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
    if cli.peer_host.len() != cli.peer_endpoint.len()
        || cli.peer_tls_ca.len() != cli.peer_endpoint.len()
    {
        anyhow::bail!(
            "give one --peer-host and one --peer-tls-ca for each --peer-endpoint, in the same order"
        );
    }
    let peers = cli
        .peer_endpoint
        .into_iter()
        .zip(cli.peer_host)
        .zip(cli.peer_tls_ca)
        .map(|((endpoint, host), tls_ca)| PeerAddress {
            endpoint,
            host,
            tls_ca,
        })
        .collect();
    let config = Config {
        listen: cli.listen,
        state_dir: cli.state_dir,
        tls_host: cli.tls_host,
        tls_ca_out: cli.tls_ca_out,
        hospital_id: cli.hospital_id,
        msp_id: cli.msp_id,
        msp_ca: cli.msp_ca,
        channel: cli.channel,
        chaincode: cli.chaincode,
        peers,
        identity_cert: cli.identity_cert,
        identity_key: cli.identity_key,
        max_password_failures: cli.max_password_failures,
        patient_checks_per_minute: cli.patient_checks_per_minute,
        doctor_checks_per_minute: cli.doctor_checks_per_minute,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let server = KeyServer::start(config)
        .await
        .context("starting the key service")?;
    server
        .serve_until(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("stopping");
        })
        .await
        .context("serving")?;
    Ok(())
}
