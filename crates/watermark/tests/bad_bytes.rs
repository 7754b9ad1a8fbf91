//! Damaged documents, cut and altered byte by byte, get an answer or a typed error from
//! the C-CDA reader and the watermark verifier, never a panic. The same inputs as the
//! cargo-fuzz targets in `fuzz/`, run systematically so every `cargo test` covers them.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Cursor;

use medcert_ccda::{GeneratorConfig, generate};
use medcert_watermark::{Mark, SigningKey, capacity, embed, verify};

fn marked_document() -> Vec<u8> {
    let config = GeneratorConfig {
        seed: 99,
        target_size: 10_000,
        patient_id: "MTN-1".into(),
        hospital: "Hospital One".into(),
    };
    let mut doc = Vec::new();
    generate(&config, &mut doc).unwrap();
    let key = SigningKey::from_bytes(&[1; 32]);
    let mark = Mark {
        hospital_id: "hospital1",
        record_id: "rec-1",
        issued_at: 1,
    };
    let mut marked = Vec::new();
    embed(&mut Cursor::new(&doc), &mut marked, &mark, &key).unwrap();
    marked
}

fn check(input: &[u8]) {
    let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let _ = verify(input, |id| (id == "hospital1").then_some(key));
    let _ = capacity(input);
    let _ = medcert_ccda::parse(input);
    let _ = medcert_ccda::parse_header(input);
}

#[test]
fn every_prefix_is_answered() {
    let doc = marked_document();
    for cut in (0..doc.len()).step_by(10) {
        check(&doc[..cut]);
    }
}

#[test]
fn single_byte_changes_are_answered() {
    let doc = marked_document();
    // The start holds the mark and the densest markup; further on, a sparser sample.
    let positions = (0..1500).step_by(3).chain((1500..doc.len()).step_by(97));
    let mut changed = doc.clone();
    for at in positions {
        for byte in [b'<', b'>', b'"', b'&', 0xff] {
            changed[at] = byte;
            check(&changed);
        }
        changed[at] = doc[at];
    }
}
