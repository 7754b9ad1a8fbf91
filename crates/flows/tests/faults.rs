//! Faults on the live network, at deploy/up's default topology (a Raft cluster of three
//! orderers, two peers per hospital): an ordering node killed while recoveries stream
//! through the relay, a hospital's peer killed under its clients, a whole hospital (its
//! peers, chaincode server and key service) restarted under the relay. Each test repairs
//! its fault before it ends, and the tests take turns, so the network never has two
//! faults at once. The processes are deploy/up's, found by the pid files of its run
//! directory, killed with SIGKILL and started again as deploy/up had started them.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medcert_fabric::Gateway;
use medcert_flows::hospital_api::{Function, HospitalClient, RecordState};
use medcert_flows::query::record_state;
use medcert_flows::recover::RecoverReport;
use medcert_flows::{
    Actor, ConsentRequest, CreateRequest, DeleteRequest, FlowError, PatientAgent, Quiet,
    RecoverRequest, connect, create_record, delete_record, recover, sign_consent,
};
use medcert_network::{Hospital, Network};
use medcert_relay::{Relay, RelayConfig, RelayHandle};
use support::{certified_patient, network, password, registered, unique, visit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// One fault at a time: the tests of one binary run in parallel threads otherwise.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a recovery may wait for the relay; how long a repaired node may take to serve.
const WAIT: Duration = Duration::from_secs(120);
const AGENT_INTERVAL: Duration = Duration::from_millis(50);

#[tokio::test]
async fn every_recovery_completes_while_the_raft_leader_is_killed() {
    let _turn = TURN.lock().await;
    let scene = Scene::new().await;
    let network = &scene.network;
    assert!(
        network.fabric.orderers().len() >= 3,
        "the test needs a Raft cluster of three orderers or more (deploy/up's default)"
    );
    let patients = [
        scene.deleted_certified_record().await,
        scene.deleted_certified_record().await,
        scene.deleted_certified_record().await,
    ];

    // The stream: three recoveries, one after the other (requests at one hospital are
    // ordered one at a time: two at once conflict on its recovery counter). The leader of
    // H''s channel, which orders every request and answer of theirs, is killed 300 ms
    // into the second.
    let leader = raft_leader(network, &scene.h2.channel).await;
    let (first_done, second_started) = tokio::sync::oneshot::channel();
    let stream = async {
        let mut first_done = Some(first_done);
        let mut reports = Vec::new();
        for patient in &patients {
            reports.push(scene.recover(patient).await);
            if let Some(done) = first_done.take() {
                let _ = done.send(());
            }
        }
        reports
    };
    let fault = async {
        second_started.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        kill(network, &format!("orderer{leader}")).await
    };
    let (reports, killed) = tokio::join!(stream, fault);

    start(network, &killed);
    let orderer = &network.fabric.orderers()[leader];
    healthy(&format!("orderer {leader}"), &orderer.operations_url).await;

    for (patient, report) in patients.iter().zip(reports) {
        let report =
            report.unwrap_or_else(|e| panic!("a recovery failed: {}", support::message(&e)));
        scene.assert_recovered(patient, &report).await;
    }
    scene.relay.shutdown().await;
}

#[tokio::test]
async fn a_killed_peer_is_passed_over_and_catches_up_when_it_returns() {
    let _turn = TURN.lock().await;
    let network = network();
    let hospital = network.fabric.hospitals[0].clone();
    let peers = hospital.peers().len();
    assert!(
        peers >= 2,
        "the test needs hospitals of two peers or more (deploy/up's default)"
    );
    let patients = tempfile::tempdir().unwrap();
    let password = password();
    let patient = unique("pat");
    let treatment = registered(&network, patients.path(), &patient, &hospital.id, &password).await;
    let visit = visit(&hospital.id, &treatment, &password, 20_000);
    let before = create(&network, patients.path(), &visit).await;
    let doctor = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
        .await
        .unwrap();

    let killed = kill(&network, &peer_name(&hospital, 0)).await;
    // Reads go on: through the connection opened before, and through a new one.
    assert_active(&doctor, &hospital, &before).await;
    let reopened = connect::hospital_client(&network, &hospital, Actor::Doctor(0))
        .await
        .unwrap();
    assert_active(&reopened, &hospital, &before).await;
    // Writes go on while a majority of the peers is up (a majority of two is both: the
    // hospital's writes then wait for the peer to return).
    let majority_left = peers - 1 > peers / 2;
    let during = if majority_left {
        Some(create(&network, patients.path(), &visit).await)
    } else {
        None
    };

    start(&network, &killed);
    healthy("the restarted peer", &hospital.peer().operations_url).await;
    endorsable(&network, &hospital).await;
    let after = create(&network, patients.path(), &visit).await;

    // Nothing is lost: the returned peer, asked alone, has every block the others have
    // and serves every record, those written in its absence included.
    let alone = only_peer(&hospital, 0).await;
    let other = only_peer(&hospital, 1).await;
    let target = other.network(&hospital.channel).height().await.unwrap();
    eventually("the restarted peer catching up", WAIT, || async {
        let height = alone.network(&hospital.channel).height().await.ok()?;
        (height >= target).then_some(())
    })
    .await;
    let alone = HospitalClient::new(
        alone
            .network(&hospital.channel)
            .contract(&network.fabric.chaincode_name),
    );
    for record in [Some(before), during, Some(after)].into_iter().flatten() {
        assert_active(&alone, &hospital, &record).await;
    }
}

#[tokio::test]
async fn a_restarted_hospitals_requests_resume_from_the_relays_checkpoint() {
    let _turn = TURN.lock().await;
    let scene = Scene::new().await;
    let network = &scene.network;
    let first = scene.deleted_certified_record().await;
    let report = scene.recover(&first).await.unwrap();
    scene.assert_recovered(&first, &report).await;
    let second = scene.deleted_certified_record().await;

    // H' stops whole, under the relay (its event stream breaks), and starts again.
    let h2 = &scene.h2;
    let index = h2.id.trim_start_matches("hospital");
    let names: Vec<String> = (0..h2.peers().len())
        .map(|p| peer_name(h2, p))
        .chain([format!("chaincode{index}"), format!("keys{index}")])
        .collect();
    let mut killed = Vec::new();
    for name in &names {
        killed.push(kill(network, name).await);
    }
    for process in &killed {
        start(network, process);
    }
    for peer in h2.peers() {
        healthy("a restarted peer", &peer.operations_url).await;
    }
    eventually("the restarted key service", WAIT, || async {
        connect::public_keys(h2).await.ok()
    })
    .await;
    endorsable(network, h2).await;

    // A request made now is served: the relay follows H''s channel again from its
    // checkpoint. The record recovered before the restart is still there.
    let report = scene.recover(&second).await.unwrap();
    scene.assert_recovered(&second, &report).await;
    scene.assert_held_at_h2(&first.record_id).await;
    scene.relay.shutdown().await;
}

/// A source hospital H and a recovering hospital H' with a relay of its own.
struct Scene {
    network: Network,
    h1: Hospital,
    h2: Hospital,
    patients: tempfile::TempDir,
    scratch: tempfile::TempDir,
    relay: RelayHandle,
}

/// A patient whose record was certified and deleted at H, registered at H' with a consent
/// for H' to recover it.
struct Patient {
    name: String,
    password: Zeroizing<String>,
    treatment_at_h2: String,
    record_id: String,
    consent: PathBuf,
}

impl Scene {
    /// The network's last two hospitals, so as not to share them with other tests' relays.
    async fn new() -> Self {
        let network = network();
        let hospitals = &network.fabric.hospitals;
        assert!(hospitals.len() >= 2, "the test needs two hospitals");
        let (h1, h2) = (
            hospitals[hospitals.len() - 2].clone(),
            hospitals[hospitals.len() - 1].clone(),
        );
        let scratch = tempfile::tempdir().unwrap();
        let mut config = RelayConfig::new(network.clone(), scratch.path().join("relay"));
        config.only_hospitals = Some(vec![h2.id.clone()]);
        let relay = Relay::start(config).await.expect("relay starts");
        Scene {
            network,
            h1,
            h2,
            patients: tempfile::tempdir().unwrap(),
            scratch,
            relay,
        }
    }

    async fn deleted_certified_record(&self) -> Patient {
        let (network, patients) = (&self.network, self.patients.path());
        let certified =
            certified_patient(network, patients, &self.h1.id, &self.h2.id, 20_000).await;
        let (name, record_id) = (certified.name, certified.record_id);
        delete_record(
            network,
            patients,
            &DeleteRequest {
                patient: &name,
                hospital: &self.h1.id,
                record_id: &record_id,
                submitter: Actor::Doctor(0),
            },
        )
        .await
        .unwrap();
        let consent = self.scratch.path().join(format!("{name}.consent.json"));
        sign_consent(
            network,
            patients,
            &ConsentRequest {
                patient: &name,
                hospital: &self.h2.id,
                certificate_id: certified.certificate_id,
                valid_for: Duration::from_secs(600),
                out: &consent,
            },
        )
        .await
        .unwrap();
        Patient {
            name,
            password: certified.password,
            treatment_at_h2: certified.treatment_at_recovering,
            record_id,
            consent,
        }
    }

    /// Recovers `patient`'s record at H' (under its original id) while the patient's
    /// agent releases its key.
    async fn recover(&self, patient: &Patient) -> Result<RecoverReport, FlowError> {
        let request = RecoverRequest {
            hospital: &self.h2.id,
            doctor: 0,
            treatment_number: &patient.treatment_at_h2,
            password: &patient.password,
            consent: &patient.consent,
            record_id: None,
            resume: None,
            wait: WAIT,
            serve_within: medcert_flows::recover::DEFAULT_SERVE_WITHIN,
            out: None,
        };
        PatientAgent::open(&self.network, self.patients.path(), &patient.name)
            .await
            .unwrap()
            .beside(AGENT_INTERVAL, recover(&self.network, &request, &Quiet))
            .await
    }

    /// The recovery served `patient`'s record from H, and H' holds it, active.
    async fn assert_recovered(&self, patient: &Patient, report: &RecoverReport) {
        assert_eq!(report.source_record_id, patient.record_id);
        assert_eq!(report.stored.record_id, patient.record_id);
        self.assert_held_at_h2(&patient.record_id).await;
    }

    async fn assert_held_at_h2(&self, record_id: &str) {
        let client = connect::hospital_client(&self.network, &self.h2, Actor::Doctor(0))
            .await
            .unwrap();
        assert_active(&client, &self.h2, record_id).await;
    }
}

/// Creates a record for `visit`'s patient; returns its id.
async fn create(network: &Network, patients: &Path, visit: &CreateRequest<'_>) -> String {
    create_record(network, patients, visit, &Quiet)
        .await
        .unwrap_or_else(|e| panic!("creating a record: {}", support::message(&e)))
        .stored
        .record_id
}

async fn assert_active(client: &HospitalClient, hospital: &Hospital, record_id: &str) {
    match record_state(client, &hospital.channel, record_id).await {
        Ok(RecordState::Active { .. }) => {}
        other => panic!("record {record_id} at {}: {other:?}", hospital.id),
    }
}

/// The run directory's name of peer `p` of `hospital` (deploy/lib/common.sh).
fn peer_name(hospital: &Hospital, p: usize) -> String {
    format!("{}-peer{p}", hospital.id)
}

/// A gateway to `hospital`'s peer `p` alone, as its first doctor.
async fn only_peer(hospital: &Hospital, p: usize) -> Gateway {
    let peer = &hospital.peers()[p];
    let doctor = &hospital.doctors[0];
    let identity =
        medcert_fabric::Identity::from_files(&doctor.msp_id, &doctor.cert, &doctor.key).unwrap();
    let ca = std::fs::read(&peer.tls_ca).unwrap();
    Gateway::connect(&peer.endpoint, &peer.host, &ca, identity)
        .await
        .unwrap()
}

/// Waits until a majority of `hospital`'s peers endorse a proposal again (the returned
/// peers have found each other), endorsing one that is never submitted.
async fn endorsable(network: &Network, hospital: &Hospital) {
    eventually("a majority of the peers endorsing", WAIT, || async {
        let gateway = connect::gateway(hospital, &hospital.doctors[0])
            .await
            .ok()?;
        gateway
            .network(&hospital.channel)
            .contract(&network.fabric.chaincode_name)
            .new_proposal(Function::Version.name())
            .build()
            .ok()?
            .endorse()
            .await
            .ok()
            .map(drop)
    })
    .await;
}

/// The ordering node leading `channel`'s Raft cluster, by its metrics.
async fn raft_leader(network: &Network, channel: &str) -> usize {
    let series = format!("consensus_etcdraft_is_leader{{channel=\"{channel}\"}} 1");
    eventually("a Raft leader", WAIT, || async {
        for (k, orderer) in network.fabric.orderers().iter().enumerate() {
            let metrics = http_get(&format!("{}/metrics", orderer.operations_url)).await;
            if metrics.is_some_and(|m| m.lines().any(|line| line == series)) {
                return Some(k);
            }
        }
        None
    })
    .await
}

/// Waits until the operations service at `url` reports healthy.
async fn healthy(what: &str, url: &str) {
    let health = format!("{url}/healthz");
    eventually(what, WAIT, || http_get(&health)).await;
}

/// The body of a 200 answer to GET `url` (`http://host:port/path`).
async fn http_get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

/// The value `attempt` first gives, trying every 200 ms for up to `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A killed process of the network and how deploy/up had started it.
struct Killed {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
}

fn pid_file(network: &Network, name: &str) -> PathBuf {
    network.run_dir.join("pids").join(format!("{name}.pid"))
}

/// The NUL-separated strings of a /proc file.
fn proc_strings(path: &Path) -> Vec<OsString> {
    std::fs::read(path)
        .unwrap()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

/// SIGKILLs the network's process `name`, keeping its program, arguments, environment
/// and working directory to start it again.
async fn kill(network: &Network, name: &str) -> Killed {
    let pid: u32 = std::fs::read_to_string(pid_file(network, name))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    // A rebuilt binary shows as "<path> (deleted)": the path then holds the new build.
    let exe = std::fs::read_link(proc.join("exe")).unwrap();
    let exe = exe.to_string_lossy();
    let program = PathBuf::from(exe.strip_suffix(" (deleted)").unwrap_or(&exe));
    let args = proc_strings(&proc.join("cmdline"))
        .into_iter()
        .skip(1)
        .collect();
    let env = proc_strings(&proc.join("environ"))
        .into_iter()
        .filter_map(|entry| {
            let entry = entry.into_vec();
            let at = entry.iter().position(|b| *b == b'=')?;
            Some((
                OsString::from_vec(entry[..at].to_vec()),
                OsString::from_vec(entry[at + 1..].to_vec()),
            ))
        })
        .collect();
    let cwd = std::fs::read_link(proc.join("cwd")).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid} ({name})");
    let stat = proc.join("stat");
    eventually(&format!("{name} ending"), Duration::from_secs(10), || {
        let gone = !stat.exists()
            || std::fs::read_to_string(&stat)
                .unwrap_or_default()
                .contains(") Z ");
        std::future::ready(gone.then_some(()))
    })
    .await;
    Killed {
        name: name.to_owned(),
        program,
        args,
        env,
        cwd,
    }
}

/// Starts `killed` again as it was, in its own process group, logging where deploy/up
/// logs it, and records its new pid.
#[allow(clippy::zombie_processes)] // the process is the network's, and outlives the test
fn start(network: &Network, killed: &Killed) {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(
            network
                .run_dir
                .join("logs")
                .join(format!("{}.log", killed.name)),
        )
        .unwrap();
    let child = std::process::Command::new(&killed.program)
        .args(&killed.args)
        .env_clear()
        .envs(killed.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&killed.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(pid_file(network, &killed.name), format!("{}\n", child.id())).unwrap();
}
