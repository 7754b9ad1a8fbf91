use std::io::BufReader;

use super::*;

/// The document written back from its tokens, each piece as `[kind:bytes]`, with
/// adjacent text and CDATA pieces joined so that the result does not depend on the
/// source's buffer size.
fn tokens(document: &[u8], buffer: usize) -> Result<String, XmlError> {
    let mut reader = XmlReader::new(BufReader::with_capacity(buffer, document));
    let mut out = String::new();
    let mut last_kind = "";
    loop {
        let (kind, bytes): (&str, Vec<u8>) = match reader.next_token()? {
            Token::Decl(d) => ("decl", d.to_vec()),
            Token::Pi(p) => ("pi", p.to_vec()),
            Token::Comment(c) => ("comment", c.to_vec()),
            Token::Doctype(d) => ("doctype", d.to_vec()),
            Token::Start(t) => ("start", t.name().to_vec()),
            Token::Empty(t) => ("empty", t.name().to_vec()),
            Token::End { name, .. } => ("end", name.to_vec()),
            Token::Text(t) => ("text", t.to_vec()),
            Token::Reference(r) => ("ref", r.to_vec()),
            Token::CDataStart => ("cdata-start", Vec::new()),
            Token::CData(c) => ("cdata", c.to_vec()),
            Token::CDataEnd => ("cdata-end", Vec::new()),
            Token::Eof => return Ok(out),
        };
        let text = String::from_utf8_lossy(&bytes);
        if kind == last_kind && matches!(kind, "text" | "cdata") {
            out.insert_str(out.len() - 1, &text);
        } else {
            out.push_str(&format!("[{kind}:{text}]"));
        }
        last_kind = kind;
    }
}

const DOCUMENT: &[u8] = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\r\n<?xml-stylesheet type=\"text/xsl\" href=\"cda.xsl\"?>\n\
<!-- before the root -->\n<v3:ClinicalDocument xmlns:v3=\"urn:hl7-org:v3\" a='1 > 0'>\
<v3:title>A &amp; B&#x3C;</v3:title><v3:x/><v3:t><![CDATA[a]]b]]]>c]]</v3:t>\r\n</v3:ClinicalDocument >\n";

#[test]
fn a_document_reads_the_same_whatever_the_buffer_size() {
    let expected = "[decl:xml version=\"1.0\"][text:\r\n][pi:xml-stylesheet type=\"text/xsl\" href=\"cda.xsl\"][text:\n]\
        [comment: before the root ][text:\n][start:v3:ClinicalDocument][start:v3:title][text:A ][ref:amp][text: B]\
        [ref:#x3C][end:v3:title][empty:v3:x][start:v3:t][cdata-start:][cdata:a]]b]][cdata-end:][text:c]]]\
        [end:v3:t][text:\r\n][end:v3:ClinicalDocument][text:\n]";
    let expected = expected.replace("]        [", "][");
    for buffer in [1, 2, 3, 5, 8, 13, 64, 8192] {
        assert_eq!(
            tokens(DOCUMENT, buffer).unwrap(),
            expected,
            "buffer {buffer}"
        );
    }
}

#[test]
fn a_long_text_node_comes_in_pieces_no_longer_than_the_buffer() {
    let mut document = b"<a>".to_vec();
    document.extend(std::iter::repeat_n(b'\n', 100_000));
    document.extend_from_slice(b"</a>");
    let mut reader = XmlReader::new(BufReader::with_capacity(4096, &document[..]));
    let mut text = 0;
    loop {
        match reader.next_token().unwrap() {
            Token::Text(piece) => {
                assert!(piece.len() <= 4096);
                text += piece.len();
            }
            Token::Eof => break,
            _ => {}
        }
    }
    assert_eq!(text, 100_000);
}

fn error(document: &[u8]) -> String {
    for buffer in [1, 7, 8192] {
        let error = tokens(document, buffer).unwrap_err().to_string();
        let again = tokens(document, 8192).unwrap_err().to_string();
        assert_eq!(
            error, again,
            "the error does not depend on the buffer ({buffer})"
        );
    }
    tokens(document, 8192).unwrap_err().to_string()
}

#[test]
fn malformed_documents_are_refused_where_they_break() {
    assert_eq!(
        error(b"<a>\n  <b></c></a>"),
        "malformed XML at line 2, column 6: end tag </c> does not match start tag <b>"
    );
    assert_eq!(
        error(b"<a/><b/>"),
        "malformed XML at line 1, column 5: a second root element"
    );
    assert_eq!(
        error(b"<a/>\nx"),
        "malformed XML at line 2, column 1: text outside the root element"
    );
    assert_eq!(
        error(b"<a>AT&T</a>"),
        "malformed XML at line 1, column 6: an '&' that does not start a reference such as \
         &amp; (write a literal '&' as &amp;)"
    );
    assert_eq!(
        error(b"<a x='1' x='2'/>"),
        "malformed XML at line 1, column 10: an attribute given twice"
    );
    assert_eq!(
        error(b"<a>\n<b x='<'/></a>"),
        "malformed XML at line 2, column 7: '<' in an attribute value"
    );
    assert_eq!(
        error(b"<a>1 < 2</a>"),
        "malformed XML at line 1, column 7: a '<' that starts no tag (write a literal '<' as &lt;)"
    );
    assert_eq!(
        error(b"<a/><?xml version='1.0'?>"),
        "malformed XML at line 1, column 5: an XML declaration that is not at the start of the document"
    );
}

#[test]
fn truncated_documents_say_so() {
    for document in [
        &b""[..],
        b"<a>",
        b"<a><b/>text",
        b"<a x='1",
        b"<a><!-- open",
        b"<a><![CDATA[x]]",
        b"<?xml version='1.0'?>",
        b"<a>&amp",
    ] {
        assert!(
            error(document).starts_with("truncated XML"),
            "{:?}: {}",
            String::from_utf8_lossy(document),
            error(document)
        );
    }
}

#[test]
fn lines_and_columns_count_from_one_across_buffers() {
    let document = b"<a>\n\n\n   <b></c></a>";
    let mut reader = XmlReader::new(BufReader::with_capacity(2, &document[..]));
    while !matches!(reader.next_token(), Err(_) | Ok(Token::Eof)) {}
    assert_eq!(
        error(document),
        "malformed XML at line 4, column 7: end tag </c> does not match start tag <b>"
    );
}

#[test]
fn the_source_is_given_back_after_the_last_token() {
    let document = b"<a><b>text</b>rest</a>";
    let mut reader = XmlReader::new(&document[..]);
    while !matches!(reader.next_token().unwrap(), Token::End { name: b"b", .. }) {}
    assert_eq!(reader.into_source(), b"rest</a>");
}

#[test]
fn attribute_values_decode_as_a_parser_reads_them() {
    assert_eq!(
        decode_attribute_value(b"a&amp;b&#x9;c\r\nd\te"),
        "a&b\tc d e"
    );
    assert_eq!(decode_attribute_value(b"&lt;&#60;&gt;"), "<<>");
}
