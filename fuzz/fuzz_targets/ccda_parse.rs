//! Arbitrary bytes through the C-CDA reader: a document or a typed error, never a panic;
//! and the same answer whatever the size of the reader's buffer, since text and markup
//! then split at other places.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, document)) = data.split_first() else {
        return;
    };
    let whole = format!("{:?}", medcert_ccda::parse(document));
    let small = BufReader::with_capacity(1 + usize::from(size % 32), document);
    assert_eq!(whole, format!("{:?}", medcert_ccda::parse(small)));
    let _ = medcert_ccda::parse_header(document);
});
