//! IPFS add and cat of 15 MB through the adapter versus Kubo's own `ipfs` CLI, on the same
//! node (the one in the network description), with the same add options.
//!
//!     cargo bench -p medcert-ipfs --bench add_cat
//!
//! Every add gets content never stored before, so neither side finds its blocks already
//! present; the two sides alternate who goes first in each round. The CLI figures include
//! starting the `ipfs` process, as a user of the CLI would pay it.

#![allow(unused_crate_dependencies)] // a bench links every dependency of its package

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use medcert_ipfs::{ADD_CLI_FLAGS, Ipfs};
use medcert_test_support::network;
use medcert_test_support::timing::{mib_per_s, ms, peak_rss_kib, summary};
use rand::{RngCore, SeedableRng, rngs::StdRng};

const SIZE: usize = 15 * 1024 * 1024;
const ROUNDS: usize = 10;

fn main() {
    let network = network();
    let cli = Cli {
        bin: network.bin_dir.join("ipfs"),
        api: multiaddr(&network.ipfs.api_url),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ipfs = Ipfs::new(&network.ipfs.api_url, Duration::from_secs(120)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = rand::random();
    println!(
        "IPFS add/cat of {} MiB, {ROUNDS} rounds, Kubo {} at {}; add options {}; content seed {seed}",
        SIZE >> 20,
        runtime.block_on(ipfs.version()).unwrap(),
        network.ipfs.api_url,
        ADD_CLI_FLAGS.join(" "),
    );

    let mut rng = StdRng::seed_from_u64(seed);
    let [mut adapter_add, mut adapter_cat, mut cli_add, mut cli_cat] = [(); 4].map(|_| Vec::new());
    let mut cids = Vec::new();
    for round in 0..ROUNDS {
        let for_adapter = write_random_file(&dir.path().join(format!("a{round}")), &mut rng);
        let for_cli = write_random_file(&dir.path().join(format!("c{round}")), &mut rng);

        let mut adapter = || {
            let started = Instant::now();
            let file = runtime
                .block_on(tokio::fs::File::open(&for_adapter))
                .unwrap();
            let cid = runtime.block_on(ipfs.add(file)).unwrap();
            adapter_add.push(started.elapsed());
            let started = Instant::now();
            let read = runtime
                .block_on(ipfs.cat_to(&cid, &mut tokio::io::sink()))
                .unwrap();
            adapter_cat.push(started.elapsed());
            assert_eq!(read, SIZE as u64);
            cid
        };
        let mut by_cli = || {
            let started = Instant::now();
            let cid = cli.add(&for_cli);
            cli_add.push(started.elapsed());
            let started = Instant::now();
            cli.cat(&cid);
            cli_cat.push(started.elapsed());
            cid
        };
        if round % 2 == 0 {
            cids.push(adapter());
            cids.push(by_cli());
        } else {
            cids.push(by_cli());
            cids.push(adapter());
        }
        std::fs::remove_file(&for_adapter).unwrap();
        std::fs::remove_file(&for_cli).unwrap();
    }
    for cid in &cids {
        runtime.block_on(ipfs.unpin(cid)).unwrap();
    }

    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "operation", "mean", "p50", "MiB/s(p50)"
    );
    for (name, samples) in [
        ("adapter add", &adapter_add),
        ("ipfs add", &cli_add),
        ("adapter cat", &adapter_cat),
        ("ipfs cat", &cli_cat),
    ] {
        let (mean, p50) = summary(samples);
        println!(
            "{name:<14} {:>8.1}ms {:>8.1}ms {:>10.1}",
            ms(mean),
            ms(p50),
            mib_per_s(SIZE, p50)
        );
    }
    let ratio = |a: &[Duration], c: &[Duration]| ms(summary(a).1) / ms(summary(c).1);
    println!(
        "ratio adapter/CLI (p50): add {:.2}, cat {:.2}",
        ratio(&adapter_add, &cli_add),
        ratio(&adapter_cat, &cli_cat)
    );
    println!(
        "peak resident memory of this process: {} MiB",
        peak_rss_kib() / 1024
    );
}

struct Cli {
    bin: PathBuf,
    api: String,
}

impl Cli {
    fn add(&self, file: &Path) -> String {
        let output = Command::new(&self.bin)
            .args(["--api", &self.api, "add", "-Q"])
            .args(ADD_CLI_FLAGS)
            .arg(file)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "ipfs add failed");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn cat(&self, cid: &str) {
        let status = Command::new(&self.bin)
            .args(["--api", &self.api, "cat", cid])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ipfs cat failed");
    }
}

/// Writes SIZE random bytes in 1 MiB pieces, so this process never holds a whole file.
fn write_random_file(path: &Path, rng: &mut StdRng) -> PathBuf {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut piece = vec![0; 1 << 20];
    for _ in 0..SIZE / piece.len() {
        rng.fill_bytes(&mut piece);
        file.write_all(&piece).unwrap();
    }
    file.flush().unwrap();
    path.to_owned()
}

fn multiaddr(api_url: &str) -> String {
    let authority = api_url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').expect("api_url has a port");
    format!("/ip4/{host}/tcp/{port}")
}
