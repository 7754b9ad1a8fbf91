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

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::escape::escape;

use crate::DocumentType;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

const SNOMED: &str = "2.16.840.1.113883.6.96";
const RXNORM: &str = "2.16.840.1.113883.6.88";
const LOINC: &str = "2.16.840.1.113883.6.1";

const PROBLEMS: &[(&str, &str)] = &[
    ("38341003", "Essential hypertension"),
    ("44054006", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("49436004", "Atrial fibrillation"),
    ("35489007", "Depressive disorder"),
    ("55822004", "Hyperlipidemia"),
    ("69896004", "Rheumatoid arthritis"),
    ("709044004", "Chronic kidney disease"),
    ("399211009", "History of myocardial infarction"),
];
const MEDICATIONS: &[(&str, &str)] = &[
    ("314076", "Lisinopril 10 MG Oral Tablet"),
    ("860975", "Metformin hydrochloride 500 MG Oral Tablet"),
    ("197361", "Amlodipine 5 MG Oral Tablet"),
    ("617312", "Atorvastatin 10 MG Oral Tablet"),
    ("745679", "Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
    ("855332", "Warfarin Sodium 5 MG Oral Tablet"),
    ("312961", "Simvastatin 20 MG Oral Tablet"),
    ("310965", "Ibuprofen 200 MG Oral Tablet"),
];
const ALLERGENS: &[(&str, &str)] = &[
    ("7980", "Penicillin G"),
    ("2670", "Codeine"),
    ("1191", "Aspirin"),
    ("10831", "Sulfamethoxazole"),
    ("733", "Ampicillin"),
];
const REACTIONS: &[(&str, &str)] = &[
    ("247472004", "Hives"),
    ("39579001", "Anaphylaxis"),
    ("271807003", "Rash"),
    ("422587007", "Nausea"),
    ("267036007", "Dyspnea"),
];
/// LOINC code, name, unit, low and high of the reference range.
const RESULTS: &[(&str, &str, &str, f64, f64)] = &[
    (
        "2345-7",
        "Glucose [Mass/volume] in Serum or Plasma",
        "mg/dL",
        70.0,
        99.0,
    ),
    (
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "g/dL",
        13.5,
        17.5,
    ),
    (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.7,
        1.3,
    ),
    (
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        136.0,
        145.0,
    ),
    (
        "2823-3",
        "Potassium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        3.5,
        5.1,
    ),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "%",
        4.0,
        5.6,
    ),
    (
        "2093-3",
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "mg/dL",
        125.0,
        200.0,
    ),
    (
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "10*3/uL",
        4.5,
        11.0,
    ),
];
const GIVEN_NAMES: &[&str] = &[
    "Maria", "James", "Aiko", "Lena", "Omar", "Sofia", "Jonas", "Priya", "Mateo", "Chen",
];
const FAMILY_NAMES: &[&str] = &[
    "Garcia", "Smith", "Tanaka", "Novak", "Haddad", "Rossi", "Berg", "Patel", "Lopez", "Wang",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Boston", "MA", "02115"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Madison", "WI", "53703"),
];
const STREETS: &[&str] = &[
    "Elm Street",
    "Harbor Road",
    "Maple Avenue",
    "Hill Lane",
    "Main Street",
];
const NOTE_SENTENCES: &[&str] = &[
    "Patient reports improved energy since the last visit.",
    "Blood pressure remains above goal despite adherence to current regimen.",
    "No chest pain, palpitations or shortness of breath at rest.",
    "Discussed diet, daily walking and reduction of salt intake.",
    "Medication list reconciled with the patient and the pharmacy record.",
    "Follow-up laboratory tests ordered before the next appointment.",
    "Lungs clear to auscultation bilaterally; no peripheral edema.",
    "Patient understands the plan and agrees to return in three months.",
];

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

    /// One top-level section holding as many entries as fit in `budget` bytes.
    fn section(&mut self, kind: SectionKind, budget: usize) -> String {
        let (template, code, name, title, columns) = match kind {
            SectionKind::Allergies => (
                "2.16.840.1.113883.10.20.22.2.6.1",
                "48765-2",
                "Allergies and adverse reactions Document",
                "Allergies and Intolerances",
                "<th>Substance</th><th>Reaction</th><th>Status</th>",
            ),
            SectionKind::Medications => (
                "2.16.840.1.113883.10.20.22.2.1.1",
                "10160-0",
                "History of Medication use Narrative",
                "Medications",
                "<th>Medication</th><th>Instructions</th><th>Start date</th>",
            ),
            SectionKind::Problems => (
                "2.16.840.1.113883.10.20.22.2.5.1",
                "11450-4",
                "Problem list - Reported",
                "Problems",
                "<th>Problem</th><th>Status</th><th>Onset</th>",
            ),
            SectionKind::Results => (
                "2.16.840.1.113883.10.20.22.2.3.1",
                "30954-2",
                "Relevant diagnostic tests/laboratory data Narrative",
                "Results",
                "<th>Test</th><th>Value</th><th>Date</th>",
            ),
            SectionKind::Notes => (
                "2.16.840.1.113883.10.20.22.2.65",
                "11506-3",
                "Progress note",
                "Notes",
                "<th>Date</th><th>Note</th>",
            ),
        };
        let mut rows = String::new();
        let mut entries = String::new();
        let frame = 700;
        loop {
            let (row, entry) = match kind {
                SectionKind::Allergies => self.allergy(),
                SectionKind::Medications => self.medication(),
                SectionKind::Problems => self.problem(),
                SectionKind::Results => self.result(),
                SectionKind::Notes => self.note(),
            };
            let size = frame + rows.len() + entries.len() + row.len() + entry.len();
            if size > budget {
                break;
            }
            rows.push_str(&row);
            entries.push_str(&entry);
        }
        if matches!(kind, SectionKind::Notes) {
            // The last structured section takes up the slack, so that small documents
            // still reach their size.
            let used = frame + rows.len() + entries.len();
            self.addendum(&mut rows, budget.saturating_sub(used));
        }
        if rows.is_empty() {
            rows.push_str("                <tr><td>None recorded</td></tr>\n");
        }
        format!(
            r##"      <component>
        <section>
          <templateId root="{template}" extension="2015-08-01"/>
          <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{name}"/>
          <title>{title}</title>
          <text>
            <table border="1" width="100%">
              <thead><tr>{columns}</tr></thead>
              <tbody>
{rows}              </tbody>
            </table>
          </text>
{entries}        </section>
      </component>
"##
        )
    }

    /// A narrative row of about `room` bytes, if there is room for one.
    fn addendum(&mut self, rows: &mut String, room: usize) {
        const OPEN: &str = "                <tr><td>Addendum</td><td>";
        const CLOSE: &str = "</td></tr>\n";
        let Some(room) = room.checked_sub(OPEN.len() + CLOSE.len() + 60) else {
            return;
        };
        rows.push_str(OPEN);
        let mut written = 0;
        while written < room {
            let sentence = self.pick(NOTE_SENTENCES);
            let take = sentence.len().min(room - written);
            rows.push_str(&sentence[..take]);
            rows.push(' ');
            written += take + 1;
        }
        rows.push_str(CLOSE);
    }

    fn next_reference(&mut self, prefix: &str) -> String {
        self.entry_number += 1;
        format!("{prefix}{}", self.entry_number)
    }

    fn allergy(&mut self) -> (String, String) {
        let reference = self.next_reference("allergy");
        let (code, substance) = self.pick(ALLERGENS);
        let (reaction_code, reaction) = self.pick(REACTIONS);
        let (act_id, obs_id, onset) = (self.uuid(), self.uuid(), self.date());
        let row = format!(
            "                <tr ID=\"{reference}\"><td>{substance}</td><td>{reaction}</td><td>Active</td></tr>\n"
        );
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <act classCode="ACT" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.30" extension="2015-08-01"/>
              <id root="{act_id}"/>
              <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
              <statusCode code="active"/>
              <effectiveTime><low value="{onset}"/></effectiveTime>
              <entryRelationship typeCode="SUBJ">
                <observation classCode="OBS" moodCode="EVN">
                  <templateId root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09"/>
                  <id root="{obs_id}"/>
                  <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
                  <text><reference value="#{reference}"/></text>
                  <statusCode code="completed"/>
                  <effectiveTime><low value="{onset}"/></effectiveTime>
                  <value xsi:type="CD" code="419511003" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="Propensity to adverse reactions to drug"/>
                  <participant typeCode="CSM">
                    <participantRole classCode="MANU">
                      <playingEntity classCode="MMAT">
                        <code code="{code}" codeSystem="{RXNORM}" codeSystemName="RxNorm" displayName="{substance}"/>
                      </playingEntity>
                    </participantRole>
                  </participant>
                  <entryRelationship typeCode="MFST" inversionInd="true">
                    <observation classCode="OBS" moodCode="EVN">
                      <templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
                      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
                      <statusCode code="completed"/>
                      <value xsi:type="CD" code="{reaction_code}" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="{reaction}"/>
                    </observation>
                  </entryRelationship>
                </observation>
              </entryRelationship>
            </act>
          </entry>
"##
        );
        (row, entry)
    }

    fn medication(&mut self) -> (String, String) {
        let reference = self.next_reference("medication");
        let (code, drug) = self.pick(MEDICATIONS);
        let times = self.rng.gen_range(1..4);
        let (id, start) = (self.uuid(), self.date());
        let row = format!(
            "                <tr ID=\"{reference}\"><td>{drug}</td><td>1 tablet {times} times daily</td><td>{start}</td></tr>\n"
        );
        let hours = 24 / times;
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <substanceAdministration classCode="SBADM" moodCode="INT">
              <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
              <id root="{id}"/>
              <text><reference value="#{reference}"/></text>
              <statusCode code="active"/>
              <effectiveTime xsi:type="IVL_TS"><low value="{start}"/></effectiveTime>
              <effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A"><period value="{hours}" unit="h"/></effectiveTime>
              <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" codeSystemName="NCI Thesaurus" displayName="ORAL"/>
              <doseQuantity value="1"/>
              <consumable>
                <manufacturedProduct classCode="MANU">
                  <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
                  <manufacturedMaterial>
                    <code code="{code}" codeSystem="{RXNORM}" codeSystemName="RxNorm" displayName="{drug}"/>
                  </manufacturedMaterial>
                </manufacturedProduct>
              </consumable>
            </substanceAdministration>
          </entry>
"##
        );
        (row, entry)
    }

    fn problem(&mut self) -> (String, String) {
        let reference = self.next_reference("problem");
        let (code, problem) = self.pick(PROBLEMS);
        let (act_id, obs_id, onset) = (self.uuid(), self.uuid(), self.date());
        let row = format!(
            "                <tr ID=\"{reference}\"><td>{problem}</td><td>Active</td><td>{onset}</td></tr>\n"
        );
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <act classCode="ACT" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
              <id root="{act_id}"/>
              <code code="CONC" codeSystem="2.16.840.1.113883.5.6" displayName="Concern"/>
              <statusCode code="active"/>
              <effectiveTime><low value="{onset}"/></effectiveTime>
              <entryRelationship typeCode="SUBJ">
                <observation classCode="OBS" moodCode="EVN">
                  <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
                  <id root="{obs_id}"/>
                  <code code="55607006" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="Problem"/>
                  <text><reference value="#{reference}"/></text>
                  <statusCode code="completed"/>
                  <effectiveTime><low value="{onset}"/></effectiveTime>
                  <value xsi:type="CD" code="{code}" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="{problem}"/>
                </observation>
              </entryRelationship>
            </act>
          </entry>
"##
        );
        (row, entry)
    }

    fn result(&mut self) -> (String, String) {
        let reference = self.next_reference("result");
        let (code, test, unit, low, high) = self.pick(RESULTS);
        let value = self.rng.gen_range(low * 0.8..high * 1.2);
        let value = format!("{value:.1}");
        let interpretation = if value.parse::<f64>().unwrap_or(low) > high {
            ("H", "High")
        } else if value.parse::<f64>().unwrap_or(high) < low {
            ("L", "Low")
        } else {
            ("N", "Normal")
        };
        let (organizer_id, obs_id, time) = (self.uuid(), self.uuid(), self.timestamp());
        let row = format!(
            "                <tr ID=\"{reference}\"><td>{test}</td><td>{value} {unit}</td><td>{time}</td></tr>\n"
        );
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <organizer classCode="BATTERY" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.1" extension="2015-08-01"/>
              <id root="{organizer_id}"/>
              <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{test}"/>
              <statusCode code="completed"/>
              <component>
                <observation classCode="OBS" moodCode="EVN">
                  <templateId root="2.16.840.1.113883.10.20.22.4.2" extension="2015-08-01"/>
                  <id root="{obs_id}"/>
                  <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{test}"/>
                  <text><reference value="#{reference}"/></text>
                  <statusCode code="completed"/>
                  <effectiveTime value="{time}"/>
                  <value xsi:type="PQ" value="{value}" unit="{unit}"/>
                  <interpretationCode code="{}" codeSystem="2.16.840.1.113883.5.83" displayName="{}"/>
                  <referenceRange>
                    <observationRange>
                      <value xsi:type="IVL_PQ"><low value="{low}" unit="{unit}"/><high value="{high}" unit="{unit}"/></value>
                    </observationRange>
                  </referenceRange>
                </observation>
              </component>
            </organizer>
          </entry>
"##,
            interpretation.0, interpretation.1
        );
        (row, entry)
    }

    fn note(&mut self) -> (String, String) {
        let reference = self.next_reference("note");
        let mut text = String::new();
        for _ in 0..self.rng.gen_range(3..7) {
            let sentence = self.pick(NOTE_SENTENCES);
            let _ = write!(text, "{sentence} ");
        }
        let text = text.trim_end();
        let (id, time) = (self.uuid(), self.timestamp());
        let row =
            format!("                <tr><td>{time}</td><td ID=\"{reference}\">{text}</td></tr>\n");
        let entry = format!(
            r##"          <entry>
            <act classCode="ACT" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.202" extension="2016-11-01"/>
              <id root="{id}"/>
              <code code="11506-3" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="Progress note"/>
              <text><reference value="#{reference}"/></text>
              <statusCode code="completed"/>
              <effectiveTime value="{time}"/>
            </act>
          </entry>
"##
        );
        (row, entry)
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
