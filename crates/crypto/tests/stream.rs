//! E' round trips and every way a ciphertext can be wrong.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::fs;
use std::io::Cursor;

use medcert_crypto::{
    CryptoError, DEFAULT_CHUNK_SIZE, Dek, RecordAad, decrypt_stream, decrypt_stream_async,
    decrypt_to_file, decrypt_to_file_async, encrypt_stream, encrypt_stream_async,
    encrypt_stream_with_chunk_size,
};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};
use sha3::{Digest, Sha3_256};
use support::entries;

const AAD: RecordAad<'static> = RecordAad {
    record_id: "rec-42",
    hospital_id: "hospital1",
};
/// Small chunks make multi-chunk streams cheap in tests.
const SMALL_CHUNK: usize = 4096;
/// Magic, version, chunk size, nonce prefix, key commitment.
const HEADER_LEN: usize = 4 + 1 + 1 + 7 + 32;
const TAG_LEN: usize = 16;

fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

fn seal(dek: &Dek, chunk: usize, plain: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::new();
    let hash = encrypt_stream_with_chunk_size(dek, &AAD, chunk, plain, &mut sealed).unwrap();
    assert_eq!(
        hash.as_bytes(),
        &<[u8; 32]>::from(Sha3_256::digest(&sealed))
    );
    sealed
}

fn open(dek: &Dek, aad: &RecordAad<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut plain = Vec::new();
    let len = decrypt_stream(dek, aad, sealed, &mut plain)?;
    assert_eq!(len, plain.len() as u64);
    Ok(plain)
}

/// Byte range of sealed chunk `i` (the last may be shorter).
fn chunk_range(sealed: &[u8], chunk: usize, i: usize) -> std::ops::Range<usize> {
    let start = HEADER_LEN + i * (chunk + TAG_LEN);
    start..(start + chunk + TAG_LEN).min(sealed.len())
}

#[test]
fn round_trips_at_every_boundary_size() {
    let dek = Dek::generate();
    let c = DEFAULT_CHUNK_SIZE;
    for len in [0, 1, c - 1, c, c + 1, 2 * c, 3 * 1024 * 1024 + 17] {
        let plain = plaintext(len, len as u64);
        let mut sealed = Vec::new();
        let hash = encrypt_stream(&dek, &AAD, plain.as_slice(), &mut sealed).unwrap();
        let chunks = len.div_ceil(c).max(1);
        assert_eq!(
            sealed.len(),
            HEADER_LEN + len + chunks * TAG_LEN,
            "len {len}"
        );
        assert_eq!(hash.to_string(), hex::encode(Sha3_256::digest(&sealed)));
        assert!(open(&dek, &AAD, &sealed).unwrap() == plain, "len {len}");
    }
}

#[test]
fn same_plaintext_encrypts_differently_each_time() {
    let dek = Dek::generate();
    let plain = plaintext(100, 1);
    assert_ne!(
        seal(&dek, SMALL_CHUNK, &plain),
        seal(&dek, SMALL_CHUNK, &plain)
    );
}

#[test]
fn chunk_size_is_read_from_the_header() {
    let dek = Dek::generate();
    let plain = plaintext(3 * 1024 * 1024 + 5, 2);
    for chunk in [SMALL_CHUNK, 1 << 20, 1 << 24] {
        let sealed = seal(&dek, chunk, &plain);
        assert!(open(&dek, &AAD, &sealed).unwrap() == plain);
    }
}

#[test]
fn invalid_chunk_sizes_are_refused() {
    let dek = Dek::generate();
    for chunk in [0, 1000, 2048, 3 * 4096, 1 << 25] {
        let err = encrypt_stream_with_chunk_size(&dek, &AAD, chunk, &[][..], Vec::new());
        assert!(
            matches!(err, Err(CryptoError::InvalidChunkSize(c)) if c == chunk),
            "{chunk}"
        );
    }
}

#[test]
fn dropping_the_last_chunk_is_truncation() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(3 * SMALL_CHUNK + 10, 3));
    let cut = chunk_range(&sealed, SMALL_CHUNK, 3).start;
    assert!(matches!(
        open(&dek, &AAD, &sealed[..cut]),
        Err(CryptoError::Truncated)
    ));
    // Down to the header alone, or less, is truncation too.
    assert!(matches!(
        open(&dek, &AAD, &sealed[..HEADER_LEN]),
        Err(CryptoError::Truncated)
    ));
    assert!(matches!(
        open(&dek, &AAD, &sealed[..10]),
        Err(CryptoError::Truncated)
    ));
    assert!(matches!(open(&dek, &AAD, &[]), Err(CryptoError::Truncated)));
}

#[test]
fn a_plaintext_of_whole_chunks_cut_at_a_boundary_is_truncation() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(4 * SMALL_CHUNK, 4));
    let cut = chunk_range(&sealed, SMALL_CHUNK, 2).end;
    assert!(matches!(
        open(&dek, &AAD, &sealed[..cut]),
        Err(CryptoError::Truncated)
    ));
}

#[test]
fn cutting_inside_a_chunk_fails() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(3 * SMALL_CHUNK, 5));
    let inside = chunk_range(&sealed, SMALL_CHUNK, 1).start + 100;
    assert!(matches!(
        open(&dek, &AAD, &sealed[..inside]),
        Err(CryptoError::Tampered)
    ));
    // Fewer bytes than a tag left of the final chunk.
    let inside_tag = chunk_range(&sealed, SMALL_CHUNK, 1).start + 5;
    assert!(matches!(
        open(&dek, &AAD, &sealed[..inside_tag]),
        Err(CryptoError::Truncated)
    ));
}

#[test]
fn reordered_duplicated_or_appended_chunks_fail() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(3 * SMALL_CHUNK + 1, 6));
    let (c0, c1) = (
        chunk_range(&sealed, SMALL_CHUNK, 0),
        chunk_range(&sealed, SMALL_CHUNK, 1),
    );
    let mut swapped = sealed[..HEADER_LEN].to_vec();
    swapped.extend_from_slice(&sealed[c1.clone()]);
    swapped.extend_from_slice(&sealed[c0.clone()]);
    swapped.extend_from_slice(&sealed[c1.end..]);
    assert!(matches!(
        open(&dek, &AAD, &swapped),
        Err(CryptoError::Tampered)
    ));

    let mut duplicated = sealed[..c1.end].to_vec();
    duplicated.extend_from_slice(&sealed[c1.clone()]);
    duplicated.extend_from_slice(&sealed[c1.end..]);
    assert!(matches!(
        open(&dek, &AAD, &duplicated),
        Err(CryptoError::Tampered)
    ));

    let mut appended = sealed.clone();
    appended.extend_from_slice(&[0u8; 40]);
    assert!(matches!(
        open(&dek, &AAD, &appended),
        Err(CryptoError::Tampered)
    ));
}

#[test]
fn splicing_chunks_from_another_stream_of_the_same_key_fails() {
    let dek = Dek::generate();
    let plain = plaintext(2 * SMALL_CHUNK + 1, 7);
    let a = seal(&dek, SMALL_CHUNK, &plain);
    let b = seal(&dek, SMALL_CHUNK, &plain);
    let mut spliced = a[..HEADER_LEN].to_vec();
    spliced.extend_from_slice(&b[HEADER_LEN..]);
    assert!(matches!(
        open(&dek, &AAD, &spliced),
        Err(CryptoError::Tampered)
    ));
}

#[test]
fn any_flipped_bit_is_detected() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(2 * SMALL_CHUNK + 300, 8));
    let mut rng = StdRng::seed_from_u64(9);
    // Every header byte, then random positions across the chunks.
    let positions: Vec<usize> = (0..HEADER_LEN)
        .chain((0..300).map(|_| rng.gen_range(HEADER_LEN..sealed.len())))
        .collect();
    for byte in positions {
        let mut flipped = sealed.clone();
        flipped[byte] ^= 1 << rng.gen_range(0..8);
        match open(&dek, &AAD, &flipped) {
            Err(CryptoError::Tampered) => {}
            Err(CryptoError::Malformed { .. } | CryptoError::UnsupportedVersion { .. })
                if byte < 6 => {}
            other => panic!("flip at byte {byte}: {other:?}"),
        }
    }
}

#[test]
fn random_sizes_round_trip_and_every_strict_prefix_fails() {
    let dek = Dek::generate();
    let mut rng = StdRng::seed_from_u64(14);
    for round in 0..40 {
        let plain = plaintext(rng.gen_range(0..5 * SMALL_CHUNK), round);
        let sealed = seal(&dek, SMALL_CHUNK, &plain);
        assert!(open(&dek, &AAD, &sealed).unwrap() == plain);
        let cut = rng.gen_range(0..sealed.len());
        match open(&dek, &AAD, &sealed[..cut]) {
            Err(CryptoError::Truncated | CryptoError::Tampered) => {}
            other => panic!("prefix of {cut}/{} bytes: {other:?}", sealed.len()),
        }
    }
}

#[test]
fn another_record_or_hospital_fails_authentication() {
    let dek = Dek::generate();
    let sealed = seal(&dek, SMALL_CHUNK, &plaintext(5000, 10));
    for aad in [
        RecordAad {
            record_id: "rec-43",
            ..AAD
        },
        RecordAad {
            hospital_id: "hospital2",
            ..AAD
        },
        // Moving bytes between the two ids must not keep the same associated data.
        RecordAad {
            record_id: "rec-42h",
            hospital_id: "ospital1",
        },
    ] {
        let err = open(&dek, &aad, &sealed).unwrap_err();
        assert!(matches!(err, CryptoError::Tampered), "{aad:?}: {err:?}");
        assert!(err.to_string().contains("another record or hospital"));
    }
}

#[test]
fn wrong_key_is_reported_as_such() {
    let sealed = seal(
        &Dek::generate(),
        SMALL_CHUNK,
        &plaintext(3 * SMALL_CHUNK, 11),
    );
    let err = open(&Dek::generate(), &AAD, &sealed).unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey(_)), "{err:?}");
    assert!(err.to_string().starts_with("wrong key"), "{err}");
}

#[test]
fn not_a_stream_is_malformed() {
    let dek = Dek::generate();
    let err = open(&dek, &AAD, &[b'x'; 200]).unwrap_err();
    assert!(matches!(err, CryptoError::Malformed { .. }), "{err:?}");
    let mut future = seal(&dek, SMALL_CHUNK, b"hello");
    future[4] = 2;
    assert!(matches!(
        open(&dek, &AAD, &future),
        Err(CryptoError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn decrypting_to_a_file_writes_all_or_nothing() {
    let dek = Dek::generate();
    let plain = plaintext(5 * SMALL_CHUNK + 3, 12);
    let sealed = seal(&dek, SMALL_CHUNK, &plain);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("record.xml");

    assert_eq!(
        decrypt_to_file(&dek, &AAD, sealed.as_slice(), &out).unwrap(),
        plain.len() as u64
    );
    assert!(fs::read(&out).unwrap() == plain);

    // Failures late in the stream, after earlier chunks verified: nothing new appears and an
    // existing file is untouched.
    let mut tampered = sealed.clone();
    let last = chunk_range(&sealed, SMALL_CHUNK, 5);
    tampered[last.start + 1] ^= 0x80;
    let truncated = &sealed[..last.start];
    let fresh = dir.path().join("fresh.xml");
    for (bad, want_truncated) in [(tampered.as_slice(), false), (truncated, true)] {
        for target in [&out, &fresh] {
            let err = decrypt_to_file(&dek, &AAD, bad, target).unwrap_err();
            assert_eq!(
                matches!(err, CryptoError::Truncated),
                want_truncated,
                "{err:?}"
            );
        }
    }
    let err = decrypt_to_file(&Dek::generate(), &AAD, sealed.as_slice(), &fresh).unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey(_)));
    assert!(fs::read(&out).unwrap() == plain);
    assert_eq!(entries(dir.path()), ["record.xml"]);
}

#[tokio::test]
async fn async_forms_interoperate_with_the_sync_ones() {
    let dek = Dek::generate();
    let plain = plaintext(2 * DEFAULT_CHUNK_SIZE + 99, 13);

    let mut sealed = Vec::new();
    let hash = encrypt_stream_async(&dek, &AAD, plain.as_slice(), &mut sealed)
        .await
        .unwrap();
    assert_eq!(hash.to_string(), hex::encode(Sha3_256::digest(&sealed)));
    assert!(open(&dek, &AAD, &sealed).unwrap() == plain);

    let sync_sealed = seal(&dek, DEFAULT_CHUNK_SIZE, &plain);
    let mut back = Vec::new();
    decrypt_stream_async(&dek, &AAD, Cursor::new(&sync_sealed), &mut back)
        .await
        .unwrap();
    assert!(back == plain);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("record.xml");
    decrypt_to_file_async(&dek, &AAD, sealed.as_slice(), &out)
        .await
        .unwrap();
    assert!(fs::read(&out).unwrap() == plain);

    let cut = &sealed[..sealed.len() - 1];
    let err = decrypt_to_file_async(&dek, &AAD, cut, &dir.path().join("cut.xml"))
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::Tampered), "{err:?}");
    let dropped = &sealed[..HEADER_LEN + 2 * (DEFAULT_CHUNK_SIZE + TAG_LEN)];
    let err = decrypt_stream_async(&dek, &AAD, dropped, Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::Truncated), "{err:?}");
    assert_eq!(entries(dir.path()), ["record.xml"]);
}
