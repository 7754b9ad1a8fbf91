//! Arbitrary bytes through watermark extraction and verification: an answer or a typed
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medcert_watermark::{SigningKey, capacity, extract, verify};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let _ = verify(data, |id| (id == "hospital1").then_some(key));
    let _ = verify(data, |_| None);
    let _ = extract(data);
    let _ = capacity(data);
});
