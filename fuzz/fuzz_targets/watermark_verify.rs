//! Arbitrary bytes through watermark extraction and verification: an answer or a typed
//! error, never a panic; and the same answer whatever the size of the reader's buffer.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use medcert_watermark::{SigningKey, extract, verify};

fuzz_target!(|data: &[u8]| {
    let Some((&size, document)) = data.split_first() else {
        return;
    };
    let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let keys = |id: &str| (id == "hospital1").then_some(key);
    let whole = format!("{:?}", verify(document, keys));
    let small = BufReader::with_capacity(1 + usize::from(size % 32), document);
    assert_eq!(whole, format!("{:?}", verify(small, keys)));
    let _ = extract(document);
});
