//! What the integration tests on the running network share. Each test makes its own
//! patients, records and accounts under [`unique`] names, so tests (and other crates'
//! tests) run side by side on one network.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use medcert_network::Network;

/// The running network's description; panics with what to run when there is none.
pub fn network() -> Network {
    Network::load().unwrap_or_else(|e| panic!("{e}"))
}

/// The running network, which must also have its certificate contract (`medcert network
/// init` done).
pub fn initialised_network() -> Network {
    let network = network();
    assert!(
        network.ethereum.contract_address.is_some(),
        "no certificate contract: run medcert network init"
    );
    network
}

/// The hospitals' key services' directory of a run directory: beside it, as deploy/up
/// places it (`MEDCERT_KEYS`).
pub fn key_services_dir(run_dir: &Path) -> PathBuf {
    let mut name = run_dir.file_name().unwrap_or_default().to_owned();
    name.push(".keys");
    run_dir.with_file_name(name)
}

/// A fresh name such as `R-3f9c0a12d4e5b6c7`: a prefix and 64 random bits.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// The published C-CDA documents of `tests/ccda-corpus` (other tools and vendors; their
/// licences are in its README) that medcert must accept, by file name, in name order.
pub fn ccda_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ccda-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "xml"))
        .map(|path| {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("a corpus document");
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} corpus documents", files.len());
    files
}

/// What the benchmarks on the running network share: the summary of their rounds' times
/// and the process's peak memory.
pub mod timing {
    use std::time::Duration;

    /// The mean and the median (the upper middle one of an even count) of `samples`,
    /// which must not be empty.
    pub fn summary(samples: &[Duration]) -> (Duration, Duration) {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
        (mean, sorted[sorted.len() / 2])
    }

    /// `d` in milliseconds.
    pub fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// MiB per second for `bytes` moved in `time`.
    pub fn mib_per_s(bytes: usize, time: Duration) -> f64 {
        (bytes as f64 / (1 << 20) as f64) / time.as_secs_f64()
    }

    /// VmHWM from /proc: the most memory this process has had resident at once, in KiB.
    pub fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}
