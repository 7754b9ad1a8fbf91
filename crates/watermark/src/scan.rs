//! One streaming pass over an XML document: well-formedness checks, byte positions for
//! errors, and the pieces of every tag, handed to a [`Visitor`].

use std::io::{self, BufRead};
use std::ops::Range;

use medcert_ccda::LineTrackingReader;
use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::WatermarkError;

/// One attribute of a tag, as byte ranges into the tag's content (the bytes between `<`
/// and `>` or `/>`).
#[derive(Debug, Clone)]
pub(crate) struct AttributeSpan {
    /// Whitespace before the attribute's name.
    pub separator: Range<usize>,
    pub key: Range<usize>,
    /// The `=` with any whitespace around it.
    pub equals: Range<usize>,
    pub quote: u8,
    /// The raw (escaped) value, between the quotes.
    pub value: Range<usize>,
}

/// A start or empty-element tag split into its pieces.
pub(crate) struct Tag<'a> {
    pub content: &'a [u8],
    pub name: Range<usize>,
    pub attributes: &'a [AttributeSpan],
    /// Whitespace after the last attribute, before `>` or `/>`.
    pub tail: Range<usize>,
}

impl Tag<'_> {
    pub fn name(&self) -> &[u8] {
        &self.content[self.name.clone()]
    }
}

/// What a pass does with the document's pieces. Every method may fail only on output.
pub(crate) trait Visitor {
    /// A start tag (`empty == false`) or an empty-element tag.
    fn tag(&mut self, tag: &Tag<'_>, empty: bool) -> io::Result<()>;
    /// An end tag; `raw` is what stands between `</` and `>`. `right_after_start` is true
    /// when the element has no content at all (`<a></a>`).
    fn end(&mut self, name: &[u8], raw: &[u8], right_after_start: bool) -> io::Result<()>;
    /// Every other event; `depth` is the number of open elements.
    fn other(&mut self, event: &Event<'_>, depth: usize) -> io::Result<()>;
    /// True once the visitor needs nothing more; the scan then stops right after the
    /// event it was handed last, leaving the rest of the source unread.
    fn finished(&self) -> bool {
        false
    }
}

/// Reads the document, calling `visitor` for each piece in order, to its end or until
/// the visitor is finished.
pub(crate) fn scan<R: BufRead, V: Visitor>(
    source: R,
    visitor: &mut V,
) -> Result<(), WatermarkError> {
    let mut reader = Reader::from_reader(LineTrackingReader::new(source));
    let config = reader.config_mut();
    // End tags are kept as written (`</a >`) and matched here instead.
    config.trim_markup_names_in_closing_tags = false;
    config.check_end_names = false;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut spans = Vec::new();
    let mut open_names: Vec<u8> = Vec::new();
    let mut open_starts: Vec<usize> = Vec::new();
    let mut seen_root = false;
    let mut previous_was_start = false;
    loop {
        buf.clear();
        let event_start = reader.buffer_position();
        reader.get_mut().forget_before(event_start);
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(error) => return Err(xml_error(&reader, error)),
        };
        let malformed = |offset: u64, reason: String| {
            let (line, column) = reader.get_ref().line_column(offset);
            WatermarkError::Malformed {
                line,
                column,
                reason,
            }
        };
        let was_start = std::mem::replace(&mut previous_was_start, false);
        match &event {
            Event::Start(start) | Event::Empty(start) => {
                let empty = matches!(event, Event::Empty(_));
                if open_starts.is_empty() {
                    if seen_root {
                        return Err(malformed(event_start, "a second root element".into()));
                    }
                    seen_root = true;
                }
                let tag = split_tag(start, &mut spans)
                    .map_err(|(at, reason)| malformed(event_start + 1 + at as u64, reason))?;
                if !empty {
                    open_starts.push(open_names.len());
                    open_names.extend_from_slice(tag.name());
                    previous_was_start = true;
                }
                visitor.tag(&tag, empty)?;
            }
            Event::End(end) => {
                let raw: &[u8] = end;
                let name = raw.trim_ascii_end();
                let Some(start) = open_starts.pop() else {
                    return Err(malformed(
                        event_start,
                        "an end tag with no start tag".into(),
                    ));
                };
                if open_names[start..] != *name {
                    let reason = format!(
                        "end tag </{}> does not match start tag <{}>",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(&open_names[start..])
                    );
                    return Err(malformed(event_start, reason));
                }
                open_names.truncate(start);
                visitor.end(name, raw, was_start)?;
            }
            Event::Text(text) if open_starts.is_empty() => {
                if let Some(at) = text.iter().position(|b| !b.is_ascii_whitespace()) {
                    return Err(malformed(
                        event_start + at as u64,
                        "text outside the root element".into(),
                    ));
                }
                visitor.other(&event, 0)?;
            }
            Event::GeneralRef(_) | Event::CData(_) if open_starts.is_empty() => {
                return Err(malformed(
                    event_start,
                    "text outside the root element".into(),
                ));
            }
            Event::Eof => {
                if !seen_root || !open_starts.is_empty() {
                    let (line, column) = reader.get_ref().line_column(reader.get_ref().consumed());
                    return Err(WatermarkError::Truncated { line, column });
                }
                return Ok(());
            }
            other => visitor.other(other, open_starts.len())?,
        }
        if visitor.finished() {
            return Ok(());
        }
    }
}

fn xml_error<R: BufRead>(
    reader: &Reader<LineTrackingReader<R>>,
    error: XmlError,
) -> WatermarkError {
    let tracker = reader.get_ref();
    match error {
        XmlError::Io(e) => WatermarkError::Io(io::Error::new(e.kind(), e.to_string())),
        XmlError::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedPI
            | SyntaxError::UnclosedXmlDecl
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue,
        ) => {
            let (line, column) = tracker.line_column(tracker.consumed());
            WatermarkError::Truncated { line, column }
        }
        other => {
            let (line, column) = tracker.line_column(reader.error_position());
            WatermarkError::Malformed {
                line,
                column,
                reason: other.to_string(),
            }
        }
    }
}

/// Splits a tag's content into name, attributes and trailing whitespace. On failure,
/// gives the offset in the content and the reason.
fn split_tag<'a>(
    content: &'a [u8],
    spans: &'a mut Vec<AttributeSpan>,
) -> Result<Tag<'a>, (usize, String)> {
    spans.clear();
    let len = content.len();
    let name_end = content
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(len);
    if name_end == 0 {
        return Err((0, "a tag with no name".into()));
    }
    let mut at = name_end;
    loop {
        let separator_start = at;
        while at < len && content[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == len {
            let tail = separator_start..len;
            return Ok(Tag {
                content,
                name: 0..name_end,
                attributes: spans,
                tail,
            });
        }
        if at == separator_start {
            return Err((at, "attributes must be separated by whitespace".into()));
        }
        let key_start = at;
        while at < len && !content[at].is_ascii_whitespace() && content[at] != b'=' {
            at += 1;
        }
        let key_end = at;
        let equals_start = at;
        while at < len && content[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == len || content[at] != b'=' {
            return Err((key_start, "an attribute without a value".into()));
        }
        at += 1;
        while at < len && content[at].is_ascii_whitespace() {
            at += 1;
        }
        let quote = match content.get(at) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err((at, "an attribute value must be quoted".into())),
        };
        let value_start = at + 1;
        let Some(value_len) = memchr::memchr(quote, &content[value_start..]) else {
            return Err((at, "an unclosed attribute value".into()));
        };
        let value = value_start..value_start + value_len;
        if memchr::memchr(b'<', &content[value.clone()]).is_some() {
            return Err((value_start, "'<' in an attribute value".into()));
        }
        spans.push(AttributeSpan {
            separator: separator_start..key_start,
            key: key_start..key_end,
            equals: equals_start..at,
            quote,
            value: value.clone(),
        });
        at = value.end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_pieces() {
        let content = b"a  x='1' y = \"2\"\t";
        let mut spans = Vec::new();
        let tag = split_tag(content, &mut spans).unwrap();
        assert_eq!(tag.name(), b"a");
        assert_eq!(tag.attributes.len(), 2);
        let x = &tag.attributes[0];
        assert_eq!(&content[x.separator.clone()], b"  ");
        assert_eq!(&content[x.key.clone()], b"x");
        assert_eq!(x.quote, b'\'');
        assert_eq!(&content[x.value.clone()], b"1");
        let y = &tag.attributes[1];
        assert_eq!(&content[y.equals.clone()], b" = ");
        assert_eq!(&content[tag.tail.clone()], b"\t");
    }

    #[test]
    fn broken_attributes_are_refused() {
        let mut spans = Vec::new();
        for content in [
            &b"a x=1"[..],
            b"a x",
            b"a x='1",
            b"a x='1'y='2'",
            b"a x='<'",
        ] {
            assert!(split_tag(content, &mut spans).is_err(), "{content:?}");
        }
    }
}
