//! The floors: what each step of medcert cannot beat, measured on the same machine and in
//! the same run as medcert's steps, each the fastest way the component's own protocol
//! allows through one connection kept open across rounds (no process start):
//!
//! - Fabric: a Gateway submit of the chaincode's no-op `Version` until its commit (at the
//!   channel's batch timeout), and an evaluate of the same, through medcert's own client.
//! - anvil: a plain ETH transfer signed locally (nonce, gas and price filled in advance),
//!   sent raw; its receipt asked for as soon as the send returns, then every millisecond.
//! - the key service: its cheapest authenticated call (`SignWatermark`: a signed request,
//!   one Ed25519 signature back), through medcert's client.
//! - Kubo: an HTTP RPC add (medcert's add options) and cat (with the size check medcert's
//!   client makes) through one client; S3: one `object_store` put and get on one client.
//! - CPU passes over the same bytes in memory: AES-256-GCM STREAM encryption (with Hash C,
//!   as medcert computes it in the same pass) and decryption, SHA3-256, the watermark's
//!   embedding (both passes) and its check (with the content fingerprint).
//!
//! Every floor also has its CPU cost in core-milliseconds: the CPU passes by the thread's
//! own clock; a service's by /proc (the service's processes that take part, with their
//! descendants) plus this process's getrusage, over the measured rounds.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use medcert_crypto::{
    Dek, PasswordParams, PasswordVerifier, RecordAad, decrypt_stream, encrypt_stream,
};
use medcert_ethereum::ethers;
use medcert_flows::connect::{Actor, gateway, key_service};
use medcert_key_service::KeyServiceClient;
use medcert_network::{Hospital, Network};
use medcert_watermark::{Mark, SigningKey, TooSmall, UnsignedPayload};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha3::{Digest, Sha3_256};

use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, TransactionRequest, U256};

use crate::anvil::{self, Funded, rpc};
use crate::config::{Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::{Workspace, first_hospital};
use crate::report::{Csv, ms};
use crate::sampler::services_cpu_s;
use crate::stats::{Samples, Stats};
use crate::stock::{IpfsCli, PeerCli};

/// One floor: its times, and the CPU it costs per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// Wall time of each round.
    pub wall: Stats,
    /// Core-milliseconds per operation, of every process that takes part.
    pub cpu_ms: f64,
}

/// Where a floor's CPU time is read.
enum Meter {
    /// The calling thread's own clock: a pass over bytes in memory, with no await.
    Thread,
    /// This process (getrusage) and the named services (/proc), around async rounds.
    Processes {
        run_dir: PathBuf,
        services: Vec<String>,
    },
}

/// Seconds of CPU from a clock of `clock_gettime`.
fn clock_cpu_s(clock: libc::clockid_t) -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(clock, &mut now);
    }
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

impl Meter {
    fn services(network: &Network, services: Vec<String>) -> Self {
        Meter::Processes {
            run_dir: network.run_dir.clone(),
            services,
        }
    }

    /// CPU seconds so far.
    fn read(&self) -> f64 {
        match self {
            Meter::Thread => clock_cpu_s(libc::CLOCK_THREAD_CPUTIME_ID),
            Meter::Processes { run_dir, services } => {
                clock_cpu_s(libc::CLOCK_PROCESS_CPUTIME_ID) + services_cpu_s(run_dir, services)
            }
        }
    }
}

/// The rounds of one floor: the warm-up ones untimed, the CPU read around the measured ones.
struct Rounds {
    meter: Meter,
    warmup: usize,
    total: usize,
    cpu_before: f64,
    samples: Samples,
}

impl Rounds {
    fn new(plan: &Plan, meter: Meter) -> Self {
        Self {
            meter,
            warmup: plan.warmup,
            total: plan.warmup + plan.rounds,
            cpu_before: 0.0,
            samples: Samples::default(),
        }
    }

    /// Call before round `round`.
    fn begin(&mut self, round: usize) {
        if round == self.warmup {
            self.cpu_before = self.meter.read();
        }
    }

    /// Call after round `round`, which took `elapsed`.
    fn end(&mut self, round: usize, elapsed: Duration) {
        if round >= self.warmup {
            self.samples.push(elapsed);
        }
    }

    fn floor(self, what: &str) -> Result<Floor, BenchError> {
        let cpu_s = self.meter.read() - self.cpu_before;
        let measured = self.total - self.warmup;
        let wall = self
            .samples
            .stats()
            .ok_or_else(|| BenchError::Unavailable(format!("no round of the {what} floor ran")))?;
        Ok(Floor {
            wall,
            cpu_ms: cpu_s.max(0.0) * 1000.0 / measured.max(1) as f64,
        })
    }

    /// Runs `operation` every round; its times and CPU as the floor `what`.
    async fn run<F, Fut>(mut self, what: &str, mut operation: F) -> Result<Floor, BenchError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Duration, BenchError>>,
    {
        for round in 0..self.total {
            self.begin(round);
            let elapsed = operation().await?;
            self.end(round, elapsed);
        }
        self.floor(what)
    }
}

/// Floors that do not depend on a record's size.
#[derive(Debug, Clone, Copy)]
pub struct FixedFloors {
    /// A Gateway submit of `Version` until committed.
    pub fabric_commit: Floor,
    /// A Gateway evaluate of `Version`.
    pub fabric_read: Floor,
    /// A plain transfer on anvil, from signing to its receipt.
    pub anvil_tx: Floor,
    /// The key service's cheapest authenticated call.
    pub key_service: Floor,
    /// The check of a patient's password against its Argon2id verifier, in memory.
    pub password_hash: Floor,
}

/// Floors over a record's bytes.
#[derive(Debug, Clone, Copy)]
pub struct SizeFloors {
    /// AES-256-GCM STREAM encryption with Hash C, in memory.
    pub aes_encrypt: Floor,
    /// AES-256-GCM STREAM decryption, in memory.
    pub aes_decrypt: Floor,
    /// SHA3-256 of the ciphertext, in memory.
    pub sha3: Floor,
    /// Watermark embedding (both passes) of the C-CDA document, in memory.
    pub watermark_embed: Floor,
    /// Watermark check (with the content fingerprint) of the marked document, in memory.
    pub watermark_check: Floor,
    /// One S3 put of the ciphertext.
    pub s3_put: Floor,
    /// One S3 get of the ciphertext.
    pub s3_get: Floor,
    /// Kubo RPC add of the ciphertext.
    pub ipfs_add: Floor,
    /// Kubo RPC cat of the ciphertext.
    pub ipfs_cat: Floor,
}

/// The stock tools' cost at one point, not a floor.
#[derive(Debug, Clone, Copy)]
pub struct StockCosts {
    /// `peer chaincode invoke --waitForEvent` of `Version`.
    pub peer_invoke: Stats,
    /// `peer chaincode query` of `Version`.
    pub peer_query: Stats,
}

/// The clients every floor is measured through, each opened once and kept.
struct Clients {
    contract: medcert_fabric::Contract,
    anvil: AnvilTransfer,
    keys: KeyServiceClient,
    unsigned: UnsignedPayload,
    ipfs: medcert_ipfs::Ipfs,
    s3: RawS3,
    /// Pid-file names of the processes each kind of floor runs on.
    fabric_commit_services: Vec<String>,
    fabric_read_services: Vec<String>,
    key_services: Vec<String>,
}

/// The pid-file names of `hospital`'s processes (deploy/ names them `<id>-peerN`,
/// `chaincodeN`, `keysN` with N its place in the description, from 1).
fn hospital_services(network: &Network, hospital: &Hospital) -> (Vec<String>, String, String) {
    let number = network
        .fabric
        .hospitals
        .iter()
        .position(|h| h.id == hospital.id)
        .map_or(1, |i| i + 1);
    let peers = (0..hospital.peers().len())
        .map(|i| format!("{}-peer{i}", hospital.id))
        .collect();
    (peers, format!("chaincode{number}"), format!("keys{number}"))
}

impl Clients {
    async fn open(network: &Network) -> Result<Self, BenchError> {
        let hospital = first_hospital(network)?;
        let doctor = Actor::Doctor(0);
        let contract = gateway(hospital, doctor.identity(hospital)?)
            .await?
            .network(&hospital.channel)
            .contract(&network.fabric.chaincode_name);
        let keys = key_service(hospital, doctor).await?;
        let unsigned = UnsignedPayload::new(&hospital.id, "bench-floor", 0, [0; 32])?;
        let csp = medcert_csp::Csp::s3(&network.s3)?;
        let (peers, chaincode, keys_name) = hospital_services(network, hospital);
        let orderers: Vec<String> = network
            .fabric
            .orderers()
            .iter()
            .enumerate()
            .map(|(i, _)| format!("orderer{i}"))
            .collect();
        let mut fabric_read_services = peers;
        fabric_read_services.push(chaincode);
        let mut fabric_commit_services = fabric_read_services.clone();
        fabric_commit_services.extend(orderers);
        Ok(Self {
            contract,
            anvil: AnvilTransfer::new(network).await?,
            keys,
            unsigned,
            ipfs: medcert_ipfs::Ipfs::new(&network.ipfs.api_url, medcert_ipfs::DEFAULT_TIMEOUT)?,
            s3: RawS3::new(&csp),
            fabric_commit_services,
            fabric_read_services,
            key_services: vec![keys_name],
        })
    }
}

/// The floors of a run, each measured once (warm-up, then the plan's rounds) when first
/// needed, and the stock tools' costs beside them.
pub struct Floors {
    work_dir: PathBuf,
    clients: Option<Clients>,
    fixed: Option<FixedFloors>,
    stock: Option<StockCosts>,
    by_size: BTreeMap<u64, SizeFloors>,
    /// `ipfs add` and `ipfs cat` through the CLI, by size.
    stock_ipfs: BTreeMap<u64, (Stats, Stats)>,
}

impl Floors {
    /// No floor measured yet; scratch files go to `work_dir`.
    pub fn new(work_dir: &Path) -> Self {
        Self {
            work_dir: work_dir.to_owned(),
            clients: None,
            fixed: None,
            stock: None,
            by_size: BTreeMap::new(),
            stock_ipfs: BTreeMap::new(),
        }
    }

    async fn clients(&mut self, network: &Network) -> Result<&mut Clients, BenchError> {
        if self.clients.is_none() {
            self.clients = Some(Clients::open(network).await?);
        }
        Ok(self.clients.as_mut().expect("opened above"))
    }

    /// The size-independent floors (and the `peer` CLI's costs), measured on the first call.
    pub async fn fixed(
        &mut self,
        network: &Network,
        plan: &Plan,
    ) -> Result<FixedFloors, BenchError> {
        if let Some(fixed) = self.fixed {
            return Ok(fixed);
        }
        tracing::info!("floors: Fabric Gateway, anvil transfer, key service; peer CLI");
        let clients = self.clients(network).await?;
        let meter = |services: &[String]| Meter::services(network, services.to_vec());

        let contract = &clients.contract;
        let fabric_commit = Rounds::new(plan, meter(&clients.fabric_commit_services))
            .run("Fabric commit", || async {
                let started = Instant::now();
                contract.submit("Version", &[]).await?;
                Ok(started.elapsed())
            })
            .await?;
        let fabric_read = Rounds::new(plan, meter(&clients.fabric_read_services))
            .run("Fabric read", || async {
                let started = Instant::now();
                contract.evaluate("Version", &[]).await?;
                Ok(started.elapsed())
            })
            .await?;
        let (keys, unsigned) = (&clients.keys, &clients.unsigned);
        let key_service = Rounds::new(plan, meter(&clients.key_services))
            .run("key service", || async {
                let started = Instant::now();
                keys.sign_watermark(unsigned)
                    .await
                    .map_err(|e| BenchError::Tool {
                        tool: "the key service's SignWatermark".into(),
                        detail: e.to_string(),
                    })?;
                Ok(started.elapsed())
            })
            .await?;
        let mut rounds = Rounds::new(plan, meter(&["anvil".to_string()]));
        for round in 0..rounds.total {
            rounds.begin(round);
            let elapsed = clients.anvil.round_trip().await?;
            rounds.end(round, elapsed);
        }
        let anvil_tx = rounds.floor("anvil transaction")?;
        let verifier = PasswordVerifier::hash(FLOOR_PASSWORD, &PasswordParams::default())?;
        let (password_hash, ()) = cpu_pass(plan, "Argon2id check", || {
            Ok(verifier.verify(FLOOR_PASSWORD)?)
        })?;

        let peer = PeerCli::new(network, first_hospital(network)?);
        let (mut invoke, mut query) = (Samples::default(), Samples::default());
        for round in 0..plan.warmup + plan.rounds {
            let i = peer.invoke().await?;
            let q = peer.query().await?;
            if round >= plan.warmup {
                invoke.push(i);
                query.push(q);
            }
        }
        let unavailable = |what: &str| BenchError::Unavailable(format!("no {what} ran"));
        self.stock = Some(StockCosts {
            peer_invoke: invoke.stats().ok_or_else(|| unavailable("peer invoke"))?,
            peer_query: query.stats().ok_or_else(|| unavailable("peer query"))?,
        });
        let fixed = FixedFloors {
            fabric_commit,
            fabric_read,
            anvil_tx,
            key_service,
            password_hash,
        };
        self.fixed = Some(fixed);
        Ok(fixed)
    }

    /// The size-independent floors, if a figure measured them.
    pub fn fixed_if_measured(&self) -> Option<FixedFloors> {
        self.fixed
    }

    /// The floors over `size`, if a figure measured them.
    pub fn size_if_measured(&self, size: u64) -> Option<SizeFloors> {
        self.by_size.get(&size).copied()
    }

    /// The floors over `document` (a C-CDA document's bytes), recorded under `size` (the
    /// size asked for); `ipfs add`/`ipfs cat` through the CLI beside them.
    pub async fn for_size(
        &mut self,
        network: &Network,
        plan: &Plan,
        size: u64,
        document: &[u8],
    ) -> Result<SizeFloors, BenchError> {
        if let Some(floors) = self.by_size.get(&size) {
            return Ok(*floors);
        }
        tracing::info!(size = %size_label(size), "floors: CPU passes, S3, Kubo RPC; ipfs CLI");
        let dek = Dek::generate();
        let (aes_encrypt, ciphertext) = cpu_pass(plan, "AES-GCM encrypt", || {
            let mut out = Vec::with_capacity(document.len() + document.len() / 1000 + 64);
            encrypt_stream(&dek, &FLOOR_AAD, document, &mut out)?;
            Ok(out)
        })?;
        let (aes_decrypt, _) = cpu_pass(plan, "AES-GCM decrypt", || {
            decrypt_stream(&dek, &FLOOR_AAD, &ciphertext[..], std::io::sink())?;
            Ok(())
        })?;
        let (sha3, _) = cpu_pass(plan, "SHA3-256", || {
            Ok(<[u8; 32]>::from(Sha3_256::digest(&ciphertext)))
        })?;
        let key = SigningKey::from_bytes(&rand::random());
        let mark = Mark {
            hospital_id: "bench",
            record_id: "bench-floor",
            issued_at: 0,
        };
        let (watermark_embed, marked) = cpu_pass(plan, "watermark embedding", || {
            let mut source = Cursor::new(document);
            let prepared = medcert_watermark::prepare(&mut source, &mark)?;
            let signature = medcert_watermark::sign_payload(prepared.unsigned(), &key);
            let mut out = Vec::with_capacity(document.len() + 1024);
            prepared.embed(&mut source, &mut out, signature, TooSmall::WriteUnchanged)?;
            Ok(out)
        })?;
        let verifying = key.verifying_key();
        let (watermark_check, _) = cpu_pass(plan, "watermark check", || {
            Ok(medcert_watermark::verify(&marked[..], |_| Some(verifying))?)
        })?;

        let clients = self.clients(network).await?;
        let meter = |name: &str| Meter::services(network, vec![name.to_string()]);
        let s3 = &clients.s3;
        let s3_put = Rounds::new(plan, meter("s3"))
            .run("S3 put", || s3.put(&ciphertext))
            .await?;
        let s3_get = Rounds::new(plan, meter("s3"))
            .run("S3 get", || s3.get())
            .await?;
        s3.remove().await?;
        let ipfs = &clients.ipfs;
        let mut cids = Vec::new();
        let mut rounds = Rounds::new(plan, meter("ipfs"));
        for round in 0..rounds.total {
            // Fresh ciphertext each round, so Kubo never finds the blocks already stored,
            // as it never does for medcert's envelopes.
            let mut fresh = ciphertext.clone();
            fresh[..8].copy_from_slice(&rand::random::<[u8; 8]>());
            rounds.begin(round);
            let started = Instant::now();
            cids.push(ipfs.add(Cursor::new(fresh)).await?);
            rounds.end(round, started.elapsed());
        }
        let ipfs_add = rounds.floor("Kubo RPC add")?;
        let cid = cids.last().cloned().unwrap_or_default();
        let ipfs_cat = Rounds::new(plan, meter("ipfs"))
            .run("Kubo RPC cat", || async {
                let started = Instant::now();
                ipfs.cat_to(&cid, &mut tokio::io::sink()).await?;
                Ok(started.elapsed())
            })
            .await?;
        for cid in &cids {
            ipfs.unpin(cid).await?;
        }

        let cli = IpfsCli::new(network)?;
        let file = self.work_dir.join(format!("floor-{size}.enc"));
        let (mut add, mut cat) = (Samples::default(), Samples::default());
        for round in 0..plan.warmup + plan.rounds {
            let mut fresh = ciphertext.clone();
            fresh[..8].copy_from_slice(&rand::random::<[u8; 8]>());
            std::fs::write(&file, &fresh)
                .map_err(BenchError::io("cannot write a floor file", &file))?;
            let (a, cid) = cli.add(&file).await?;
            let c = cli.cat(&cid).await?;
            cli.unpin(&cid).await?;
            if round >= plan.warmup {
                add.push(a);
                cat.push(c);
            }
        }
        std::fs::remove_file(&file).map_err(BenchError::io("cannot remove a floor file", &file))?;
        if let (Some(add), Some(cat)) = (add.stats(), cat.stats()) {
            self.stock_ipfs.insert(size, (add, cat));
        }

        let floors = SizeFloors {
            aes_encrypt,
            aes_decrypt,
            sha3,
            watermark_embed,
            watermark_check,
            s3_put,
            s3_get,
            ipfs_add,
            ipfs_cat,
        };
        self.by_size.insert(size, floors);
        Ok(floors)
    }

    /// The floors over a new C-CDA document of `size`, made in `workspace`.
    pub async fn for_new_document(
        &mut self,
        network: &Network,
        plan: &Plan,
        workspace: &Workspace,
        size: u64,
    ) -> Result<SizeFloors, BenchError> {
        if let Some(floors) = self.by_size.get(&size) {
            return Ok(*floors);
        }
        let path = workspace.document(size, "floor", "bench")?;
        let document = std::fs::read(&path).map_err(BenchError::io("cannot read", &path))?;
        std::fs::remove_file(&path).map_err(BenchError::io("cannot remove", &path))?;
        self.for_size(network, plan, size, &document).await
    }

    /// Every floor measured, one row each (floors.csv and the summary's floors table).
    pub fn csv(&self) -> Csv {
        let mut csv = Csv::new(
            &[
                &["floor", "size_bytes", "size"][..],
                &Stats::COLUMNS,
                &["cpu_ms_per_op"],
            ]
            .concat(),
        );
        let mut push = |name: &str, size: Option<u64>, f: &Floor| {
            let mut row = vec![
                name.to_string(),
                size.map(|s| s.to_string()).unwrap_or_default(),
                size.map(size_label).unwrap_or_default(),
            ];
            row.extend(f.wall.fields());
            row.push(ms(Some(f.cpu_ms)));
            csv.push(row);
        };
        if let Some(f) = &self.fixed {
            for (part, floor) in [
                (Part::FabricCommit, &f.fabric_commit),
                (Part::FabricRead, &f.fabric_read),
                (Part::AnvilTx, &f.anvil_tx),
                (Part::KeyService, &f.key_service),
                (Part::PasswordHash, &f.password_hash),
            ] {
                push(part.name(), None, floor);
            }
        }
        for (&size, f) in &self.by_size {
            for part in Part::BY_SIZE {
                if let Some(floor) = f.get(part) {
                    push(part.name(), Some(size), &floor);
                }
            }
        }
        csv
    }

    /// What the stock tools cost, one row each (stock_tools.csv): not floors.
    pub fn stock_csv(&self) -> Csv {
        let mut csv = Csv::new(&[&["tool", "size_bytes", "size"][..], &Stats::COLUMNS].concat());
        let mut push = |name: &str, size: Option<u64>, s: &Stats| {
            let mut row = vec![
                name.to_string(),
                size.map(|s| s.to_string()).unwrap_or_default(),
                size.map(size_label).unwrap_or_default(),
            ];
            row.extend(s.fields());
            csv.push(row);
        };
        if let Some(s) = &self.stock {
            push(
                "peer chaincode invoke --waitForEvent (Version)",
                None,
                &s.peer_invoke,
            );
            push("peer chaincode query (Version)", None, &s.peer_query);
        }
        for (&size, (add, cat)) in &self.stock_ipfs {
            push("ipfs add (CLI, medcert's options)", Some(size), add);
            push("ipfs cat (CLI)", Some(size), cat);
        }
        csv
    }
}

/// Runs a pass over bytes in memory every round, timed and on the thread's CPU clock; its
/// floor and the last round's output.
fn cpu_pass<T>(
    plan: &Plan,
    what: &str,
    mut pass: impl FnMut() -> Result<T, BenchError>,
) -> Result<(Floor, T), BenchError> {
    let mut rounds = Rounds::new(plan, Meter::Thread);
    let mut last = None;
    for round in 0..rounds.total {
        rounds.begin(round);
        let started = Instant::now();
        let out = pass()?;
        rounds.end(round, started.elapsed());
        last = Some(out);
    }
    let floor = rounds.floor(what)?;
    let last = last.ok_or_else(|| BenchError::Unavailable(format!("no round of {what} ran")))?;
    Ok((floor, last))
}

/// One part of an operation that has a floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A Fabric transaction until committed.
    FabricCommit,
    /// A Fabric evaluate.
    FabricRead,
    /// An anvil transaction until its receipt.
    AnvilTx,
    /// An authenticated key-service round trip.
    KeyService,
    /// An Argon2id check of a password, at the key service's costs.
    PasswordHash,
    /// AES-256-GCM encryption with Hash C.
    AesEncrypt,
    /// AES-256-GCM decryption.
    AesDecrypt,
    /// A SHA3-256 pass.
    Sha3,
    /// Watermark embedding.
    WatermarkEmbed,
    /// Watermark check with the content fingerprint.
    WatermarkCheck,
    /// An S3 put.
    S3Put,
    /// An S3 get.
    S3Get,
    /// A Kubo add.
    IpfsAdd,
    /// A Kubo cat.
    IpfsCat,
}

impl Part {
    /// The parts measured per size, in table order.
    pub const BY_SIZE: [Part; 9] = [
        Part::AesEncrypt,
        Part::AesDecrypt,
        Part::Sha3,
        Part::WatermarkEmbed,
        Part::WatermarkCheck,
        Part::S3Put,
        Part::S3Get,
        Part::IpfsAdd,
        Part::IpfsCat,
    ];

    /// What the floors table calls it.
    pub fn name(self) -> &'static str {
        match self {
            Part::FabricCommit => "Fabric commit (Gateway submit of Version, one connection)",
            Part::FabricRead => "Fabric read (Gateway evaluate of Version)",
            Part::AnvilTx => "anvil transaction (raw signed transfer until its receipt)",
            Part::KeyService => "key-service round trip (SignWatermark, one connection)",
            Part::PasswordHash => {
                "Argon2id password check (in memory, the key service's costs: 19 MiB, 2 passes)"
            }
            Part::AesEncrypt => "AES-256-GCM encrypt with Hash C (in memory)",
            Part::AesDecrypt => "AES-256-GCM decrypt (in memory)",
            Part::Sha3 => "SHA3-256 (in memory)",
            Part::WatermarkEmbed => "watermark embed, both passes (in memory)",
            Part::WatermarkCheck => "watermark check with content fingerprint (in memory)",
            Part::S3Put => "S3 put (object_store, one client)",
            Part::S3Get => "S3 get (object_store, one client)",
            Part::IpfsAdd => "Kubo RPC add (medcert's options, one client)",
            Part::IpfsCat => "Kubo RPC cat (one client)",
        }
    }

    /// Whether the part passes over the record's bytes.
    pub fn per_byte(self) -> bool {
        Part::BY_SIZE.contains(&self)
    }
}

impl FixedFloors {
    /// The floor of a size-independent part.
    pub fn get(&self, part: Part) -> Option<Floor> {
        match part {
            Part::FabricCommit => Some(self.fabric_commit),
            Part::FabricRead => Some(self.fabric_read),
            Part::AnvilTx => Some(self.anvil_tx),
            Part::KeyService => Some(self.key_service),
            Part::PasswordHash => Some(self.password_hash),
            _ => None,
        }
    }
}

impl SizeFloors {
    /// The floor of a part over the bytes.
    pub fn get(&self, part: Part) -> Option<Floor> {
        match part {
            Part::AesEncrypt => Some(self.aes_encrypt),
            Part::AesDecrypt => Some(self.aes_decrypt),
            Part::Sha3 => Some(self.sha3),
            Part::WatermarkEmbed => Some(self.watermark_embed),
            Part::WatermarkCheck => Some(self.watermark_check),
            Part::S3Put => Some(self.s3_put),
            Part::S3Get => Some(self.s3_get),
            Part::IpfsAdd => Some(self.ipfs_add),
            Part::IpfsCat => Some(self.ipfs_cat),
            _ => None,
        }
    }
}

/// Raw `object_store` put and get of bytes in memory: one request each, no Hash C check.
pub struct RawS3 {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
}

impl RawS3 {
    /// A fresh object name in the CSP's bucket, nothing put yet.
    pub fn new(csp: &medcert_csp::Csp) -> Self {
        let suffix: u64 = rand::random();
        Self {
            store: csp.object_store(),
            location: ObjectPath::from(format!("bench-floor-{suffix:016x}")),
        }
    }

    /// Puts `bytes` under the object name; the time the request took.
    pub async fn put(&self, bytes: &[u8]) -> Result<Duration, BenchError> {
        let payload = PutPayload::from(bytes.to_vec());
        let started = Instant::now();
        self.store
            .put(&self.location, payload)
            .await
            .map_err(|e| self.failed("put", e))?;
        Ok(started.elapsed())
    }

    /// Gets the object back; the time the request and its body took.
    pub async fn get(&self) -> Result<Duration, BenchError> {
        let started = Instant::now();
        // The chunks as they arrive, none kept: gathering them into one buffer
        // (`GetResult::bytes`) made this floor slower than medcert's own streaming get.
        let mut chunks = self
            .store
            .get(&self.location)
            .await
            .map_err(|e| self.failed("get", e))?
            .into_stream();
        while let Some(chunk) = chunks.next().await {
            chunk.map_err(|e| self.failed("get", e))?;
        }
        Ok(started.elapsed())
    }

    /// Deletes the object.
    pub async fn remove(&self) -> Result<(), BenchError> {
        self.store
            .delete(&self.location)
            .await
            .map_err(|e| self.failed("delete", e))
    }

    fn failed(&self, operation: &str, error: object_store::Error) -> BenchError {
        BenchError::Tool {
            tool: format!("raw S3 {operation} of {}", self.location),
            detail: error.to_string(),
        }
    }
}

const FLOOR_AAD: RecordAad<'static> = RecordAad {
    record_id: "bench-floor",
    hospital_id: "bench",
};

const FLOOR_PASSWORD: &[u8] = b"bench-floor password";

/// Plain ETH transfers from a throw-away account funded with `anvil_setBalance`, so the
/// floor never competes for a nonce with the accounts other clients are using.
pub struct AnvilTransfer {
    account: Funded,
    to: Address,
}

impl AnvilTransfer {
    /// A fresh account, funded with `anvil_setBalance`.
    pub async fn new(network: &Network) -> Result<Self, BenchError> {
        let wallet =
            LocalWallet::new(&mut rand::thread_rng()).with_chain_id(network.ethereum.chain_id);
        Ok(Self {
            account: anvil::fund(network, wallet, Duration::from_millis(1)).await?,
            to: Address::random(),
        })
    }

    /// One transfer, from signing to its receipt: anvil mines as it accepts, so the
    /// receipt is asked for as soon as the send returns, then every millisecond.
    pub async fn round_trip(&mut self) -> Result<Duration, BenchError> {
        let Funded {
            client,
            nonce,
            gas_price,
        } = &mut self.account;
        let request = TransactionRequest::pay(self.to, 1u64)
            .from(client.address())
            .nonce(*nonce)
            .gas(21_000u64)
            .gas_price(*gas_price)
            .chain_id(client.signer().chain_id());
        let started = Instant::now();
        let pending = client.send_transaction(request, None).await.map_err(rpc)?;
        let hash = pending.tx_hash();
        *nonce += U256::one();
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(receipt) = client.get_transaction_receipt(hash).await.map_err(rpc)? {
                if receipt.status != Some(1u64.into()) {
                    return Err(BenchError::Unexpected {
                        what: "anvil",
                        detail: format!("transfer {hash:?} failed"),
                    });
                }
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Unavailable(format!(
                    "transfer {hash:?} not mined after 30 s: is anvil mining?"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_floor_round_trips() {
        let dek = Dek::generate();
        let plaintext = vec![7u8; 300_000];
        let mut ciphertext = Vec::new();
        encrypt_stream(&dek, &FLOOR_AAD, &plaintext[..], &mut ciphertext).unwrap();
        assert!(ciphertext.len() > plaintext.len());
        decrypt_stream(&dek, &FLOOR_AAD, &ciphertext[..], std::io::sink()).unwrap();
        assert!(
            decrypt_stream(
                &Dek::generate(),
                &FLOOR_AAD,
                &ciphertext[..],
                std::io::sink()
            )
            .is_err()
        );
    }

    #[test]
    fn a_cpu_pass_counts_the_threads_cpu_per_round() {
        let plan = Plan::new(&crate::BenchArgs::default(), 1);
        let (floor, last) = cpu_pass(&plan, "spin", || {
            let until = Instant::now() + Duration::from_millis(20);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            Ok(x)
        })
        .unwrap();
        assert!(last > 0);
        assert_eq!(floor.wall.rounds, plan.rounds);
        assert!(floor.wall.p50_ms >= 20.0, "{floor:?}");
        // A spinning thread uses about as much CPU as wall time, unless the machine
        // takes its core away for part of the time.
        assert!(
            floor.cpu_ms > 1.0 && floor.cpu_ms <= floor.wall.mean_ms + 1.0,
            "{floor:?}"
        );
    }
}
