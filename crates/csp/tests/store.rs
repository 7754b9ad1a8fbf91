//! The adapter on both real backends: a local directory, and the S3-compatible server
//! started by deploy/up. Each behaviour is checked on both.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::path::Path;

use futures_util::StreamExt;
use medcert_csp::{Csp, CspError, HashC, key_of};
use medcert_network::Network;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha3::{Digest, Sha3_256};

fn s3() -> Csp {
    let network = Network::load().unwrap_or_else(|e| panic!("{e}"));
    Csp::s3(&network.s3).unwrap()
}

/// Random content (never seen by an earlier run) and its Hash C.
fn record(len: usize) -> (Vec<u8>, HashC) {
    let mut content = vec![0; len];
    StdRng::from_entropy().fill_bytes(&mut content);
    let hash_c = Sha3_256::digest(&content).into();
    (content, hash_c)
}

async fn collect(csp: &Csp, hash_c: &HashC) -> Result<Vec<u8>, CspError> {
    let mut chunks = std::pin::pin!(csp.get(hash_c).await?);
    let mut content = Vec::new();
    while let Some(chunk) = chunks.next().await {
        content.extend_from_slice(&chunk?);
    }
    Ok(content)
}

async fn round_trip(csp: &Csp, len: usize) {
    let (content, hash_c) = record(len);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::write(&source, &content).unwrap();
    let file = tokio::fs::File::open(&source).await.unwrap();

    assert!(!csp.exists(&hash_c).await.unwrap());
    assert_eq!(csp.put(&hash_c, file).await.unwrap(), len as u64);
    assert!(csp.exists(&hash_c).await.unwrap());

    let copy = dir.path().join("copy");
    assert_eq!(csp.get_to_file(&hash_c, &copy).await.unwrap(), len as u64);
    assert!(
        std::fs::read(&copy).unwrap() == content,
        "content changed in the store"
    );
    assert!(collect(csp, &hash_c).await.unwrap() == content);

    csp.delete(&hash_c).await.unwrap();
    assert!(!csp.exists(&hash_c).await.unwrap());
    let error = collect(csp, &hash_c).await.unwrap_err();
    assert!(
        matches!(&error, CspError::NotFound { key } if *key == key_of(&hash_c)),
        "{error}"
    );
    let error = csp.delete(&hash_c).await.unwrap_err();
    assert!(matches!(error, CspError::NotFound { .. }), "{error}");
}

/// Content that does not hash to the key it is put under is refused and not stored,
/// whether it would have gone up in one request or as a multipart upload.
async fn put_under_wrong_key_stores_nothing(csp: &Csp, len: usize) {
    let (content, _) = record(len);
    let (_, other) = record(32);
    let error = csp.put(&other, content.as_slice()).await.unwrap_err();
    match &error {
        CspError::HashMismatch { key, actual } => {
            assert_eq!(*key, key_of(&other));
            assert_eq!(*actual, hex::encode(Sha3_256::digest(&content)));
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    assert!(
        !csp.exists(&other).await.unwrap(),
        "a refused put left an object"
    );
}

/// A stored object whose bytes no longer hash to its key: the stream ends in an error and
/// `get_to_file` leaves the destination as it was.
async fn tampered_object_is_refused(csp: &Csp, hash_c: &HashC) {
    let error = collect(csp, hash_c).await.unwrap_err();
    assert!(
        matches!(&error, CspError::HashMismatch { key, .. } if *key == key_of(hash_c)),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let error = csp.get_to_file(hash_c, &fresh).await.unwrap_err();
    assert!(matches!(error, CspError::HashMismatch { .. }), "{error}");
    assert!(!fresh.exists(), "a refused object was written");

    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"earlier content").unwrap();
    csp.get_to_file(hash_c, &existing).await.unwrap_err();
    assert_eq!(std::fs::read(&existing).unwrap(), b"earlier content");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a staging file was left behind"
    );
    csp.delete(hash_c).await.unwrap();
}

async fn missing_object_is_not_found(csp: &Csp) {
    let (_, hash_c) = record(16);
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("record");
    let error = csp.get_to_file(&hash_c, &destination).await.unwrap_err();
    assert!(matches!(&error, CspError::NotFound { key } if *key == key_of(&hash_c)));
    assert_eq!(
        error.to_string(),
        format!("no object {} in the CSP", key_of(&hash_c))
    );
    assert!(!destination.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn corrupt_file(dir: &Path, hash_c: &HashC) {
    let path = dir.join(key_of(hash_c));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test]
async fn local_small_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Csp::local(dir.path()).unwrap(), 1000).await;
}

#[tokio::test]
async fn local_twenty_megabytes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Csp::local(dir.path().join("created")).unwrap(), 20 << 20).await;
}

#[tokio::test]
async fn local_put_under_wrong_key_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csp = Csp::local(dir.path()).unwrap();
    put_under_wrong_key_stores_nothing(&csp, 1000).await;
    put_under_wrong_key_stores_nothing(&csp, 20 << 20).await;
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left behind"
    );
}

#[tokio::test]
async fn local_corrupted_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csp = Csp::local(dir.path()).unwrap();
    let (content, hash_c) = record(100_000);
    csp.put(&hash_c, content.as_slice()).await.unwrap();
    corrupt_file(dir.path(), &hash_c);
    tampered_object_is_refused(&csp, &hash_c).await;
}

/// A put that trusts its caller's Hash C stores the content as it is; a wrong key is
/// caught on the way out.
#[tokio::test]
async fn local_hashed_put_is_checked_on_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let csp = Csp::local(dir.path()).unwrap();
    let (content, hash_c) = record(3 << 20);
    assert_eq!(
        csp.put_hashed(&hash_c, content.as_slice()).await.unwrap(),
        content.len() as u64
    );
    assert!(collect(&csp, &hash_c).await.unwrap() == content);
    let (_, other) = record(32);
    csp.put_hashed(&other, content.as_slice()).await.unwrap();
    let error = collect(&csp, &other).await.unwrap_err();
    assert!(matches!(error, CspError::HashMismatch { .. }), "{error}");
}

#[tokio::test]
async fn local_missing_object_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    missing_object_is_not_found(&Csp::local(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn s3_small_round_trip() {
    round_trip(&s3(), 1000).await;
}

#[tokio::test]
async fn s3_twenty_megabytes_round_trip_in_parts() {
    round_trip(&s3(), 20 << 20).await;
}

#[tokio::test]
async fn s3_put_under_wrong_key_stores_nothing() {
    let csp = s3();
    put_under_wrong_key_stores_nothing(&csp, 1000).await;
    put_under_wrong_key_stores_nothing(&csp, 20 << 20).await;
}

#[tokio::test]
async fn s3_object_under_wrong_key_is_refused() {
    let csp = s3();
    // Bypass the adapter's own check to store content under a key it does not hash to.
    let (_, hash_c) = record(32);
    let (content, _) = record(100_000);
    csp.object_store()
        .put(
            &ObjectPath::from(key_of(&hash_c)),
            PutPayload::from(content),
        )
        .await
        .unwrap();
    tampered_object_is_refused(&csp, &hash_c).await;
}

#[tokio::test]
async fn s3_missing_object_is_not_found() {
    missing_object_is_not_found(&s3()).await;
}

#[tokio::test]
async fn local_directory_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let error = Csp::local(&file).unwrap_err();
    assert!(
        matches!(&error, CspError::LocalDirectory { path, .. } if *path == file),
        "{error}"
    );
}

#[tokio::test]
async fn s3_down_fails_with_the_endpoint_named() {
    let mut config = Network::load().unwrap_or_else(|e| panic!("{e}")).s3;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.endpoint = format!("http://127.0.0.1:{port}");
    let csp = Csp::s3(&config).unwrap();
    let (content, hash_c) = record(100);
    let started = std::time::Instant::now();
    let error = csp.put(&hash_c, content.as_slice()).await.unwrap_err();
    assert!(
        matches!(
            error,
            CspError::Store {
                operation: "put",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&config.endpoint), "{error}");
    let error = csp.exists(&hash_c).await.unwrap_err();
    assert!(error.to_string().contains(&config.endpoint), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
