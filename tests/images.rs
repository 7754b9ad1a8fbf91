//! Smoke test of every image `deploy/images` builds: each starts under testcontainers on
//! the host network (on ports away from a running `deploy/up` network) and answers its
//! health check. Needs `deploy/install` and `deploy/images` (the test command runs both).

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use medcert_csp::{Csp, S3Config};
use sha3::{Digest, Sha3_256};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use support::{bind, image_of, tool};

const ANVIL_PORT: u16 = 28545;
const KUBO_API_PORT: u16 = 25001;
const S3_PORT: u16 = 29000;
const ORDERER_PORT: u16 = 27050;
const ORDERER_ADMIN_PORT: u16 = 27053;
const ORDERER_OPS_PORT: u16 = 28443;
const PEER_PORT: u16 = 27051;
const PEER_OPS_PORT: u16 = 29444;

async fn start(
    image: testcontainers::ContainerRequest<GenericImage>,
) -> ContainerAsync<GenericImage> {
    image
        .with_network("host")
        .start()
        .await
        .expect("container starts (run deploy/images to build the image)")
}

/// Polls `check` until it returns true, failing after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} not healthy within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn http_ok(url: &str) -> bool {
    matches!(reqwest::get(url).await, Ok(r) if r.status().is_success())
}

#[tokio::test]
async fn anvil_answers_eth_block_number() {
    let _anvil = start(image_of("anvil").with_cmd([
        "--host",
        "127.0.0.1",
        "--port",
        &ANVIL_PORT.to_string(),
    ]))
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{ANVIL_PORT}");
    eventually("anvil", Duration::from_secs(30), || async {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
        match client.post(&url).json(&body).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["result"] == "0x0"),
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test]
async fn kubo_answers_its_version() {
    let repo = tempfile::tempdir().unwrap();
    let ipfs = |args: &[&str]| {
        let status = Command::new(tool("ipfs"))
            .args(args)
            .env("IPFS_PATH", repo.path())
            .output()
            .unwrap();
        assert!(status.status.success(), "ipfs {args:?} failed");
    };
    ipfs(&["init", "--empty-repo", "--profile=test"]);
    ipfs(&[
        "config",
        "Addresses.API",
        &format!("/ip4/127.0.0.1/tcp/{KUBO_API_PORT}"),
    ]);
    let _kubo = start(
        image_of("ipfs")
            .with_cmd(["daemon", "--offline"])
            .with_env_var("IPFS_PATH", "/data/ipfs")
            .with_mount(bind(repo.path(), "/data/ipfs")),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{KUBO_API_PORT}/api/v0/version");
    eventually("kubo", Duration::from_secs(30), || async {
        match client.post(&url).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["Version"] == "0.43.1"),
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test]
async fn s3_server_stores_and_lists_an_object() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("smoke")).unwrap();
    let _s3 = start(
        image_of("medcert-s3")
            .with_cmd([&format!("127.0.0.1:{S3_PORT}"), "/data/s3"])
            .with_env_var("S3_ACCESS_KEY", "smoke")
            .with_env_var("S3_SECRET_KEY", "smoke-secret")
            .with_mount(bind(root.path(), "/data/s3")),
    )
    .await;
    let csp = Csp::s3(&S3Config {
        endpoint: format!("http://127.0.0.1:{S3_PORT}"),
        region: "us-east-1".into(),
        bucket: "smoke".into(),
        access_key_id: "smoke".into(),
        secret_access_key: "smoke-secret".into(),
    })
    .unwrap();
    let content = b"an encrypted record stands here".to_vec();
    let hash_c: [u8; 32] = Sha3_256::digest(&content).into();
    eventually("S3 server", Duration::from_secs(30), || async {
        csp.put(&hash_c, content.as_slice()).await.is_ok()
    })
    .await;
    assert!(csp.exists(&hash_c).await.unwrap());
    let listed = std::fs::read_dir(root.path().join("smoke"))
        .unwrap()
        .count();
    assert_eq!(
        listed, 1,
        "the object is stored in the server's bucket directory"
    );
}

/// MSP material for one orderer org and one peer org, made by the host's cryptogen.
fn crypto_material(dir: &Path) {
    let config = dir.join("crypto-config.yaml");
    std::fs::write(
        &config,
        "OrdererOrgs:\n  - Name: Orderer\n    Domain: smoke.local\n    EnableNodeOUs: true\n    Specs:\n      - Hostname: orderer\n\
         PeerOrgs:\n  - Name: Org1\n    Domain: org1.smoke.local\n    EnableNodeOUs: true\n    Template: {Count: 1}\n    Users: {Count: 0}\n",
    )
    .unwrap();
    let out = Command::new(tool("cryptogen"))
        .arg("generate")
        .arg(format!("--config={}", config.display()))
        .arg(format!("--output={}", dir.join("crypto").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "cryptogen failed");
}

#[tokio::test]
async fn fabric_orderer_and_peer_report_healthy() {
    let dir = tempfile::tempdir().unwrap();
    crypto_material(dir.path());
    let crypto = dir.path().join("crypto");
    let orderer_dir = crypto.join("ordererOrganizations/smoke.local/orderers/orderer.smoke.local");
    let peer_msp =
        crypto.join("peerOrganizations/org1.smoke.local/peers/peer0.org1.smoke.local/msp");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    let _orderer = start(
        image_of("orderer")
            .with_mount(bind(&orderer_dir, "/orderer"))
            .with_mount(bind(&data, "/data"))
            .with_env_var("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1")
            .with_env_var("ORDERER_GENERAL_LISTENPORT", ORDERER_PORT.to_string())
            .with_env_var("ORDERER_GENERAL_LOCALMSPID", "OrdererMSP")
            .with_env_var("ORDERER_GENERAL_LOCALMSPDIR", "/orderer/msp")
            // An orderer of the Raft (cluster) type refuses to start without TLS.
            .with_env_var("ORDERER_GENERAL_TLS_ENABLED", "true")
            .with_env_var("ORDERER_GENERAL_TLS_PRIVATEKEY", "/orderer/tls/server.key")
            .with_env_var("ORDERER_GENERAL_TLS_CERTIFICATE", "/orderer/tls/server.crt")
            .with_env_var("ORDERER_GENERAL_TLS_ROOTCAS", "[/orderer/tls/ca.crt]")
            .with_env_var(
                "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE",
                "/orderer/tls/server.crt",
            )
            .with_env_var(
                "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY",
                "/orderer/tls/server.key",
            )
            .with_env_var("ORDERER_GENERAL_CLUSTER_ROOTCAS", "[/orderer/tls/ca.crt]")
            .with_env_var("ORDERER_ADMIN_TLS_ENABLED", "true")
            .with_env_var("ORDERER_ADMIN_TLS_PRIVATEKEY", "/orderer/tls/server.key")
            .with_env_var("ORDERER_ADMIN_TLS_CERTIFICATE", "/orderer/tls/server.crt")
            .with_env_var("ORDERER_ADMIN_TLS_CLIENTROOTCAS", "[/orderer/tls/ca.crt]")
            .with_env_var("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none")
            .with_env_var("ORDERER_CHANNELPARTICIPATION_ENABLED", "true")
            .with_env_var(
                "ORDERER_ADMIN_LISTENADDRESS",
                format!("127.0.0.1:{ORDERER_ADMIN_PORT}"),
            )
            .with_env_var(
                "ORDERER_OPERATIONS_LISTENADDRESS",
                format!("127.0.0.1:{ORDERER_OPS_PORT}"),
            )
            .with_env_var("ORDERER_FILELEDGER_LOCATION", "/data/orderer/ledger")
            .with_env_var("ORDERER_CONSENSUS_WALDIR", "/data/orderer/wal")
            .with_env_var("ORDERER_CONSENSUS_SNAPDIR", "/data/orderer/snap"),
    )
    .await;
    let peer_address = format!("127.0.0.1:{PEER_PORT}");
    let _peer = start(
        image_of("peer")
            .with_cmd(["node", "start"])
            .with_mount(bind(&peer_msp, "/msp"))
            .with_mount(bind(&data, "/data"))
            .with_env_var("CORE_PEER_ID", "peer0.org1.smoke.local")
            .with_env_var("CORE_PEER_LOCALMSPID", "Org1MSP")
            .with_env_var("CORE_PEER_MSPCONFIGPATH", "/msp")
            .with_env_var("CORE_PEER_LISTENADDRESS", &peer_address)
            .with_env_var("CORE_PEER_ADDRESS", &peer_address)
            .with_env_var(
                "CORE_PEER_CHAINCODELISTENADDRESS",
                format!("127.0.0.1:{}", PEER_PORT + 1),
            )
            .with_env_var("CORE_PEER_GOSSIP_BOOTSTRAP", &peer_address)
            .with_env_var("CORE_PEER_FILESYSTEMPATH", "/data/peer/ledger")
            .with_env_var("CORE_LEDGER_SNAPSHOTS_ROOTDIR", "/data/peer/snapshots")
            .with_env_var(
                "CORE_OPERATIONS_LISTENADDRESS",
                format!("127.0.0.1:{PEER_OPS_PORT}"),
            ),
    )
    .await;
    let orderer_health = format!("http://127.0.0.1:{ORDERER_OPS_PORT}/healthz");
    let peer_health = format!("http://127.0.0.1:{PEER_OPS_PORT}/healthz");
    eventually("fabric orderer", Duration::from_secs(60), || {
        http_ok(&orderer_health)
    })
    .await;
    eventually("fabric peer", Duration::from_secs(60), || {
        http_ok(&peer_health)
    })
    .await;
}
