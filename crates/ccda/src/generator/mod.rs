//! A generator of realistic C-CDA R2.1 documents of every document type at a chosen
//! size, deterministic from a seed.
//!
//! A structured document (every type but the Unstructured Document) is all structured
//! content when small (header, allergies, medications, problems, results, notes); from
//! 64 KiB on, about a fifth (at most 3 MiB) is structured and the rest is base64
//! attachments (`observationMedia`), as in real records where scans make up the bulk.
//! The sections are the same for every type: they exercise the reader and the watermark,
//! not a type's own required sections. An Unstructured Document carries one embedded
//! base64 PDF-sized payload in `nonXMLBody/text`, a single text node of any size. The
//! document is written as it is made, so a document of any size needs no more memory
//! than one attachment's line and one section's entries.

mod sections;
mod vocabulary;

use std::io::{self, BufWriter, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::escape::escape;

use crate::DocumentType;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vocabulary::*;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// The same seed and settings always give the same bytes.
    pub seed: u64,
    /// Size of the document in bytes; met within a few bytes from 10 KB on.
    pub target_size: u64,
    /// The patient's medical treatment number at the hospital (`patientRole/id/@extension`).
    pub patient_id: String,
    /// The hospital's name: author organisation and custodian.
    pub hospital: String,
}

/// Writes a Continuity of Care Document to `out` and returns the number of bytes
/// written.
pub fn generate<W: Write>(config: &GeneratorConfig, out: W) -> io::Result<u64> {
    generate_document(config, DocumentType::ContinuityOfCareDocument, out)
}

/// Writes a document of the given type to `out` and returns the number of bytes
/// written.
pub fn generate_document<W: Write>(
    config: &GeneratorConfig,
    document_type: DocumentType,
    out: W,
) -> io::Result<u64> {
    let mut out = CountingWriter {
        inner: BufWriter::with_capacity(64 * 1024, out),
        written: 0,
    };
    let mut generator = Generator::new(config);
    let header = generator.header(document_type);
    out.write_all(header.as_bytes())?;
    if document_type == DocumentType::UnstructuredDocument {
        out.write_all(UNSTRUCTURED_OPEN.as_bytes())?;
        let close = (UNSTRUCTURED_CLOSE.len() + ROOT_CLOSE.len()) as u64;
        let room = config.target_size.saturating_sub(out.written + close);
        generator.base64(&mut out, largest_fitting(room))?;
        out.write_all(UNSTRUCTURED_CLOSE.as_bytes())?;
        out.write_all(ROOT_CLOSE.as_bytes())?;
        out.inner.flush()?;
        return Ok(out.written);
    }
    out.write_all(b"  <component>\n    <structuredBody>\n")?;

    let target = config.target_size;
    let structured_budget = if target < 64 * 1024 {
        target
    } else {
        (target / 5).clamp(48 * 1024, 3 * 1024 * 1024)
    };
    let kinds = [
        SectionKind::Allergies,
        SectionKind::Medications,
        SectionKind::Problems,
        SectionKind::Results,
        SectionKind::Notes,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let left = structured_budget.saturating_sub(out.written + CLOSING.len() as u64);
        let budget = left / (kinds.len() - i) as u64;
        let section = generator.section(*kind, budget as usize);
        out.write_all(section.as_bytes())?;
    }
    let room = target.saturating_sub(out.written + CLOSING.len() as u64);
    generator.attachments(&mut out, room)?;
    out.write_all(CLOSING.as_bytes())?;
    out.inner.flush()?;
    Ok(out.written)
}

const CLOSING: &str = "    </structuredBody>\n  </component>\n</ClinicalDocument>\n";
const UNSTRUCTURED_OPEN: &str = "  <component>\n    <nonXMLBody>\n      <text mediaType=\"application/pdf\" representation=\"B64\">\n";
const UNSTRUCTURED_CLOSE: &str = "      </text>\n    </nonXMLBody>\n  </component>\n";
const ROOT_CLOSE: &str = "</ClinicalDocument>\n";

struct CountingWriter<W: Write> {
    inner: BufWriter<W>,
    written: u64,
}

impl<W: Write> CountingWriter<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum SectionKind {
    Allergies,
    Medications,
    Problems,
    Results,
    Notes,
}

struct Generator<'c> {
    config: &'c GeneratorConfig,
    rng: ChaCha8Rng,
    hospital_oid: String,
    entry_number: usize,
}

impl<'c> Generator<'c> {
    fn new(config: &'c GeneratorConfig) -> Self {
        // FNV-1a of the hospital name gives it a stable OID arc.
        let arc = config
            .hospital
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
            % 1_000_000;
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            hospital_oid: format!("2.16.840.1.113883.3.{arc}"),
            entry_number: 0,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.r#gen();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
            (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
        )
    }

    fn date(&mut self) -> String {
        format!(
            "{}{:02}{:02}",
            self.rng.gen_range(2012..2025),
            self.rng.gen_range(1..13),
            self.rng.gen_range(1..29)
        )
    }

    fn timestamp(&mut self) -> String {
        let date = self.date();
        format!(
            "{date}{:02}{:02}00+0000",
            self.rng.gen_range(7..19),
            self.rng.gen_range(0..60)
        )
    }

    fn address(&mut self, indent: &str) -> String {
        let (city, state, zip) = self.pick(CITIES);
        let street = self.pick(STREETS);
        let number = self.rng.gen_range(1..400);
        format!(
            "{indent}<addr use=\"HP\">\n{indent}  <streetAddressLine>{number} {street}</streetAddressLine>\n\
             {indent}  <city>{city}</city>\n{indent}  <state>{state}</state>\n\
             {indent}  <postalCode>{zip}</postalCode>\n{indent}  <country>US</country>\n{indent}</addr>\n"
        )
    }

    fn phone(&mut self, indent: &str) -> String {
        format!(
            "{indent}<telecom use=\"WP\" value=\"tel:+1(555)555-{:04}\"/>\n",
            self.rng.gen_range(0..10_000)
        )
    }

    fn header(&mut self, document_type: DocumentType) -> String {
        let type_template = document_type.template_id();
        let type_code = document_type.loinc_code();
        let title = document_type.title();
        let hospital = escape(self.config.hospital.as_str()).into_owned();
        let patient_id = escape(self.config.patient_id.as_str()).into_owned();
        let oid = self.hospital_oid.clone();
        let document_id = self.uuid();
        let set_id = self.uuid();
        let now = self.timestamp();
        let given = self.pick(GIVEN_NAMES);
        let family = self.pick(FAMILY_NAMES);
        let gender = self.pick(&["F", "M"]);
        let birth = format!(
            "{}{:02}{:02}",
            self.rng.gen_range(1935..2015),
            self.rng.gen_range(1..13),
            self.rng.gen_range(1..29)
        );
        let patient_address = self.address("      ");
        let patient_phone = self.phone("      ");
        let doctor_given = self.pick(GIVEN_NAMES);
        let doctor_family = self.pick(FAMILY_NAMES);
        let npi = self.rng.gen_range(1_000_000_000_u64..2_000_000_000);
        let author_address = self.address("      ");
        let author_phone = self.phone("      ");
        let org_address = self.address("        ");
        let org_phone = self.phone("        ");
        let custodian_address = self.address("        ");
        let custodian_phone = self.phone("        ");
        let first_visit = self.date();
        format!(
            r##"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sdtc="urn:hl7-org:sdtc">
  <realmCode code="US"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01"/>
  <templateId root="{type_template}" extension="2015-08-01"/>
  <id root="{oid}" extension="{document_id}"/>
  <code code="{type_code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{title}"/>
  <title>{title}</title>
  <effectiveTime value="{now}"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="en-US"/>
  <setId root="{oid}" extension="{set_id}"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole>
      <id root="{oid}.1" extension="{patient_id}"/>
{patient_address}{patient_phone}      <patient>
        <name use="L">
          <given>{given}</given>
          <family>{family}</family>
        </name>
        <administrativeGenderCode code="{gender}" codeSystem="2.16.840.1.113883.5.1" displayName="{gender}"/>
        <birthTime value="{birth}"/>
        <maritalStatusCode code="M" codeSystem="2.16.840.1.113883.5.2" displayName="Married"/>
        <raceCode code="2106-3" codeSystem="2.16.840.1.113883.6.238" displayName="White"/>
        <ethnicGroupCode code="2186-5" codeSystem="2.16.840.1.113883.6.238" displayName="Not Hispanic or Latino"/>
        <languageCommunication>
          <languageCode code="en"/>
          <preferenceInd value="true"/>
        </languageCommunication>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="{now}"/>
    <assignedAuthor>
      <id root="2.16.840.1.113883.4.6" extension="{npi}"/>
      <code code="207Q00000X" codeSystem="2.16.840.1.113883.6.101" displayName="Family Medicine"/>
{author_address}{author_phone}      <assignedPerson>
        <name>
          <given>{doctor_given}</given>
          <family>{doctor_family}</family>
          <suffix>MD</suffix>
        </name>
      </assignedPerson>
      <representedOrganization>
        <id root="{oid}"/>
        <name>{hospital}</name>
{org_phone}{org_address}      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian>
    <assignedCustodian>
      <representedCustodianOrganization>
        <id root="{oid}"/>
        <name>{hospital}</name>
{custodian_phone}{custodian_address}      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
  <documentationOf>
    <serviceEvent classCode="PCPR">
      <effectiveTime>
        <low value="{first_visit}"/>
        <high value="{now}"/>
      </effectiveTime>
    </serviceEvent>
  </documentationOf>
"##
        )
    }

    /// Fills `room` bytes with a section of base64 attachments; writes nothing when the
    /// room is too small for one.
    fn attachments<W: Write>(&mut self, out: &mut CountingWriter<W>, room: u64) -> io::Result<()> {
        const OPEN: &str = r##"      <component>
        <section>
          <templateId root="2.16.840.1.113883.10.20.22.2.1"/>
          <code code="18748-4" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Diagnostic imaging study"/>
          <title>Diagnostic Imaging</title>
          <text>Scanned images and reports are attached below.</text>
"##;
        const CLOSE: &str = "        </section>\n      </component>\n";
        const MIN_ATTACHMENT: u64 = 1024;
        let frame = (OPEN.len() + CLOSE.len()) as u64;
        // An attachment's own markup is under 400 bytes.
        let mut room = match room.checked_sub(frame) {
            Some(left) if left >= 400 + MIN_ATTACHMENT => left,
            _ => return Ok(()),
        };
        out.write_all(OPEN.as_bytes())?;
        loop {
            self.entry_number += 1;
            let open = self.attachment_open(self.entry_number);
            let overhead = (open.len() + ATTACHMENT_CLOSE.len()) as u64;
            if room < overhead + MIN_ATTACHMENT {
                break;
            }
            let wanted = self.rng.gen_range(256 * 1024..1024 * 1024);
            let mut raw = wanted;
            if overhead + encoded_len(raw) > room {
                raw = largest_fitting(room - overhead);
            }
            out.write_all(open.as_bytes())?;
            self.base64(out, raw)?;
            out.write_all(ATTACHMENT_CLOSE.as_bytes())?;
            room -= overhead + encoded_len(raw);
        }
        out.write_all(CLOSE.as_bytes())
    }

    /// Writes `raw` random bytes in base64, 76 characters and a newline per line.
    fn base64<W: Write>(&mut self, out: &mut CountingWriter<W>, raw: u64) -> io::Result<()> {
        let mut chunk = vec![0_u8; 57 * 1024];
        let mut line = [0_u8; 77];
        let mut left = raw;
        while left > 0 {
            let take = (left as usize).min(chunk.len());
            self.rng.fill_bytes(&mut chunk[..take]);
            for piece in chunk[..take].chunks(57) {
                let n = BASE64
                    .encode_slice(piece, &mut line)
                    .expect("a 77-byte line holds 57 encoded bytes");
                line[n] = b'\n';
                out.write_all(&line[..=n])?;
            }
            left -= take as u64;
        }
        Ok(())
    }

    fn attachment_open(&mut self, number: usize) -> String {
        let id = self.uuid();
        format!(
            r##"          <entry>
            <observationMedia classCode="OBS" moodCode="EVN" ID="media{number}">
              <templateId root="2.16.840.1.113883.10.20.22.4.61"/>
              <id root="{id}"/>
              <languageCode code="en-US"/>
              <value mediaType="image/jpeg" representation="B64">
"##
        )
    }
}

const ATTACHMENT_CLOSE: &str =
    "              </value>\n            </observationMedia>\n          </entry>\n";

/// Bytes taken by `raw` bytes in base64, 76 characters and a newline per line.
fn encoded_len(raw: u64) -> u64 {
    let chars = raw.div_ceil(3) * 4;
    chars + chars.div_ceil(76)
}

/// The most raw bytes whose encoding fits in `space`.
fn largest_fitting(space: u64) -> u64 {
    let mut raw = space * 57 / 77;
    while raw > 0 && encoded_len(raw) > space {
        raw -= 1;
    }
    while encoded_len(raw + 1) <= space {
        raw += 1;
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_fitting_fills_the_space() {
        for space in [100_u64, 1000, 77 * 13, 123_457] {
            let raw = largest_fitting(space);
            assert!(encoded_len(raw) <= space);
            assert!(encoded_len(raw + 1) > space);
        }
    }
}
