//! An in-process key service for hospital1 on 127.0.0.1, with a test MSP and a temporary
//! state directory; no Fabric network (the peer it names does not exist).

#![allow(dead_code)] // each test binary uses part of it

pub(crate) mod pki;

use std::path::{Path, PathBuf};

use medcert_key_service::proto::Signed;
use medcert_key_service::proto::key_service_client::KeyServiceClient as Rpc;
use medcert_key_service::{Config, KeyServer, KeyServiceClient, PeerAddress};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use pki::{Member, Msp};

pub(crate) const TLS_HOST: &str = "keys.hospital1.medcert.local";

/// hospital1's MSP, its members, and the service's configuration.
pub(crate) struct Hospital {
    pub(crate) dir: TempDir,
    pub(crate) msp: Msp,
    pub(crate) doctor: Member,
    pub(crate) admin: Member,
    pub(crate) config: Config,
}

impl Hospital {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let msp = Msp::new("Hospital1MSP", "hospital1.medcert.local");
        let service = msp.member("User3@hospital1.medcert.local", "client");
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.path().join("state"),
            tls_host: TLS_HOST.to_owned(),
            tls_ca_out: dir.path().join("out").join("keys-ca.pem"),
            hospital_id: "hospital1".to_owned(),
            msp_id: "Hospital1MSP".to_owned(),
            msp_ca: write("msp-ca.pem", &msp.ca_pem),
            channel: "hospital1".to_owned(),
            chaincode: "medcert".to_owned(),
            // Nothing listens there: the service connects to its peer only on first use.
            peers: vec![PeerAddress {
                endpoint: "127.0.0.1:1".to_owned(),
                host: "peer0.hospital1.medcert.local".to_owned(),
                tls_ca: write("peer-tls-ca.pem", &msp.ca_pem),
            }],
            identity_cert: write("service-cert.pem", &service.cert_pem),
            identity_key: write("service-key.pem", &service.key_pem),
            max_password_failures: 5,
            patient_checks_per_minute: medcert_key_service::PATIENT_ATTEMPTS_PER_MINUTE,
            doctor_checks_per_minute: medcert_key_service::DOCTOR_ATTEMPTS_PER_MINUTE,
        };
        Self {
            doctor: msp.member("User1@hospital1.medcert.local", "client"),
            admin: msp.member("Admin@hospital1.medcert.local", "admin"),
            msp,
            dir,
            config,
        }
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }

    pub(crate) async fn start(&self) -> KeyServer {
        KeyServer::start(self.config.clone()).await.unwrap()
    }

    pub(crate) fn endpoint(server: &KeyServer) -> String {
        server.local_addr().to_string()
    }

    /// A client signing as `member`.
    pub(crate) async fn client(&self, server: &KeyServer, member: &Member) -> KeyServiceClient {
        KeyServiceClient::connect(
            &Self::endpoint(server),
            TLS_HOST,
            &self.config.tls_ca_out,
            member.identity(),
        )
        .await
        .unwrap()
    }

    /// The raw gRPC client, for requests the library client would never make.
    pub(crate) async fn rpc(&self, server: &KeyServer) -> Rpc<Channel> {
        let ca = std::fs::read(&self.config.tls_ca_out).unwrap();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(TLS_HOST);
        let channel = Endpoint::from_shared(format!("https://{}", Self::endpoint(server)))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        Rpc::new(channel)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A request of `method` with `body` signed by `member` at `timestamp_ms` with `nonce`.
pub(crate) fn signed(
    member: &Member,
    method: &str,
    body: Vec<u8>,
    timestamp_ms: i64,
    nonce: &[u8],
) -> Signed {
    medcert_key_service::sign_request(
        &member.identity(),
        method,
        body,
        timestamp_ms,
        nonce.to_vec(),
    )
}
