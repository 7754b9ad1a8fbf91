#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

use medcert_ccda::{
    Body, CcdaError, CcdaVersion, DocumentType, GeneratorConfig, generate, generate_document,
    parse, parse_header,
};

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
    assert_eq!(header.organization(), Some("St. Olaf & Partners Hospital"));
    assert_eq!(header.title, "Continuity of Care Document");
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
    let sections = parse(&doc[..]).unwrap().sections().to_vec();
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

/// A small document with every SHALL element of the US Realm Header, written by a
/// person with no represented organisation.
const MINIMAL: &str = r#"<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="US"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.9" extension="2015-08-01"/>
  <id root="1.2.3" extension="doc-1"/>
  <code code="11506-3" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Progress Note</title>
  <effectiveTime value="20240101"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="en-US"/>
  <recordTarget><patientRole><id nullFlavor="NI"/><id root="1.2.3.1" extension="p-9"/>
    <addr nullFlavor="UNK"/><telecom nullFlavor="UNK"/><patient/></patientRole></recordTarget>
  <author><time value="20240101"/><assignedAuthor><id root="2.16.840.1.113883.4.6"/>
    <assignedPerson><name>Dr Who</name></assignedPerson></assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization><id root="1.2.3"/>
    <name>A &amp; B</name><telecom nullFlavor="NI"/><addr nullFlavor="NI"/>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <component><structuredBody>
    <component><section><code code="11450-4"/><title>Problems</title></section></component>
  </structuredBody></component>
</ClinicalDocument>
"#;

#[test]
fn minimal_document_parses() {
    let ccda = parse(MINIMAL.as_bytes()).unwrap();
    let header = &ccda.header;
    assert_eq!(header.version, CcdaVersion::R2_1);
    assert_eq!(header.document_type, Some(DocumentType::ProgressNote));
    assert_eq!(header.document_id.root, "1.2.3");
    assert_eq!(header.document_id.extension.as_deref(), Some("doc-1"));
    assert_eq!(header.patient_id.extension.as_deref(), Some("p-9"));
    assert_eq!(header.custodian.name, "A & B");
    assert_eq!(header.author_organization, None);
    assert_eq!(header.organization(), Some("A & B"));
    assert_eq!(header.effective_time, "20240101");
    assert_eq!(header.title, "Progress Note");
    assert_eq!(ccda.sections().len(), 1);
    assert_eq!(ccda.sections()[0].code.as_deref(), Some("11450-4"));
}

#[test]
fn a_missing_shall_element_is_named_by_its_xpath() {
    let cases = [
        (
            r#"<realmCode code="US"/>"#,
            "/ClinicalDocument/realmCode[@code='US']",
        ),
        (
            r#"<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>"#,
            "/ClinicalDocument/typeId[@root='2.16.840.1.113883.1.3']",
        ),
        (r#"<title>Progress Note</title>"#, "/ClinicalDocument/title"),
        (
            r#"<languageCode code="en-US"/>"#,
            "/ClinicalDocument/languageCode",
        ),
        (
            r#"<id root="1.2.3.1" extension="p-9"/>"#,
            "/ClinicalDocument/recordTarget/patientRole/id[@root]",
        ),
        (
            "<assignedPerson><name>Dr Who</name></assignedPerson>",
            "/ClinicalDocument/author/assignedAuthor/(assignedPerson | assignedAuthoringDevice)",
        ),
        (
            "<name>A &amp; B</name>",
            "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/name",
        ),
    ];
    for (removed, xpath) in cases {
        let document = MINIMAL.replacen(removed, "", 1);
        assert_ne!(document, MINIMAL, "{removed}");
        let error = parse_header(document.as_bytes()).unwrap_err();
        assert!(
            matches!(error, CcdaError::MissingShall { xpath: named } if named == xpath),
            "{removed}: {error}"
        );
        assert_eq!(
            error.to_string(),
            format!("not a conformant C-CDA document: the US Realm Header requires {xpath}")
        );
    }
    let both_templates = MINIMAL
        .replace(
            r#"<templateId root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01"/>"#,
            "",
        )
        .replace(
            r#"<templateId root="2.16.840.1.113883.10.20.22.1.9" extension="2015-08-01"/>"#,
            "",
        );
    assert!(matches!(
        parse_header(both_templates.as_bytes()),
        Err(CcdaError::MissingShall { xpath }) if xpath.contains("10.20.22.1.1")
    ));
    let no_body = MINIMAL.replace("structuredBody", "otherBody");
    assert!(matches!(
        parse(no_body.as_bytes()),
        Err(CcdaError::MissingShall {
            xpath: "/ClinicalDocument/component/(structuredBody | nonXMLBody)"
        })
    ));
}

#[test]
fn a_device_author_and_the_authors_organisation_as_fallback() {
    let device = MINIMAL.replace(
        "<assignedPerson><name>Dr Who</name></assignedPerson>",
        "<assignedAuthoringDevice><softwareName>EHR</softwareName></assignedAuthoringDevice>\
         <representedOrganization><name>Clinic</name></representedOrganization>",
    );
    let header = parse_header(device.as_bytes()).unwrap();
    assert_eq!(header.author_organization.as_deref(), Some("Clinic"));
    assert_eq!(header.organization(), Some("A & B"));
    let unnamed_custodian = device.replace("<name>A &amp; B</name>", r#"<name nullFlavor="UNK"/>"#);
    let header = parse_header(unnamed_custodian.as_bytes()).unwrap();
    assert_eq!(header.organization(), Some("Clinic"));
}

#[test]
fn versions_come_from_the_us_realm_header_template() {
    let with = |extension: &str| {
        MINIMAL.replace(
            r#"root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01""#,
            &format!(r#"root="2.16.840.1.113883.10.20.22.1.1"{extension}"#),
        )
    };
    let version = |document: String| parse_header(document.as_bytes()).unwrap().version;
    assert_eq!(version(with("")), CcdaVersion::R1_1);
    assert_eq!(
        version(with(r#" extension="2014-06-09""#)),
        CcdaVersion::R2_0
    );
    assert_eq!(
        version(with(r#" extension="2015-08-01""#)),
        CcdaVersion::R2_1
    );
    assert_eq!(
        version(with(r#" extension="2024-05-01""#)),
        CcdaVersion::Other("2024-05-01".into())
    );
}

#[test]
fn syntax_variants_read_alike() {
    let expected = parse(MINIMAL.as_bytes()).unwrap();
    let body = MINIMAL.trim_start_matches(r#"<?xml version="1.0"?>"#);
    let prefixed = {
        let renamed = regex_free_prefix(body, "cda");
        format!(r#"<?xml version="1.0"?>{renamed}"#)
    };
    let variants = [
        format!("\u{feff}{MINIMAL}"),
        MINIMAL.replace('\n', "\r\n"),
        format!(
            r#"<?xml version="1.0"?>
<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<!-- exported by a test -->{body}"#
        ),
        prefixed,
    ];
    for variant in variants {
        assert_eq!(parse(variant.as_bytes()).unwrap(), expected, "{variant}");
    }
}

/// Writes every element of `document` (whose elements are all in the default HL7
/// namespace) with `prefix`, binding the prefix instead of the default namespace.
fn regex_free_prefix(document: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = document;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        out.push('<');
        if let Some(after) = rest.strip_prefix('/') {
            out.push('/');
            rest = after;
        }
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(prefix);
            out.push(':');
        }
    }
    out.push_str(rest);
    out.replace(
        r#"xmlns="urn:hl7-org:v3""#,
        &format!(r#"xmlns:{prefix}="urn:hl7-org:v3""#),
    )
}

#[test]
fn every_document_type_is_generated_and_read_back() {
    for document_type in DocumentType::ALL {
        let mut out = Vec::new();
        generate_document(&config(21, 120_000), document_type, &mut out).unwrap();
        let ccda = parse(&out[..]).unwrap();
        assert_eq!(ccda.header.document_type, Some(document_type));
        assert_eq!(ccda.header.title, document_type.title());
        assert_eq!(ccda.header.version, CcdaVersion::R2_1);
        match (document_type, &ccda.body) {
            (
                DocumentType::UnstructuredDocument,
                Body::NonXml {
                    media_type,
                    representation,
                    ..
                },
            ) => {
                assert_eq!(media_type.as_deref(), Some("application/pdf"));
                assert_eq!(representation.as_deref(), Some("B64"));
                assert!(out.len() > 115_000);
            }
            (DocumentType::UnstructuredDocument, body) => panic!("{body:?}"),
            (_, Body::Structured { sections }) => assert!(!sections.is_empty()),
            (_, body) => panic!("{document_type:?}: {body:?}"),
        }
    }
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let broken = MINIMAL.replace("<title>Problems</title>", "<title>Problems</titel>");
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    match parse(broken.as_bytes()) {
        Err(CcdaError::Malformed { line, column, .. }) => {
            let expected_line = line_of("</titel>");
            assert_eq!(line as usize, expected_line);
            let text_line = broken.lines().nth(expected_line - 1).unwrap();
            assert_eq!(column as usize, text_line.find("</titel>").unwrap() + 1);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let bad_attribute = MINIMAL.replace(r#"extension="p-9""#, "extension=p-9");
    match parse(bad_attribute.as_bytes()) {
        Err(CcdaError::Malformed { line, reason, .. }) => {
            assert_eq!(line as usize, line_of("p-9"), "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
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
fn text_after_the_root_is_malformed() {
    let trailing = format!("{MINIMAL}junk");
    let lines = MINIMAL.lines().count() as u64;
    assert!(matches!(
        parse(trailing.as_bytes()),
        Err(CcdaError::Malformed { line, column: 1, .. }) if line == lines + 1
    ));
}

#[test]
fn every_corpus_document_is_read() {
    let mut types = std::collections::HashSet::new();
    for (name, bytes) in medcert_test_support::ccda_corpus() {
        let header = parse_header(&bytes[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(header.organization().is_some(), "{name}");
        types.extend(header.document_type);
        // One vendor extract is a header alone; a whole parse names the missing body.
        match parse(&bytes[..]) {
            Ok(ccda) => assert_eq!(ccda.header, header, "{name}"),
            Err(CcdaError::MissingShall { xpath }) if name.contains("header-only") => {
                assert!(xpath.contains("structuredBody"), "{name}: {xpath}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert_eq!(types.len(), DocumentType::ALL.len(), "{types:?}");
}

#[test]
fn a_pre_ccda_document_is_refused_naming_the_header_template() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/ccda-corpus/refused/mdht-ccd-ds4p-segmented.xml"
    );
    let error = parse_header(&std::fs::read(path).unwrap()[..]).unwrap_err();
    assert!(
        matches!(error, CcdaError::MissingShall { xpath } if xpath.contains("10.20.22.1.1")),
        "{error}"
    );
}
