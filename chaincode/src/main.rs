//! `medcert-chaincode`: serves the hospital chaincode on `CHAINCODE_SERVER_ADDRESS` for the
//! peer to dial, registering as `CHAINCODE_ID` (the package id from install), over TLS with
//! the certificate `CHAINCODE_TLS_CERT` and its key `CHAINCODE_TLS_KEY` (PEM files): the
//! peer checks it against the root it was installed with, so a process that takes the
//! port cannot answer for the chaincode.

#![allow(unused_crate_dependencies)] // the binary links the library's dependencies

use medcert_chaincode::contract::Config;
use medcert_chaincode::shim::ChaincodeService;
use medcert_fabric_protos::protos::chaincode_server::ChaincodeServer;
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let address: SocketAddr = required_env("CHAINCODE_SERVER_ADDRESS")?
        .parse()
        .map_err(|e| format!("CHAINCODE_SERVER_ADDRESS is not host:port: {e}"))?;
    let chaincode_id = required_env("CHAINCODE_ID")?;
    let config = Config {
        relay_msp_id: env_or("MEDCERT_RELAY_MSP_ID", "RelayMSP"),
    };
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let path = required_env(name)?;
        std::fs::read(&path).map_err(|e| format!("cannot read {name} {path}: {e}"))
    };
    let identity = tonic::transport::Identity::from_pem(
        read("CHAINCODE_TLS_CERT")?,
        read("CHAINCODE_TLS_KEY")?,
    );
    // tonic's TLS server takes rustls's process-wide provider, which is ambiguous when the
    // build also enables aws-lc-rs for another crate: choose ring. Nothing else in this
    // process chooses one, so the result is always the first choice.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing::info!(%address, %chaincode_id, ?config, "serving the hospital chaincode over TLS");
    tonic::transport::Server::builder()
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .map_err(|e| format!("the chaincode server's TLS certificate or key: {e}"))?
        .add_service(ChaincodeServer::new(ChaincodeService::new(
            chaincode_id,
            config,
        )))
        .serve_with_shutdown(address, shutdown_signal())
        .await
        .map_err(|e| format!("chaincode server failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
    }
}
