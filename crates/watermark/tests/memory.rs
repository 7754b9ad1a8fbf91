//! Memory stays bounded while a 50 MB document is marked and verified. Kept in its own
//! test binary so no other test's allocations move the process's peak.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};

use medcert_ccda::{GeneratorConfig, generate};
use medcert_watermark::{Mark, SigningKey, Verdict, embed, verify};

/// Peak resident set size of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kilobytes: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in kB");
    kilobytes * 1024
}

#[test]
fn a_50_mb_document_is_marked_and_verified_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("record.xml"))
        .unwrap();
    let config = GeneratorConfig {
        seed: 50,
        target_size: 50_000_000,
        patient_id: "MTN-50".into(),
        hospital: "Big Records Hospital".into(),
    };
    let size = generate(&config, &mut source).unwrap();
    source.flush().unwrap();
    source.seek(SeekFrom::Start(0)).unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    let mark = Mark {
        hospital_id: "hospital1",
        record_id: "record-50mb",
        issued_at: 1_760_000_000,
    };

    let before = peak_rss();
    let marked_path = dir.path().join("marked.xml");
    let mut reader = BufReader::with_capacity(256 * 1024, source);
    let out = BufWriter::new(File::create(&marked_path).unwrap());
    let report = embed(&mut reader, out, &mark, &key).unwrap();
    let marked = BufReader::with_capacity(256 * 1024, File::open(&marked_path).unwrap());
    let verification = verify(marked, |_| Some(key.verifying_key())).unwrap();
    let growth = peak_rss().saturating_sub(before);
    eprintln!(
        "peak RSS grew by {:.1} MiB for a {size}-byte document",
        growth as f64 / 1048576.0
    );

    assert!(matches!(verification.verdict, Verdict::Authentic { .. }));
    assert_eq!(verification.content_fingerprint, report.content_fingerprint);
    assert!(size > 49_000_000);
    assert!(
        growth < 16 * 1024 * 1024,
        "peak memory grew by {growth} bytes for a {size}-byte document"
    );
}
