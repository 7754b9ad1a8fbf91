//! The watermark verdict for any file, with the hospitals' watermark verifying keys as
//! they are published on the certificate contract (DESIGN.md, "Trust"): no other
//! source is read, so a record marked with a key that is not (or no longer) published
//! reads as forged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use medcert_eip712::hospital_id;
use medcert_ethereum::bindings::MedicalCertificateErrors;
use medcert_ethereum::{EthereumError, HospitalKeys, MedicalCertificateClient};
use medcert_network::Network;
use medcert_watermark::WatermarkError;
use serde::Serialize;

use crate::connect::certificate_reader;
use crate::digest::{ContentFingerprint, Fingerprints, WatermarkFingerprint};
use crate::error::{FailureKind, FlowError};

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
    /// The mark names a hospital whose published watermark key could not be read from
    /// the certificate chain.
    #[error("cannot read {id}'s published watermark key")]
    Keys {
        /// The hospital's id.
        id: String,
        /// Why the certificate chain did not give it.
        source: Box<FlowError>,
    },
}

impl VerifyError {
    /// What kind of failure this is: that of the certificate chain's, for a missing key.
    pub fn kind(&self) -> FailureKind {
        match self {
            VerifyError::Keys { source, .. } => source.kind(),
            VerifyError::Read { .. } | VerifyError::NotARecord { .. } => FailureKind::Failed,
        }
    }
}

/// A watermark verdict; in reports, tagged by `verdict` and without the signer's key.
pub use medcert_watermark::Verdict as VerdictReport;

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

/// Verifies `path` against the watermark keys the hospitals of `network` publish on the
/// certificate contract. If the chain cannot be read for a hospital, the verification
/// fails only if the mark names it.
pub async fn verify_file(network: &Network, path: &Path) -> Result<VerifyReport, VerifyError> {
    let asked = network.fabric.hospitals.iter().map(|hospital| async move {
        let key = match certificate_reader(network) {
            Ok(chain) => published_watermark_key(&chain, &hospital.id).await,
            Err(e) => Err(e),
        };
        (hospital.id.clone(), key)
    });
    let mut keys: HashMap<String, Result<Option<VerifyingKey>, FlowError>> =
        futures_util::future::join_all(asked)
            .await
            .into_iter()
            .collect();
    let file = File::open(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let unavailable = RefCell::new(None);
    let verified = medcert_watermark::verify(BufReader::new(file), |id| match keys.get(id)? {
        Ok(key) => *key,
        Err(_) => {
            *unavailable.borrow_mut() = Some(id.to_owned());
            None
        }
    });
    if let Some(id) = unavailable.into_inner()
        && let Some(Err(source)) = keys.remove(&id)
    {
        return Err(VerifyError::Keys {
            id,
            source: Box::new(source),
        });
    }
    let verification = match verified {
        Ok(v) => v,
        // A mark naming a hospital that is not in this network, or that publishes no
        // watermark key, cannot be its own.
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
    Ok(VerifyReport {
        verdict: verification.verdict,
        content_fingerprint: Some(ContentFingerprint(verification.content_fingerprint)),
        watermark_fingerprint: verification.watermark_fingerprint.map(WatermarkFingerprint),
    })
}

/// `hospital`'s watermark verifying key as published on the contract; `None` when the
/// hospital is not registered or its published key is not an Ed25519 key.
async fn published_watermark_key(
    chain: &MedicalCertificateClient,
    hospital: &str,
) -> Result<Option<VerifyingKey>, FlowError> {
    let Some(id) = hospital_id(hospital) else {
        return Ok(None);
    };
    match chain.hospital(id).await {
        Ok(record) => Ok(HospitalKeys::of(&record)
            .and_then(|keys| VerifyingKey::from_bytes(&keys.watermark_key).ok())),
        Err(EthereumError::Refused(MedicalCertificateErrors::UnknownHospital(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_verdict_and_leaves_out_the_signers_key() {
        let report = VerifyReport {
            verdict: VerdictReport::Authentic {
                hospital_id: "hospital1".into(),
                record_id: "R-1".into(),
                issued_at: 7,
                signer: medcert_watermark::SigningKey::from_bytes(&[1; 32]).verifying_key(),
            },
            content_fingerprint: Some(ContentFingerprint([0xaa; 32])),
            watermark_fingerprint: None,
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "verdict": "authentic",
                "hospital_id": "hospital1",
                "record_id": "R-1",
                "issued_at": 7,
                "content_fingerprint": "aa".repeat(32),
                "watermark_fingerprint": null,
            })
        );
        let forged = VerdictReport::Forged {
            claimed_hospital_id: "hospital9".into(),
        };
        assert_eq!(
            serde_json::to_value(&forged).unwrap(),
            serde_json::json!({"verdict": "forged", "claimed_hospital_id": "hospital9"})
        );
    }
}
