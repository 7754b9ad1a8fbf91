//! The watermark verdict for any file, with the hospitals' watermark keys from their key
//! directories.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use medcert_network::Network;
use medcert_watermark::{Verdict, WatermarkError};
use serde::Serialize;

use crate::digest::{ContentFingerprint, Fingerprints, WatermarkFingerprint};
use crate::keys::{HospitalKeys, KeysError};

/// Why a file could not be given a verdict.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not well-formed XML, so no mark can be looked for.
    #[error("{path} is not a well-formed XML record")]
    NotARecord {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read as a record.
        source: WatermarkError,
    },
    /// The network has not been initialised: a hospital has no keys yet.
    #[error("hospital {id} has no watermark key")]
    Keys {
        /// The hospital's id.
        id: String,
        /// Why its keys cannot be opened.
        source: KeysError,
    },
}

/// A watermark verdict, serialisable for reports.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum VerdictReport {
    /// The mark is the named hospital's and the content is as it was marked.
    Authentic {
        /// The hospital that marked the record.
        hospital_id: String,
        /// The record the mark names.
        record_id: String,
        /// When the record was marked, Unix seconds.
        issued_at: u64,
    },
    /// The mark is the named hospital's, but the content changed after it was marked.
    Tampered {
        /// The hospital that marked the record.
        hospital_id: String,
        /// The record the mark names.
        record_id: String,
        /// When the record was marked, Unix seconds.
        issued_at: u64,
    },
    /// A mark decodes but is not the claimed hospital's, or names a hospital outside
    /// this network.
    Forged {
        /// The hospital id the mark claims.
        claimed_hospital_id: String,
    },
    /// The file carries no mark.
    Absent,
}

/// A file's verdict and the fingerprints computed on the way.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The watermark verdict.
    #[serde(flatten)]
    pub verdict: VerdictReport,
    /// `None` when the mark names a hospital outside this network.
    pub content_fingerprint: Option<ContentFingerprint>,
    /// The hash of the decoded mark; `None` when there is no mark, or as above.
    pub watermark_fingerprint: Option<WatermarkFingerprint>,
}

impl VerifyReport {
    /// Whether the file carries `hospital`'s authentic mark for `record` and both
    /// fingerprints are the `anchored` ones; or, for a file that carries no mark (stored
    /// unmarked because it was too small for one), whether its content fingerprint is
    /// the anchored one.
    pub fn is_authentic(&self, hospital: &str, record: &str, anchored: &Fingerprints) -> bool {
        let content_matches = self.content_fingerprint == Some(anchored.content);
        match &self.verdict {
            VerdictReport::Authentic {
                hospital_id,
                record_id,
                ..
            } => {
                hospital_id == hospital
                    && record_id == record
                    && content_matches
                    && self.watermark_fingerprint == Some(anchored.watermark)
            }
            VerdictReport::Absent => content_matches,
            VerdictReport::Tampered { .. } | VerdictReport::Forged { .. } => false,
        }
    }
}

/// Verifies `path` against the watermark keys of every hospital in `network`.
pub fn verify_file(network: &Network, path: &Path) -> Result<VerifyReport, VerifyError> {
    let mut keys: HashMap<String, VerifyingKey> = HashMap::new();
    for hospital in &network.fabric.hospitals {
        let dir = HospitalKeys::dir(&network.run_dir, &hospital.id);
        let opened = HospitalKeys::open_existing(&dir).map_err(|source| VerifyError::Keys {
            id: hospital.id.clone(),
            source,
        })?;
        keys.insert(hospital.id.clone(), opened.watermark_verifying_key());
    }
    let file = File::open(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let verification =
        match medcert_watermark::verify(BufReader::new(file), |id| keys.get(id).copied()) {
            Ok(v) => v,
            // A mark naming a hospital that is not in this network cannot be its own.
            Err(WatermarkError::UnknownHospital { hospital_id }) => {
                return Ok(VerifyReport {
                    verdict: VerdictReport::Forged {
                        claimed_hospital_id: hospital_id,
                    },
                    content_fingerprint: None,
                    watermark_fingerprint: None,
                });
            }
            Err(WatermarkError::Io(source)) => {
                return Err(VerifyError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Err(source) => {
                return Err(VerifyError::NotARecord {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
    let verdict = match verification.verdict {
        Verdict::Authentic {
            hospital_id,
            record_id,
            issued_at,
            ..
        } => VerdictReport::Authentic {
            hospital_id,
            record_id,
            issued_at,
        },
        Verdict::Tampered {
            hospital_id,
            record_id,
            issued_at,
        } => VerdictReport::Tampered {
            hospital_id,
            record_id,
            issued_at,
        },
        Verdict::Forged {
            claimed_hospital_id,
        } => VerdictReport::Forged {
            claimed_hospital_id,
        },
        Verdict::Absent => VerdictReport::Absent,
    };
    Ok(VerifyReport {
        verdict,
        content_fingerprint: Some(ContentFingerprint(verification.content_fingerprint)),
        watermark_fingerprint: verification.watermark_fingerprint.map(WatermarkFingerprint),
    })
}
