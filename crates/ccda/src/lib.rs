//! HL7 C-CDA documents: reading the US Realm Header and the body of a document as a
//! stream, and generating realistic documents of every C-CDA R2.1 type from a seed.
//!
//! Reading never holds the document: memory is bounded by the largest single piece of
//! markup, whatever the size of the document or of any of its text nodes (see
//! [`xml`]). Documents may start with a byte order mark, an XML declaration,
//! processing instructions (a stylesheet) and comments, use any line ends, and bind the
//! HL7 namespace to any prefix.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

mod generator;
mod header;
mod reader;
pub mod xml;

pub use generator::{GeneratorConfig, generate, generate_document};
pub use header::{CcdaHeader, CcdaVersion, Custodian, DocumentType, InstanceId};

use std::io::BufRead;

/// The namespace every C-CDA element lives in.
pub const HL7_V3_NAMESPACE: &str = "urn:hl7-org:v3";

/// One top-level section of a structured body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `section/code/@code`, a LOINC code such as `11450-4` (problem list).
    pub code: Option<String>,
    /// `section/title`.
    pub title: Option<String>,
}

/// The body of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `structuredBody`: its top-level sections, in document order.
    Structured {
        /// The `component/section` elements directly below `structuredBody`.
        sections: Vec<Section>,
    },
    /// `nonXMLBody` (an Unstructured Document): what its `text` says of the content.
    NonXml {
        /// `text/@mediaType`, e.g. `application/pdf`.
        media_type: Option<String>,
        /// `text/@representation`: `B64` for embedded base64 content, absent for text.
        representation: Option<String>,
        /// `text/reference/@value`, when the content is referenced instead of embedded.
        reference: Option<String>,
    },
}

/// A read C-CDA document: its header and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ccda {
    /// What the US Realm Header says.
    pub header: CcdaHeader,
    /// What `component` holds: a structured or an unstructured body.
    pub body: Body,
}

impl Ccda {
    /// The top-level sections of a structured body; none for an unstructured one.
    pub fn sections(&self) -> &[Section] {
        match &self.body {
            Body::Structured { sections } => sections,
            Body::NonXml { .. } => &[],
        }
    }
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum CcdaError {
    /// The document is not well-formed XML.
    #[error("malformed XML at line {line}, column {column}: {reason}")]
    Malformed {
        /// The 1-based line of the fault.
        line: u64,
        /// The 1-based byte column of the fault.
        column: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The input ends before the document is complete.
    #[error(
        "truncated XML: the document ends at line {line}, column {column} before it is complete"
    )]
    Truncated {
        /// The 1-based line where the input ends.
        line: u64,
        /// The 1-based byte column where the input ends.
        column: u64,
    },
    /// The root element is not `ClinicalDocument` in the HL7 namespace.
    #[error(
        "not a C-CDA document: the root element is {found}, expected ClinicalDocument in \
         namespace {HL7_V3_NAMESPACE}"
    )]
    NotCcda {
        /// The root element's name as written, prefix included.
        found: String,
    },
    /// A SHALL element of the US Realm Header is missing or has the wrong value.
    #[error("not a conformant C-CDA document: the US Realm Header requires {xpath}")]
    MissingShall {
        /// The XPath of the required element.
        xpath: &'static str,
    },
    /// The source could not be read.
    #[error("reading the document failed")]
    Io(#[source] std::io::Error),
}

impl From<xml::XmlError> for CcdaError {
    fn from(error: xml::XmlError) -> Self {
        match error {
            xml::XmlError::Malformed { at, reason } => Self::Malformed {
                line: at.line,
                column: at.column,
                reason,
            },
            xml::XmlError::Truncated { at } => Self::Truncated {
                line: at.line,
                column: at.column,
            },
            xml::XmlError::Io(error) => Self::Io(error),
        }
    }
}

/// Reads the whole document, checking that it is well-formed and that its header has
/// every SHALL element, and returns its header and body.
pub fn parse<R: BufRead>(source: R) -> Result<Ccda, CcdaError> {
    reader::read(source, false).map(|(header, body)| Ccda {
        header,
        body: body.expect("a whole document has a body"),
    })
}

/// Reads the document only as far as the start of its body and returns the header; the
/// rest is not read, so a fault there is not reported.
pub fn parse_header<R: BufRead>(source: R) -> Result<CcdaHeader, CcdaError> {
    reader::read(source, true).map(|(header, _)| header)
}
