//! `medcert ehr verify`: the watermark verdict for any file, with the hospitals'
//! watermark keys from their key directories.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use medcert_network::Network;
use medcert_watermark::{Verdict, WatermarkError};
use serde::Serialize;

use crate::hospital_keys::{HospitalKeys, KeysError};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {reason}; check the path")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path} is not a well-formed XML record: {reason}")]
    NotARecord {
        path: PathBuf,
        reason: WatermarkError,
    },
    #[error("hospital {id} has no watermark key; run `medcert network init`")]
    Keys { id: String, source: KeysError },
}

/// The verdict in a form for people and for `--json`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum VerdictReport {
    Authentic {
        hospital_id: String,
        record_id: String,
        issued_at: u64,
    },
    Tampered {
        hospital_id: String,
        record_id: String,
        issued_at: u64,
    },
    Forged {
        claimed_hospital_id: String,
    },
    Absent,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    #[serde(flatten)]
    pub verdict: VerdictReport,
    /// `None` when the mark names a hospital outside this network.
    pub content_fingerprint: Option<String>,
    pub watermark_fingerprint: Option<String>,
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
        reason: source,
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
                    reason: source,
                });
            }
            Err(source) => {
                return Err(VerifyError::NotARecord {
                    path: path.to_path_buf(),
                    reason: source,
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
        content_fingerprint: Some(hex::encode(verification.content_fingerprint)),
        watermark_fingerprint: verification.watermark_fingerprint.map(hex::encode),
    })
}
