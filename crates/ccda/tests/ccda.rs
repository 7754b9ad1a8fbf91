use medcert_ccda::{CcdaError, GeneratorConfig, generate, parse, parse_header};

fn config(seed: u64, target_size: u64) -> GeneratorConfig {
    GeneratorConfig {
        seed,
        target_size,
        patient_id: "MTN-4711".into(),
        hospital: "St. Olaf & Partners Hospital".into(),
    }
}

fn document(seed: u64, target_size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let written = generate(&config(seed, target_size), &mut out).unwrap();
    assert_eq!(written, out.len() as u64);
    out
}

#[test]
fn generated_documents_reach_the_target_size() {
    for target in [10_000_u64, 30_000, 100_000, 1_000_000, 5_000_000] {
        let size = document(7, target).len() as f64;
        let error = (size - target as f64).abs() / target as f64;
        assert!(
            error < 0.04,
            "target {target}: got {size} bytes ({:.1}% off)",
            error * 100.0
        );
    }
}

#[test]
fn generation_is_deterministic_from_the_seed() {
    assert_eq!(document(3, 200_000), document(3, 200_000));
    assert_ne!(document(3, 200_000), document(4, 200_000));
}

#[test]
fn header_of_a_generated_document() {
    let doc = document(11, 50_000);
    let header = parse_header(&doc[..]).unwrap();
    assert_eq!(header.patient_id.extension.as_deref(), Some("MTN-4711"));
    assert!(header.patient_id.root.starts_with("2.16.840.1.113883.3."));
    assert_eq!(header.author_organization, "St. Olaf & Partners Hospital");
    assert_eq!(header.title.as_deref(), Some("Continuity of Care Document"));
    assert_eq!(header.effective_time.len(), "20240131094500+0000".len());
    assert_eq!(
        header.document_id.extension.as_ref().map(String::len),
        Some(36)
    );
    assert_eq!(parse(&doc[..]).unwrap().header, header);
}

#[test]
fn sections_of_a_generated_document_carry_loinc_codes() {
    let doc = document(5, 300_000);
    let sections = parse(&doc[..]).unwrap().sections;
    let codes: Vec<_> = sections
        .iter()
        .map(|s| s.code.as_deref().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "48765-2", "10160-0", "11450-4", "30954-2", "11506-3", "18748-4"
        ]
    );
    assert_eq!(sections[2].title.as_deref(), Some("Problems"));
    assert_eq!(sections[5].title.as_deref(), Some("Diagnostic Imaging"));
}

#[test]
fn large_documents_are_mostly_attachments() {
    let doc = String::from_utf8(document(9, 2_000_000)).unwrap();
    let media = doc.matches("<observationMedia").count();
    assert!(media >= 2, "{media} attachments");
    let base64_lines = doc
        .lines()
        .filter(|l| l.len() == 76 && !l.contains(' '))
        .count();
    assert!(base64_lines * 77 > 1_400_000, "{base64_lines} base64 lines");
}

const MINIMAL: &str = r#"<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="1.2.3" extension="doc-1"/>
  <effectiveTime value="20240101"/>
  <recordTarget><patientRole><id root="1.2.3.1" extension="p-9"/></patientRole></recordTarget>
  <author><assignedAuthor><representedOrganization><name>A &amp; B</name></representedOrganization></assignedAuthor></author>
  <component><structuredBody>
    <component><section><code code="11450-4"/><title>Problems</title></section></component>
  </structuredBody></component>
</ClinicalDocument>
"#;

#[test]
fn minimal_document_parses() {
    let ccda = parse(MINIMAL.as_bytes()).unwrap();
    assert_eq!(ccda.header.document_id.root, "1.2.3");
    assert_eq!(ccda.header.document_id.extension.as_deref(), Some("doc-1"));
    assert_eq!(ccda.header.patient_id.extension.as_deref(), Some("p-9"));
    assert_eq!(ccda.header.author_organization, "A & B");
    assert_eq!(ccda.header.effective_time, "20240101");
    assert_eq!(ccda.header.title, None);
    assert_eq!(ccda.sections.len(), 1);
    assert_eq!(ccda.sections[0].code.as_deref(), Some("11450-4"));
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let broken = MINIMAL.replace("<title>Problems</title>", "<title>Problems</titel>");
    match parse(broken.as_bytes()) {
        Err(CcdaError::Malformed { line, column, .. }) => {
            assert_eq!(line, 8);
            let text_line = broken.lines().nth(7).unwrap();
            assert_eq!(column as usize, text_line.find("</titel>").unwrap() + 1);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let bad_attribute = MINIMAL.replace(r#"extension="p-9""#, "extension=p-9");
    match parse(bad_attribute.as_bytes()) {
        Err(CcdaError::Malformed { line, reason, .. }) => {
            assert_eq!(line, 5, "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let message = parse(broken.as_bytes()).unwrap_err().to_string();
    assert!(message.contains("line 8"), "{message}");
}

#[test]
fn truncated_documents_are_reported_as_truncated() {
    let doc = document(2, 40_000);
    for cut in [0, 10, doc.len() / 3, doc.len() / 2 + 7, doc.len() - 3] {
        match parse(&doc[..cut]) {
            Err(CcdaError::Truncated { line, .. }) => assert!(line >= 1),
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn other_xml_documents_are_not_ccda() {
    match parse(&b"<?xml version=\"1.0\"?><html><body/></html>"[..]) {
        Err(CcdaError::NotCcda { found }) => assert_eq!(found, "html"),
        other => panic!("expected NotCcda, got {other:?}"),
    }
    let no_namespace = MINIMAL.replace(r#" xmlns="urn:hl7-org:v3""#, "");
    assert!(matches!(
        parse(no_namespace.as_bytes()),
        Err(CcdaError::NotCcda { .. })
    ));
}

#[test]
fn missing_header_fields_are_named() {
    let no_patient = MINIMAL.replace(r#"<id root="1.2.3.1" extension="p-9"/>"#, "");
    let error = parse(no_patient.as_bytes()).unwrap_err();
    assert!(matches!(
        error,
        CcdaError::MissingHeaderField {
            field: "patient id"
        }
    ));
    assert_eq!(error.to_string(), "C-CDA header has no patient id");
}

#[test]
fn text_after_the_root_is_malformed() {
    let trailing = format!("{MINIMAL}junk");
    assert!(matches!(
        parse(trailing.as_bytes()),
        Err(CcdaError::Malformed {
            line: 11,
            column: 1,
            ..
        })
    ));
}
