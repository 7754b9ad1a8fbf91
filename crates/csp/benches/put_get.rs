//! Put and get of a 15 MB record through the adapter (streamed from and to files, Hash C
//! checked both ways, multipart above 8 MiB) versus a raw `object_store` put and get of
//! the same bytes held in memory (one request each way, no check): the floor the adapter
//! is measured against. Runs on the S3 server from the network description and on a local
//! directory.
//!
//!     cargo bench -p medcert-csp --bench put_get

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::path::Path;
use std::time::{Duration, Instant};

use medcert_csp::{Csp, HashC, key_of};
use medcert_test_support::network;
use medcert_test_support::timing::{mib_per_s, ms, peak_rss_kib, summary};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha3::{Digest, Sha3_256};

const SIZE: usize = 15 * 1024 * 1024;
const ROUNDS: usize = 10;

fn main() {
    let network = network();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("record");
    let hash_c = write_random_file(&source);

    println!("CSP put/get of {} MiB, {ROUNDS} rounds", SIZE >> 20);
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "operation", "mean", "p50", "MiB/s(p50)"
    );
    let s3 = Csp::s3(&network.s3).unwrap();
    let local = Csp::local(dir.path().join("store")).unwrap();
    let backends = [
        (format!("S3 {}", network.s3.endpoint), &s3),
        ("local".into(), &local),
    ];
    // The adapter first, so the peak memory below is the adapter's alone.
    let mut adapter = Vec::new();
    for (backend, csp) in &backends {
        println!("-- {backend}");
        adapter.push(runtime.block_on(adapter_rounds(csp, &hash_c, &source, dir.path())));
    }
    println!(
        "peak resident memory after the adapter's rounds: {} MiB",
        peak_rss_kib() / 1024
    );
    let content = std::fs::read(&source).unwrap();
    let started = Instant::now();
    let digest: HashC = Sha3_256::digest(&content).into();
    assert_eq!(digest, hash_c);
    println!(
        "SHA3-256 of the record alone (in memory): {:.1}ms",
        ms(started.elapsed())
    );
    for ((backend, csp), adapter) in backends.iter().zip(adapter) {
        println!("-- {backend}");
        let raw = runtime.block_on(raw_rounds(csp, &content));
        let put_ratio = ms(summary(&adapter.0).1) / ms(summary(&raw.0).1);
        let get_ratio = ms(summary(&adapter.1).1) / ms(summary(&raw.1).1);
        println!("   ratio adapter/raw (p50): put {put_ratio:.2}, get {get_ratio:.2}");
    }
}

/// Writes SIZE deterministic random bytes in 1 MiB pieces and returns their Hash C.
fn write_random_file(path: &Path) -> HashC {
    use std::io::Write;
    let mut rng = StdRng::seed_from_u64(15);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha3_256::new();
    let mut piece = vec![0; 1 << 20];
    for _ in 0..SIZE / piece.len() {
        rng.fill_bytes(&mut piece);
        hasher.update(&piece);
        file.write_all(&piece).unwrap();
    }
    file.flush().unwrap();
    hasher.finalize().into()
}

async fn adapter_rounds(
    csp: &Csp,
    hash_c: &HashC,
    source: &Path,
    dir: &Path,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    let copy = dir.join("copy");
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let file = tokio::fs::File::open(source).await.unwrap();
        assert_eq!(csp.put(hash_c, file).await.unwrap(), SIZE as u64);
        puts.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(csp.get_to_file(hash_c, &copy).await.unwrap(), SIZE as u64);
        gets.push(started.elapsed());
    }
    csp.delete(hash_c).await.unwrap();
    report("adapter put (file)", &puts);
    report("adapter get_to_file", &gets);
    (puts, gets)
}

async fn raw_rounds(csp: &Csp, content: &[u8]) -> (Vec<Duration>, Vec<Duration>) {
    let store = csp.object_store();
    let location = ObjectPath::from(format!("bench-raw-{}", key_of(&[0; 32])));
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let payload = PutPayload::from(content.to_vec());
        let started = Instant::now();
        store.put(&location, payload).await.unwrap();
        puts.push(started.elapsed());
        let started = Instant::now();
        let bytes = store.get(&location).await.unwrap().bytes().await.unwrap();
        gets.push(started.elapsed());
        assert_eq!(bytes.len(), SIZE);
    }
    store.delete(&location).await.unwrap();
    report("raw put (memory)", &puts);
    report("raw get (memory)", &gets);
    (puts, gets)
}

fn report(name: &str, samples: &[Duration]) {
    let (mean, p50) = summary(samples);
    println!(
        "   {name:<21} {:>8.1}ms {:>8.1}ms {:>10.1}",
        ms(mean),
        ms(p50),
        mib_per_s(SIZE, p50)
    );
}
