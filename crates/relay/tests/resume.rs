//! Resuming from the store: an index gap is filled from the ledger, events read again
//! are ignored as duplicates, and a certificate chain reset under the relay (another
//! anvil behind the same URL) freezes it until the operator unfreezes it.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use medcert_network::Network;
use medcert_relay::freeze::FreezeBook;
use medcert_relay::store::{Checkpoint, Outcome, Status, Store, message_key};
use medcert_relay::{Relay, RelayConfig, RelayHandle, ethereum_chain};
use support::{Patient, assert_completed_once, network, served_logs, unix_now};

const WAIT: Duration = Duration::from_secs(120);

async fn start(network: &Network, hospital: &str, dir: &Path) -> RelayHandle {
    let mut config = RelayConfig::new(network.clone(), dir.to_owned());
    config.only_hospitals = Some(vec![hospital.to_owned()]);
    Relay::start(config).await.unwrap()
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn answered(store: &Store, channel: &str, index: u64) -> Outcome {
    match store.message(&message_key(channel, index)).unwrap() {
        Some(record) => match record.status {
            Status::Answered { outcome, .. } => outcome,
            other => panic!("request {index} is {other:?}"),
        },
        None => panic!("request {index} was never admitted"),
    }
}

#[tokio::test]
async fn gaps_are_filled_from_the_ledger_and_duplicates_ignored() {
    let net = network();
    let hospital = &net.fabric.hospitals[9];
    let patient = Patient::new(&net, hospital).await;
    let dir = tempfile::tempdir().unwrap();
    let consent = |nonce| patient.consent(nonce, unix_now() + 3600).to_bytes();

    let relay = start(&net, &hospital.id, dir.path()).await;
    let (a, a_block) = patient.request_recovery_at(&consent(2)).await;
    let metrics = relay.metrics();
    until("request A answered", || {
        metrics.served.load(Ordering::Relaxed) >= 1
    })
    .await;
    relay.shutdown().await;

    // B and C while the relay is down; then the checkpoint is moved past B, so the
    // stream shows C first and B is missing.
    let (b, _) = patient.request_recovery_at(&consent(3)).await;
    let (c, c_block) = patient.request_recovery_at(&consent(4)).await;
    Store::open(dir.path())
        .unwrap()
        .set_checkpoint(
            &hospital.channel,
            &Checkpoint {
                block_number: c_block,
                after_tx_id: None,
            },
        )
        .unwrap();
    let relay = start(&net, &hospital.id, dir.path()).await;
    let metrics = relay.metrics();
    until("B and C answered", || {
        metrics.served.load(Ordering::Relaxed) >= 2
    })
    .await;
    relay.shutdown().await;
    for index in [a, b, c] {
        let outcome = patient.outcome(index, WAIT).await;
        assert_completed_once(&net, &patient, index, &outcome).await;
    }
    let store = Store::open(dir.path()).unwrap();
    for index in [b, c] {
        assert!(matches!(
            answered(&store, &hospital.channel, index),
            Outcome::Completed { .. }
        ));
    }

    // Rewound before A: A, B and C come again and are ignored.
    store
        .set_checkpoint(
            &hospital.channel,
            &Checkpoint {
                block_number: a_block,
                after_tx_id: None,
            },
        )
        .unwrap();
    drop(store);
    let relay = start(&net, &hospital.id, dir.path()).await;
    let metrics = relay.metrics();
    until("A, B and C read again", || {
        metrics.duplicates.load(Ordering::Relaxed) >= 3
    })
    .await;
    relay.shutdown().await;
    for index in [a, b, c] {
        let id = medcert_relay::request_id(&hospital.channel, index);
        assert_eq!(served_logs(&net, id).await.len(), 1);
    }
}

/// A private anvil on a free loopback port, killed when dropped.
struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    async fn start(network: &Network) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(network.bin_dir.join("anvil"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &network.ethereum.chain_id.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "anvil did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anvil
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_chain_reset_freezes_ethereum_until_unfrozen() {
    let net = network();
    let hospital = &net.fabric.hospitals[6];
    let patient = Patient::new(&net, hospital).await;
    let dir = tempfile::tempdir().unwrap();
    let consent = |nonce| patient.consent(nonce, unix_now() + 3600);

    // The relay learns the certificate chain while serving a first request.
    let relay = start(&net, &hospital.id, dir.path()).await;
    let first = patient.request_recovery(consent(2)).await;
    let metrics = relay.metrics();
    until("the first request answered", || {
        metrics.served.load(Ordering::Relaxed) >= 1
    })
    .await;
    relay.shutdown().await;

    // Another chain (fresh genesis) answers at the URL: the relay must not act on it.
    let other = Anvil::start(&net).await;
    let mut reset = net.clone();
    reset.ethereum.rpc_url = other.url.clone();
    let relay = start(&reset, &hospital.id, dir.path()).await;
    let second = patient.request_recovery(consent(3)).await;
    let chain = ethereum_chain(net.ethereum.chain_id);
    let book = FreezeBook::new(dir.path());
    until("the chain frozen", || {
        book.load().unwrap().frozen.contains_key(&chain)
    })
    .await;
    let freeze = book.load().unwrap().frozen[&chain].clone();
    assert!(
        freeze.reason.starts_with("chain reset: genesis"),
        "{}",
        freeze.reason
    );
    let key = message_key(&hospital.channel, second);
    assert!(
        freeze.refusals.iter().any(|r| r.message == key),
        "{freeze:?}"
    );
    assert_eq!(relay.metrics().served.load(Ordering::Relaxed), 0);
    relay.shutdown().await;
    drop(other);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.message(&key).unwrap().unwrap().status,
        Status::Received
    );
    drop(store);

    // The operator unfreezes; the relay takes the request up again on the real chain.
    book.unfreeze(&chain, support::unix_now() * 1000).unwrap();
    let relay = start(&net, &hospital.id, dir.path()).await;
    let outcome = patient.outcome(second, WAIT).await;
    assert_completed_once(&net, &patient, second, &outcome).await;
    let metrics = relay.metrics();
    until("the second request answered", || {
        metrics.served.load(Ordering::Relaxed) >= 1
    })
    .await;
    relay.shutdown().await;
    let outcome = patient.outcome(first, WAIT).await;
    assert_completed_once(&net, &patient, first, &outcome).await;
}
