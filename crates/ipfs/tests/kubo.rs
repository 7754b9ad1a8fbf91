//! The adapter against the real Kubo node started by deploy/up: every call it makes, and
//! every failure a caller must be able to tell apart.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use medcert_ipfs::{ADD_CLI_FLAGS, Ipfs, IpfsError};
use medcert_network::Network;
use rand::{RngCore, SeedableRng, rngs::StdRng};
use tokio::io::AsyncWriteExt;

struct Node {
    ipfs: Ipfs,
    api_url: String,
    cli: PathBuf,
}

fn node() -> Node {
    let network = Network::load().unwrap_or_else(|e| panic!("{e}"));
    Node {
        ipfs: Ipfs::new(&network.ipfs.api_url, Duration::from_secs(30)).unwrap(),
        cli: network.bin_dir.join("ipfs"),
        api_url: network.ipfs.api_url,
    }
}

impl Node {
    /// Runs Kubo's own CLI against the same node, feeding `stdin`, and returns its stdout.
    fn cli(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let mut child = Command::new(&self.cli)
            .arg("--api")
            .arg(multiaddr(&self.api_url))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.cli.display()));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "ipfs {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// The CID that `ipfs add` with the adapter's flags gives `content`, without storing it.
    fn cid_of(&self, content: &[u8]) -> String {
        let mut args = vec!["add", "-Q", "--only-hash"];
        args.extend(ADD_CLI_FLAGS.iter().filter(|f| **f != "--pin"));
        String::from_utf8(self.cli(&args, content))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn pinned_by_cli(&self, cid: &str) -> bool {
        let listing = String::from_utf8(self.cli(&["pin", "ls", "--type=recursive"], b"")).unwrap();
        listing
            .lines()
            .any(|line| line.split_whitespace().next() == Some(cid))
    }
}

/// `http://127.0.0.1:5001` as the CLI's `/ip4/127.0.0.1/tcp/5001`.
fn multiaddr(api_url: &str) -> String {
    let authority = api_url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').expect("api_url has a port");
    format!("/ip4/{host}/tcp/{port}")
}

/// Content no earlier run has added: random bytes from a fresh seed.
fn fresh_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    StdRng::from_entropy().fill_bytes(&mut bytes);
    bytes
}

/// A CID that is valid but whose content this node has never stored.
fn unknown_cid(node: &Node) -> String {
    node.cid_of(&fresh_bytes(64))
}

#[tokio::test]
async fn small_envelope_round_trips_and_matches_the_cli() {
    let node = node();
    let content = fresh_bytes(1000);
    let cid = node
        .ipfs
        .add(std::io::Cursor::new(content.clone()))
        .await
        .unwrap();

    assert_eq!(
        cid,
        node.cid_of(&content),
        "same CID as `ipfs add` with the same flags"
    );
    assert!(cid.starts_with("bafk"), "a CIDv1 raw leaf, got {cid}");
    let mut out = Vec::new();
    assert_eq!(node.ipfs.cat_to(&cid, &mut out).await.unwrap(), 1000);
    assert_eq!(out, content);
    assert_eq!(
        node.cli(&["cat", &cid], b""),
        content,
        "the CLI reads what the adapter added"
    );
}

#[tokio::test]
async fn twenty_megabytes_stream_through_files() {
    let node = node();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("envelope");
    let content = fresh_bytes(20 * 1024 * 1024);
    std::fs::write(&source, &content).unwrap();

    let file = tokio::fs::File::open(&source).await.unwrap();
    let cid = node.ipfs.add(file).await.unwrap();
    assert!(
        cid.starts_with("bafy"),
        "a CIDv1 DAG over many chunks, got {cid}"
    );
    assert_eq!(cid, node.cid_of(&content));

    let copy = dir.path().join("copy");
    let mut out = tokio::fs::File::create(&copy).await.unwrap();
    let written = node.ipfs.cat_to(&cid, &mut out).await.unwrap();
    out.shutdown().await.unwrap();
    assert_eq!(written, content.len() as u64);
    assert!(
        std::fs::read(&copy).unwrap() == content,
        "content differs after the round trip"
    );
}

#[tokio::test]
async fn added_content_is_pinned_until_unpinned() {
    let node = node();
    let cid = node
        .ipfs
        .add(std::io::Cursor::new(fresh_bytes(300_000)))
        .await
        .unwrap();
    assert!(node.ipfs.is_pinned(&cid).await.unwrap());
    assert!(node.pinned_by_cli(&cid), "`ipfs pin ls` lists {cid}");

    node.ipfs.unpin(&cid).await.unwrap();
    assert!(!node.ipfs.is_pinned(&cid).await.unwrap());
    assert!(
        !node.pinned_by_cli(&cid),
        "`ipfs pin ls` no longer lists {cid}"
    );
    let again = node.ipfs.unpin(&cid).await.unwrap_err();
    assert!(
        matches!(&again, IpfsError::NotPinned { cid: c } if *c == cid),
        "{again}"
    );

    // Unpinned blocks stay readable until garbage collection; pinning them again works.
    node.ipfs.pin(&cid).await.unwrap();
    assert!(node.pinned_by_cli(&cid));
}

#[tokio::test]
async fn unknown_cid_is_not_found_promptly_and_writes_nothing() {
    let node = node();
    let cid = unknown_cid(&node);
    let started = Instant::now();
    let mut out = Vec::new();
    let error = node.ipfs.cat_to(&cid, &mut out).await.unwrap_err();
    assert!(
        matches!(&error, IpfsError::NotFound { cid: c } if *c == cid),
        "{error}"
    );
    assert!(error.to_string().contains(&cid));
    assert!(out.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let error = node.ipfs.pin(&cid).await.unwrap_err();
    assert!(matches!(error, IpfsError::NotFound { .. }), "{error}");
    assert!(!node.ipfs.is_pinned(&cid).await.unwrap());
}

#[tokio::test]
async fn malformed_cid_is_invalid() {
    let node = node();
    let error = node
        .ipfs
        .cat_to("not-a-cid", &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, IpfsError::InvalidCid { cid, .. } if cid == "not-a-cid"),
        "{error}"
    );
    let with_path = format!("{}/etc", unknown_cid(&node));
    let error = node
        .ipfs
        .cat_to(&with_path, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(error, IpfsError::InvalidCid { .. }), "{error}");
    let error = node.ipfs.pin("not-a-cid").await.unwrap_err();
    assert!(matches!(error, IpfsError::InvalidCid { .. }), "{error}");
}

#[tokio::test]
async fn version_names_the_running_kubo() {
    let version = node().ipfs.version().await.unwrap();
    assert!(version.starts_with("0."), "{version}");
}

#[tokio::test]
async fn node_down_is_unreachable() {
    // A port that was just free and is closed again: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let ipfs = Ipfs::new(&url, Duration::from_secs(5)).unwrap();

    let error = ipfs
        .add(std::io::Cursor::new(b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, IpfsError::Unreachable { url: u } if *u == url),
        "{error}"
    );
    let error = ipfs.cat_to("bafkqaaa", &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, IpfsError::Unreachable { .. }), "{error}");
    let error = ipfs.version().await.unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
}

#[tokio::test]
async fn silent_node_times_out() {
    // A listener that accepts connections and never answers, like a hung node.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let ipfs = Ipfs::new(&url, timeout).unwrap();

    let started = Instant::now();
    let error = ipfs.cat_to("bafkqaaa", &mut Vec::new()).await.unwrap_err();
    assert!(
        matches!(error, IpfsError::Timeout { operation: "cat", timeout: t, .. } if t == timeout),
        "{error}"
    );
    let error = ipfs.pin("bafkqaaa").await.unwrap_err();
    assert!(
        matches!(
            error,
            IpfsError::Timeout {
                operation: "pin add",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    holder.abort();
}

#[tokio::test]
async fn missing_block_is_truncation_not_success() {
    let node = node();
    let content = fresh_bytes(1 << 20);
    let cid = node.ipfs.add(std::io::Cursor::new(content)).await.unwrap();
    node.ipfs.unpin(&cid).await.unwrap();
    // Drop the third of the four 256 KiB leaves from the node's blockstore.
    let refs = String::from_utf8(node.cli(&["refs", &cid], b"")).unwrap();
    let leaves: Vec<&str> = refs.lines().collect();
    assert_eq!(leaves.len(), 4, "{refs}");
    node.cli(&["block", "rm", leaves[2]], b"");

    let mut out = Vec::new();
    let error = node.ipfs.cat_to(&cid, &mut out).await.unwrap_err();
    match error {
        IpfsError::Truncated {
            cid: c,
            expected,
            received,
        } => {
            assert_eq!(c, cid);
            assert_eq!(expected, 1 << 20);
            assert!(received < expected && received == out.len() as u64);
        }
        other => panic!("expected a truncation, got {other}"),
    }
}
