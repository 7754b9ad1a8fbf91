//! The hospital key store on disk.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use medcert_crypto::{
    CryptoError, Dek, HpkeKeyPair, KeyBinding, KeyStore, RecordAad, WrapPurpose, decrypt_stream,
    encrypt_stream, wrap_key,
};
use support::entries;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn sealed_record(dek: &Dek) -> Vec<u8> {
    let aad = RecordAad {
        record_id: "rec-1",
        hospital_id: "hospital1",
    };
    let mut sealed = Vec::new();
    encrypt_stream(dek, &aad, &b"record"[..], &mut sealed).unwrap();
    sealed
}

#[test]
fn stored_key_opens_the_record_and_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hospital1");
    let store = KeyStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("hospital.x25519")), 0o600);

    let dek = Dek::generate();
    store.put("rec-1", &dek).unwrap();
    let sealed = sealed_record(&dek);

    let reopened = KeyStore::open(&dir).unwrap();
    assert_eq!(reopened.public_key(), store.public_key());
    let got = reopened.get("rec-1").unwrap();
    let aad = RecordAad {
        record_id: "rec-1",
        hospital_id: "hospital1",
    };
    let mut plain = Vec::new();
    decrypt_stream(&got, &aad, sealed.as_slice(), &mut plain).unwrap();
    assert_eq!(plain, b"record");

    let files = entries(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let key_file = files.iter().find(|f| f.ends_with(".dek")).unwrap();
    assert!(!key_file.contains("rec-1"));
    assert_eq!(mode(&dir.join(key_file)), 0o600);
    // The file holds the HPKE-wrapped key (encapsulated key, sealed DEK, tag).
    assert_eq!(fs::read(dir.join(key_file)).unwrap().len(), 80);
}

#[test]
fn delete_shreds_the_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = KeyStore::open(tmp.path()).unwrap();
    store.put("rec-1", &Dek::generate()).unwrap();
    store.put("rec-2", &Dek::generate()).unwrap();
    assert_eq!(entries(tmp.path()).len(), 3);

    store.delete("rec-1").unwrap();
    let err = store.get("rec-1").unwrap_err();
    assert!(
        matches!(&err, CryptoError::UnknownRecord { record_id } if record_id == "rec-1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("rec-1"));
    assert_eq!(entries(tmp.path()).len(), 2);
    store.get("rec-2").unwrap();

    assert!(matches!(
        store.delete("rec-1"),
        Err(CryptoError::UnknownRecord { .. })
    ));
    assert!(matches!(
        store.get("never-stored"),
        Err(CryptoError::UnknownRecord { .. })
    ));
}

#[test]
fn put_replaces_an_earlier_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = KeyStore::open(tmp.path()).unwrap();
    let first = Dek::generate();
    let second = Dek::generate();
    store.put("rec-1", &first).unwrap();
    store.put("rec-1", &second).unwrap();
    assert_eq!(entries(tmp.path()).len(), 2);
    let sealed = sealed_record(&second);
    let aad = RecordAad {
        record_id: "rec-1",
        hospital_id: "hospital1",
    };
    decrypt_stream(
        &store.get("rec-1").unwrap(),
        &aad,
        sealed.as_slice(),
        Vec::new(),
    )
    .unwrap();
}

#[test]
fn another_hospitals_store_cannot_read_the_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let store_a = KeyStore::open(&a).unwrap();
    let store_b = KeyStore::open(&b).unwrap();
    assert_ne!(store_a.public_key(), store_b.public_key());
    store_a.put("rec-1", &Dek::generate()).unwrap();
    let name = entries(&a)
        .into_iter()
        .find(|f| f.ends_with(".dek"))
        .unwrap();
    fs::copy(a.join(&name), b.join(&name)).unwrap();
    assert!(matches!(
        store_b.get("rec-1"),
        Err(CryptoError::WrongKey(_))
    ));
}

#[test]
fn a_recovery_copy_wrapped_to_the_hospital_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let store = KeyStore::open(tmp.path()).unwrap();
    let dek = Dek::generate();
    let binding = KeyBinding {
        record_id: "rec-1",
        purpose: WrapPurpose::Recovery,
    };
    let wrapped = wrap_key(&dek, &store.public_key(), &binding).unwrap();
    let opened = store.unwrap(&wrapped, &binding).unwrap();
    let sealed = sealed_record(&dek);
    let aad = RecordAad {
        record_id: "rec-1",
        hospital_id: "hospital1",
    };
    decrypt_stream(&opened, &aad, sealed.as_slice(), Vec::new()).unwrap();
    let stranger = HpkeKeyPair::generate();
    let not_ours = wrap_key(&dek, &stranger.public_key(), &binding).unwrap();
    assert!(matches!(
        store.unwrap(&not_ours, &binding),
        Err(CryptoError::WrongKey(_))
    ));
}

#[test]
fn a_corrupt_hospital_key_file_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("hospital.x25519"), [1u8; 5]).unwrap();
    let err = KeyStore::open(tmp.path()).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("hospital.x25519"), "{err}");
}
