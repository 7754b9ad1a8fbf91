//! Starting and stopping the service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use medcert_fabric::msp::{CaError, MspTrust};
use medcert_fabric::{Identity, PeerEndpoint};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

use crate::auth::{Gate, millis};
use crate::evidence::{Chain, Peers};
use crate::proto::key_service_server::KeyServiceServer;
use crate::service::{Service, Settings};
use crate::store::{Store, StoreError, write_atomic};
use crate::tls;

/// The service's configuration, one field per flag of `medcert-key-service`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The loopback address to serve on (port 0: any free port).
    pub listen: SocketAddr,
    /// The durable state (created 0700).
    pub state_dir: PathBuf,
    /// The name the server's TLS certificate is for, e.g. `keys.hospital1.medcert.local`.
    pub tls_host: String,
    /// Where the service writes its TLS CA certificate (PEM) at every start, for clients.
    pub tls_ca_out: PathBuf,
    /// The hospital's id, e.g. `hospital1`: the only one whose watermarks it signs.
    pub hospital_id: String,
    /// The hospital's MSP, e.g. `Hospital1MSP`: the only one it serves.
    pub msp_id: String,
    /// The MSP's root CA certificate, PEM.
    pub msp_ca: PathBuf,
    /// The hospital's channel.
    pub channel: String,
    /// The hospital chaincode's name.
    pub chaincode: String,
    /// The hospital's peers, from which the service reads blocks: the first that answers,
    /// then another while one is down.
    pub peers: Vec<PeerAddress>,
    /// The service's own Fabric identity (a member of the MSP): certificate, PEM.
    pub identity_cert: PathBuf,
    /// Its PKCS#8 private key, PEM.
    pub identity_key: PathBuf,
    /// Wrong passwords in a row that lock a patient.
    pub max_password_failures: u32,
    /// Password checks allowed per patient per minute.
    pub patient_checks_per_minute: u32,
    /// Password checks allowed per doctor per minute.
    pub doctor_checks_per_minute: u32,
}

/// One of the hospital's peers, as the service reaches it.
#[derive(Debug, Clone)]
pub struct PeerAddress {
    /// Its gRPC endpoint, `host:port`.
    pub endpoint: String,
    /// The name on its TLS certificate.
    pub host: String,
    /// Its TLS CA certificate, PEM.
    pub tls_ca: PathBuf,
}

/// Why the service cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The service is only ever bound to loopback.
    #[error("{0} is not a loopback address; the key service listens on loopback only")]
    NotLoopback(SocketAddr),
    /// A limit of 0 would lock every patient at once.
    #[error("the number of wrong passwords that lock a patient must be at least 1")]
    NoFailuresAllowed,
    /// The service reads blocks from its hospital's peers, and was given none.
    #[error("no peer of the hospital to read blocks from")]
    NoPeers,
    /// A rate limit of zero would refuse every password check.
    #[error("the password checks allowed per patient and per doctor must be at least 1 a minute")]
    NoChecksAllowed,
    /// A configured file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The MSP CA certificate is not a usable trust anchor.
    #[error("the MSP CA {path}")]
    MspCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CaError,
    },
    /// The service's Fabric identity cannot be loaded.
    #[error("the service's Fabric identity")]
    Identity(#[source] medcert_fabric::Error),
    /// The state directory cannot be used.
    #[error("the state directory")]
    Store(#[from] StoreError),
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed (TLS setup, or serving).
    #[error("the gRPC server")]
    Serve(#[from] tonic::transport::Error),
    /// The server task ended abnormally.
    #[error("the server task")]
    Task(#[from] tokio::task::JoinError),
}

/// A running key service.
pub struct KeyServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl KeyServer {
    /// Opens the state, makes or loads the TLS certificates, writes the TLS CA
    /// certificate out, binds `config.listen` and serves until [`KeyServer::stop`]. The
    /// peers are connected on first use.
    pub async fn start(config: Config) -> Result<Self, ServerError> {
        if !config.listen.ip().is_loopback() {
            return Err(ServerError::NotLoopback(config.listen));
        }
        if config.max_password_failures == 0 {
            return Err(ServerError::NoFailuresAllowed);
        }
        if config.patient_checks_per_minute == 0 || config.doctor_checks_per_minute == 0 {
            return Err(ServerError::NoChecksAllowed);
        }
        if config.peers.is_empty() {
            return Err(ServerError::NoPeers);
        }
        let trust =
            MspTrust::from_pem(&config.msp_id, &read(&config.msp_ca)?).map_err(|source| {
                ServerError::MspCa {
                    path: config.msp_ca.clone(),
                    source,
                }
            })?;
        let identity =
            Identity::from_files(&config.msp_id, &config.identity_cert, &config.identity_key)
                .map_err(ServerError::Identity)?;
        let peers = config
            .peers
            .iter()
            .map(|peer| {
                Ok(PeerEndpoint {
                    endpoint: peer.endpoint.clone(),
                    server_name: peer.host.clone(),
                    tls_ca_pem: read(&peer.tls_ca)?,
                })
            })
            .collect::<Result<_, ServerError>>()?;
        let peers = Peers { peers, identity };
        let now = SystemTime::now();
        let store = Arc::new(Store::open(&config.state_dir, millis(now))?);
        let material = tls::load_or_create(&config.state_dir, &config.tls_host)?;
        write_ca_out(&config.tls_ca_out, &material.ca_pem)?;

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let service = Service::new(
            Settings {
                hospital_id: config.hospital_id.clone(),
                channel: config.channel.clone(),
                max_password_failures: config.max_password_failures,
                patient_checks_per_minute: config.patient_checks_per_minute,
                doctor_checks_per_minute: config.doctor_checks_per_minute,
            },
            Gate::new(trust.clone(), now),
            store,
            Chain::new(&config.channel, &config.chaincode, trust, peers),
        );
        // tonic's TLS server takes rustls's process-wide provider, which is ambiguous when
        // the build also enables aws-lc-rs for another crate: choose ring, as the clients
        // do. Another part of the process may have chosen already; that one stands.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &material.cert_pem,
            material.key_pem.as_bytes(),
        ));
        let router = Server::builder()
            .tls_config(tls)?
            .add_service(KeyServiceServer::new(service));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener),
            async {
                // A dropped sender stops the server as well.
                let _ = stopped.await;
            },
        ));
        tracing::info!("key service for {} listening on {addr}", config.hospital_id);
        Ok(Self { addr, stop, task })
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops as [`KeyServer::stop`] does; returns
    /// early if the server fails.
    pub async fn serve_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        tokio::select! {
            ended = &mut self.task => return Ok(ended??),
            () = shutdown => {}
        }
        self.stop().await
    }

    /// Stops accepting calls, lets calls in progress finish, and returns.
    pub async fn stop(self) -> Result<(), ServerError> {
        // The server may have ended on its own already; its result says how.
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The CA certificate for clients: public, so 0644, replaced atomically so a client never
/// reads half of it.
fn write_ca_out(path: &Path, ca_pem: &str) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("the path names no file")))?;
    write_atomic(dir, name, ca_pem.as_bytes(), 0o644)
}
