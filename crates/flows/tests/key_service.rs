//! The hospital key service as the chains' gate, on the live network: a key only for a
//! committed, audited access; a lock-out that survives the service's crash; keys that
//! survive it too; a run directory that holds none of the service's secrets; and blocks
//! that carry no password, verifier or plaintext.
//!
//! The tests that kill and restart a key service use the network's last hospital, which
//! no other test of this binary uses, one at a time.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medcert_flows::connect::{gateway, hospital_client, key_service};
use medcert_flows::hospital_api::args::{self, Arguments};
use medcert_flows::hospital_api::ticket::{SignedTicket, Verdict};
use medcert_flows::hospital_api::{Function, events};
use medcert_flows::{Actor, CreateRequest, QueryRequest, Quiet, create_record, query_record};
use medcert_key_service::{Access, KeyServiceClient, KeyServiceError};
use medcert_network::{Hospital, Network};
use support::{network, password, patient_trail, registered, unique, visit};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// Serialises the tests that kill the last hospital's key service.
static RESTARTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// For a test that kills the last hospital's key service: its turn (held until it ends),
/// and the network.
async fn restarting() -> (tokio::sync::MutexGuard<'static, ()>, Network) {
    (RESTARTS.lock().await, network())
}

fn last_hospital(network: &Network) -> &Hospital {
    let hospitals = &network.fabric.hospitals;
    assert!(
        hospitals.len() >= 3,
        "these tests want three hospitals or more"
    );
    hospitals.last().unwrap()
}

/// A fresh patient (named after `name`) registered at `hospital` with `password`, with a
/// wallet in a directory of its own; returns the directory and the treatment number.
async fn new_patient(
    network: &Network,
    hospital: &Hospital,
    name: &str,
    password: &Zeroizing<String>,
) -> (TempDir, String) {
    let patients = tempfile::tempdir().unwrap();
    let patient = unique(name);
    let treatment = registered(network, patients.path(), &patient, &hospital.id, password).await;
    (patients, treatment)
}

/// A record of a fresh patient of a hospital.
struct PatientRecord {
    hospital: String,
    treatment: String,
    record: String,
}

impl PatientRecord {
    /// Creates a record for a fresh patient of `hospital` (keeping the generated document
    /// in `keep`, if given).
    async fn create(
        network: &Network,
        hospital: &Hospital,
        password: &Zeroizing<String>,
        keep: Option<&Path>,
    ) -> Self {
        let (patients, treatment) = new_patient(network, hospital, "ks", password).await;
        let visit = CreateRequest {
            keep,
            ..visit(&hospital.id, &treatment, password, 8_000)
        };
        let created = create_record(network, patients.path(), &visit, &Quiet)
            .await
            .unwrap();
        Self {
            hospital: hospital.id.clone(),
            treatment,
            record: created.stored.record_id,
        }
    }

    /// Doctor 0's audited query of the record with `password`, retrieving nothing.
    fn query<'a>(&'a self, password: &'a Zeroizing<String>) -> QueryRequest<'a> {
        QueryRequest {
            hospital: &self.hospital,
            doctor: 0,
            treatment_number: &self.treatment,
            record_id: &self.record,
            password,
            out: None,
        }
    }
}

/// The key service's check of `password` for a query of record R-x of `treatment`.
async fn check_query_password(
    keys: &KeyServiceClient,
    treatment: &str,
    password: &[u8],
) -> Result<SignedTicket, KeyServiceError> {
    keys.check_password(Function::QueryRecord, treatment, "R-x", password)
        .await
}

#[tokio::test]
async fn a_query_never_submitted_gets_no_key_and_a_ticketless_one_is_recorded_as_failed() {
    let network = network();
    let hospital = &network.fabric.hospitals[1];
    let password = password();
    let PatientRecord {
        treatment, record, ..
    } = PatientRecord::create(&network, hospital, &password, None).await;
    let keys = key_service(hospital, Actor::Doctor(0)).await.unwrap();
    let ticket = keys
        .check_password(
            Function::QueryRecord,
            &treatment,
            &record,
            password.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(ticket.ticket.verdict, Verdict::Accepted);
    let query = args::QueryRecord {
        treatment_number: treatment.clone(),
        record_id: record.clone(),
        ticket: ticket.encode(),
    };

    // Evaluated, then endorsed, with a valid ticket; never submitted.
    let doctor = &hospital.doctors[0];
    let contract = gateway(hospital, doctor)
        .await
        .unwrap()
        .network(&hospital.channel)
        .contract(&network.fabric.chaincode_name);
    let evaluated = contract
        .new_proposal(Function::QueryRecord.name())
        .args(query.encode())
        .build()
        .unwrap();
    let evaluated_tx = evaluated.tx_id().to_owned();
    let answer = evaluated.evaluate().await.unwrap();
    assert!(String::from_utf8_lossy(&answer).contains(&record));
    let endorsed = contract
        .new_proposal(Function::QueryRecord.name())
        .args(query.encode())
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap();
    for tx_id in [evaluated_tx, endorsed.tx_id().to_owned()] {
        let refused = keys.release_key(Access::Query { tx_id }).await.unwrap_err();
        assert!(
            matches!(refused, KeyServiceError::NotCommitted { .. }),
            "{refused}"
        );
    }

    // Submitted without a ticket: refused, and the refusal is on the patient's trail.
    let client = hospital_client(&network, hospital, Actor::Doctor(0))
        .await
        .unwrap();
    let ticketless = args::QueryRecord {
        ticket: Vec::new(),
        ..query
    };
    assert!(client.query_record(&ticketless).await.is_err());
    let trail = patient_trail(&client, &treatment).await;
    assert!(
        trail
            .iter()
            .any(|e| e.action == events::ACCESS_REFUSED && e.record_id.as_deref() == Some(&record)),
        "{trail:?}"
    );
    // The trail shows no query of the record: nothing was read.
    assert!(
        !trail
            .iter()
            .any(|e| e.action == Function::QueryRecord.name()),
        "{trail:?}"
    );
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_patient_across_a_key_service_crash() {
    let (_turn, network) = restarting().await;
    let hospital = last_hospital(&network);
    let password = password();
    let (_patients, treatment) = new_patient(&network, hospital, "lock", &password).await;
    let keys = key_service(hospital, Actor::Doctor(0)).await.unwrap();
    for attempt in 1..=5 {
        let ticket = check_query_password(&keys, &treatment, b"wrong")
            .await
            .unwrap();
        assert_eq!(
            ticket.ticket.verdict,
            Verdict::Rejected { attempt, limit: 5 }
        );
    }

    restart_key_service(&network, hospital).await;
    let keys = key_service(hospital, Actor::Doctor(0)).await.unwrap();
    let locked = check_query_password(&keys, &treatment, password.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(locked, KeyServiceError::Locked { .. }), "{locked}");
    // A doctor cannot lift it; the hospital's admin can.
    assert!(keys.unlock_patient(&treatment).await.is_err());
    let admin = key_service(hospital, Actor::Admin).await.unwrap();
    admin.unlock_patient(&treatment).await.unwrap();
    let ticket = check_query_password(&keys, &treatment, password.as_bytes())
        .await
        .unwrap();
    assert_eq!(ticket.ticket.verdict, Verdict::Accepted);
}

#[tokio::test]
async fn keys_survive_a_killed_key_service_and_the_run_directory_alone_opens_nothing() {
    let (_turn, network) = restarting().await;
    let hospital = last_hospital(&network);
    let password = password();
    let created = PatientRecord::create(&network, hospital, &password, None).await;
    // SIGKILL right after the store: what the service acknowledged is on its disk.
    restart_key_service(&network, hospital).await;
    let query = created.query(&password);
    let read = query_record(&network, &query, &Quiet).await.unwrap();
    assert_eq!(read.record.record_id, created.record);

    // No secret of the service is anywhere in the run directory, raw or as hex.
    let keys_dir = medcert_test_support::key_services_dir(&network.run_dir);
    let secrets = service_secrets(&keys_dir.join(&hospital.id));
    assert!(secrets.len() >= 4, "the service's store holds its keys");
    for file in files_outside_data(&network.run_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in &secrets {
            for needle in [secret.clone(), hex::encode(secret).into_bytes()] {
                assert!(
                    memchr::memmem::find(&bytes, &needle).is_none(),
                    "{} holds a secret of {}'s key service",
                    file.display(),
                    hospital.id
                );
            }
        }
    }

    // And without the service, the whole run directory opens no record.
    stop_key_service(&network, hospital);
    let refused = query_record(&network, &query, &Quiet).await;
    start_key_service_again(&network, hospital).await;
    let refused = refused.unwrap_err();
    assert!(
        support::message(&refused).contains("key service"),
        "{}",
        support::message(&refused)
    );
}

#[tokio::test]
async fn no_block_of_any_channel_carries_a_password_verifier_or_plaintext() {
    let network = network();
    let hospital = &network.fabric.hospitals[2];
    let password = password();
    let scratch = tempfile::tempdir().unwrap();
    let document = scratch.path().join("visit.xml");
    let created = PatientRecord::create(&network, hospital, &password, Some(&document)).await;
    query_record(&network, &created.query(&password), &Quiet)
        .await
        .unwrap();
    // The record's longest text node (the watermark leaves text alone), as plaintext.
    let plaintext = std::fs::read_to_string(&document).unwrap();
    let text = plaintext
        .split('<')
        .filter_map(|piece| piece.split_once('>').map(|(_, text)| text.trim()))
        .max_by_key(|text| text.len())
        .unwrap();
    assert!(
        text.len() >= 32,
        "the generated record has a sentence of text"
    );
    let needles: Vec<Vec<u8>> = vec![
        password.as_bytes().to_vec(),
        hex::encode(password.as_bytes()).into_bytes(),
        b"$argon2".to_vec(),
        text.as_bytes()[..32].to_vec(),
    ];

    for hospital in &network.fabric.hospitals {
        let client = gateway(hospital, &hospital.doctors[0]).await.unwrap();
        let channel = client.network(&hospital.channel);
        let blocks = channel.blocks(0).await.unwrap();
        assert!(!blocks.is_empty());
        for block in blocks {
            let bytes = prost::Message::encode_to_vec(&block);
            for needle in &needles {
                assert!(
                    memchr::memmem::find(&bytes, needle).is_none(),
                    "a block of {} carries {:?}",
                    hospital.channel,
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}

/// The service's secrets as its store keeps them: seeds, its X25519 key, wrapped keys.
fn service_secrets(dir: &Path) -> Vec<Vec<u8>> {
    let mut secrets = Vec::new();
    for file in walk(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".ed25519") || name.ends_with(".x25519") || name.ends_with(".dek") {
            secrets.push(bytes);
        }
    }
    secrets
}

/// Every file of the run directory except the stores of ciphertext and blocks (the CSP's
/// objects, Kubo's envelopes, the peers' ledgers and the orderer's Raft log and ledger:
/// the block scan covers those).
fn files_outside_data(run_dir: &Path) -> Vec<PathBuf> {
    walk(run_dir)
        .into_iter()
        .filter(|f| {
            let relative = f.strip_prefix(run_dir).unwrap();
            let top = relative.components().next().unwrap().as_os_str();
            let path = relative.to_string_lossy();
            top != "s3"
                && top != "ipfs"
                && !path.starts_with("fabric/orderer")
                && !path.contains("/ledger")
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files
}

fn pid_file(network: &Network, hospital: &Hospital) -> PathBuf {
    let index = hospital.id.trim_start_matches("hospital");
    network
        .run_dir
        .join("pids")
        .join(format!("keys{index}.pid"))
}

fn command_line_file(network: &Network, hospital: &Hospital) -> PathBuf {
    network
        .run_dir
        .join("pids")
        .join(format!("{}-key-service.argv", hospital.id))
}

/// SIGKILLs the hospital's key service (as deploy/up started it), keeping its binary and
/// arguments to start it again.
fn stop_key_service(network: &Network, hospital: &Hospital) {
    let pid: i32 = std::fs::read_to_string(pid_file(network, hospital))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // deploy/up starts it by name on its PATH: keep the binary's own path instead.
    // A rebuilt binary shows as "<path> (deleted)": the path then holds the new build.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_string_lossy();
    let exe = PathBuf::from(exe.strip_suffix(" (deleted)").unwrap_or(&exe));
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args = argv.splitn(2, |b| *b == 0).nth(1).unwrap_or_default();
    let mut command_line = exe.into_os_string().into_encoded_bytes();
    command_line.push(0);
    command_line.extend_from_slice(args);
    std::fs::write(command_line_file(network, hospital), command_line).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}/stat")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(
            Instant::now() < deadline,
            "the key service outlived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A killed process's leader shows as a zombie while its other threads still exit
    // holding the listening socket: wait until its address is free.
    let address = hospital.key_service.endpoint.as_str();
    while std::net::TcpListener::bind(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the key service's address stayed taken after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the service stopped by [`stop_key_service`] with the same command line, and
/// waits until it answers.
#[allow(clippy::zombie_processes)] // the service is the network's, and outlives the test
async fn start_key_service_again(network: &Network, hospital: &Hospital) {
    use std::os::unix::process::CommandExt;
    let argv = std::fs::read(command_line_file(network, hospital)).unwrap();
    let mut parts = argv
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8(p.to_vec()).unwrap());
    let program = parts.next().unwrap();
    let index = hospital.id.trim_start_matches("hospital");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(
            network
                .run_dir
                .join("logs")
                .join(format!("keys{index}.log")),
        )
        .unwrap();
    let child = std::process::Command::new(program)
        .args(parts)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(pid_file(network, hospital), format!("{}\n", child.id())).unwrap();
    let service = &hospital.key_service;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = medcert_key_service::KeyServiceClient::public_keys(
            &service.endpoint,
            &service.host,
            &service.tls_ca,
        )
        .await;
        if answered.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the key service did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn restart_key_service(network: &Network, hospital: &Hospital) {
    stop_key_service(network, hospital);
    start_key_service_again(network, hospital).await;
}
