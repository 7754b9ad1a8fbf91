//! The description of a running medcert network.
//!
//! `deploy/up` writes it as JSON to `<repo>/.run/network.json`; the CLI, the relay and
//! every integration test read it instead of hard-coding endpoints, paths or keys.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable naming the description file, overriding the default location.
pub const NETWORK_ENV: &str = "MEDCERT_NETWORK";

/// Why the description could not be loaded, saved or consulted.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// There is no description file: the network is not up.
    #[error("network description not found at {path}: run deploy/up (or set {NETWORK_ENV})")]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read network description {path}: {source}")]
    Read {
        /// The description file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not a network description.
    #[error("network description {path} is malformed: {source}")]
    Malformed {
        /// The description file.
        path: PathBuf,
        /// What JSON decoding refused.
        source: serde_json::Error,
    },
    /// The description could not be written.
    #[error("cannot write network description {path}: {source}")]
    Write {
        /// The description file.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
    /// No hospital of the network has this id.
    #[error("no hospital {id} in the network description (it has {available})")]
    UnknownHospital {
        /// The id asked for.
        id: String,
        /// The ids it has, comma-separated.
        available: String,
    },
}

/// The whole description: where each chain, store and tool of the network is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    /// Directory holding every installed tool binary (ipfs, peer, orderer, anvil, ...).
    pub bin_dir: PathBuf,
    /// Logs, pids and data of the running network.
    pub run_dir: PathBuf,
    /// The certificate chain (anvil).
    pub ethereum: Ethereum,
    /// The Kubo node holding the envelopes.
    pub ipfs: Ipfs,
    /// The S3 service the hospitals' CSP may use.
    pub s3: S3,
    /// The hospital chain: orderer, relay org and hospitals.
    pub fabric: Fabric,
}

/// The certificate chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ethereum {
    /// The node's JSON-RPC URL.
    pub rpc_url: String,
    /// The chain's EIP-155 id.
    pub chain_id: u64,
    /// The accounts deploy/up generated for this network and funded from a development
    /// account of the node: 0 is the contract's admin, 1 the relay, 2 + k hospital k.
    pub accounts: Vec<Account>,
    /// The `MedicalCertificate` contract (0x hex), once `medcert network init` deployed it.
    pub contract_address: Option<String>,
}

/// A funded Ethereum account.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Account {
    /// Its address, 0x hex.
    pub address: String,
    /// Its secp256k1 private key, 0x hex.
    pub private_key: String,
}

// Debug shows the address only: the private key controls the account.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The IPFS node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ipfs {
    /// Kubo's RPC API URL, `http://host:port`.
    pub api_url: String,
}

/// An S3-compatible object store and the credentials to use it.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct S3 {
    /// The service's URL.
    pub endpoint: String,
    /// The region requests are signed for.
    pub region: String,
    /// The bucket objects go in.
    pub bucket: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key; never printed by `Debug`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The hospital chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fabric {
    /// The ordering service's nodes (a Raft cluster), never none.
    #[serde(deserialize_with = "at_least_one")]
    orderers: Vec<Orderer>,
    /// The name medcert's chaincode is installed under on every channel.
    pub chaincode_name: String,
    /// The relay's own org, a member of every hospital channel.
    pub relay: Identity,
    /// The hospital orgs, each with its own channel.
    pub hospitals: Vec<Hospital>,
}

/// One node of the ordering service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Orderer {
    /// Its gRPC endpoint, `host:port`.
    pub endpoint: String,
    /// TLS server name of the orderer's certificate.
    pub host: String,
    /// The CA certificate (PEM) its TLS certificate chains to.
    pub tls_ca: PathBuf,
    /// Its channel participation (admin) endpoint, `host:port`.
    pub admin_endpoint: String,
    /// Its operations service (health, metrics), `http://host:port`.
    pub operations_url: String,
}

/// A hospital org.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hospital {
    /// Its id, e.g. `hospital1`.
    pub id: String,
    /// Its Fabric MSP id.
    pub msp_id: String,
    /// The org's MSP root CA certificate (PEM): signers of its endorsements chain to it.
    pub msp_ca: PathBuf,
    /// Its channel, shared with the relay org.
    pub channel: String,
    /// Its peers, in the order clients try them; never none.
    #[serde(deserialize_with = "at_least_one")]
    peers: Vec<Peer>,
    /// Where its chaincode runs as a service, `host:port`.
    pub chaincode_address: String,
    /// Index into `ethereum.accounts` of the hospital's issuer account.
    pub eth_account: usize,
    /// The org's admin.
    pub admin: Identity,
    /// The org's users who act as doctors.
    pub doctors: Vec<Identity>,
    /// The hospital's key service: the only holder of its keys and its patients'
    /// password verifiers.
    pub key_service: KeyService,
}

impl Fabric {
    /// The ordering service's nodes.
    pub fn orderers(&self) -> &[Orderer] {
        &self.orderers
    }

    /// The first ordering node, for tools that take one (the others are in the channel
    /// configuration).
    pub fn orderer(&self) -> &Orderer {
        &self.orderers[0]
    }
}

impl Hospital {
    /// Its peers, in the order clients try them.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Its first peer, for tools that talk to one.
    pub fn peer(&self) -> &Peer {
        &self.peers[0]
    }
}

/// A list of at least one element: a network with no orderer, or a hospital with no peer,
/// has nothing to talk to.
fn at_least_one<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(deserializer)?;
    if items.is_empty() {
        return Err(serde::de::Error::invalid_length(0, &"at least one"));
    }
    Ok(items)
}

/// A hospital's key service (`medcert-key-service`), reached over TLS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyService {
    /// Its gRPC endpoint, `host:port`.
    pub endpoint: String,
    /// TLS server name of its certificate.
    pub host: String,
    /// The CA certificate (PEM) its TLS certificate chains to; the service writes it.
    pub tls_ca: PathBuf,
}

/// A hospital's peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peer {
    /// Its gRPC endpoint, `host:port`.
    pub endpoint: String,
    /// TLS server name of the peer's certificate.
    pub host: String,
    /// The CA certificate (PEM) its TLS certificate chains to.
    pub tls_ca: PathBuf,
    /// Its operations service (health, metrics), `http://host:port`.
    pub operations_url: String,
}

/// A Fabric identity: its MSP, X.509 certificate and PKCS#8 P-256 private key (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// The MSP it belongs to.
    pub msp_id: String,
    /// Its X.509 certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl Network {
    /// Loads the description from `$MEDCERT_NETWORK`, or `<workspace>/.run/network.json`.
    pub fn load() -> Result<Self, NetworkError> {
        Self::load_from(&default_path())
    }

    /// Loads the description from `path`.
    pub fn load_from(path: &Path) -> Result<Self, NetworkError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NetworkError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                NetworkError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|source| NetworkError::Malformed {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the description atomically (temporary file, then rename), readable by the
    /// owner only: it holds the funded accounts' keys and the S3 secret.
    pub fn save_to(&self, path: &Path) -> Result<(), NetworkError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let write_err = |source| NetworkError::Write {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("a network description serialises");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(write_err)?;
        file.write_all(&json).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// The hospital with this id.
    pub fn hospital(&self, id: &str) -> Result<&Hospital, NetworkError> {
        self.fabric
            .hospitals
            .iter()
            .find(|h| h.id == id)
            .ok_or_else(|| NetworkError::UnknownHospital {
                id: id.to_owned(),
                available: self
                    .fabric
                    .hospitals
                    .iter()
                    .map(|h| h.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The issuer account of a hospital on the certificate chain.
    pub fn hospital_account(&self, hospital: &Hospital) -> Option<&Account> {
        self.ethereum.accounts.get(hospital.eth_account)
    }
}

/// Where the description lives unless `$MEDCERT_NETWORK` says otherwise: the nearest
/// `.run/network.json` from the working directory up (deploy/up writes it at the
/// repository root), else the one of the checkout this was built from.
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os(NETWORK_ENV) {
        return PathBuf::from(path);
    }
    let found = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|dir| dir.join(".run/network.json"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.run/network.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(msp: &str) -> Identity {
        Identity {
            msp_id: msp.into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        }
    }

    fn sample() -> Network {
        Network {
            bin_dir: "/cache/bin".into(),
            run_dir: "/repo/.run".into(),
            ethereum: Ethereum {
                rpc_url: "http://127.0.0.1:8545".into(),
                chain_id: 31337,
                accounts: vec![Account {
                    address: "0xf39f".into(),
                    private_key: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478".into(),
                }],
                contract_address: None,
            },
            ipfs: Ipfs {
                api_url: "http://127.0.0.1:5001".into(),
            },
            s3: S3 {
                endpoint: "http://127.0.0.1:9000".into(),
                region: "us-east-1".into(),
                bucket: "medcert".into(),
                access_key_id: "medcert".into(),
                secret_access_key: "s3-secret-value".into(),
            },
            fabric: Fabric {
                orderers: vec![Orderer {
                    endpoint: "127.0.0.1:7050".into(),
                    host: "orderer0.medcert.local".into(),
                    tls_ca: "ca.pem".into(),
                    admin_endpoint: "127.0.0.1:7053".into(),
                    operations_url: "http://127.0.0.1:8443".into(),
                }],
                chaincode_name: "hospital".into(),
                relay: identity("RelayMSP"),
                hospitals: vec![Hospital {
                    id: "hospital1".into(),
                    msp_id: "Hospital1MSP".into(),
                    msp_ca: "msp-ca.pem".into(),
                    channel: "hospital1".into(),
                    peers: vec![
                        Peer {
                            endpoint: "127.0.0.2:7051".into(),
                            host: "peer0.hospital1.medcert.local".into(),
                            tls_ca: "ca.pem".into(),
                            operations_url: "http://127.0.0.2:9444".into(),
                        },
                        Peer {
                            endpoint: "127.0.0.2:7053".into(),
                            host: "peer1.hospital1.medcert.local".into(),
                            tls_ca: "ca.pem".into(),
                            operations_url: "http://127.0.0.2:9445".into(),
                        },
                    ],
                    chaincode_address: "127.0.0.1:9999".into(),
                    eth_account: 0,
                    admin: identity("Hospital1MSP"),
                    doctors: vec![identity("Hospital1MSP")],
                    key_service: KeyService {
                        endpoint: "127.0.0.1:7600".into(),
                        host: "keys.hospital1.medcert.local".into(),
                        tls_ca: "keys-ca.pem".into(),
                    },
                }],
            },
        }
    }

    #[test]
    fn loads_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network.json");
        std::fs::write(&path, serde_json::to_vec(&sample()).unwrap()).unwrap();
        let loaded = Network::load_from(&path).unwrap();
        assert_eq!(loaded, sample());
        let hospital = loaded.hospital("hospital1").unwrap();
        assert_eq!(loaded.hospital_account(hospital).unwrap().address, "0xf39f");
    }

    #[test]
    fn saved_description_reloads_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network.json");
        let mut network = sample();
        network.ethereum.contract_address = Some("0x5fbd".into());
        network.save_to(&path).unwrap();
        assert_eq!(Network::load_from(&path).unwrap(), network);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_hospital_reads_as_its_peers_first_one_first() {
        let network = sample();
        let hospital = network.hospital("hospital1").unwrap();
        assert_eq!(hospital.peers().len(), 2);
        assert_eq!(hospital.peer().host, "peer0.hospital1.medcert.local");
        assert_eq!(network.fabric.orderer().host, "orderer0.medcert.local");
    }

    #[test]
    fn a_description_without_peers_or_orderers_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network.json");
        let mut json = serde_json::to_value(sample()).unwrap();
        json["fabric"]["hospitals"][0]["peers"] = serde_json::json!([]);
        std::fs::write(&path, json.to_string()).unwrap();
        let err = Network::load_from(&path).unwrap_err();
        assert!(matches!(err, NetworkError::Malformed { .. }), "{err}");

        let mut json = serde_json::to_value(sample()).unwrap();
        json["fabric"]["orderers"] = serde_json::json!([]);
        std::fs::write(&path, json.to_string()).unwrap();
        let err = Network::load_from(&path).unwrap_err();
        assert!(matches!(err, NetworkError::Malformed { .. }), "{err}");
    }

    #[test]
    fn missing_file_tells_how_to_start_the_network() {
        let err = Network::load_from(Path::new("/nonexistent/network.json")).unwrap_err();
        assert!(matches!(err, NetworkError::NotFound { .. }));
        assert!(err.to_string().contains("run deploy/up"));
    }

    #[test]
    fn unknown_hospital_lists_the_known_ones() {
        let err = sample().hospital("hospital9").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no hospital hospital9 in the network description (it has hospital1)"
        );
    }

    #[test]
    fn debug_output_hides_keys_and_secrets() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("ac0974bec39a"));
        assert!(!shown.contains("s3-secret-value"));
    }
}
