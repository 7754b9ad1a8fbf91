//! The relay on the shared network (10 hospitals, anvil): each test serves its own
//! hospitals from its own state dir, with fresh patients and certificates.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use medcert_network::Network;
use medcert_relay::freeze::FreezeBook;
use medcert_relay::store::Status;
use medcert_relay::{Relay, RelayConfig, RelayHandle, fabric_chain};
use std::sync::atomic::Ordering;
use support::{Patient, assert_completed_once, network, served_logs, unix_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(120);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "medcert_relay=info".into()),
        )
        .with_test_writer()
        .try_init();
}

async fn start(
    network: &Network,
    hospitals: &[&str],
    dir: &Path,
    configure: impl FnOnce(&mut RelayConfig),
) -> RelayHandle {
    let mut config = RelayConfig::new(network.clone(), dir.to_owned());
    config.only_hospitals = Some(hospitals.iter().map(|h| h.to_string()).collect());
    configure(&mut config);
    Relay::start(config).await.unwrap()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in metrics"))
        .parse()
        .unwrap()
}

/// Whether the certificate chain never served request `index` of `channel`.
async fn never_served(network: &Network, channel: &str, index: u64) -> bool {
    served_logs(network, medcert_relay::request_id(channel, index))
        .await
        .is_empty()
}

/// The reason of a request the relay answered with FailRecovery.
fn failure(outcome: &serde_json::Value) -> &str {
    assert_eq!(outcome["state"], "failed", "{outcome}");
    outcome["reason"].as_str().unwrap()
}

#[tokio::test]
async fn two_hospitals_recover_at_once() {
    init_tracing();
    let net = network();
    let (h1, h2) = (&net.fabric.hospitals[0], &net.fabric.hospitals[1]);
    let (p1, p2) = tokio::join!(Patient::new(&net, h1), Patient::new(&net, h2));
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&net, &[&h1.id, &h2.id], dir.path(), |c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;

    let expiry = p1.now.max(p2.now) + 3600;
    let (i1, i2) = tokio::join!(
        p1.request_recovery(p1.consent(2, expiry)),
        p2.request_recovery(p2.consent(2, expiry))
    );
    let (o1, o2) = tokio::join!(p1.outcome(i1, WAIT), p2.outcome(i2, WAIT));
    assert_completed_once(&net, &p1, i1, &o1).await;
    assert_completed_once(&net, &p2, i2, &o2).await;

    // Other relays may answer the channel first; this one still records both (and may
    // serve other requests on these channels too: at least ours are counted).
    let served = relay.metrics();
    let start_wait = Instant::now();
    while served.served.load(Ordering::Relaxed) < 2 {
        assert!(
            start_wait.elapsed() < WAIT,
            "the relay did not record both answers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = scrape(relay.metrics_addr().unwrap()).await;
    assert!(
        counter(&metrics, "medcert_relay_served_total") >= 2,
        "{metrics}"
    );
    assert!(counter(&metrics, "medcert_relay_received_total") >= 2);
    assert_eq!(counter(&metrics, "medcert_relay_frozen_total"), 0);
    assert!(metrics.contains("medcert_relay_overhead_seconds_count"));
    let (count, mean, max) = relay.metrics().overhead.summary();
    eprintln!("relay overhead: {count} requests, mean {mean:?}, max {max:?}");
    relay.shutdown().await;
}

#[tokio::test]
async fn refused_consents_end_in_fail_recovery() {
    init_tracing();
    let net = network();
    let hospital = &net.fabric.hospitals[6];
    let other = &net.fabric.hospitals[5];
    let patient = Patient::new(&net, hospital).await;
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&net, &[&hospital.id], dir.path(), |_| {}).await;

    let expired = patient.consent(2, unix_now() - 60);
    let good = patient.consent(3, patient.now + 3600);
    let mut foreign = patient.consent(4, patient.now + 3600);
    foreign.consent.hospital = medcert_eip712::hospital_id(&other.id).unwrap();
    foreign.signature = patient
        .signer
        .sign_consent(&foreign.consent, &patient.domain);
    let (i_expired, i_good, i_foreign, i_malformed) = tokio::join!(
        patient.request_recovery(expired),
        patient.request_recovery(good),
        patient.request_recovery(foreign),
        patient.request_recovery_raw(&[0x00, 0x11, 0x22, 0x33]),
    );

    let outcome = patient.outcome(i_expired, WAIT).await;
    assert!(
        failure(&outcome).starts_with("consent expired"),
        "{outcome}"
    );
    assert!(never_served(&net, &hospital.channel, i_expired).await);

    let outcome = patient.outcome(i_foreign, WAIT).await;
    assert!(failure(&outcome).contains("another hospital"), "{outcome}");

    let outcome = patient.outcome(i_malformed, WAIT).await;
    assert!(
        failure(&outcome).starts_with("malformed consent"),
        "{outcome}"
    );

    let outcome = patient.outcome(i_good, WAIT).await;
    assert_completed_once(&net, &patient, i_good, &outcome).await;

    // The same consent again: its nonce is spent.
    let i_replayed = patient.request_recovery(good).await;
    let outcome = patient.outcome(i_replayed, WAIT).await;
    assert!(
        failure(&outcome).starts_with("consent already used or revoked"),
        "{outcome}"
    );
    assert!(never_served(&net, &hospital.channel, i_replayed).await);
    relay.shutdown().await;
}

#[tokio::test]
async fn forged_proof_freezes_only_that_chain_until_unfrozen() {
    init_tracing();
    let net = network();
    let (victim, healthy) = (&net.fabric.hospitals[7], &net.fabric.hospitals[8]);
    // The relay is told hospital 8's MSP CA is hospital 9's: hospital 8's genuine
    // endorsements now look forged.
    let mut forged = net.clone();
    forged.fabric.hospitals[7].msp_ca = healthy.msp_ca.clone();

    let (pv, ph) = tokio::join!(Patient::new(&net, victim), Patient::new(&net, healthy));
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&forged, &[&victim.id, &healthy.id], dir.path(), |_| {}).await;
    let expiry = pv.now.max(ph.now) + 3600;
    let (iv, ih) = tokio::join!(
        pv.request_recovery(pv.consent(2, expiry)),
        ph.request_recovery(ph.consent(2, expiry))
    );

    let outcome = ph.outcome(ih, WAIT).await;
    assert_completed_once(&net, &ph, ih, &outcome).await;

    let chain = fabric_chain(&victim.channel);
    let book = FreezeBook::new(dir.path());
    let start_wait = Instant::now();
    let freeze = loop {
        if let Some(freeze) = book.load().unwrap().frozen.get(&chain) {
            break freeze.clone();
        }
        assert!(start_wait.elapsed() < WAIT, "{chain} never frozen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The light client refuses the channel's configuration itself: it does not anchor
    // the hospital's MSP in the CA the relay was told.
    assert!(
        freeze.reason.contains("does not anchor"),
        "{}",
        freeze.reason
    );
    assert!(!freeze.refusals.is_empty());
    let metrics = relay.metrics();
    assert_eq!(metrics.frozen.load(std::sync::atomic::Ordering::Relaxed), 1);
    relay.shutdown().await;
    // Refused, not admitted: nothing was sent for it (whatever other relays on the
    // shared network may do with the same request).
    let key = medcert_relay::store::message_key(&victim.channel, iv);
    let store = medcert_relay::store::Store::open(dir.path()).unwrap();
    assert_eq!(store.message(&key).unwrap(), None);
    drop(store);

    // The operator's view and unfreeze, through the binary.
    let operator = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medcert-relay"))
            .arg("--state-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let listed = operator(&["frozen"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(&format!("{chain} frozen since")),
        "{listed}"
    );
    assert!(listed.contains("refused fabric:"), "{listed}");
    let unfrozen = operator(&["unfreeze", &chain]);
    assert!(
        unfrozen.status.success(),
        "{}",
        String::from_utf8_lossy(&unfrozen.stderr)
    );
    let listed = operator(&["frozen"]);
    assert_eq!(
        String::from_utf8(listed.stdout).unwrap(),
        "no chain is frozen\n"
    );
    let again = operator(&["unfreeze", &chain]);
    assert!(!again.status.success());

    // With the right CA, the refused request is read again, proven and served once.
    let relay = start(&net, &[&victim.id, &healthy.id], dir.path(), |_| {}).await;
    let outcome = pv.outcome(iv, WAIT).await;
    assert_completed_once(&net, &pv, iv, &outcome).await;
    assert!(book.load().unwrap().frozen.is_empty());
    relay.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_certificate_chain_fails_nothing_without_proof() {
    init_tracing();
    let net = network();
    let hospital = &net.fabric.hospitals[9];
    let patient = Patient::new(&net, hospital).await;
    let mut unreachable = net.clone();
    // Nothing listens on the discard port.
    unreachable.ethereum.rpc_url = "http://127.0.0.1:9".into();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&unreachable, &[&hospital.id], dir.path(), |c| {
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    let index = patient
        .request_recovery(patient.consent(2, patient.now + 3600))
        .await;
    // Several timeouts pass: with no verified block past the deadline, the request is
    // neither rolled back nor failed (a rollback now could be contradicted later).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = relay.metrics();
    assert_eq!(metrics.failed.load(Ordering::Relaxed), 0);
    relay.shutdown().await;
    let store = medcert_relay::store::Store::open(dir.path()).unwrap();
    let key = medcert_relay::store::message_key(&hospital.channel, index);
    assert_eq!(
        store.message(&key).unwrap().unwrap().status,
        Status::Received
    );
    // Other relays on the shared network may serve it; none may have failed it.
    let outcome = patient.outcome_now(index).await;
    assert_ne!(outcome["state"], "failed", "{outcome}");
}
