//! Arbitrary bytes through the C-CDA reader: a document or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = medcert_ccda::parse(data);
    let _ = medcert_ccda::parse_header(data);
});
