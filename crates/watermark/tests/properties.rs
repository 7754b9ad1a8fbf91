#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use std::io::Cursor;

use medcert_ccda::{GeneratorConfig, generate};
use medcert_watermark::{
    Mark, SigningKey, TooSmall, UnsignedPayload, Verdict, VerifyingKey, WatermarkError, capacity,
    content_fingerprint, embed, extract, matches_anchored_fingerprint, prepare, sign_payload,
    verify,
};
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::reader::Reader;
use quick_xml::writer::Writer;

const MARK: Mark<'static> = Mark {
    hospital_id: "hospital1",
    record_id: "rec-0001",
    issued_at: 1_760_000_000,
};

fn hospital_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn hospital_keys(id: &str) -> Option<VerifyingKey> {
    (id == "hospital1").then(|| hospital_key().verifying_key())
}

fn document(seed: u64, target_size: u64) -> Vec<u8> {
    let config = GeneratorConfig {
        seed,
        target_size,
        patient_id: "MTN-77".into(),
        hospital: "Hospital One".into(),
    };
    let mut out = Vec::new();
    generate(&config, &mut out).unwrap();
    out
}

fn embedded(doc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    embed(&mut Cursor::new(doc), &mut out, &MARK, &hospital_key()).unwrap();
    out
}

/// A document exercising every kind of markup, with enough tags to carry a mark.
fn handwritten() -> Vec<u8> {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- exported -->\n\
         <root xmlns=\"urn:x\" xmlns:p='urn:p'>\n  <?render fast?>\n  <a>x &amp; y &#60; z &gt; \
         <![CDATA[<raw> & ]]>tail</a>\n  <empty></empty>\n  <self/>\n  \
         <q v=\"it's\" w='say \"hi\"' e=\"&quot;&apos;\"/>\n  <p:b  t = \"1\"  >text</p:b >\n",
    );
    for i in 0..150 {
        doc.push_str(&format!(
            "  <item id=\"{i}\" code='c{i}' system=\"s\" display=\"Item &amp; {i}\"/>\n"
        ));
    }
    doc.push_str("</root>\n");
    doc.into_bytes()
}

/// Every parsed event with its decoded content, empty elements expanded, declaration
/// and whitespace outside the root left out.
fn parsed(doc: &[u8]) -> Vec<String> {
    let mut reader = Reader::from_reader(doc);
    reader.config_mut().expand_empty_elements = true;
    let mut events = Vec::new();
    let mut depth = 0;
    loop {
        let event = reader.read_event().unwrap();
        let described = match &event {
            Event::Start(start) => {
                depth += 1;
                let attributes: Vec<String> = start
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0);
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(a.key.as_ref()),
                            value.unwrap()
                        )
                    })
                    .collect();
                format!(
                    "start {} {attributes:?}",
                    String::from_utf8_lossy(start.name().as_ref())
                )
            }
            Event::End(end) => {
                depth -= 1;
                format!("end {}", String::from_utf8_lossy(end.name().as_ref()))
            }
            Event::Text(text) if depth == 0 => continue,
            Event::Text(text) => format!("text {}", text.decode().unwrap()),
            Event::GeneralRef(r) => format!("ref {}", r.decode().unwrap()),
            Event::CData(data) => format!("cdata {}", data.decode().unwrap()),
            Event::Comment(c) => format!("comment {}", c.decode().unwrap()),
            Event::PI(pi) => format!("pi {:?}", pi.content()),
            Event::Decl(_) => continue,
            Event::DocType(d) => format!("doctype {}", d.decode().unwrap()),
            Event::Empty(_) => unreachable!("empty elements are expanded"),
            Event::Eof => break,
        };
        events.push(described);
    }
    events
}

/// The document written anew by quick-xml's writer: every tag in its one style.
fn reserialised(doc: &[u8]) -> Vec<u8> {
    let mut reader = Reader::from_reader(doc);
    let mut writer = Writer::new(Vec::new());
    loop {
        let event = reader.read_event().unwrap();
        let fresh = |start: &BytesStart<'_>| {
            let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
            let mut fresh = BytesStart::new(name);
            for attribute in start.attributes() {
                let attribute = attribute.unwrap();
                let key = String::from_utf8(attribute.key.as_ref().to_vec()).unwrap();
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap();
                fresh.push_attribute((key.as_str(), value.as_ref()));
            }
            fresh
        };
        match event {
            Event::Start(start) => writer.write_event(Event::Start(fresh(&start))),
            Event::Empty(start) => writer.write_event(Event::Empty(fresh(&start))),
            Event::End(end) => {
                let name = String::from_utf8(end.name().as_ref().to_vec()).unwrap();
                writer.write_event(Event::End(BytesEnd::new(name)))
            }
            Event::Eof => break,
            other => writer.write_event(other),
        }
        .unwrap();
    }
    writer.into_inner()
}

#[test]
fn parsed_content_is_identical_before_and_after_embedding() {
    for doc in [document(1, 200_000), handwritten()] {
        let marked = embedded(&doc);
        assert_ne!(marked, doc, "the mark changes some bytes");
        assert_eq!(parsed(&marked), parsed(&doc));
        assert_eq!(
            content_fingerprint(&marked[..]).unwrap(),
            content_fingerprint(&doc[..]).unwrap()
        );
    }
}

#[test]
fn bytes_outside_the_marked_tags_are_kept() {
    let doc = document(2, 1_000_000);
    let marked = embedded(&doc);
    // The mark lives in the first tags; the rest of the document, attachments included,
    // is byte for byte the same.
    let tail = 900_000;
    assert_eq!(marked[marked.len() - tail..], doc[doc.len() - tail..]);
    let text_of = |d: &[u8]| -> Vec<u8> {
        let mut inside = false;
        d.iter()
            .copied()
            .filter(|&b| {
                let keep = !inside && b != b'<';
                if b == b'<' {
                    inside = true;
                } else if b == b'>' {
                    inside = false;
                }
                keep
            })
            .collect()
    };
    assert_eq!(text_of(&marked), text_of(&doc));
}

#[test]
fn embed_then_extract_returns_the_payload() {
    let doc = document(3, 100_000);
    let mut marked = Vec::new();
    let report = embed(&mut Cursor::new(&doc), &mut marked, &MARK, &hospital_key()).unwrap();
    let payload = extract(&marked[..]).unwrap().expect("a mark");
    assert_eq!(payload.hospital_id, MARK.hospital_id);
    assert_eq!(payload.record_id, MARK.record_id);
    assert_eq!(payload.issued_at, MARK.issued_at);
    assert_eq!(payload.content_fingerprint, report.content_fingerprint);
    assert_eq!(payload.fingerprint(), report.watermark_fingerprint);
    assert_eq!(report.copies, 5);

    let verification = verify(&marked[..], hospital_keys).unwrap();
    assert_eq!(
        verification.verdict,
        Verdict::Authentic {
            hospital_id: "hospital1".into(),
            record_id: "rec-0001".into(),
            issued_at: 1_760_000_000,
            signer: hospital_key().verifying_key(),
        }
    );
    assert_eq!(verification.content_fingerprint, report.content_fingerprint);
    assert_eq!(
        verification.watermark_fingerprint,
        Some(report.watermark_fingerprint)
    );
}

#[test]
fn a_signature_made_elsewhere_embeds_the_same_mark() {
    let doc = document(4, 50_000);
    let mut source = Cursor::new(&doc);
    let prepared = prepare(&mut source, &MARK).unwrap();
    let unsigned = prepared.unsigned().clone();
    assert_eq!(unsigned.hospital_id(), MARK.hospital_id);
    assert_eq!(unsigned.record_id(), MARK.record_id);
    assert_eq!(unsigned.issued_at(), MARK.issued_at);
    assert_eq!(
        unsigned.content_fingerprint(),
        content_fingerprint(&doc[..]).unwrap()
    );
    // The signer sees only the unsigned fields, as the key service does.
    let signature = sign_payload(&unsigned, &hospital_key());
    let mut marked = Vec::new();
    let report = prepared
        .embed(&mut source, &mut marked, signature, TooSmall::Refuse)
        .unwrap();
    assert_eq!(marked, embedded(&doc));
    assert_eq!(report.content_fingerprint, unsigned.content_fingerprint());
    assert!(matches!(
        verify(&marked[..], hospital_keys).unwrap().verdict,
        Verdict::Authentic { .. }
    ));

    // Another key's signature embeds, and reads as forged.
    let other = SigningKey::from_bytes(&[2; 32]);
    let mut source = Cursor::new(&doc);
    let prepared = prepare(&mut source, &MARK).unwrap();
    let signature = sign_payload(prepared.unsigned(), &other);
    let mut forged = Vec::new();
    prepared
        .embed(&mut source, &mut forged, signature, TooSmall::Refuse)
        .unwrap();
    assert!(matches!(
        verify(&forged[..], hospital_keys).unwrap().verdict,
        Verdict::Forged { .. }
    ));
}

#[test]
fn unsigned_payloads_keep_the_id_limits() {
    assert!(UnsignedPayload::new("hospital1", "rec-1", 1, [0; 32]).is_ok());
    assert!(matches!(
        UnsignedPayload::new("", "rec-1", 1, [0; 32]),
        Err(WatermarkError::InvalidId {
            field: "hospital id"
        })
    ));
    assert!(matches!(
        UnsignedPayload::new("hospital1", &"r".repeat(65), 1, [0; 32]),
        Err(WatermarkError::InvalidId { field: "record id" })
    ));
}

fn replace_once(doc: &[u8], from: &str, to: &str, skip: usize) -> Vec<u8> {
    let text = String::from_utf8(doc.to_vec()).unwrap();
    let at = text
        .match_indices(from)
        .nth(skip)
        .expect("pattern present")
        .0;
    let mut changed = text[..at].to_owned();
    changed.push_str(to);
    changed.push_str(&text[at + from.len()..]);
    changed.into_bytes()
}

#[test]
fn a_change_to_one_text_node_is_tampering() {
    let marked = embedded(&document(4, 400_000));
    let mut changed_text = vec![
        replace_once(
            &marked,
            ">Continuity of Care Document<",
            ">Continuity of Care Documen<",
            0,
        ),
        replace_once(&marked, ">Problems<", ">Problemz<", 0),
    ];
    // One base64 character deep inside an attachment.
    let mut attachment = marked.clone();
    let at = marked.len() - 5000;
    attachment[at] = if attachment[at] == b'A' { b'B' } else { b'A' };
    changed_text.push(attachment);
    for changed in changed_text {
        let verdict = verify(&changed[..], hospital_keys).unwrap().verdict;
        assert!(
            matches!(verdict, Verdict::Tampered { ref record_id, .. } if record_id == "rec-0001"),
            "{verdict:?}"
        );
    }
}

#[test]
fn a_change_to_one_attribute_value_is_tampering() {
    let marked = embedded(&document(5, 400_000));
    for (from, to, skip) in [
        ("codeSystemName=", "codeSystemNamf=", 0),
        ("extension=\"2015-08-01\"", "extension=\"2015-08-02\"", 0),
        ("unit=\"", "unit=\"k", 3),
    ] {
        let changed = replace_once(&marked, from, to, skip);
        let verdict = verify(&changed[..], hospital_keys).unwrap().verdict;
        assert!(
            matches!(verdict, Verdict::Tampered { .. }),
            "{from}: {verdict:?}"
        );
    }
}

#[test]
fn a_mark_signed_with_another_key_is_forged() {
    let doc = document(6, 100_000);
    let impostor = SigningKey::from_bytes(&[2; 32]);
    let mut marked = Vec::new();
    embed(&mut Cursor::new(&doc), &mut marked, &MARK, &impostor).unwrap();
    let verification = verify(&marked[..], hospital_keys).unwrap();
    assert_eq!(
        verification.verdict,
        Verdict::Forged {
            claimed_hospital_id: "hospital1".into()
        }
    );
}

#[test]
fn reserialising_with_another_writer_makes_the_mark_absent() {
    for doc in [document(7, 300_000), handwritten()] {
        let marked = embedded(&doc);
        let rewritten = reserialised(&marked);
        assert_eq!(parsed(&rewritten), parsed(&doc));
        let verification = verify(&rewritten[..], hospital_keys).unwrap();
        assert_eq!(verification.verdict, Verdict::Absent);
        assert_eq!(verification.watermark_fingerprint, None);
        // The anchored content fingerprint still proves what the record is.
        let anchored = content_fingerprint(&doc[..]).unwrap();
        assert!(matches_anchored_fingerprint(&rewritten[..], &anchored).unwrap());
        // Text added just inside the root's first child.
        let changed = replace_once(&rewritten, ">", ">X", 2);
        assert!(!matches_anchored_fingerprint(&changed[..], &anchored).unwrap());
    }
}

#[test]
fn an_unmarked_document_is_absent() {
    let doc = document(8, 100_000);
    assert_eq!(
        verify(&doc[..], hospital_keys).unwrap().verdict,
        Verdict::Absent
    );
    assert_eq!(extract(&doc[..]).unwrap(), None);
}

#[test]
fn a_document_too_small_for_the_mark_says_so() {
    let small = b"<?xml version=\"1.0\"?>\n<doc a=\"1\" b=\"2\"><x/><y k=\"v\"></y>text</doc>\n";
    let available = capacity(&small[..]).unwrap();
    // doc: 2 × (separator, equals, quote), tail, end tail; x: tail, empty form;
    // y: separator, equals, quote, tail, empty form (its end tail is not counted).
    assert_eq!(available, 2 * 5 + 2 + 2 + (2 + 1) + (5 + 2 + 1));
    let mut out = Vec::new();
    match embed(
        &mut Cursor::new(&small[..]),
        &mut out,
        &MARK,
        &hospital_key(),
    ) {
        Err(WatermarkError::InsufficientCapacity {
            needed_bits,
            available_bits,
        }) => {
            assert_eq!(available_bits, available);
            assert_eq!(needed_bits, MARK.needed_bits());
        }
        other => panic!("expected InsufficientCapacity, got {other:?}"),
    }
    assert!(out.is_empty(), "nothing is written");

    // Anchoring instead: the document goes out unchanged and relies on its fingerprint.
    let mut source = Cursor::new(&small[..]);
    let prepared = prepare(&mut source, &MARK).unwrap();
    let signature = sign_payload(prepared.unsigned(), &hospital_key());
    let anchored = prepared
        .embed(&mut source, &mut out, signature, TooSmall::WriteUnchanged)
        .unwrap();
    assert_eq!(out, small);
    assert_eq!(anchored.copies, 0);
    let verification = verify(&out[..], hospital_keys).unwrap();
    assert_eq!(verification.verdict, Verdict::Absent);
    assert_eq!(
        verification.content_fingerprint,
        anchored.content_fingerprint
    );
}

#[test]
fn generated_documents_have_room_from_10_kb() {
    for (size, copies) in [(10_000, 1), (50_000, 5)] {
        let doc = document(9, size);
        let mut marked = Vec::new();
        let report = embed(&mut Cursor::new(&doc), &mut marked, &MARK, &hospital_key()).unwrap();
        assert_eq!(
            report.copies, copies,
            "{size} bytes, {} bits",
            report.available_bits
        );
        assert!(matches!(
            verify(&marked[..], hospital_keys).unwrap().verdict,
            Verdict::Authentic { .. }
        ));
    }
}

#[test]
fn the_mark_survives_damage_to_a_minority_of_copies() {
    let doc = handwritten();
    let marked = embedded(&doc);
    // Rewrite the carrier of the first 12 items (within the first copies) in one uniform
    // style, as an editor touching a few lines would.
    let text = String::from_utf8(marked.clone()).unwrap();
    let start = text.find("<item").unwrap();
    let end = text.match_indices("<item").nth(12).unwrap().0;
    let normalised = reserialised(&marked);
    let normalised = String::from_utf8(normalised).unwrap();
    let n_start = normalised.find("<item").unwrap();
    let n_end = normalised.match_indices("<item").nth(12).unwrap().0;
    let damaged = format!(
        "{}{}{}",
        &text[..start],
        &normalised[n_start..n_end],
        &text[end..]
    );
    assert_ne!(damaged.as_bytes(), &marked[..]);
    assert!(matches!(
        verify(damaged.as_bytes(), hospital_keys).unwrap().verdict,
        Verdict::Authentic { .. }
    ));
}

#[test]
fn an_unknown_hospital_is_an_error() {
    let marked = embedded(&document(10, 50_000));
    match verify(&marked[..], |_| None) {
        Err(WatermarkError::UnknownHospital { hospital_id }) => {
            assert_eq!(hospital_id, "hospital1")
        }
        other => panic!("expected UnknownHospital, got {other:?}"),
    }
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    let doc = document(11, 30_000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (doc[..doc.len() / 2].to_vec(), "truncated"),
        (replace_once(&doc, "</title>", "</titel>", 0), "malformed"),
        (replace_once(&doc, "<title>", "<title x>", 0), "malformed"),
        (b"just text".to_vec(), "malformed"),
        (Vec::new(), "truncated"),
    ];
    for (input, kind) in cases {
        let mut out = Vec::new();
        let error = embed(&mut Cursor::new(&input), &mut out, &MARK, &hospital_key()).unwrap_err();
        match (&error, kind) {
            (WatermarkError::Truncated { .. }, "truncated") => {}
            (WatermarkError::Malformed { line, .. }, "malformed") => assert!(*line >= 1),
            _ => panic!("expected {kind}, got {error:?}"),
        }
        assert!(out.is_empty(), "nothing written for {kind}");
        assert!(verify(&input[..], hospital_keys).is_err());
    }
    let too_long = "x".repeat(65);
    let mark = Mark {
        record_id: &too_long,
        ..MARK
    };
    assert!(matches!(
        embed(
            &mut Cursor::new(&doc),
            &mut Vec::new(),
            &mark,
            &hospital_key()
        ),
        Err(WatermarkError::InvalidId { field: "record id" })
    ));
}

#[test]
fn malformed_xml_names_line_and_column() {
    let doc = b"<root>\n  <a x=\"1\">\n  </b>\n</root>";
    match verify(&doc[..], hospital_keys) {
        Err(WatermarkError::Malformed {
            line,
            column,
            reason,
        }) => {
            assert_eq!((line, column), (3, 3), "{reason}");
            assert!(reason.contains("</b>"), "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn every_corpus_document_keeps_its_verdicts() {
    let mut marked_documents = 0;
    for (name, original) in medcert_test_support::ccda_corpus() {
        let mut marked = Vec::new();
        let report = match embed(
            &mut Cursor::new(&original),
            &mut marked,
            &MARK,
            &hospital_key(),
        ) {
            Ok(report) => report,
            // Too small to carry the mark: it relies on the anchored fingerprint.
            Err(WatermarkError::InsufficientCapacity { .. }) => {
                assert!(original.len() < 20_000, "{name}");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        marked_documents += 1;
        assert_eq!(
            parsed(&marked),
            parsed(&original),
            "{name}: meaning changed"
        );
        let verdict = |doc: &[u8]| verify(doc, hospital_keys).unwrap();
        assert!(
            matches!(verdict(&marked).verdict, Verdict::Authentic { .. }),
            "{name}"
        );

        let rewritten = reserialised(&marked);
        let verification = verdict(&rewritten);
        assert_eq!(verification.verdict, Verdict::Absent, "{name}");
        assert_eq!(
            verification.content_fingerprint, report.content_fingerprint,
            "{name}"
        );

        // The first character of the title (whose tag may carry mark bits).
        let title_tag = marked.windows(6).position(|w| w == b"<title").unwrap();
        let title = title_tag + marked[title_tag..].iter().position(|&b| b == b'>').unwrap() + 1;
        let mut tampered = marked.clone();
        tampered[title] = if tampered[title] == b'X' { b'Y' } else { b'X' };
        assert!(
            matches!(verdict(&tampered).verdict, Verdict::Tampered { .. }),
            "{name}"
        );

        let other = SigningKey::from_bytes(&[2; 32]).verifying_key();
        assert!(matches!(
            verify(&marked[..], |_| Some(other)).unwrap().verdict,
            Verdict::Forged { .. }
        ));

        assert!(
            matches!(
                verify(&marked[..marked.len() / 2], hospital_keys),
                Err(WatermarkError::Truncated { .. })
            ),
            "{name}"
        );
    }
    assert!(
        marked_documents >= 20,
        "{marked_documents} documents carried the mark"
    );
}
