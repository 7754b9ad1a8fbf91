//! Real-world C-CDA documents (`tests/ccda-corpus`, written by other tools and vendors,
//! licences in its README) through the whole hospital path on the shared network:
//! parse, store (watermark, encrypt, CSP, `CreateRecord`), the audited query that
//! retrieves, decrypts and verifies the copy, and an independent check that the copy
//! means what the original means: `xmllint --c14n` (libxml2, from Debian) writes both
//! in W3C canonical form, which must be byte for byte the same.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use medcert_flows::{QueryRequest, Quiet, StoreFlowRequest, query_record, store};
use support::{network, password, registered, unique};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ccda-corpus")
}

/// The corpus, and the forms no published sample has, derived from one of them: a
/// UTF-8 byte order mark, and the HL7 namespace bound to a prefix.
fn documents(scratch: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} corpus documents", files.len());
    let source = std::fs::read(corpus_dir().join("onc-ccd-r21-toc-amb.xml")).unwrap();
    let with_bom = scratch.join("derived-bom.xml");
    std::fs::write(&with_bom, [&b"\xEF\xBB\xBF"[..], &source].concat()).unwrap();
    let prefixed = scratch.join("derived-prefix.xml");
    std::fs::write(&prefixed, with_prefix(&source, b"cda")).unwrap();
    files.extend([with_bom, prefixed]);
    files
}

/// Writes every unprefixed element name with `prefix`, and binds the prefix to the HL7
/// namespace where the document bound it as the default.
fn with_prefix(document: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(document.len() + document.len() / 8);
    let mut at = 0;
    while let Some(offset) = document[at..].iter().position(|&b| b == b'<') {
        let lt = at + offset;
        out.extend_from_slice(&document[at..=lt]);
        at = lt + 1;
        if document[at] == b'/' {
            out.push(b'/');
            at += 1;
        }
        let name_end = document[at..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>'))
            .map_or(document.len(), |end| at + end);
        let name = &document[at..name_end];
        if name.first().is_some_and(u8::is_ascii_alphabetic) && !name.contains(&b':') {
            out.extend_from_slice(prefix);
            out.push(b':');
        }
    }
    out.extend_from_slice(&document[at..]);
    let default = b"xmlns=\"urn:hl7-org:v3\"";
    let bound = [b"xmlns:", prefix, &b"=\"urn:hl7-org:v3\""[..]].concat();
    replace_all(&out, default, &bound)
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The document in W3C canonical XML, as libxml2 writes it.
fn canonical(path: &Path) -> Vec<u8> {
    let output = Command::new("xmllint")
        .arg("--c14n")
        .arg(path)
        .output()
        .expect("xmllint (Debian libxml2-utils, installed by deploy/install)");
    assert!(
        output.status.success(),
        "xmllint --c14n {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test]
async fn every_corpus_document_is_stored_retrieved_authentic_and_canonically_identical() {
    let network = network();
    let hospital = network.fabric.hospitals[0].id.clone();
    let patients = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let password = password();

    for source in documents(scratch.path()) {
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        // A patient per document: the key service checks a patient's password at most
        // ten times a minute, and each document takes two checks.
        let patient = unique("corpus");
        let treatment = registered(&network, patients.path(), &patient, &hospital, &password).await;
        let header = medcert_ccda::parse_header(std::io::BufReader::new(
            std::fs::File::open(&source).unwrap(),
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(header.organization().is_some(), "{name}");

        let stored = store(
            &network,
            patients.path(),
            &StoreFlowRequest {
                hospital: &hospital,
                doctor: 0,
                treatment_number: &treatment,
                record_id: None,
                source: &source,
                password: &password,
                certify_for: None,
            },
            &Quiet,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));

        let copy = scratch.path().join(format!("retrieved-{name}"));
        let queried = query_record(
            &network,
            &QueryRequest {
                hospital: &hospital,
                doctor: 0,
                treatment_number: &treatment,
                record_id: &stored.stored.record_id,
                password: &password,
                out: Some(&copy),
            },
            &Quiet,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let retrieved = queried.retrieved.unwrap();
        assert!(
            retrieved.authentic(),
            "{name}: {:?}",
            retrieved.verification
        );
        assert_eq!(
            canonical(&copy),
            canonical(&source),
            "{name}: the retrieved copy's canonical XML differs from the original's"
        );
    }
}
