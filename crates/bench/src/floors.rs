//! The physical floors: what each service costs when driven by its own tool or by the
//! thinnest client, on the same machine and in the same run as medcert's steps.
//!
//! - one Fabric commit: `peer chaincode invoke --waitForEvent` of the no-op `Version`
//!   (endorsement, ordering at the channel's batch timeout, commit); one Fabric read:
//!   `peer chaincode query` of the same. Both include starting the `peer` process, as a
//!   user of Fabric's CLI pays it.
//! - one anvil transaction: a plain ETH transfer signed locally (nonce, gas and price
//!   filled in advance), sent raw, its receipt polled every millisecond.
//! - Kubo's own `ipfs add` / `ipfs cat` with medcert's add options.
//! - a raw S3 put / get of the bytes held in memory, one request each, no checks.
//! - AES-256-GCM (medcert-crypto's STREAM, with Hash C) over bytes in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medcert_crypto::{Dek, RecordAad, decrypt_stream, encrypt_stream};
use medcert_ethereum::ethers;
use medcert_network::{Hospital, Network};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::process::Command;

use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, TransactionRequest, U256};

use crate::anvil::{self, Funded, rpc};
use crate::config::{Plan, size_label};
use crate::error::BenchError;
use crate::fixtures::first_hospital;
use crate::report::Csv;
use crate::stats::{Samples, Stats};

/// A tool run that did not succeed: its last line of error output.
fn tool_failed(tool: &str, stderr: &[u8]) -> BenchError {
    let text = String::from_utf8_lossy(stderr);
    BenchError::Tool {
        tool: tool.to_string(),
        detail: text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output")
            .to_string(),
    }
}

/// Runs a tool's command to its end: the time it took and its output, or the tool's own
/// error as a failure of `what`.
async fn run_tool(
    mut command: Command,
    bin: &Path,
    cannot_run: &'static str,
    what: &str,
) -> Result<(Duration, Output), BenchError> {
    let started = Instant::now();
    let output = command
        .output()
        .await
        .map_err(BenchError::io(cannot_run, bin))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(tool_failed(what, &output.stderr));
    }
    Ok((elapsed, output))
}

/// Fabric's own `peer` CLI, as hospital `hospital`'s first doctor.
pub struct PeerCli {
    bin: PathBuf,
    config: PathBuf,
    orderer: medcert_network::Orderer,
    chaincode: String,
    hospital: Hospital,
}

impl PeerCli {
    /// The CLI against `hospital`'s peer, with the network's `peer` binary and Fabric config.
    pub fn new(network: &Network, hospital: &Hospital) -> Self {
        Self {
            bin: network.bin_dir.join("peer"),
            config: network.run_dir.join("fabric/config"),
            orderer: network.fabric.orderer().clone(),
            chaincode: network.fabric.chaincode_name.clone(),
            hospital: hospital.clone(),
        }
    }

    fn command(&self) -> Result<Command, BenchError> {
        let h = &self.hospital;
        let doctor = h.doctors.first().ok_or_else(|| {
            BenchError::Unavailable(format!("hospital {} has no doctor identity", h.id))
        })?;
        // The identity's certificate lives in <msp>/signcerts/.
        let msp_dir =
            doctor
                .cert
                .parent()
                .and_then(Path::parent)
                .ok_or_else(|| BenchError::Unexpected {
                    what: "the network description",
                    detail: format!(
                        "doctor certificate {} is not in an MSP",
                        doctor.cert.display()
                    ),
                })?;
        let mut command = Command::new(&self.bin);
        command
            .env("FABRIC_CFG_PATH", &self.config)
            .env("CORE_PEER_LOCALMSPID", &h.msp_id)
            .env("CORE_PEER_MSPCONFIGPATH", msp_dir)
            .env("CORE_PEER_TLS_ENABLED", "true")
            .env("CORE_PEER_TLS_ROOTCERT_FILE", &h.peer().tls_ca)
            .env("CORE_PEER_ADDRESS", &h.peer().endpoint)
            .env("CORE_PEER_TLS_SERVERHOSTOVERRIDE", &h.peer().host)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Ok(command)
    }

    async fn run(&self, command: Command, what: &str) -> Result<Duration, BenchError> {
        run_tool(command, &self.bin, "cannot run the peer CLI", what)
            .await
            .map(|(elapsed, _)| elapsed)
    }

    /// One committed transaction: `peer chaincode invoke --waitForEvent`.
    pub async fn invoke(&self) -> Result<Duration, BenchError> {
        let mut command = self.command()?;
        command
            .args(["chaincode", "invoke", "--waitForEvent", "--tls"])
            .args(["-o", &self.orderer.endpoint])
            .args(["--ordererTLSHostnameOverride", &self.orderer.host])
            .arg("--cafile")
            .arg(&self.orderer.tls_ca);
        // The endorsement policy asks for a majority of the hospital's peers: all endorse,
        // each checked by its address (in its certificate), not one peer's host name.
        command.env_remove("CORE_PEER_TLS_SERVERHOSTOVERRIDE");
        self.call_version(&mut command, self.hospital.peers());
        self.run(command, "peer chaincode invoke").await
    }

    /// One read: `peer chaincode query`.
    pub async fn query(&self) -> Result<Duration, BenchError> {
        let mut command = self.command()?;
        command.args(["chaincode", "query", "--tls"]);
        self.call_version(&mut command, std::slice::from_ref(self.hospital.peer()));
        self.run(command, "peer chaincode query").await
    }

    /// What both floors call: the chaincode's no-op `Version` on the hospital's channel,
    /// at `peers`.
    fn call_version(&self, command: &mut Command, peers: &[medcert_network::Peer]) {
        command.args(["-C", &self.hospital.channel, "-n", &self.chaincode]);
        for peer in peers {
            command
                .args(["--peerAddresses", &peer.endpoint])
                .arg("--tlsRootCertFiles")
                .arg(&peer.tls_ca);
        }
        command.args(["-c", r#"{"Args":["Version"]}"#]);
    }
}

/// Kubo's own `ipfs` CLI against the network's node.
pub struct IpfsCli {
    bin: PathBuf,
    api: String,
}

impl IpfsCli {
    /// The CLI against the network's IPFS API.
    pub fn new(network: &Network) -> Result<Self, BenchError> {
        Ok(Self {
            bin: network.bin_dir.join("ipfs"),
            api: multiaddr(&network.ipfs.api_url)?,
        })
    }

    /// `ipfs add` of a file with medcert's add options; the time and the CID.
    pub async fn add(&self, file: &Path) -> Result<(Duration, String), BenchError> {
        let mut command = self.command();
        command
            .args(["add", "-Q"])
            .args(medcert_ipfs::ADD_CLI_FLAGS)
            .arg(file)
            .stdin(Stdio::null());
        let (elapsed, output) = self.run(command, "ipfs add").await?;
        let cid = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok((elapsed, cid))
    }

    /// `ipfs cat` of a CID into nothing.
    pub async fn cat(&self, cid: &str) -> Result<Duration, BenchError> {
        let mut command = self.command();
        command
            .args(["cat", cid])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (elapsed, _) = self.run(command, "ipfs cat").await?;
        Ok(elapsed)
    }

    /// Unpins what a floor run added, so repeated runs do not grow the node.
    pub async fn unpin(&self, cid: &str) -> Result<(), BenchError> {
        let mut command = self.command();
        command
            .args(["pin", "rm", cid])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.run(command, "ipfs pin rm").await.map(drop)
    }

    /// `ipfs --api <the node's API>`, to be given its subcommand.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(["--api", &self.api]);
        command
    }

    async fn run(&self, command: Command, what: &str) -> Result<(Duration, Output), BenchError> {
        run_tool(command, &self.bin, "cannot run the ipfs CLI", what).await
    }
}

/// `http://127.0.0.1:5001` → `/ip4/127.0.0.1/tcp/5001`, as `ipfs --api` wants it.
fn multiaddr(api_url: &str) -> Result<String, BenchError> {
    let authority = api_url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| BenchError::Unexpected {
            what: "the network description",
            detail: format!("IPFS API URL {api_url} has no port"),
        })?;
    Ok(format!("/ip4/{host}/tcp/{port}"))
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
        self.store
            .get(&self.location)
            .await
            .map_err(|e| self.failed("get", e))?
            .bytes()
            .await
            .map_err(|e| self.failed("get", e))?;
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

/// AES-256-GCM STREAM encryption of `plaintext` in memory; the time and the ciphertext.
pub fn aes_encrypt(dek: &Dek, plaintext: &[u8]) -> Result<(Duration, Vec<u8>), BenchError> {
    let mut ciphertext = Vec::with_capacity(plaintext.len() + plaintext.len() / 1000 + 64);
    let started = Instant::now();
    encrypt_stream(dek, &FLOOR_AAD, plaintext, &mut ciphertext)?;
    Ok((started.elapsed(), ciphertext))
}

/// AES-256-GCM STREAM decryption of `ciphertext` in memory, into nothing.
pub fn aes_decrypt(dek: &Dek, ciphertext: &[u8]) -> Result<Duration, BenchError> {
    let started = Instant::now();
    decrypt_stream(dek, &FLOOR_AAD, ciphertext, std::io::sink())?;
    Ok(started.elapsed())
}

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

    /// One transfer, from signing to its mined receipt.
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
    fn api_url_becomes_a_multiaddr() {
        assert_eq!(
            multiaddr("http://127.0.0.1:5001").unwrap(),
            "/ip4/127.0.0.1/tcp/5001"
        );
        assert!(multiaddr("http://127.0.0.1").is_err());
    }

    #[test]
    fn aes_floor_round_trips() {
        let dek = Dek::generate();
        let plaintext = vec![7u8; 300_000];
        let (_, ciphertext) = aes_encrypt(&dek, &plaintext).unwrap();
        assert!(ciphertext.len() > plaintext.len());
        aes_decrypt(&dek, &ciphertext).unwrap();
        assert!(aes_decrypt(&Dek::generate(), &ciphertext).is_err());
    }
}

/// Floors that do not depend on a record's size.
#[derive(Debug, Clone, Copy)]
pub struct FixedFloors {
    /// A committed transaction through the `peer` CLI.
    pub fabric_commit: Stats,
    /// A read through the `peer` CLI.
    pub fabric_query: Stats,
    /// A plain transfer on anvil, from signing to its mined receipt.
    pub anvil_tx: Stats,
}

/// Floors over a record's bytes.
#[derive(Debug, Clone, Copy)]
pub struct SizeFloors {
    /// AES-256-GCM encryption of the record in memory.
    pub aes_encrypt: Stats,
    /// AES-256-GCM decryption of the record in memory.
    pub aes_decrypt: Stats,
    /// A raw S3 put of the ciphertext.
    pub s3_put: Stats,
    /// A raw S3 get of the ciphertext.
    pub s3_get: Stats,
    /// `ipfs add` of the ciphertext.
    pub ipfs_add: Stats,
    /// `ipfs cat` of the ciphertext.
    pub ipfs_cat: Stats,
}

/// The floors of a run, each measured once (warm-up, then the plan's rounds) when first
/// needed.
pub struct Floors {
    work_dir: PathBuf,
    fixed: Option<FixedFloors>,
    by_size: BTreeMap<u64, SizeFloors>,
}

fn stats_of(samples: &Samples, what: &str) -> Result<Stats, BenchError> {
    samples
        .stats()
        .ok_or_else(|| BenchError::Unavailable(format!("no round of the {what} floor ran")))
}

impl Floors {
    /// No floor measured yet; scratch files go to `work_dir`.
    pub fn new(work_dir: &Path) -> Self {
        Self {
            work_dir: work_dir.to_owned(),
            fixed: None,
            by_size: BTreeMap::new(),
        }
    }

    /// The size-independent floors, measured on the first call.
    pub async fn fixed(
        &mut self,
        network: &Network,
        plan: &Plan,
    ) -> Result<FixedFloors, BenchError> {
        if let Some(fixed) = self.fixed {
            return Ok(fixed);
        }
        let hospital = first_hospital(network)?;
        tracing::info!("floors: peer CLI, anvil transfer");
        let peer = PeerCli::new(network, hospital);
        let mut anvil = AnvilTransfer::new(network).await?;
        let (mut commit, mut query, mut tx) =
            (Samples::default(), Samples::default(), Samples::default());
        for round in 0..plan.warmup + plan.rounds {
            let c = peer.invoke().await?;
            let q = peer.query().await?;
            let t = anvil.round_trip().await?;
            if round >= plan.warmup {
                commit.push(c);
                query.push(q);
                tx.push(t);
            }
        }
        let fixed = FixedFloors {
            fabric_commit: stats_of(&commit, "Fabric commit")?,
            fabric_query: stats_of(&query, "Fabric query")?,
            anvil_tx: stats_of(&tx, "anvil transaction")?,
        };
        self.fixed = Some(fixed);
        Ok(fixed)
    }

    /// The size-independent floors, if a figure measured them.
    pub fn fixed_if_measured(&self) -> Option<FixedFloors> {
        self.fixed
    }

    /// The floors over `plaintext`, recorded under `size` (the size asked for).
    pub async fn for_size(
        &mut self,
        network: &Network,
        plan: &Plan,
        size: u64,
        plaintext: &[u8],
    ) -> Result<SizeFloors, BenchError> {
        if let Some(floors) = self.by_size.get(&size) {
            return Ok(*floors);
        }
        tracing::info!(size = %size_label(size), "floors: AES-GCM, raw S3, ipfs CLI");
        let csp = medcert_csp::Csp::s3(&network.s3)?;
        let s3 = RawS3::new(&csp);
        let ipfs = IpfsCli::new(network)?;
        let file = self.work_dir.join(format!("floor-{size}.enc"));
        let mut samples: [Samples; 6] = Default::default();
        for round in 0..plan.warmup + plan.rounds {
            // Fresh ciphertext each round, so IPFS never finds the blocks already stored,
            // as it never does for medcert's envelopes.
            let dek = Dek::generate();
            let (encrypt, ciphertext) = aes_encrypt(&dek, plaintext)?;
            let decrypt = aes_decrypt(&dek, &ciphertext)?;
            let put = s3.put(&ciphertext).await?;
            let get = s3.get().await?;
            std::fs::write(&file, &ciphertext)
                .map_err(BenchError::io("cannot write a floor file", &file))?;
            let (add, cid) = ipfs.add(&file).await?;
            let cat = ipfs.cat(&cid).await?;
            ipfs.unpin(&cid).await?;
            if round >= plan.warmup {
                for (s, t) in samples
                    .iter_mut()
                    .zip([encrypt, decrypt, put, get, add, cat])
                {
                    s.push(t);
                }
            }
        }
        s3.remove().await?;
        std::fs::remove_file(&file).map_err(BenchError::io("cannot remove a floor file", &file))?;
        let [encrypt, decrypt, put, get, add, cat] = &samples;
        let floors = SizeFloors {
            aes_encrypt: stats_of(encrypt, "AES-GCM encrypt")?,
            aes_decrypt: stats_of(decrypt, "AES-GCM decrypt")?,
            s3_put: stats_of(put, "S3 put")?,
            s3_get: stats_of(get, "S3 get")?,
            ipfs_add: stats_of(add, "ipfs add")?,
            ipfs_cat: stats_of(cat, "ipfs cat")?,
        };
        self.by_size.insert(size, floors);
        Ok(floors)
    }

    /// Every floor measured, one row each.
    pub fn csv(&self) -> Csv {
        let mut csv = Csv::new(&[&["floor", "size_bytes", "size"][..], &Stats::COLUMNS].concat());
        let mut push = |name: &str, size: Option<u64>, s: &Stats| {
            let mut row = vec![
                name.to_string(),
                size.map(|s| s.to_string()).unwrap_or_default(),
                size.map(size_label).unwrap_or_default(),
            ];
            row.extend(s.fields());
            csv.push(row);
        };
        if let Some(f) = &self.fixed {
            push(
                "fabric commit (peer chaincode invoke --waitForEvent)",
                None,
                &f.fabric_commit,
            );
            push("fabric read (peer chaincode query)", None, &f.fabric_query);
            push("anvil transaction round trip", None, &f.anvil_tx);
        }
        for (&size, f) in &self.by_size {
            push("AES-256-GCM encrypt", Some(size), &f.aes_encrypt);
            push("AES-256-GCM decrypt", Some(size), &f.aes_decrypt);
            push("raw S3 put", Some(size), &f.s3_put);
            push("raw S3 get", Some(size), &f.s3_get);
            push("ipfs add (CLI)", Some(size), &f.ipfs_add);
            push("ipfs cat (CLI)", Some(size), &f.ipfs_cat);
        }
        csv
    }
}
