//! One streaming pass over an XML document, handing its pieces to a [`Visitor`]. The
//! XML layer (`medcert_ccda::xml`) checks well-formedness, keeps byte positions for
//! errors and never holds a whole text node, so a pass runs in flat memory.

use std::io::{self, BufRead};

use medcert_ccda::xml::{Tag, Token, XmlError, XmlReader};

use crate::WatermarkError;

/// What a pass does with the document's pieces. Every method may fail only on output.
pub(crate) trait Visitor {
    /// A start tag (`empty == false`) or an empty-element tag.
    fn tag(&mut self, tag: &Tag<'_>, empty: bool) -> io::Result<()>;
    /// An end tag; `raw` is what stands between `</` and `>`. `right_after_start` is true
    /// when the element has no content at all (`<a></a>`).
    fn end(&mut self, name: &[u8], raw: &[u8], right_after_start: bool) -> io::Result<()>;
    /// Every other token; `depth` is the number of open elements.
    fn other(&mut self, token: &Token<'_>, depth: usize) -> io::Result<()>;
    /// True once the visitor needs nothing more; the scan then stops right after the
    /// token it was handed last, leaving the rest of the source unread.
    fn finished(&self) -> bool {
        false
    }
}

/// Reads the document, calling `visitor` for each piece in order, to its end or until
/// the visitor is finished, and gives the source back positioned after the last piece.
pub(crate) fn scan<R: BufRead, V: Visitor>(
    source: R,
    visitor: &mut V,
) -> Result<R, WatermarkError> {
    let mut xml = XmlReader::new(source);
    let mut previous_was_start = false;
    loop {
        let depth = xml.depth();
        let token = xml.next_token()?;
        let was_start = std::mem::replace(&mut previous_was_start, false);
        match &token {
            Token::Start(tag) => {
                previous_was_start = true;
                visitor.tag(tag, false)?;
            }
            Token::Empty(tag) => visitor.tag(tag, true)?,
            Token::End { raw, name } => visitor.end(name, raw, was_start)?,
            Token::Eof => return Ok(xml.into_source()),
            other => visitor.other(other, depth)?,
        }
        if visitor.finished() {
            return Ok(xml.into_source());
        }
    }
}

impl From<XmlError> for WatermarkError {
    fn from(error: XmlError) -> Self {
        match error {
            XmlError::Malformed { at, reason } => Self::Malformed {
                line: at.line,
                column: at.column,
                reason,
            },
            XmlError::Truncated { at } => Self::Truncated {
                line: at.line,
                column: at.column,
            },
            XmlError::Io(error) => Self::Io(error),
        }
    }
}
