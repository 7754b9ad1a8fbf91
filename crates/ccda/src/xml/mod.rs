//! A streaming XML reader whose memory does not grow with the document.
//!
//! Every pull parser on crates.io, quick-xml included (tafia/quick-xml#260), hands out a
//! text node or a CDATA section whole, so one large node — an unstructured C-CDA
//! document's base64 PDF in `nonXMLBody`, or a long run of newlines — costs its whole
//! size in memory. This reader hands out character data in pieces of at most the
//! source's buffer, and tracks line and column with two counters instead of a table.
//! Only markup (a tag, a comment, a processing instruction, a reference) is gathered
//! whole, and it is limited to [`MAX_MARKUP`] bytes.
//!
//! Beside splitting tokens it checks what makes a document well-formed as far as the
//! rest of medcert relies on it: one root element, matching end tags, tags and
//! attributes that split cleanly (quoted values, no `<` in them, no attribute twice),
//! references that are terminated, nothing but whitespace outside the root, and a
//! document that ends only after its root. A UTF-8 byte order mark is skipped.

mod markup;
mod tag;

use std::io::{self, BufRead};

use markup::{Markup, MarkupScan};
pub use tag::{AttributeSpan, Tag, decode_attribute_value, resolve_reference};

/// The longest single piece of markup (tag, comment, processing instruction, document
/// type declaration) the reader gathers; a longer one is refused rather than buffered.
pub const MAX_MARKUP: usize = 4 * 1024 * 1024;
/// The longest reference name (`&name;`) the reader accepts.
const MAX_REFERENCE: usize = 64;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A place in the document: 1-based line and 1-based byte column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, counting from 1.
    pub line: u64,
    /// The byte offset within the line, counting from 1.
    pub column: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The document is not well-formed.
    #[error("malformed XML at {at}: {reason}")]
    Malformed {
        /// Where the fault is.
        at: Position,
        /// What is wrong there.
        reason: String,
    },
    /// The input ends before the document is complete.
    #[error("truncated XML: the document ends at {at} before it is complete")]
    Truncated {
        /// Where the input ends.
        at: Position,
    },
    /// The source could not be read.
    #[error("reading the document failed")]
    Io(#[from] io::Error),
}

/// One piece of the document, in order.
#[derive(Debug)]
pub enum Token<'a> {
    /// The XML declaration, between `<?` and `?>` (it starts with `xml`).
    Decl(&'a [u8]),
    /// A processing instruction, between `<?` and `?>`.
    Pi(&'a [u8]),
    /// A comment, between `<!--` and `-->`.
    Comment(&'a [u8]),
    /// A document type declaration, between `<!DOCTYPE` and `>`.
    Doctype(&'a [u8]),
    /// A start tag.
    Start(Tag<'a>),
    /// An empty-element tag (`<a/>`).
    Empty(Tag<'a>),
    /// An end tag: what stands between `</` and `>`, and the element's name.
    End {
        /// What stands between `</` and `>`, trailing whitespace included.
        raw: &'a [u8],
        /// The element's name, prefix included.
        name: &'a [u8],
    },
    /// A piece of character data, as written (no `<` and no `&` in it). One text node
    /// may come as several pieces.
    Text(&'a [u8]),
    /// A reference (`&amp;`, `&#60;`), the name between `&` and `;`.
    Reference(&'a [u8]),
    /// `<![CDATA[`: a CDATA section starts; its content follows as [`Token::CData`].
    CDataStart,
    /// A piece of a CDATA section's content, as written.
    CData(&'a [u8]),
    /// `]]>`: the CDATA section ends.
    CDataEnd,
    /// The end of a complete document.
    Eof,
}

/// What the reader is in the middle of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Content,
    /// Inside a CDATA section, with `held` closing brackets read but not yet handed out.
    CData {
        held: usize,
    },
    Done,
}

/// Reads a document token by token; see the module's documentation.
pub struct XmlReader<R> {
    source: R,
    /// Bytes of the source read so far, including those of the last token handed out.
    offset: u64,
    /// Newlines before `offset`, and where the line `offset` is on starts.
    lines: u64,
    line_start: u64,
    /// Bytes of the source's buffer handed out as the last token, consumed on the next
    /// call (so that the token could borrow them).
    pending: usize,
    /// Where the last token started.
    token_offset: u64,
    token_lines: u64,
    token_line_start: u64,
    markup: Vec<u8>,
    spans: Vec<AttributeSpan>,
    /// The names of the open elements, one after the other, and where each starts.
    open_names: Vec<u8>,
    open_starts: Vec<usize>,
    seen_root: bool,
    /// Where the document starts, after a byte order mark.
    content_start: u64,
    mode: Mode,
}

impl<R: BufRead> XmlReader<R> {
    /// A reader at the start of `source`.
    pub fn new(source: R) -> Self {
        Self {
            source,
            offset: 0,
            lines: 0,
            line_start: 0,
            pending: 0,
            token_offset: 0,
            token_lines: 0,
            token_line_start: 0,
            markup: Vec::new(),
            spans: Vec::new(),
            open_names: Vec::new(),
            open_starts: Vec::new(),
            seen_root: false,
            content_start: 0,
            mode: Mode::Content,
        }
    }

    /// The number of open elements.
    pub fn depth(&self) -> usize {
        self.open_starts.len()
    }

    /// Where the last token handed out starts.
    pub fn token_position(&self) -> Position {
        Position {
            line: self.token_lines + 1,
            column: self.token_offset - self.token_line_start + 1,
        }
    }

    /// A malformed-document error at byte `at` of the last markup token (counting its
    /// `<`), e.g. for a reader that refuses a tag the XML layer accepted.
    pub fn error_in_token(&self, at: usize, reason: impl Into<String>) -> XmlError {
        XmlError::Malformed {
            at: self.position_in_markup(at),
            reason: reason.into(),
        }
    }

    /// Gives the source back, positioned right after the last token handed out.
    pub fn into_source(mut self) -> R {
        self.source.consume(std::mem::take(&mut self.pending));
        self.source
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token<'_>, XmlError> {
        self.source.consume(std::mem::take(&mut self.pending));
        self.token_offset = self.offset;
        self.token_lines = self.lines;
        self.token_line_start = self.line_start;
        match self.mode {
            Mode::Done => return Ok(Token::Eof),
            Mode::CData { held } => return self.cdata_piece(held),
            Mode::Content => {}
        }
        if self.offset == 0 {
            self.skip_bom()?;
        }
        let first = match self.source.fill_buf()?.first() {
            Some(&byte) => byte,
            None => return self.end_of_input(),
        };
        match first {
            b'<' => self.markup_token(),
            b'&' => self.reference(),
            _ => self.text(),
        }
    }

    fn skip_bom(&mut self) -> Result<(), XmlError> {
        if self.source.fill_buf()?.first() != Some(&BOM[0]) {
            return Ok(());
        }
        for &expected in BOM {
            match self.source.fill_buf()?.first() {
                Some(&byte) if byte == expected => self.take(1),
                Some(_) => return Err(self.malformed_here("a byte that is not UTF-8 text")),
                None => return Err(self.truncated()),
            }
        }
        self.token_offset = self.offset;
        self.token_line_start = self.line_start;
        self.content_start = self.offset;
        Ok(())
    }

    fn end_of_input(&mut self) -> Result<Token<'_>, XmlError> {
        if !self.seen_root || self.depth() > 0 {
            return Err(self.truncated());
        }
        self.mode = Mode::Done;
        Ok(Token::Eof)
    }

    /// Character data up to the next `<` or `&`, or to the end of the source's buffer.
    fn text(&mut self) -> Result<Token<'_>, XmlError> {
        let outside_root = self.depth() == 0;
        let buffer = self.source.fill_buf()?;
        let len = memchr::memchr2(b'<', b'&', buffer).unwrap_or(buffer.len());
        let stray = if outside_root {
            buffer[..len].iter().position(|b| !b.is_ascii_whitespace())
        } else {
            None
        };
        if let Some(at) = stray {
            self.take(at);
            return Err(self.malformed_here("text outside the root element"));
        }
        let (lines, last) = count_lines(&buffer[..len]);
        self.pending = len;
        self.advance(len, lines, last);
        let buffer = self.source.fill_buf()?;
        Ok(Token::Text(&buffer[..len]))
    }

    fn reference(&mut self) -> Result<Token<'_>, XmlError> {
        if self.depth() == 0 {
            return Err(self.malformed_here("a reference outside the root element"));
        }
        self.markup.clear();
        self.take_into_markup(1)?;
        loop {
            let Some(&byte) = self.source.fill_buf()?.first() else {
                return Err(self.truncated());
            };
            self.take_into_markup(1)?;
            if byte == b';' {
                break;
            }
            if self.markup.len() > MAX_REFERENCE || !is_reference_byte(byte) {
                return Err(self.error_in_token(
                    0,
                    "an '&' that does not start a reference such as &amp; (write a literal '&' as &amp;)",
                ));
            }
        }
        let name = &self.markup[1..self.markup.len() - 1];
        if !tag::is_reference_name(name) {
            return Err(self.error_in_token(0, "a reference with an invalid name"));
        }
        Ok(Token::Reference(&self.markup[1..self.markup.len() - 1]))
    }

    /// Gathers a piece of markup starting at `<` and hands it out.
    fn markup_token(&mut self) -> Result<Token<'_>, XmlError> {
        self.markup.clear();
        let kind = self.gather_markup()?;
        let m = &self.markup;
        match kind {
            Markup::Instruction => {
                let content = &m[2..m.len() - 2];
                let target_end = content
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .unwrap_or(content.len());
                if &content[..target_end] == b"xml" {
                    if self.token_offset != self.content_start {
                        return Err(self.error_in_token(
                            0,
                            "an XML declaration that is not at the start of the document",
                        ));
                    }
                    return Ok(Token::Decl(&self.markup[2..self.markup.len() - 2]));
                }
                if target_end == 0 {
                    return Err(self.error_in_token(2, "a processing instruction with no target"));
                }
                Ok(Token::Pi(&self.markup[2..self.markup.len() - 2]))
            }
            Markup::Comment => Ok(Token::Comment(&self.markup[4..self.markup.len() - 3])),
            Markup::Doctype => {
                if self.seen_root {
                    return Err(self.error_in_token(0, "a document type after the root element"));
                }
                Ok(Token::Doctype(&self.markup[9..self.markup.len() - 1]))
            }
            Markup::CData => {
                if self.depth() == 0 {
                    return Err(self.error_in_token(0, "a CDATA section outside the root element"));
                }
                self.mode = Mode::CData { held: 0 };
                Ok(Token::CDataStart)
            }
            Markup::EndTag => self.end_tag(),
            Markup::Tag => self.start_tag(),
        }
    }

    fn start_tag(&mut self) -> Result<Token<'_>, XmlError> {
        let m = &self.markup;
        let empty = m.len() >= 3 && m[m.len() - 2] == b'/';
        let content_end = m.len() - if empty { 2 } else { 1 };
        if self.depth() == 0 && self.seen_root {
            return Err(self.error_in_token(0, "a second root element"));
        }
        let split = tag::split(&self.markup[1..content_end], &mut self.spans);
        if let Err((at, reason)) = split {
            return Err(self.error_in_token(1 + at, reason));
        }
        self.seen_root = true;
        let content = &self.markup[1..content_end];
        let name_len = tag::name_len(content);
        if !empty {
            self.open_starts.push(self.open_names.len());
            self.open_names.extend_from_slice(&content[..name_len]);
        }
        let tag = Tag::new(content, name_len, &self.spans);
        Ok(if empty {
            Token::Empty(tag)
        } else {
            Token::Start(tag)
        })
    }

    fn end_tag(&mut self) -> Result<Token<'_>, XmlError> {
        let m = &self.markup;
        let raw = &m[2..m.len() - 1];
        let name = raw.trim_ascii_end();
        let Some(&start) = self.open_starts.last() else {
            return Err(self.error_in_token(0, "an end tag with no start tag"));
        };
        if self.open_names[start..] != *name {
            let reason = format!(
                "end tag </{}> does not match start tag <{}>",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(&self.open_names[start..])
            );
            return Err(self.error_in_token(0, reason));
        }
        self.open_starts.pop();
        self.open_names.truncate(start);
        let m = &self.markup;
        let raw = &m[2..m.len() - 1];
        Ok(Token::End {
            raw,
            name: raw.trim_ascii_end(),
        })
    }

    /// Reads markup from `<` to its end into `self.markup` and says what it is.
    fn gather_markup(&mut self) -> Result<Markup, XmlError> {
        let mut scan = MarkupScan::default();
        loop {
            let buffer = self.source.fill_buf()?;
            if buffer.is_empty() {
                return Err(self.truncated());
            }
            let (used, outcome) = scan.feed(&self.markup, buffer);
            self.take_into_markup(used)?;
            match outcome {
                Some(Ok(kind)) => return Ok(kind),
                Some(Err(reason)) => {
                    return Err(self.error_in_token(self.markup.len().saturating_sub(1), reason));
                }
                None => {}
            }
        }
    }

    /// The next piece of a CDATA section; `held` closing brackets were read before.
    fn cdata_piece(&mut self, mut held: usize) -> Result<Token<'_>, XmlError> {
        const BRACKETS: &[u8] = b"]]";
        loop {
            let buffer = self.source.fill_buf()?;
            let Some(&first) = buffer.first() else {
                return Err(self.truncated());
            };
            if held > 0 {
                match (first, held) {
                    (b'>', 2) => {
                        self.take(1);
                        self.mode = Mode::Content;
                        return Ok(Token::CDataEnd);
                    }
                    (b']', 1) => {
                        self.take(1);
                        held = 2;
                        self.mode = Mode::CData { held };
                        continue;
                    }
                    // Three brackets: the first is content, the last two may still close.
                    (b']', _) => {
                        self.take(1);
                        return Ok(Token::CData(&BRACKETS[..1]));
                    }
                    _ => {
                        self.mode = Mode::CData { held: 0 };
                        return Ok(Token::CData(&BRACKETS[..held]));
                    }
                }
            }
            if let Some(at) = memchr::memmem::find(buffer, b"]]>") {
                if at == 0 {
                    self.take(3);
                    self.mode = Mode::Content;
                    return Ok(Token::CDataEnd);
                }
                let (lines, last) = count_lines(&buffer[..at]);
                self.pending = at;
                self.advance(at, lines, last);
                return Ok(Token::CData(&self.source.fill_buf()?[..at]));
            }
            // Closing brackets at the end of the buffer may start `]]>`: hold them back.
            let total = buffer.len();
            let trailing = buffer
                .iter()
                .rev()
                .take(2)
                .take_while(|&&b| b == b']')
                .count();
            let content = total - trailing;
            let (lines, last) = count_lines(&buffer[..content]);
            self.pending = total;
            self.advance(total, lines, last);
            self.mode = Mode::CData { held: trailing };
            if content > 0 {
                return Ok(Token::CData(&self.source.fill_buf()?[..content]));
            }
            // Only brackets were buffered: take them and read on.
            self.source.consume(std::mem::take(&mut self.pending));
            held = trailing;
        }
    }

    /// Consumes `n` buffered bytes (that hold no token to hand out).
    fn take(&mut self, n: usize) {
        if let Ok(buffer) = self.source.fill_buf() {
            let (lines, last) = count_lines(&buffer[..n]);
            self.advance(n, lines, last);
        }
        self.source.consume(n);
    }

    fn take_into_markup(&mut self, n: usize) -> Result<(), XmlError> {
        if self.markup.len() + n > MAX_MARKUP {
            return Err(self.error_in_token(
                0,
                format!("a piece of markup longer than {MAX_MARKUP} bytes"),
            ));
        }
        let buffer = self.source.fill_buf()?;
        self.markup.extend_from_slice(&buffer[..n]);
        self.take(n);
        Ok(())
    }

    /// Moves the position over `n` bytes holding `lines` newlines, the last at `last`.
    fn advance(&mut self, n: usize, lines: u64, last: Option<usize>) {
        if let Some(last) = last {
            self.lines += lines;
            self.line_start = self.offset + last as u64 + 1;
        }
        self.offset += n as u64;
    }

    fn position_in_markup(&self, at: usize) -> Position {
        let before = &self.markup[..at.min(self.markup.len())];
        let (lines, last) = count_lines(before);
        let line_start = match last {
            Some(last) => self.token_offset + last as u64 + 1,
            None => self.token_line_start,
        };
        Position {
            line: self.token_lines + lines + 1,
            column: self.token_offset + before.len() as u64 - line_start + 1,
        }
    }

    fn here(&self) -> Position {
        Position {
            line: self.lines + 1,
            column: self.offset - self.line_start + 1,
        }
    }

    fn malformed_here(&self, reason: &str) -> XmlError {
        XmlError::Malformed {
            at: self.here(),
            reason: reason.into(),
        }
    }

    fn truncated(&self) -> XmlError {
        XmlError::Truncated { at: self.here() }
    }
}

/// The newlines in `bytes` and where the last one is.
fn count_lines(bytes: &[u8]) -> (u64, Option<usize>) {
    let last = memchr::memrchr(b'\n', bytes);
    let count = match last {
        Some(_) => memchr::memchr_iter(b'\n', bytes).count() as u64,
        None => 0,
    };
    (count, last)
}

fn is_reference_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'#' | b'_' | b'-' | b'.' | b':') || byte >= 0x80
}

#[cfg(test)]
mod tests;
