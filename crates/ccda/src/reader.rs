//! One pass over a document's tokens: namespaces resolved, the header's values and SHALL
//! elements noted, the body's outline kept.

use std::io::BufRead;

use crate::header::{
    BODY_REQUIREMENT, CcdaHeader, CcdaVersion, Custodian, DOCUMENT_ID, DocumentType,
    EFFECTIVE_TIME, HEADER_REQUIREMENTS, InstanceId, PATIENT_ID, Requirement, TEMPLATE,
    US_REALM_HEADER, version_of,
};
use crate::xml::{Tag, Token, XmlReader, decode_attribute_value, resolve_reference};
use crate::{Body, CcdaError, HL7_V3_NAMESPACE, Section};

/// Text kept of any one element; the header's texts are short, and a longer one is cut
/// rather than buffered.
const MAX_TEXT: usize = 64 * 1024;

/// Reads the header, and the body unless `header_only`.
pub(crate) fn read<R: BufRead>(
    source: R,
    header_only: bool,
) -> Result<(CcdaHeader, Option<Body>), CcdaError> {
    let mut xml = XmlReader::new(source);
    let mut found = Found::default();
    let mut scope = Scope::default();
    loop {
        match xml.next_token()? {
            Token::Start(tag) => {
                let Ok(local) = scope.open(&tag) else {
                    return Err(unbound_prefix(&xml));
                };
                found.open(&tag, local)?;
                if header_only && found.at(&["component"]) {
                    return Ok((found.header()?, None));
                }
            }
            Token::Empty(tag) => {
                let Ok(local) = scope.open(&tag) else {
                    return Err(unbound_prefix(&xml));
                };
                found.open(&tag, local)?;
                found.close();
                scope.close();
            }
            Token::End { .. } => {
                found.close();
                scope.close();
            }
            Token::Text(text) | Token::CData(text) => found.text(text),
            Token::Reference(name) => {
                if let Some(c) = resolve_reference(name) {
                    found.text(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
            Token::Eof => break,
            _ => {}
        }
    }
    let header = found.header()?;
    if !header_only && !found.body_met {
        return Err(CcdaError::MissingShall {
            xpath: BODY_REQUIREMENT.xpath,
        });
    }
    let body = found.body.take();
    Ok((header, body))
}

fn unbound_prefix<R: BufRead>(xml: &XmlReader<R>) -> CcdaError {
    xml.error_in_token(1, "an element whose namespace prefix is not declared")
        .into()
}

/// An element's prefix is bound to no namespace.
struct UnboundPrefix;

/// Namespace bindings in scope.
#[derive(Default)]
struct Scope {
    /// Prefix (empty for the default namespace) and namespace, innermost last.
    bindings: Vec<(Vec<u8>, Vec<u8>)>,
    /// How many bindings were in scope before each open element.
    marks: Vec<usize>,
}

impl Scope {
    /// Opens an element: takes its bindings and returns its local name if it is in the
    /// HL7 namespace.
    fn open<'t>(&mut self, tag: &Tag<'t>) -> Result<Option<&'t [u8]>, UnboundPrefix> {
        self.marks.push(self.bindings.len());
        for attribute in tag.attributes {
            let key = tag.key(attribute);
            let prefix = match key.strip_prefix(b"xmlns") {
                Some([]) => &[][..],
                Some([b':', prefix @ ..]) => prefix,
                _ => continue,
            };
            let value = decode_attribute_value(&tag.content[attribute.value.clone()]);
            self.bindings.push((prefix.to_vec(), value.into_bytes()));
        }
        let prefix = tag.prefix().unwrap_or_default();
        let namespace = self
            .bindings
            .iter()
            .rev()
            .find(|(bound, _)| bound == prefix)
            .map(|(_, namespace)| namespace.as_slice());
        match namespace {
            Some(namespace) => {
                Ok((namespace == HL7_V3_NAMESPACE.as_bytes()).then(|| tag.local_name()))
            }
            None if prefix.is_empty() || prefix == b"xml" => Ok(None),
            None => Err(UnboundPrefix),
        }
    }

    fn close(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.bindings.truncate(mark);
        }
    }
}

/// Where the text being gathered goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextTarget {
    Title,
    CustodianName,
    AuthorOrganization,
    SectionTitle,
}

#[derive(Default)]
struct Found {
    /// Local names of the open elements below the root; empty for elements outside the
    /// HL7 namespace.
    path: Vec<Vec<u8>>,
    met: [bool; HEADER_REQUIREMENTS.len()],
    body_met: bool,
    version: Option<CcdaVersion>,
    /// The version the document type's templateId names, for a document that does
    /// not name the US Realm Header's.
    type_version: Option<CcdaVersion>,
    document_type: Option<DocumentType>,
    document_id: Option<InstanceId>,
    code: Option<String>,
    title: Option<String>,
    effective_time: Option<String>,
    patient_id: Option<InstanceId>,
    custodian_id: Option<InstanceId>,
    custodian_name: Option<String>,
    author_organization: Option<String>,
    body: Option<Body>,
    text: Option<(TextTarget, usize, Vec<u8>)>,
    root_seen: bool,
}

impl Found {
    /// Whether the open element is at `path` below `ClinicalDocument`.
    fn at(&self, path: &[&str]) -> bool {
        self.path.len() == path.len() + 1
            && self.path[1..]
                .iter()
                .zip(path)
                .all(|(a, b)| a.as_slice() == b.as_bytes())
    }

    fn open(&mut self, tag: &Tag<'_>, local: Option<&[u8]>) -> Result<(), CcdaError> {
        if !self.root_seen {
            self.root_seen = true;
            if local != Some(b"ClinicalDocument") {
                return Err(CcdaError::NotCcda {
                    found: String::from_utf8_lossy(tag.name()).into_owned(),
                });
            }
        }
        self.path.push(local.unwrap_or_default().to_vec());
        self.note_requirements(tag);
        self.note_values(tag);
        Ok(())
    }

    fn note_requirements(&mut self, tag: &Tag<'_>) {
        let met_by = |requirement: &Requirement, path: &[Vec<u8>]| {
            let (parent, last) = requirement.path.split_at(requirement.path.len() - 1);
            path.len() == requirement.path.len() + 1
                && path[1..path.len() - 1]
                    .iter()
                    .zip(parent)
                    .all(|(a, b)| a.as_slice() == b.as_bytes())
                && {
                    let name = path[path.len() - 1].as_slice();
                    name == last[0].as_bytes()
                        || requirement
                            .alternatives
                            .iter()
                            .any(|a| a.as_bytes() == name)
                }
                && (requirement.accepts)(tag)
        };
        for (met, requirement) in self.met.iter_mut().zip(HEADER_REQUIREMENTS) {
            *met = *met || met_by(requirement, &self.path);
        }
        self.body_met = self.body_met || met_by(&BODY_REQUIREMENT, &self.path);
    }

    fn note_values(&mut self, tag: &Tag<'_>) {
        let instance_id = || {
            tag.value(b"root").map(|root| InstanceId {
                root,
                extension: tag.value(b"extension"),
            })
        };
        const CUSTODIAN_ID: &[&str] = &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "id",
        ];
        const CUSTODIAN_NAME: &[&str] = &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "name",
        ];
        if self.at(&["templateId"]) {
            let root = tag.value(b"root").unwrap_or_default();
            let extension = tag.value(b"extension");
            if root == US_REALM_HEADER {
                self.version = Some(version_of(extension.as_deref()));
            } else if self.document_type.is_none()
                && let Some(document_type) = DocumentType::from_template_id(&root)
            {
                self.document_type = Some(document_type);
                self.type_version = Some(version_of(extension.as_deref()));
            }
        } else if self.at(&["id"]) && self.document_id.is_none() {
            self.document_id = instance_id();
        } else if self.at(&["code"]) && self.code.is_none() {
            self.code = tag.value(b"code");
        } else if self.at(&["title"]) && self.title.is_none() {
            self.gather(TextTarget::Title);
        } else if self.at(&["effectiveTime"]) && self.effective_time.is_none() {
            self.effective_time = tag.value(b"value");
        } else if self.at(&["recordTarget", "patientRole", "id"]) && self.patient_id.is_none() {
            self.patient_id = instance_id();
        } else if self.at(CUSTODIAN_ID) && self.custodian_id.is_none() {
            self.custodian_id = instance_id();
        } else if self.at(CUSTODIAN_NAME) && self.custodian_name.is_none() {
            self.gather(TextTarget::CustodianName);
        } else if self.at(&[
            "author",
            "assignedAuthor",
            "representedOrganization",
            "name",
        ]) && self.author_organization.is_none()
        {
            self.gather(TextTarget::AuthorOrganization);
        } else if self.at(&["component", "structuredBody"]) {
            self.body = Some(Body::Structured {
                sections: Vec::new(),
            });
        } else if self.at(&["component", "structuredBody", "component", "section"]) {
            if let Some(Body::Structured { sections }) = &mut self.body {
                sections.push(Section {
                    code: None,
                    title: None,
                });
            }
        } else if self.in_section_child(b"code") {
            if let Some(section) = self.last_section() {
                section.code = section.code.take().or_else(|| tag.value(b"code"));
            }
        } else if self.in_section_child(b"title") {
            self.gather(TextTarget::SectionTitle);
        } else if self.at(&["component", "nonXMLBody"]) {
            self.body = Some(Body::NonXml {
                media_type: None,
                representation: None,
                reference: None,
            });
        } else if self.at(&["component", "nonXMLBody", "text"]) {
            if let Some(Body::NonXml {
                media_type,
                representation,
                ..
            }) = &mut self.body
            {
                *media_type = tag.value(b"mediaType");
                *representation = tag.value(b"representation");
            }
        } else if self.at(&["component", "nonXMLBody", "text", "reference"])
            && let Some(Body::NonXml { reference, .. }) = &mut self.body
        {
            *reference = tag.value(b"value");
        }
    }

    fn in_section_child(&self, child: &[u8]) -> bool {
        self.path.len() == 6
            && self.at_prefix(&["component", "structuredBody", "component", "section"])
            && self.path[5] == child
    }

    fn at_prefix(&self, path: &[&str]) -> bool {
        self.path.len() > path.len()
            && self.path[1..=path.len()]
                .iter()
                .zip(path)
                .all(|(a, b)| a.as_slice() == b.as_bytes())
    }

    fn last_section(&mut self) -> Option<&mut Section> {
        match &mut self.body {
            Some(Body::Structured { sections }) => sections.last_mut(),
            _ => None,
        }
    }

    fn gather(&mut self, target: TextTarget) {
        self.text = Some((target, self.path.len(), Vec::new()));
    }

    fn text(&mut self, piece: &[u8]) {
        if let Some((_, _, text)) = &mut self.text {
            let room = MAX_TEXT.saturating_sub(text.len());
            text.extend_from_slice(&piece[..piece.len().min(room)]);
        }
    }

    fn close(&mut self) {
        if let Some((target, depth, _)) = &self.text
            && *depth == self.path.len()
        {
            let (target, text) = (*target, self.text.take().map(|t| t.2).unwrap_or_default());
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            match target {
                TextTarget::Title => self.title = Some(text),
                TextTarget::CustodianName => self.custodian_name = Some(text),
                TextTarget::AuthorOrganization => self.author_organization = Some(text),
                TextTarget::SectionTitle => {
                    if let Some(section) = self.last_section() {
                        section.title = Some(text);
                    }
                }
            }
        }
        self.path.pop();
    }

    fn header(&mut self) -> Result<CcdaHeader, CcdaError> {
        if let Some(unmet) = self
            .met
            .iter()
            .zip(HEADER_REQUIREMENTS)
            .find_map(|(met, requirement)| (!met).then_some(requirement))
        {
            return Err(CcdaError::MissingShall { xpath: unmet.xpath });
        }
        let missing = |requirement: usize| CcdaError::MissingShall {
            xpath: HEADER_REQUIREMENTS[requirement].xpath,
        };
        Ok(CcdaHeader {
            version: (self.version.take())
                .or(self.type_version.take())
                .ok_or(missing(TEMPLATE))?,
            document_type: self.document_type,
            document_id: self.document_id.take().ok_or(missing(DOCUMENT_ID))?,
            code: self.code.take(),
            title: self.title.take().unwrap_or_default(),
            effective_time: self.effective_time.take().ok_or(missing(EFFECTIVE_TIME))?,
            patient_id: self.patient_id.take().ok_or(missing(PATIENT_ID))?,
            custodian: Custodian {
                id: self.custodian_id.take(),
                name: self.custodian_name.take().unwrap_or_default(),
            },
            author_organization: self.author_organization.take().filter(|o| !o.is_empty()),
        })
    }
}
