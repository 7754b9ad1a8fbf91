//! Embedding: the first pass ([`prepare`]) reads the document, the payload is signed,
//! the second pass ([`Prepared::embed`]) writes the marked copy.

use std::io::{self, BufRead, BufWriter, Seek, SeekFrom, Write};

use medcert_ccda::xml::{AttributeSpan, Tag, Token};

use crate::mark::{self, UnsignedPayload, sign_payload};
use crate::scan::{Visitor, scan};
use crate::{
    EQUALS, Embedded, Mark, SEPARATORS, SigningKey, TAILS, WatermarkError, analyse,
    quote_carries_bit,
};

/// Embeds `mark`, signed with `key`, into the document read from `source` (from its
/// current position) and writes the marked document to `out`. A document too small for
/// one copy of the mark is refused ([`WatermarkError::InsufficientCapacity`]); to write
/// such a document unchanged instead, [`prepare`] it and [`Prepared::embed`] it with
/// [`TooSmall::WriteUnchanged`].
pub fn embed<R: BufRead + Seek, W: Write>(
    source: &mut R,
    out: W,
    mark: &Mark<'_>,
    key: &SigningKey,
) -> Result<Embedded, WatermarkError> {
    let prepared = prepare(source, mark)?;
    let signature = sign_payload(prepared.unsigned(), key);
    prepared.embed(source, out, signature, TooSmall::Refuse)
}

/// What [`Prepared::embed`] does with a document too small for one copy of the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooSmall {
    /// Refuse it with [`WatermarkError::InsufficientCapacity`], writing nothing (as
    /// [`embed`] does).
    Refuse,
    /// Write it unchanged (a short Unstructured Document, whose header is its only
    /// markup), relying on its content fingerprint anchored on the chains: the report
    /// then says `copies == 0`, and its watermark fingerprint is of the signed payload
    /// that was not embedded.
    WriteUnchanged,
}

/// The first pass of embedding, for a signer that holds the key elsewhere (the hospital's
/// key service): the document checked, its content fingerprint and capacity, and the
/// payload to sign. [`Prepared::embed`] then writes the marked copy with the signature.
#[derive(Debug, Clone)]
pub struct Prepared {
    start: u64,
    unsigned: UnsignedPayload,
    available_bits: u64,
    needed_bits: u64,
}

/// Reads the document from `source` (from its current position) for `mark`: checks it,
/// hashes its content and counts its capacity. Nothing is written.
pub fn prepare<R: BufRead + Seek>(
    source: &mut R,
    mark: &Mark<'_>,
) -> Result<Prepared, WatermarkError> {
    mark.check()?;
    let start = source.stream_position()?;
    let analysis = analyse(&mut *source)?;
    let unsigned = UnsignedPayload::new(
        mark.hospital_id,
        mark.record_id,
        mark.issued_at,
        analysis.hasher.finish(),
    )?;
    Ok(Prepared {
        start,
        unsigned,
        available_bits: analysis.available_bits,
        needed_bits: mark.needed_bits(),
    })
}

impl Prepared {
    /// The payload to sign ([`sign_payload`]).
    pub fn unsigned(&self) -> &UnsignedPayload {
        &self.unsigned
    }

    /// Carrier bits the document offers.
    pub fn available_bits(&self) -> u64 {
        self.available_bits
    }

    /// The second pass: reads the same document again from `source` (from where
    /// [`prepare`] started) and writes it to `out` with the payload and `signature`, the
    /// hospital's signature over [`Prepared::unsigned`]. A document too small for the
    /// mark is handled as `too_small` says.
    pub fn embed<R: BufRead + Seek, W: Write>(
        self,
        source: &mut R,
        out: W,
        signature: [u8; 64],
        too_small: TooSmall,
    ) -> Result<Embedded, WatermarkError> {
        let content_fingerprint = self.unsigned.content_fingerprint();
        let payload = self.unsigned.with_signature(signature);
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        source.seek(SeekFrom::Start(self.start))?;
        let Some((bits, copies)) = mark::frame(&payload, self.available_bits) else {
            if too_small == TooSmall::Refuse {
                return Err(WatermarkError::InsufficientCapacity {
                    needed_bits: self.needed_bits,
                    available_bits: self.available_bits,
                });
            }
            io::copy(source, &mut out)?;
            out.flush()?;
            return Ok(Embedded {
                content_fingerprint,
                watermark_fingerprint: payload.fingerprint(),
                copies: 0,
                available_bits: self.available_bits,
                used_bits: 0,
            });
        };
        let used_bits = bits.len() as u64;
        let mut rewriter = Rewriter {
            out,
            bits,
            next: 0,
            pending_start: false,
        };
        let rest = scan(&mut *source, &mut rewriter)?;
        debug_assert!(rewriter.finished(), "the frame fits the capacity");
        // Past the mark the document is copied as it is; the first pass checked it.
        rewriter.settle_pending()?;
        io::copy(rest, &mut rewriter.out)?;
        rewriter.out.flush()?;
        Ok(Embedded {
            content_fingerprint,
            watermark_fingerprint: payload.fingerprint(),
            copies,
            available_bits: self.available_bits,
            used_bits,
        })
    }
}

/// The `=` of an attribute, from its bits or as it was.
fn equals_of<'t>(tag: &Tag<'t>, attribute: &AttributeSpan, bits: Option<u8>) -> &'t [u8] {
    match bits {
        Some(bits) => EQUALS[bits as usize],
        None => &tag.content[attribute.equals.clone()],
    }
}

/// The second pass of [`embed`]: copies the document, writing the frame's bits into the
/// carrier of the first tags and leaving everything else as it was.
struct Rewriter<W: Write> {
    out: W,
    bits: Vec<u8>,
    next: usize,
    /// A start tag was written without its `>`, to be closed as `>` or `/>` by what follows.
    pending_start: bool,
}

impl<W: Write> Rewriter<W> {
    /// The next `width` bits, padded with zeros at the end of the frame; `None` after it.
    fn take(&mut self, width: usize) -> Option<u8> {
        if self.next >= self.bits.len() {
            return None;
        }
        let value = (0..width).fold(0, |acc, i| {
            (acc << 1) | self.bits.get(self.next + i).copied().unwrap_or(0)
        });
        self.next += width;
        Some(value)
    }

    fn settle_pending(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.pending_start, false) {
            self.out.write_all(b">")?;
        }
        Ok(())
    }
}

impl<W: Write> Visitor for Rewriter<W> {
    fn tag(&mut self, tag: &Tag<'_>, empty: bool) -> io::Result<()> {
        self.settle_pending()?;
        let out = &mut self.out;
        if self.next >= self.bits.len() {
            out.write_all(b"<")?;
            out.write_all(tag.content)?;
            return out.write_all(if empty { b"/>" } else { b">" });
        }
        self.out.write_all(b"<")?;
        self.out.write_all(tag.name())?;
        for attribute in tag.attributes {
            let separator = match self.take(2) {
                Some(bits) => SEPARATORS[bits as usize],
                None => &tag.content[attribute.separator.clone()],
            };
            self.out.write_all(separator)?;
            self.out.write_all(&tag.content[attribute.key.clone()])?;
            let equals = equals_of(tag, attribute, self.take(2));
            self.out.write_all(equals)?;
            let quote = if quote_carries_bit(tag, &attribute.value) {
                match self.take(1) {
                    Some(1) => b'\'',
                    Some(_) => b'"',
                    None => attribute.quote,
                }
            } else {
                attribute.quote
            };
            self.out.write_all(&[quote])?;
            self.out.write_all(&tag.content[attribute.value.clone()])?;
            self.out.write_all(&[quote])?;
        }
        let tail = match self.take(2) {
            Some(bits) => TAILS[bits as usize],
            None => &tag.content[tag.tail.clone()],
        };
        self.out.write_all(tail)?;
        if !empty {
            self.pending_start = true;
            return Ok(());
        }
        match self.take(1) {
            Some(0) => {
                self.out.write_all(b"></")?;
                self.out.write_all(tag.name())?;
                let tail = self.take(2).map_or(&b""[..], |bits| TAILS[bits as usize]);
                self.out.write_all(tail)?;
                self.out.write_all(b">")
            }
            _ => self.out.write_all(b"/>"),
        }
    }

    fn end(&mut self, name: &[u8], raw: &[u8], _right_after_start: bool) -> io::Result<()> {
        if std::mem::replace(&mut self.pending_start, false) {
            if self.take(1) == Some(1) {
                return self.out.write_all(b"/>");
            }
            self.out.write_all(b">")?;
        }
        let tail = match self.take(2) {
            Some(bits) => TAILS[bits as usize],
            None => &raw[name.len()..],
        };
        self.out.write_all(b"</")?;
        self.out.write_all(name)?;
        self.out.write_all(tail)?;
        self.out.write_all(b">")
    }

    fn finished(&self) -> bool {
        self.next >= self.bits.len()
    }

    fn other(&mut self, token: &Token<'_>, _depth: usize) -> io::Result<()> {
        self.settle_pending()?;
        let out = &mut self.out;
        let (open, content, close): (&[u8], &[u8], &[u8]) = match *token {
            Token::Text(text) => (b"", text, b""),
            Token::Reference(reference) => (b"&", reference, b";"),
            Token::CDataStart => (b"<![CDATA[", b"", b""),
            Token::CData(data) => (b"", data, b""),
            Token::CDataEnd => (b"", b"", b"]]>"),
            Token::Comment(comment) => (b"<!--", comment, b"-->"),
            Token::Decl(declaration) => (b"<?", declaration, b"?>"),
            Token::Pi(instruction) => (b"<?", instruction, b"?>"),
            Token::Doctype(doctype) => (b"<!DOCTYPE", doctype, b">"),
            Token::Start(_) | Token::Empty(_) | Token::End { .. } | Token::Eof => return Ok(()),
        };
        out.write_all(open)?;
        out.write_all(content)?;
        out.write_all(close)
    }
}
