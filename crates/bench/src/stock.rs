//! What the services cost through their stock tools: Fabric's `peer` CLI and Kubo's
//! `ipfs` CLI, each run a new process with new connections, as a user of those tools pays
//! it. Reported beside the floors, never as floors: medcert's warm clients beat them.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use medcert_network::{Hospital, Network};
use tokio::process::Command;

use crate::error::BenchError;

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
}
