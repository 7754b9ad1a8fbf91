//! HL7 C-CDA documents: reading the header and the section list of a document as a
//! stream, and generating realistic documents of a chosen size from a seed.
//!
//! Reading never holds the document: memory is bounded by the largest single piece of
//! markup or text, whatever the document's size.

mod generator;
mod position;

use std::io::BufRead;

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

pub use generator::{GeneratorConfig, generate};
pub use position::LineTrackingReader;

/// The namespace every C-CDA element lives in.
pub const HL7_V3_NAMESPACE: &str = "urn:hl7-org:v3";

/// An HL7 instance identifier (`II`): an OID or UUID root and an optional extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId {
    pub root: String,
    pub extension: Option<String>,
}

/// What a C-CDA header says about the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcdaHeader {
    /// `ClinicalDocument/id`.
    pub document_id: InstanceId,
    /// `ClinicalDocument/title`, if present.
    pub title: Option<String>,
    /// `ClinicalDocument/effectiveTime/@value`, an HL7 TS such as `20240131094500+0100`.
    pub effective_time: String,
    /// The first `recordTarget/patientRole/id`.
    pub patient_id: InstanceId,
    /// The first `author/assignedAuthor/representedOrganization/name`.
    pub author_organization: String,
}

/// One top-level section of the structured body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `section/code/@code`, a LOINC code such as `11450-4` (problem list).
    pub code: Option<String>,
    /// `section/title`.
    pub title: Option<String>,
}

/// A read C-CDA document: its header and its top-level sections, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ccda {
    pub header: CcdaHeader,
    pub sections: Vec<Section>,
}

#[derive(Debug, thiserror::Error)]
pub enum CcdaError {
    #[error("malformed XML at line {line}, column {column}: {reason}")]
    Malformed {
        line: u64,
        column: u64,
        reason: String,
    },
    #[error(
        "truncated XML: the document ends at line {line}, column {column} before it is complete; \
         send the whole file"
    )]
    Truncated { line: u64, column: u64 },
    #[error(
        "not a C-CDA document: the root element is {found}, expected ClinicalDocument in \
         namespace {HL7_V3_NAMESPACE}"
    )]
    NotCcda { found: String },
    #[error("C-CDA header has no {field}")]
    MissingHeaderField { field: &'static str },
    #[error("reading the document failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the whole document, checking that it is well-formed, and returns its header
/// and its top-level sections.
pub fn parse<R: BufRead>(reader: R) -> Result<Ccda, CcdaError> {
    let mut parser = Parser::new(reader);
    parser.run(false)?;
    Ok(Ccda {
        header: parser.found.header()?,
        sections: parser.found.sections,
    })
}

/// Reads the document only as far as the start of its body and returns the header; the
/// rest is not read, so a fault there is not reported.
pub fn parse_header<R: BufRead>(reader: R) -> Result<CcdaHeader, CcdaError> {
    let mut parser = Parser::new(reader);
    parser.run(true)?;
    parser.found.header()
}

/// Where a piece of header text goes while it is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextTarget {
    Title,
    Organization,
    SectionTitle,
}

#[derive(Default)]
struct Found {
    document_id: Option<InstanceId>,
    title: Option<String>,
    effective_time: Option<String>,
    patient_id: Option<InstanceId>,
    author_organization: Option<String>,
    sections: Vec<Section>,
}

impl Found {
    fn header(&mut self) -> Result<CcdaHeader, CcdaError> {
        let missing = |field| CcdaError::MissingHeaderField { field };
        Ok(CcdaHeader {
            document_id: self.document_id.take().ok_or(missing("document id"))?,
            title: self.title.take(),
            effective_time: self.effective_time.take().ok_or(missing("effectiveTime"))?,
            patient_id: self.patient_id.take().ok_or(missing("patient id"))?,
            author_organization: self
                .author_organization
                .take()
                .ok_or(missing("author organization"))?,
        })
    }
}

struct Parser<R> {
    reader: NsReader<LineTrackingReader<R>>,
    /// Local names of the open elements; empty for elements outside the HL7 namespace.
    path: Vec<Vec<u8>>,
    seen_root: bool,
    text_target: Option<(TextTarget, usize)>,
    text: String,
    found: Found,
}

const DOCUMENT_ID: &[&[u8]] = &[b"ClinicalDocument", b"id"];
const TITLE: &[&[u8]] = &[b"ClinicalDocument", b"title"];
const EFFECTIVE_TIME: &[&[u8]] = &[b"ClinicalDocument", b"effectiveTime"];
const PATIENT_ID: &[&[u8]] = &[b"ClinicalDocument", b"recordTarget", b"patientRole", b"id"];
const AUTHOR_ORGANIZATION: &[&[u8]] = &[
    b"ClinicalDocument",
    b"author",
    b"assignedAuthor",
    b"representedOrganization",
    b"name",
];
const BODY: &[&[u8]] = &[b"ClinicalDocument", b"component"];
const SECTION: &[&[u8]] = &[
    b"ClinicalDocument",
    b"component",
    b"structuredBody",
    b"component",
    b"section",
];

impl<R: BufRead> Parser<R> {
    fn new(reader: R) -> Self {
        Self {
            reader: NsReader::from_reader(LineTrackingReader::new(reader)),
            path: Vec::new(),
            seen_root: false,
            text_target: None,
            text: String::new(),
            found: Found::default(),
        }
    }

    fn at(&self, path: &[&[u8]]) -> bool {
        self.path.len() == path.len() && self.path.iter().zip(path).all(|(a, b)| a == b)
    }

    fn in_section_child(&self, child: &[u8]) -> bool {
        self.path.len() == SECTION.len() + 1
            && self.path[..SECTION.len()]
                .iter()
                .zip(SECTION)
                .all(|(a, b)| a == b)
            && self.path[SECTION.len()] == child
    }

    fn located_error(&self, offset: u64, reason: String) -> CcdaError {
        let (line, column) = self.reader.get_ref().line_column(offset);
        CcdaError::Malformed {
            line,
            column,
            reason,
        }
    }

    fn truncated(&self) -> CcdaError {
        let (line, column) = self
            .reader
            .get_ref()
            .line_column(self.reader.get_ref().consumed());
        CcdaError::Truncated { line, column }
    }

    fn run(&mut self, header_only: bool) -> Result<(), CcdaError> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let event_start = self.reader.buffer_position();
            self.reader.get_mut().forget_before(event_start);
            let (namespace, event) = match self.reader.read_resolved_event_into(&mut buf) {
                Ok(read) => read,
                Err(XmlError::Io(e)) => {
                    return Err(CcdaError::Io(std::io::Error::new(e.kind(), e.to_string())));
                }
                Err(XmlError::Syntax(
                    SyntaxError::UnclosedTag
                    | SyntaxError::UnclosedComment
                    | SyntaxError::UnclosedCData
                    | SyntaxError::UnclosedPI
                    | SyntaxError::UnclosedXmlDecl
                    | SyntaxError::UnclosedDoctype
                    | SyntaxError::UnclosedSingleQuotedAttributeValue
                    | SyntaxError::UnclosedDoubleQuotedAttributeValue,
                )) => return Err(self.truncated()),
                Err(e) => {
                    return Err(self.located_error(self.reader.error_position(), e.to_string()));
                }
            };
            let in_hl7 = matches!(namespace, ResolveResult::Bound(Namespace(ns)) if ns == HL7_V3_NAMESPACE.as_bytes());
            match event {
                Event::Start(start) => {
                    let local = start.local_name().as_ref().to_vec();
                    self.open(&start, local, in_hl7, event_start)?;
                    if header_only && self.at(BODY) {
                        return Ok(());
                    }
                }
                Event::Empty(start) => {
                    let local = start.local_name().as_ref().to_vec();
                    self.open(&start, local, in_hl7, event_start)?;
                    self.close();
                }
                Event::End(_) => self.close(),
                Event::Text(text) => {
                    if self.path.is_empty() {
                        if let Some(at) = text.iter().position(|b| !b.is_ascii_whitespace()) {
                            return Err(self.located_error(
                                event_start + at as u64,
                                "text outside the root element".into(),
                            ));
                        }
                    } else if self.text_target.is_some() {
                        let decoded = text
                            .decode()
                            .map_err(|e| self.located_error(event_start, e.to_string()))?;
                        self.text.push_str(&decoded);
                    }
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        Ok(None) => reference.decode().ok().and_then(|name| {
                            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                        }),
                        Err(e) => return Err(self.located_error(event_start, e.to_string())),
                    };
                    if self.text_target.is_some() {
                        self.text.push_str(resolved.as_deref().unwrap_or(""));
                    }
                }
                Event::Eof => {
                    if !self.seen_root || !self.path.is_empty() {
                        return Err(self.truncated());
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    fn open(
        &mut self,
        start: &BytesStart<'_>,
        local: Vec<u8>,
        in_hl7: bool,
        offset: u64,
    ) -> Result<(), CcdaError> {
        if self.path.is_empty() {
            if self.seen_root {
                return Err(self.located_error(offset, "a second root element".into()));
            }
            self.seen_root = true;
            if !(in_hl7 && local == b"ClinicalDocument") {
                return Err(CcdaError::NotCcda {
                    found: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                });
            }
        }
        self.path.push(if in_hl7 { local } else { Vec::new() });
        if self.at(DOCUMENT_ID) && self.found.document_id.is_none() {
            self.found.document_id = Some(self.instance_id(start, offset)?);
        } else if self.at(PATIENT_ID) && self.found.patient_id.is_none() {
            self.found.patient_id = Some(self.instance_id(start, offset)?);
        } else if self.at(EFFECTIVE_TIME) && self.found.effective_time.is_none() {
            self.found.effective_time = self.attribute(start, b"value", offset)?;
        } else if self.at(TITLE) && self.found.title.is_none() {
            self.start_text(TextTarget::Title);
        } else if self.at(AUTHOR_ORGANIZATION) && self.found.author_organization.is_none() {
            self.start_text(TextTarget::Organization);
        } else if self.at(SECTION) {
            self.found.sections.push(Section {
                code: None,
                title: None,
            });
        } else if self.in_section_child(b"code") {
            let code = self.attribute(start, b"code", offset)?;
            if let Some(section) = self.found.sections.last_mut() {
                section.code = section.code.take().or(code);
            }
        } else if self.in_section_child(b"title") {
            self.start_text(TextTarget::SectionTitle);
        }
        Ok(())
    }

    fn start_text(&mut self, target: TextTarget) {
        self.text.clear();
        self.text_target = Some((target, self.path.len()));
    }

    fn close(&mut self) {
        if let Some((target, depth)) = self.text_target
            && depth == self.path.len()
        {
            let text = std::mem::take(&mut self.text).trim().to_owned();
            match target {
                TextTarget::Title => self.found.title = Some(text),
                TextTarget::Organization => self.found.author_organization = Some(text),
                TextTarget::SectionTitle => {
                    if let Some(section) = self.found.sections.last_mut() {
                        section.title = Some(text);
                    }
                }
            }
            self.text_target = None;
        }
        self.path.pop();
    }

    fn attribute(
        &self,
        start: &BytesStart<'_>,
        name: &[u8],
        offset: u64,
    ) -> Result<Option<String>, CcdaError> {
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| self.located_error(offset, e.to_string()))?;
            if attribute.key.as_ref() == name {
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| self.located_error(offset, e.to_string()))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    fn instance_id(&self, start: &BytesStart<'_>, offset: u64) -> Result<InstanceId, CcdaError> {
        let root = self.attribute(start, b"root", offset)?.ok_or_else(|| {
            self.located_error(offset, "an id element has no root attribute".into())
        })?;
        Ok(InstanceId {
            root,
            extension: self.attribute(start, b"extension", offset)?,
        })
    }
}
