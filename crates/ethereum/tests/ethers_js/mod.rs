//! ethers.js, an EIP-712 implementation independent of medcert's, run through
//! `tests/ethers-js/typed-data.mjs` with node. deploy/install puts ethers.js in
//! `$MEDCERT_CACHE/ethers-js-<ETHERS_JS_VERSION>`; a missing node or ethers.js fails the
//! test with what to run.
#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// What ethers.js computed for a typed-data object.
#[derive(Debug)]
pub(crate) struct Answer {
    /// `TypedDataEncoder.hash`.
    pub(crate) digest: [u8; 32],
    /// The signer: the wallet's address when signing, `verifyTypedData` when verifying.
    pub(crate) signer: [u8; 20],
    /// The signature as ethers.js prints it (`0x` hex), when signing.
    pub(crate) signature: Option<String>,
}

/// Signs `typed_data` with `private_key` in ethers.js (`Wallet.signTypedData`).
pub(crate) fn sign(typed_data: &Value, private_key: &[u8; 32]) -> Answer {
    run(
        "sign",
        json!({
            "typedData": typed_data,
            "privateKey": format!("0x{}", hex::encode(private_key)),
        }),
    )
}

/// Recovers the signer of `signature` over `typed_data` in ethers.js (`verifyTypedData`).
pub(crate) fn verify(typed_data: &Value, signature: &[u8; 65]) -> Answer {
    run(
        "verify",
        json!({
            "typedData": typed_data,
            "signature": format!("0x{}", hex::encode(signature)),
        }),
    )
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where deploy/install put ethers.js: the cache directory of the pinned version.
fn installed() -> PathBuf {
    let versions = repo_dir().join("deploy/versions.env");
    let text = std::fs::read_to_string(&versions).expect("deploy/versions.env");
    let version = text
        .lines()
        .find_map(|line| line.strip_prefix("ETHERS_JS_VERSION="))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("deploy/versions.env pins ETHERS_JS_VERSION");
    let cache = std::env::var_os("MEDCERT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/medcert"));
    let home = cache.join(format!("ethers-js-{version}"));
    assert!(
        home.join("node_modules/ethers/package.json").exists(),
        "ethers.js {version} is missing from {}: run deploy/install",
        home.display()
    );
    home
}

fn run(command: &str, input: Value) -> Answer {
    let script = repo_dir().join("tests/ethers-js/typed-data.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(command)
        .env("MEDCERT_ETHERS_JS", installed())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node cannot be started ({e}): run deploy/install"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ethers.js {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let bytes = |field: &str| hex::decode(&answer[field].as_str().unwrap()[2..]).unwrap();
    Answer {
        digest: bytes("digest").try_into().unwrap(),
        signer: bytes("signer").try_into().unwrap(),
        signature: answer["signature"].as_str().map(str::to_owned),
    }
}
