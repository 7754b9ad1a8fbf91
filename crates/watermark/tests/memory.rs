//! Memory stays bounded while 50 MB documents are marked and verified, whether the bulk
//! is many attachments or a single text node. Kept in its own
//! test binary so no other test's allocations move the process's peak.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};

use medcert_ccda::{DocumentType, GeneratorConfig, generate, generate_document};
use medcert_watermark::{Mark, SigningKey, TooSmall, Verdict, prepare, sign_payload, verify};

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

/// Marks and verifies the document in `source` (from its start), returning its size.
fn mark_and_verify(dir: &std::path::Path, mut source: File) -> u64 {
    let size = source.seek(SeekFrom::End(0)).unwrap();
    source.seek(SeekFrom::Start(0)).unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    let mark = Mark {
        hospital_id: "hospital1",
        record_id: "record-50mb",
        issued_at: 1_760_000_000,
    };
    let marked_path = dir.join("marked.xml");
    let mut reader = BufReader::with_capacity(256 * 1024, source);
    let out = BufWriter::new(File::create(&marked_path).unwrap());
    let prepared = prepare(&mut reader, &mark).unwrap();
    let signature = sign_payload(prepared.unsigned(), &key);
    let report = prepared
        .embed(&mut reader, out, signature, TooSmall::WriteUnchanged)
        .unwrap();
    let marked = BufReader::with_capacity(256 * 1024, File::open(&marked_path).unwrap());
    let verification = verify(marked, |_| Some(key.verifying_key())).unwrap();
    // An Unstructured Document's header is too small for the mark: it is anchored.
    if report.copies > 0 {
        assert!(matches!(verification.verdict, Verdict::Authentic { .. }));
    } else {
        assert_eq!(verification.verdict, Verdict::Absent);
    }
    assert_eq!(verification.content_fingerprint, report.content_fingerprint);
    size
}

fn scratch_file(dir: &std::path::Path, name: &str) -> File {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(name))
        .unwrap()
}

#[test]
fn documents_of_50_mb_are_marked_and_verified_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        seed: 50,
        target_size: 50_000_000,
        patient_id: "MTN-50".into(),
        hospital: "Big Records Hospital".into(),
    };
    // Many attachments; one base64 text node of 50 MB; one text node of 50 MB newlines.
    let mut attachments = scratch_file(dir.path(), "attachments.xml");
    generate(&config, &mut attachments).unwrap();
    let mut unstructured = scratch_file(dir.path(), "unstructured.xml");
    generate_document(
        &config,
        DocumentType::UnstructuredDocument,
        &mut unstructured,
    )
    .unwrap();
    let mut small = Vec::new();
    generate_document(
        &GeneratorConfig {
            target_size: 0,
            ..config.clone()
        },
        DocumentType::UnstructuredDocument,
        &mut small,
    )
    .unwrap();
    let small = String::from_utf8(small).unwrap();
    let (head, rest) = small.split_once("<text ").unwrap();
    let (_, tail) = rest.split_once("</text>").unwrap();
    let mut newlines = scratch_file(dir.path(), "newlines.xml");
    newlines.write_all(head.as_bytes()).unwrap();
    newlines
        .write_all(b"<text mediaType=\"text/plain\">")
        .unwrap();
    let block = vec![b'\n'; 1 << 20];
    for _ in 0..50 {
        newlines.write_all(&block).unwrap();
    }
    newlines.write_all(b"</text>").unwrap();
    newlines.write_all(tail.as_bytes()).unwrap();

    let before = peak_rss();
    for document in [attachments, unstructured, newlines] {
        let size = mark_and_verify(dir.path(), document);
        assert!(size > 49_000_000, "{size}");
    }
    let growth = peak_rss().saturating_sub(before);
    eprintln!(
        "peak RSS grew by {:.1} MiB over three 50 MB documents",
        growth as f64 / 1048576.0
    );
    assert!(
        growth < 16 * 1024 * 1024,
        "peak memory grew by {growth} bytes"
    );
}
