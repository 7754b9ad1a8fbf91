//! A whole medcert network whose services run in the images `deploy/images` built,
//! started with testcontainers on the host network.
//!
//! `deploy/up` does the configuration (crypto material, channel genesis blocks, Kubo's
//! repository, peer config) and, under `MEDCERT_SERVICES=external`, writes each service's
//! specification instead of starting it; this harness starts every specification as a
//! container, then `deploy/up` goes on to create the channels, deploy the chaincode and
//! write the network description. Ports are moved away from a `deploy/up` network that
//! may be running beside the tests.

#![allow(dead_code)] // each test binary uses the part of the harness it needs

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medcert_network::Network;
use medcert_test_support::key_services_dir;
use serde::Deserialize;
use testcontainers::core::{AccessMode, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// Ports of the container network: the defaults of deploy/up shifted by 30000.
const PORTS: &[(&str, u16)] = &[
    ("ANVIL_PORT", 38545),
    ("KUBO_API_PORT", 35001),
    ("KUBO_GATEWAY_PORT", 38080),
    ("S3_PORT", 39000),
    ("ORDERER_PORT", 37050),
    ("ORDERER_ADMIN_PORT", 37053),
    ("ORDERER_OPS_PORT", 38443),
    ("PEER_BASE_PORT", 37051),
    ("PEER_OPS_BASE_PORT", 39444),
    ("CHAINCODE_BASE_PORT", 39999),
    ("KEY_SERVICE_BASE_PORT", 37600),
];

pub(crate) fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn deploy_dir() -> PathBuf {
    repo_dir().join("deploy")
}

pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("MEDCERT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/medcert"))
}

/// A tool installed by deploy/install, for preparing configuration on the host.
pub(crate) fn tool(name: &str) -> PathBuf {
    let bin = cache_dir().join("bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run deploy/install",
        bin.display()
    );
    bin
}

/// The image holding `tool`, by the names `deploy/images --list` prints.
pub(crate) fn image_of(tool: &str) -> GenericImage {
    let name = match tool {
        "anvil" => "anvil",
        "ipfs" => "kubo",
        "medcert-s3" => "s3",
        "orderer" => "fabric-orderer",
        "peer" => "fabric-peer",
        "medcert-key-service" => "key-service",
        other => panic!("no image holds {other}"),
    };
    let out = Command::new(deploy_dir().join("images"))
        .arg("--list")
        .output()
        .expect("deploy/images runs");
    let list = String::from_utf8(out.stdout).unwrap();
    let full = list
        .lines()
        .find(|l| l.starts_with(&format!("medcert/{name}:")))
        .unwrap_or_else(|| panic!("deploy/images --list has no {name} image"));
    let (repo, tag) = full.rsplit_once(':').unwrap();
    GenericImage::new(repo, tag)
}

pub(crate) fn bind(host: &Path, container: &str) -> Mount {
    Mount::bind_mount(host.to_str().unwrap(), container)
}

/// What deploy/up wrote for one service it left to us.
#[derive(Deserialize)]
struct ServiceSpec {
    name: String,
    tool: String,
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

pub(crate) struct ContainerNetwork {
    pub(crate) network: Network,
    run_dir: tempfile::TempDir,
    containers: Vec<ContainerAsync<GenericImage>>,
}

impl ContainerNetwork {
    /// Starts a network of `hospitals` hospitals in containers; panics with deploy/up's
    /// output if it cannot.
    pub(crate) async fn start(hospitals: usize) -> Self {
        let run_dir = tempfile::Builder::new()
            .prefix("medcert-containers-")
            .tempdir()
            .unwrap();
        // The chaincode is built into the same target directory as this test binary
        // (target/debug/deps/<test>), wherever CARGO_TARGET_DIR puts it.
        let profile_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_owned();
        let chaincode = profile_dir.join("medcert-chaincode");
        let key_service = profile_dir.join("medcert-key-service");
        let built = Command::new("cargo")
            .args(["build", "--quiet", "-p", "medcert-chaincode"])
            .args(["-p", "medcert-key-service"])
            .current_dir(repo_dir())
            .status()
            .unwrap();
        assert!(
            built.success(),
            "cargo build of the chaincode and key service failed"
        );
        // The key services run from the image deploy/images built of that binary
        // (deploy/test builds it before the tests); their secrets live beside the run
        // directory.
        let keys_dir = key_services_dir(run_dir.path());

        let log_path = run_dir.path().join("up.log");
        let mut up = Command::new(deploy_dir().join("up"));
        up.arg("--hospitals")
            .arg(hospitals.to_string())
            .env("MEDCERT_SERVICES", "external")
            .env("MEDCERT_RUN", run_dir.path())
            .env("CHAINCODE_BIN", &chaincode)
            .env("MEDCERT_KEYS", &keys_dir)
            .env("KEY_SERVICE_BIN", &key_service)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap());
        for (var, port) in PORTS {
            up.env(var, port.to_string());
        }
        let mut up = up.spawn().expect("deploy/up starts");

        let services = run_dir.path().join("services");
        wait_for(&mut up, &log_path, Duration::from_secs(120), || {
            services.join(".ready").exists()
        });
        // All at once: deploy/up waits for each in turn, and on a loaded machine one
        // container after another can outlast its wait.
        let mut starting = tokio::task::JoinSet::new();
        for entry in std::fs::read_dir(&services).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let spec: ServiceSpec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let run_dir = run_dir.path().to_owned();
            starting.spawn(async move { start_service(&spec, &run_dir).await });
        }
        let containers = starting.join_all().await;
        wait_for(&mut up, &log_path, Duration::from_secs(180), || false);

        let network = Network::load_from(&run_dir.path().join("network.json"))
            .expect("deploy/up wrote the network description");
        ContainerNetwork {
            network,
            run_dir,
            containers,
        }
    }

    pub(crate) fn run_dir(&self) -> &Path {
        self.run_dir.path()
    }
}

/// Every container sees the run directory and the key services' directory (read-write),
/// the tool cache and deploy/ (read-only) at their host paths, so the paths in
/// deploy/up's configuration hold.
async fn start_service(spec: &ServiceSpec, run_dir: &Path) -> ContainerAsync<GenericImage> {
    let keys_dir = key_services_dir(run_dir);
    let mut request = image_of(&spec.tool)
        .with_cmd(spec.args.clone())
        .with_network("host")
        .with_container_name(format!(
            "medcert-test-{}-{}",
            spec.name,
            run_dir.file_name().unwrap().to_string_lossy()
        ))
        .with_mount(bind(run_dir, run_dir.to_str().unwrap()))
        .with_mount(bind(&keys_dir, keys_dir.to_str().unwrap()))
        .with_mount(
            bind(&cache_dir(), cache_dir().to_str().unwrap())
                .with_access_mode(AccessMode::ReadOnly),
        )
        .with_mount(
            bind(
                &deploy_dir().canonicalize().unwrap(),
                deploy_dir().canonicalize().unwrap().to_str().unwrap(),
            )
            .with_access_mode(AccessMode::ReadOnly),
        );
    for (key, value) in &spec.env {
        request = request.with_env_var(key, value);
    }
    request.start().await.unwrap_or_else(|e| {
        panic!(
            "container for {} did not start: {e} (run deploy/images)",
            spec.name
        )
    })
}

/// Waits until `done()` or until deploy/up exits: success ends the wait, failure panics
/// with deploy/up's output.
fn wait_for(up: &mut Child, log: &Path, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return;
        }
        if let Some(status) = up.try_wait().unwrap() {
            assert!(
                status.success(),
                "deploy/up failed:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = up.kill();
            panic!(
                "deploy/up did not finish within {timeout:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for ContainerNetwork {
    /// The chaincode servers are host processes deploy/up started: deploy/down stops
    /// them. The containers go when their handles drop; the key services' directory is
    /// removed with the run directory.
    fn drop(&mut self) {
        let _ = Command::new(deploy_dir().join("down"))
            .env("MEDCERT_RUN", self.run_dir.path())
            .output();
        let _ = std::fs::remove_dir_all(key_services_dir(self.run_dir.path()));
    }
}
