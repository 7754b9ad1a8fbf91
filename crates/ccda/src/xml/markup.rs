//! Where a piece of markup that starts with `<` ends, and what kind it is, found a
//! buffer at a time.

use super::tag;

/// The kinds of markup that start with `<`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Markup {
    Tag,
    EndTag,
    Instruction,
    Comment,
    CData,
    Doctype,
}

/// Finds where a piece of markup ends, a buffer at a time.
#[derive(Default)]
pub(super) struct MarkupScan {
    kind: Option<Markup>,
    quote: Option<u8>,
    /// Depth of `[` in a document type's internal subset.
    brackets: usize,
}

impl MarkupScan {
    /// Looks at `buffer`, which follows the `gathered` bytes of this markup. Returns how
    /// many bytes of `buffer` belong to it and, once it is complete or cannot be
    /// markup, its kind or the reason.
    pub(super) fn feed(
        &mut self,
        gathered: &[u8],
        buffer: &[u8],
    ) -> (usize, Option<Result<Markup, &'static str>>) {
        let Some(kind) = self.kind else {
            return self.classify(gathered, buffer);
        };
        for (i, &byte) in buffer.iter().enumerate() {
            let done = match kind {
                Markup::Tag | Markup::EndTag | Markup::Doctype => {
                    match (self.quote, byte) {
                        (Some(q), b) if b == q => self.quote = None,
                        (Some(_), _) => {}
                        (None, b'"' | b'\'') => self.quote = Some(byte),
                        (None, b'[') if kind == Markup::Doctype => self.brackets += 1,
                        (None, b']') if kind == Markup::Doctype => {
                            self.brackets = self.brackets.saturating_sub(1);
                        }
                        (None, b'<') if kind != Markup::Doctype => {
                            return (i + 1, Some(Err("a '<' inside a tag")));
                        }
                        _ => {}
                    }
                    byte == b'>' && self.quote.is_none() && self.brackets == 0
                }
                Markup::Instruction => {
                    byte == b'>'
                        && ends_with(gathered, &buffer[..i], b"?")
                        && gathered.len() + i >= 3
                }
                Markup::Comment => {
                    byte == b'>'
                        && ends_with(gathered, &buffer[..i], b"--")
                        && gathered.len() + i >= 6
                }
                Markup::CData => unreachable!("a CDATA section is not gathered"),
            };
            if done {
                return (i + 1, Some(Ok(kind)));
            }
        }
        (buffer.len(), None)
    }

    /// Decides the kind from the first bytes, taking just as many as that needs.
    fn classify(
        &mut self,
        gathered: &[u8],
        buffer: &[u8],
    ) -> (usize, Option<Result<Markup, &'static str>>) {
        const COMMENT: &[u8] = b"<!--";
        const CDATA: &[u8] = b"<![CDATA[";
        const DOCTYPE: &[u8] = b"<!DOCTYPE";
        // At most `<![CDATA[` is gathered before the kind is known.
        let mut seen = [0_u8; 9];
        seen[..gathered.len()].copy_from_slice(gathered);
        for (len, (i, &byte)) in (gathered.len() + 1..).zip(buffer.iter().enumerate()) {
            seen[len - 1] = byte;
            let seen = &seen[..len];
            let kind = match seen {
                [b'<'] => continue,
                [b'<', b'?'] => Some(Markup::Instruction),
                [b'<', b'/'] => Some(Markup::EndTag),
                [b'<', b'!', ..] => {
                    if seen == COMMENT {
                        Some(Markup::Comment)
                    } else if seen == CDATA {
                        return (i + 1, Some(Ok(Markup::CData)));
                    } else if seen == DOCTYPE {
                        Some(Markup::Doctype)
                    } else if [COMMENT, CDATA, DOCTYPE]
                        .iter()
                        .any(|m| m.starts_with(seen))
                    {
                        continue;
                    } else {
                        return (
                            i + 1,
                            Some(Err(
                                "a '<!' that starts no comment, CDATA section or document type",
                            )),
                        );
                    }
                }
                [b'<', first] if tag::is_name_start(*first) => Some(Markup::Tag),
                _ => {
                    return (
                        i + 1,
                        Some(Err(
                            "a '<' that starts no tag (write a literal '<' as &lt;)",
                        )),
                    );
                }
            };
            self.kind = kind;
            let (used, outcome) = self.feed(seen, &buffer[i + 1..]);
            return (i + 1 + used, outcome);
        }
        (buffer.len(), None)
    }
}

/// Whether `gathered` followed by `more` ends with `suffix`.
fn ends_with(gathered: &[u8], more: &[u8], suffix: &[u8]) -> bool {
    let n = suffix.len();
    if more.len() >= n {
        return more.ends_with(suffix);
    }
    let from_gathered = n - more.len();
    gathered.len() >= from_gathered
        && gathered[gathered.len() - from_gathered..] == suffix[..from_gathered]
        && suffix[from_gathered..] == *more
}
