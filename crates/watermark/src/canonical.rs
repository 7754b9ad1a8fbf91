//! The content fingerprint: SHA3-256 over a canonical serialisation of the parsed
//! document, which ignores exactly the syntax a parser ignores (and so the watermark).
//!
//! The canonical form is written in XML-like syntax, one fixed way:
//! - start tag `<name a="v" b="w">` with one space before each attribute, double quotes,
//!   no space before `>`; an empty element is written as a start and an end tag;
//!   end tag `</name>`; names are kept as written, prefixes included;
//! - text and CDATA as decoded characters, with `&`, `<`, `>` escaped as `&amp;`, `&lt;`,
//!   `&gt;`, line ends normalised to `\n` and a referenced carriage return as `&#xD;`;
//! - attribute values decoded and normalised as a parser does (a literal tab, line end or
//!   carriage return becomes a space), with `&`, `<`, `"` escaped and referenced tab,
//!   newline and carriage return as `&#x9;`, `&#xA;`, `&#xD;` (as in W3C canonical XML);
//! - comments, processing instructions and the document type kept as written; the XML
//!   declaration and whitespace outside the root element left out.
//!
//! References to entities other than the five predefined ones are kept as written in text;
//! in an attribute value they are escaped like any other `&`.

use std::io;

use keccak_asm::Sha3_256;
use medcert_ccda::xml::{Tag, Token, decode_attribute_value, resolve_reference};
use sha3::Digest;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use crate::scan::Visitor;

fn spawn_worker(mut hasher: Sha3_256) -> HashSink {
    let (full, blocks) = sync_channel::<Vec<u8>>(2);
    let (give_back, emptied) = channel();
    let worker = std::thread::spawn(move || {
        for mut block in blocks {
            hasher.update(&block);
            block.clear();
            // The reader may be gone already; then the block is simply freed.
            let _ = give_back.send(block);
        }
        hasher.finalize().into()
    });
    HashSink::Threaded {
        full,
        emptied,
        worker,
    }
}

/// Canonical bytes are gathered in blocks of this size before they are hashed.
const BLOCK: usize = 256 * 1024;
/// Past this much content, hashing moves to a second thread, so that reading and
/// hashing, which take about as long each, overlap; small documents spawn nothing.
const THREADED_AFTER: u64 = 4 * BLOCK as u64;

pub(crate) struct ContentHasher {
    block: Vec<u8>,
    hashed: u64,
    sink: HashSink,
    /// The last piece of text ended in a carriage return: a line feed starting the
    /// next piece of the same text belongs to that line end.
    after_cr: bool,
}

enum HashSink {
    Inline(Box<Sha3_256>),
    /// Full blocks go to the hashing thread two at most; emptied blocks come back to
    /// be reused, so at most four blocks ever exist.
    Threaded {
        full: SyncSender<Vec<u8>>,
        emptied: Receiver<Vec<u8>>,
        worker: JoinHandle<[u8; 32]>,
    },
}

impl Default for ContentHasher {
    fn default() -> Self {
        Self {
            block: Vec::with_capacity(BLOCK),
            hashed: 0,
            sink: HashSink::Inline(Box::default()),
            after_cr: false,
        }
    }
}

impl ContentHasher {
    pub(crate) fn finish(mut self) -> [u8; 32] {
        match self.sink {
            HashSink::Inline(mut hasher) => {
                hasher.update(&self.block);
                hasher.finalize().into()
            }
            HashSink::Threaded { full, worker, .. } => {
                // The worker only stops when the sender is gone, and never panics.
                let _ = full.send(std::mem::take(&mut self.block));
                drop(full);
                worker.join().expect("the hashing thread does not panic")
            }
        }
    }

    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(BLOCK - self.block.len());
            self.block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.block.len() == BLOCK {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        self.hashed += self.block.len() as u64;
        if let HashSink::Inline(hasher) = &mut self.sink {
            hasher.update(&self.block);
            self.block.clear();
            if self.hashed >= THREADED_AFTER {
                let hasher = std::mem::take(&mut **hasher);
                self.sink = spawn_worker(hasher);
            }
            return;
        }
        if let HashSink::Threaded { full, emptied, .. } = &mut self.sink {
            let next = emptied
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
            let block = std::mem::replace(&mut self.block, next);
            // The worker runs until the sender is dropped, so sending cannot fail.
            let _ = full.send(block);
        }
    }

    /// A piece of text; a text node may come in several pieces.
    fn text(&mut self, raw: &[u8]) {
        let mut rest = raw;
        if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = rest.last() == Some(&b'\r');
        while let Some(at) = memchr::memchr3(b'>', b'\r', b'&', rest) {
            self.put(&rest[..at]);
            match rest[at] {
                b'>' => self.put(b"&gt;"),
                b'&' => self.put(b"&amp;"),
                _ => {
                    self.put(b"\n");
                    if rest.get(at + 1) == Some(&b'\n') {
                        rest = &rest[1..];
                    }
                }
            }
            rest = &rest[at + 1..];
        }
        self.put(rest);
    }

    fn character(&mut self, c: char) {
        match c {
            '&' => self.put(b"&amp;"),
            '<' => self.put(b"&lt;"),
            '>' => self.put(b"&gt;"),
            '\r' => self.put(b"&#xD;"),
            c => self.put(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }

    fn reference(&mut self, name: &[u8]) {
        match resolve_reference(name) {
            Some(c) => self.character(c),
            None => {
                self.put(b"&");
                self.put(name);
                self.put(b";");
            }
        }
    }

    fn attribute_value(&mut self, raw: &[u8]) {
        let plain = !raw
            .iter()
            .any(|b| matches!(b, b'&' | b'"' | b'\t' | b'\n' | b'\r'));
        if plain {
            self.put(raw);
            return;
        }
        // Decoded as a parser reads it, then escaped one fixed way. A tab or line end left
        // in the decoded value came from a reference (literal ones read as spaces).
        for c in decode_attribute_value(raw).chars() {
            match c {
                '&' => self.put(b"&amp;"),
                '<' => self.put(b"&lt;"),
                '"' => self.put(b"&quot;"),
                '\t' => self.put(b"&#x9;"),
                '\n' => self.put(b"&#xA;"),
                '\r' => self.put(b"&#xD;"),
                c => self.put(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }

    fn start_tag(&mut self, tag: &Tag<'_>) {
        self.put(b"<");
        self.put(tag.name());
        for attribute in tag.attributes {
            self.put(b" ");
            self.put(&tag.content[attribute.key.clone()]);
            self.put(b"=\"");
            self.attribute_value(&tag.content[attribute.value.clone()]);
            self.put(b"\"");
        }
        self.put(b">");
    }

    fn end_tag(&mut self, name: &[u8]) {
        self.put(b"</");
        self.put(name);
        self.put(b">");
    }
}

impl Visitor for ContentHasher {
    fn tag(&mut self, tag: &Tag<'_>, empty: bool) -> io::Result<()> {
        self.after_cr = false;
        self.start_tag(tag);
        if empty {
            self.end_tag(tag.name());
        }
        Ok(())
    }

    fn end(&mut self, name: &[u8], _raw: &[u8], _right_after_start: bool) -> io::Result<()> {
        self.after_cr = false;
        self.end_tag(name);
        Ok(())
    }

    fn other(&mut self, token: &Token<'_>, depth: usize) -> io::Result<()> {
        match *token {
            Token::Text(text) if depth > 0 => {
                self.text(text);
                return Ok(());
            }
            Token::CData(data) => {
                let mut rest = data;
                while let Some(at) = memchr::memchr(b'<', rest) {
                    self.text(&rest[..at]);
                    self.put(b"&lt;");
                    self.after_cr = false;
                    rest = &rest[at + 1..];
                }
                self.text(rest);
                return Ok(());
            }
            Token::Reference(reference) => self.reference(reference),
            Token::Comment(comment) => {
                self.put(b"<!--");
                self.put(comment);
                self.put(b"-->");
            }
            Token::Pi(instruction) => {
                self.put(b"<?");
                self.put(instruction);
                self.put(b"?>");
            }
            Token::Doctype(doctype) => {
                self.put(b"<!DOCTYPE ");
                self.put(doctype.trim_ascii_start());
                self.put(b">");
            }
            _ => {}
        }
        self.after_cr = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_end_split_between_pieces_of_text_counts_once() {
        assert_eq!(
            digest(|h| {
                h.text(b"a\r");
                h.text(b"\nb\r");
                h.text(b"c");
            }),
            digest(|h| h.text(b"a\r\nb\rc"))
        );
    }

    fn digest(f: impl FnOnce(&mut ContentHasher)) -> [u8; 32] {
        let mut hasher = ContentHasher::default();
        f(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn hashing_on_a_second_thread_gives_the_same_digest() {
        let data: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = ContentHasher::default();
        for chunk in data.chunks(70_001) {
            hasher.put(chunk);
        }
        assert!(matches!(hasher.sink, HashSink::Threaded { .. }));
        // Also checks the assembly Keccak against the reference SHA3-256.
        assert_eq!(
            hasher.finish(),
            <[u8; 32]>::from(sha3::Sha3_256::digest(&data))
        );
    }

    #[test]
    fn text_line_ends_and_markup_characters_are_normalised() {
        assert_eq!(
            digest(|h| h.text(b"a\r\nb\rc>d&e")),
            digest(|h| h.put(b"a\nb\nc&gt;d&amp;e"))
        );
    }

    #[test]
    fn equivalent_attribute_values_hash_alike() {
        let plain = digest(|h| h.attribute_value(b"a b\"c"));
        assert_eq!(plain, digest(|h| h.attribute_value(b"a&#32;b&quot;c")));
        assert_eq!(plain, digest(|h| h.attribute_value(b"a\nb&#34;c")));
        assert_ne!(plain, digest(|h| h.attribute_value(b"a&#10;b\"c")));
        assert_eq!(
            digest(|h| h.attribute_value(b"&gt;5")),
            digest(|h| h.attribute_value(b">5"))
        );
    }
}
