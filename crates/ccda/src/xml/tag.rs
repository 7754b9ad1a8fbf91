//! A start or empty-element tag split into the pieces of its syntax.

use std::ops::Range;

/// One attribute of a tag, as byte ranges into the tag's content (the bytes between `<`
/// and `>` or `/>`).
#[derive(Debug, Clone)]
pub struct AttributeSpan {
    /// Whitespace before the attribute's name.
    pub separator: Range<usize>,
    /// The attribute's name, prefix included.
    pub key: Range<usize>,
    /// The `=` with any whitespace around it.
    pub equals: Range<usize>,
    /// The quote around the value: `"` or `'`.
    pub quote: u8,
    /// The raw (escaped) value, between the quotes.
    pub value: Range<usize>,
}

/// A start or empty-element tag: its content and where its pieces are.
#[derive(Debug)]
pub struct Tag<'a> {
    /// What stands between `<` and `>` (or `/>`).
    pub content: &'a [u8],
    /// Its attributes, in the order written.
    pub attributes: &'a [AttributeSpan],
    name_len: usize,
    /// Whitespace after the last attribute, before `>` or `/>`.
    pub tail: Range<usize>,
}

impl<'a> Tag<'a> {
    pub(super) fn new(content: &'a [u8], name_len: usize, attributes: &'a [AttributeSpan]) -> Self {
        let tail_start = attributes
            .last()
            .map_or(name_len, |attribute| attribute.value.end + 1);
        Self {
            content,
            attributes,
            name_len,
            tail: tail_start..content.len(),
        }
    }

    /// The element's name as written, prefix included.
    pub fn name(&self) -> &'a [u8] {
        &self.content[..self.name_len]
    }

    /// The name without its prefix.
    pub fn local_name(&self) -> &'a [u8] {
        let name = self.name();
        match memchr::memchr(b':', name) {
            Some(colon) => &name[colon + 1..],
            None => name,
        }
    }

    /// The prefix of the name, if it has one.
    pub fn prefix(&self) -> Option<&'a [u8]> {
        let name = self.name();
        memchr::memchr(b':', name).map(|colon| &name[..colon])
    }

    /// The name of `attribute`, one of this tag's, as written.
    pub fn key(&self, attribute: &AttributeSpan) -> &'a [u8] {
        &self.content[attribute.key.clone()]
    }

    /// The raw value of the attribute named `key`, as written.
    pub fn raw_value(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.attributes
            .iter()
            .find(|attribute| self.key(attribute) == key)
            .map(|attribute| &self.content[attribute.value.clone()])
    }

    /// The value of the attribute named `key`, decoded and normalised as a parser does.
    pub fn value(&self, key: &[u8]) -> Option<String> {
        self.raw_value(key).map(decode_attribute_value)
    }
}

/// Decodes a raw attribute value: references resolved, tab and line ends as spaces.
/// The reader has checked its references; any it cannot resolve are kept as written.
pub fn decode_attribute_value(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        match raw[at] {
            b'&' => {
                let end = memchr::memchr(b';', &raw[at..]).map_or(raw.len(), |e| at + e);
                match resolve_reference(&raw[(at + 1).min(end)..end]) {
                    Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    None => out.extend_from_slice(&raw[at..(end + 1).min(raw.len())]),
                }
                at = end + 1;
            }
            b'\r' if raw.get(at + 1) == Some(&b'\n') => {
                out.push(b' ');
                at += 2;
            }
            b'\t' | b'\n' | b'\r' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The character a reference (`amp`, `#60`, `#x3C`) stands for, if it is predefined or a
/// character reference.
pub fn resolve_reference(name: &[u8]) -> Option<char> {
    let name = std::str::from_utf8(name).ok()?;
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

pub(super) fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || matches!(byte, b'_' | b':') || byte >= 0x80
}

fn is_name_byte(byte: u8) -> bool {
    is_name_start(byte) || byte.is_ascii_digit() || matches!(byte, b'-' | b'.')
}

fn is_name(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(&b) if is_name_start(b)) && bytes.iter().all(|&b| is_name_byte(b))
}

/// Whether `name` may stand between `&` and `;`: a character reference to a character
/// or a name.
pub(super) fn is_reference_name(name: &[u8]) -> bool {
    match name {
        [b'#', b'x', hex @ ..] => {
            !hex.is_empty()
                && hex.iter().all(u8::is_ascii_hexdigit)
                && resolve_reference(name).is_some()
        }
        [b'#', digits @ ..] => {
            !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
                && resolve_reference(name).is_some()
        }
        _ => is_name(name),
    }
}

pub(super) fn name_len(content: &[u8]) -> usize {
    content
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(content.len())
}

/// Splits a tag's content into name, attributes and trailing whitespace, filling `spans`.
/// On failure, gives the offset in the content and the reason.
pub(super) fn split(content: &[u8], spans: &mut Vec<AttributeSpan>) -> Result<(), (usize, String)> {
    spans.clear();
    let len = content.len();
    let name_end = name_len(content);
    if !is_name(&content[..name_end]) {
        return Err((0, "a tag whose name is not an XML name".into()));
    }
    let mut at = name_end;
    loop {
        let separator_start = at;
        while at < len && content[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == len {
            return Ok(());
        }
        if at == separator_start {
            return Err((at, "attributes must be separated by whitespace".into()));
        }
        let key_start = at;
        while at < len && !content[at].is_ascii_whitespace() && content[at] != b'=' {
            at += 1;
        }
        let key = key_start..at;
        if !is_name(&content[key.clone()]) {
            return Err((
                key_start,
                "an attribute whose name is not an XML name".into(),
            ));
        }
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
        check_value(&content[value.clone()]).map_err(|(i, reason)| (value_start + i, reason))?;
        if spans
            .iter()
            .any(|other| content[other.key.clone()] == content[key.clone()])
        {
            return Err((key_start, "an attribute given twice".into()));
        }
        spans.push(AttributeSpan {
            separator: separator_start..key_start,
            key,
            equals: equals_start..at,
            quote,
            value: value.clone(),
        });
        at = value.end + 1;
    }
}

fn check_value(value: &[u8]) -> Result<(), (usize, String)> {
    if let Some(at) = memchr::memchr(b'<', value) {
        return Err((at, "'<' in an attribute value".into()));
    }
    for at in memchr::memchr_iter(b'&', value) {
        let terminated = memchr::memchr(b';', &value[at..]).map(|end| &value[at + 1..at + end]);
        if !terminated.is_some_and(is_reference_name) {
            return Err((
                at,
                "an '&' in an attribute value that starts no reference (write '&' as &amp;)".into(),
            ));
        }
    }
    Ok(())
}
