//! What the C-CDA US Realm Header says, and which of its elements are SHALL.
//!
//! The header is read as C-CDA R2.1 (HL7 CDA R2 IG: C-CDA Templates for Clinical Notes
//! R2.1, US Realm Header, templateId 2.16.840.1.113883.10.20.22.1.1) defines it; R1.1
//! and R2.0 documents carry the same template and the same SHALL elements. What is SHALL
//! there is required here; SHOULD and MAY elements are read when present.

use crate::xml::Tag;

/// An HL7 instance identifier (`II`): an OID or UUID root and an optional extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId {
    /// `@root`: the OID or UUID of the issuing namespace, or the identifier itself.
    pub root: String,
    /// `@extension`: the identifier within `root`, where it has one.
    pub extension: Option<String>,
}

/// The version of the C-CDA implementation guide a document follows, from the
/// extension of its US Realm Header templateId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CcdaVersion {
    /// No extension: C-CDA R1.1.
    R1_1,
    /// `2014-06-09`: C-CDA R2.0.
    R2_0,
    /// `2015-08-01`: C-CDA R2.1.
    R2_1,
    /// Another extension, kept as written (a later release of the guide).
    Other(String),
}

impl CcdaVersion {
    fn from_extension(extension: Option<&str>) -> Self {
        match extension {
            None => Self::R1_1,
            Some("2014-06-09") => Self::R2_0,
            Some("2015-08-01") => Self::R2_1,
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

/// The C-CDA R2.1 document types, each known by its document-level templateId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentType {
    /// A summary of the patient's relevant history (CCD).
    ContinuityOfCareDocument,
    /// A consultant's answer to a request for an opinion or advice.
    ConsultationNote,
    /// The patient's goals, interventions and health concerns.
    CarePlan,
    /// An imaging specialist's interpretation of a study.
    DiagnosticImagingReport,
    /// The synopsis of a hospital stay, written at discharge.
    DischargeSummary,
    /// The history and examination that start a course of care.
    HistoryAndPhysical,
    /// A surgeon's record of an operation, written right after it.
    OperativeNote,
    /// The record of a non-operative procedure.
    ProcedureNote,
    /// A clinician's note on the patient's course during care.
    ProgressNote,
    /// A request to another provider to take over or share care.
    ReferralNote,
    /// What a receiving provider needs when the patient moves.
    TransferSummary,
    /// A document whose content is not XML (`nonXMLBody`), e.g. a PDF.
    UnstructuredDocument,
}

impl DocumentType {
    /// Every document type, in the order of the implementation guide.
    pub const ALL: [DocumentType; 12] = [
        Self::ContinuityOfCareDocument,
        Self::ConsultationNote,
        Self::CarePlan,
        Self::DiagnosticImagingReport,
        Self::DischargeSummary,
        Self::HistoryAndPhysical,
        Self::OperativeNote,
        Self::ProcedureNote,
        Self::ProgressNote,
        Self::ReferralNote,
        Self::TransferSummary,
        Self::UnstructuredDocument,
    ];

    /// The root of the document type's templateId.
    pub fn template_id(self) -> &'static str {
        match self {
            Self::ContinuityOfCareDocument => "2.16.840.1.113883.10.20.22.1.2",
            Self::HistoryAndPhysical => "2.16.840.1.113883.10.20.22.1.3",
            Self::ConsultationNote => "2.16.840.1.113883.10.20.22.1.4",
            Self::DiagnosticImagingReport => "2.16.840.1.113883.10.20.22.1.5",
            Self::ProcedureNote => "2.16.840.1.113883.10.20.22.1.6",
            Self::OperativeNote => "2.16.840.1.113883.10.20.22.1.7",
            Self::DischargeSummary => "2.16.840.1.113883.10.20.22.1.8",
            Self::ProgressNote => "2.16.840.1.113883.10.20.22.1.9",
            Self::UnstructuredDocument => "2.16.840.1.113883.10.20.22.1.10",
            Self::TransferSummary => "2.16.840.1.113883.10.20.22.1.13",
            Self::ReferralNote => "2.16.840.1.113883.10.20.22.1.14",
            Self::CarePlan => "2.16.840.1.113883.10.20.22.1.15",
        }
    }

    /// The type whose templateId has this root.
    pub fn from_template_id(root: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.template_id() == root)
    }

    /// The document's usual title.
    pub fn title(self) -> &'static str {
        match self {
            Self::ContinuityOfCareDocument => "Continuity of Care Document",
            Self::ConsultationNote => "Consultation Note",
            Self::CarePlan => "Care Plan",
            Self::DiagnosticImagingReport => "Diagnostic Imaging Report",
            Self::DischargeSummary => "Discharge Summary",
            Self::HistoryAndPhysical => "History and Physical",
            Self::OperativeNote => "Operative Note",
            Self::ProcedureNote => "Procedure Note",
            Self::ProgressNote => "Progress Note",
            Self::ReferralNote => "Referral Note",
            Self::TransferSummary => "Transfer Summary",
            Self::UnstructuredDocument => "Unstructured Document",
        }
    }

    /// The LOINC code the implementation guide gives the document (one of those it
    /// allows where it allows several).
    pub fn loinc_code(self) -> &'static str {
        match self {
            Self::ContinuityOfCareDocument => "34133-9",
            Self::ConsultationNote => "11488-4",
            Self::CarePlan => "52521-2",
            Self::DiagnosticImagingReport => "18748-4",
            Self::DischargeSummary => "18842-5",
            Self::HistoryAndPhysical => "34117-2",
            Self::OperativeNote => "11504-8",
            Self::ProcedureNote => "28570-0",
            Self::ProgressNote => "11506-3",
            Self::ReferralNote => "57133-1",
            Self::TransferSummary => "18761-7",
            Self::UnstructuredDocument => "34133-9",
        }
    }
}

/// The organisation in charge of the document
/// (`custodian/assignedCustodian/representedCustodianOrganization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custodian {
    /// Its first `id` with a root.
    pub id: Option<InstanceId>,
    /// Its `name`; empty when the name is only a nullFlavor.
    pub name: String,
}

/// What a C-CDA header says about the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcdaHeader {
    /// The implementation guide release, from the US Realm Header templateId.
    pub version: CcdaVersion,
    /// From the document-level templateIds; `None` for a document that declares only
    /// the US Realm Header.
    pub document_type: Option<DocumentType>,
    /// `ClinicalDocument/id`.
    pub document_id: InstanceId,
    /// `ClinicalDocument/code/@code`, a LOINC document type code.
    pub code: Option<String>,
    /// `ClinicalDocument/title`.
    pub title: String,
    /// `ClinicalDocument/effectiveTime/@value`, an HL7 TS such as `20240131094500+0100`.
    pub effective_time: String,
    /// The first `recordTarget/patientRole/id` with a root.
    pub patient_id: InstanceId,
    /// The organisation in charge of the document.
    pub custodian: Custodian,
    /// The first `author/assignedAuthor/representedOrganization/name`, where an author
    /// has one (a person or device may have none).
    pub author_organization: Option<String>,
}

impl CcdaHeader {
    /// The organisation the record is attributed to: the custodian, or the author's
    /// organisation where the custodian's name is only a nullFlavor.
    pub fn organization(&self) -> Option<&str> {
        Some(self.custodian.name.as_str())
            .filter(|name| !name.is_empty())
            .or(self.author_organization.as_deref())
    }
}

/// A SHALL element of the US Realm Header.
#[derive(Clone, Copy)]
pub(crate) struct Requirement {
    /// The element's path below `ClinicalDocument`, as local names.
    pub path: &'static [&'static str],
    /// Other names that meet the requirement in place of `path`'s last.
    pub alternatives: &'static [&'static str],
    /// Whether the element, found at its path, meets the requirement.
    pub accepts: fn(&Tag<'_>) -> bool,
    /// The XPath an error names.
    pub xpath: &'static str,
}

pub(crate) const US_REALM_HEADER: &str = "2.16.840.1.113883.10.20.22.1.1";

const fn shall(path: &'static [&'static str], xpath: &'static str) -> Requirement {
    Requirement {
        path,
        alternatives: &[],
        accepts: |_| true,
        xpath,
    }
}

fn has_root(tag: &Tag<'_>) -> bool {
    tag.raw_value(b"root").is_some()
}

/// The templateId of the US Realm Header, or of a C-CDA document type (each of which
/// conforms to the US Realm Header; some published samples name only that one).
fn header_template(tag: &Tag<'_>) -> bool {
    tag.value(b"root").is_some_and(|root| {
        root == US_REALM_HEADER || DocumentType::from_template_id(&root).is_some()
    })
}

/// The header's SHALL elements, in document order.
pub(crate) const HEADER_REQUIREMENTS: &[Requirement] = &[
    Requirement {
        accepts: |tag| tag.value(b"code").as_deref() == Some("US"),
        ..shall(&["realmCode"], "/ClinicalDocument/realmCode[@code='US']")
    },
    Requirement {
        accepts: |tag| tag.value(b"root").as_deref() == Some("2.16.840.1.113883.1.3"),
        ..shall(
            &["typeId"],
            "/ClinicalDocument/typeId[@root='2.16.840.1.113883.1.3']",
        )
    },
    Requirement {
        accepts: header_template,
        ..shall(
            &["templateId"],
            "/ClinicalDocument/templateId[@root='2.16.840.1.113883.10.20.22.1.1'] \
             (or the templateId of a C-CDA document type)",
        )
    },
    Requirement {
        accepts: has_root,
        ..shall(&["id"], "/ClinicalDocument/id[@root]")
    },
    shall(&["code"], "/ClinicalDocument/code"),
    shall(&["title"], "/ClinicalDocument/title"),
    Requirement {
        accepts: |tag| tag.raw_value(b"value").is_some(),
        ..shall(
            &["effectiveTime"],
            "/ClinicalDocument/effectiveTime[@value]",
        )
    },
    shall(
        &["confidentialityCode"],
        "/ClinicalDocument/confidentialityCode",
    ),
    shall(&["languageCode"], "/ClinicalDocument/languageCode"),
    Requirement {
        accepts: has_root,
        ..shall(
            &["recordTarget", "patientRole", "id"],
            "/ClinicalDocument/recordTarget/patientRole/id[@root]",
        )
    },
    shall(
        &["recordTarget", "patientRole", "addr"],
        "/ClinicalDocument/recordTarget/patientRole/addr",
    ),
    shall(
        &["recordTarget", "patientRole", "telecom"],
        "/ClinicalDocument/recordTarget/patientRole/telecom",
    ),
    shall(
        &["recordTarget", "patientRole", "patient"],
        "/ClinicalDocument/recordTarget/patientRole/patient",
    ),
    shall(&["author", "time"], "/ClinicalDocument/author/time"),
    shall(
        &["author", "assignedAuthor", "id"],
        "/ClinicalDocument/author/assignedAuthor/id",
    ),
    Requirement {
        alternatives: &["assignedAuthoringDevice"],
        ..shall(
            &["author", "assignedAuthor", "assignedPerson"],
            "/ClinicalDocument/author/assignedAuthor/(assignedPerson | assignedAuthoringDevice)",
        )
    },
    shall(
        &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "id",
        ],
        "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id",
    ),
    shall(
        &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "name",
        ],
        "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/name",
    ),
    shall(
        &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "telecom",
        ],
        "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/telecom",
    ),
    shall(
        &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
            "addr",
        ],
        "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/addr",
    ),
];

/// Indexes into [`HEADER_REQUIREMENTS`] of the requirements that guarantee a value.
pub(crate) const TEMPLATE: usize = 2;
pub(crate) const DOCUMENT_ID: usize = 3;
pub(crate) const EFFECTIVE_TIME: usize = 6;
pub(crate) const PATIENT_ID: usize = 9;

/// The body, SHALL for a whole document.
pub(crate) const BODY_REQUIREMENT: Requirement = Requirement {
    alternatives: &["nonXMLBody"],
    ..shall(
        &["component", "structuredBody"],
        "/ClinicalDocument/component/(structuredBody | nonXMLBody)",
    )
};

pub(crate) fn version_of(extension: Option<&str>) -> CcdaVersion {
    CcdaVersion::from_extension(extension)
}
