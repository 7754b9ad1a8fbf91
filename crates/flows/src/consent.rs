//! The patient's consent: hospital H' may recover one certificate once.
//!
//! A consent is a signature only (DESIGN.md, "Trust"): the patient signs an EIP-712
//! consent with a fresh random nonce and an expiry, records it in their wallet (so that
//! their agent knows it) and writes a consent file for H''s doctor. The file opens
//! nothing: the record's key reaches H' only when the patient's agent releases it on the
//! certificate chain after the recovery was served (see [`crate::agent`]).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use medcert_eip712::{Consent, SignedConsent, hospital_id};
use medcert_ethereum::MedicalCertificateClient;
use medcert_ethereum::ethers::types::Address;
use medcert_network::Network;
use serde::{Deserialize, Serialize};

use crate::connect::certificate_reader;
use crate::error::FlowError;
use crate::ids::word_text;
use crate::signing::{SignatureSource, Signed, check_given, same_field};
use crate::wallet::{IssuedConsent, PatientWallet};

/// The version of the consent file format.
pub const CONSENT_FILE_VERSION: u32 = 2;

/// What the patient hands to the recovering hospital's doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentFile {
    /// The consent file format's version ([`CONSENT_FILE_VERSION`]).
    pub version: u32,
    /// The hospital allowed to recover (H').
    pub hospital: String,
    /// The certificate to be recovered.
    pub certificate_id: u64,
    /// The record's id at the hospital where it was created (H), from the certificate.
    pub record_id: String,
    /// The hospital where the record was created (H).
    pub source_hospital: String,
    /// Hash I: the CID of the record's envelope on IPFS.
    pub cid: String,
    /// The patient's Ethereum address, which signed the consent.
    pub patient_address: String,
    /// Unix seconds.
    pub expiry: u64,
    /// The consent's nonce, so it cannot be replayed.
    pub nonce: u64,
    /// [`SignedConsent::to_bytes`] in hex: what `RequestRecovery` carries to the relay.
    pub signed_consent: String,
}

impl ConsentFile {
    /// Reads and checks a consent file.
    pub fn read(path: &Path) -> Result<Self, FlowError> {
        let bytes = std::fs::read(path).map_err(|source| FlowError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ConsentFile =
            serde_json::from_slice(&bytes).map_err(|source| FlowError::NotAConsentFile {
                path: path.to_owned(),
                source,
            })?;
        if file.version != CONSENT_FILE_VERSION {
            return Err(FlowError::ConsentVersion {
                path: path.to_owned(),
                version: file.version,
                supported: CONSENT_FILE_VERSION,
            });
        }
        let consent = file.signed_consent()?;
        if consent.consent.certificate_id != file.certificate_id
            || Some(consent.consent.hospital) != hospital_id(&file.hospital)
        {
            return Err(FlowError::ConsentContradicts {
                path: path.to_owned(),
            });
        }
        Ok(file)
    }

    /// The patient's signed consent.
    pub fn signed_consent(&self) -> Result<SignedConsent, FlowError> {
        let bytes = hex::decode(&self.signed_consent).map_err(|source| FlowError::ConsentHex {
            field: "signed consent",
            source,
        })?;
        SignedConsent::from_bytes(&bytes).map_err(FlowError::ConsentEncoding)
    }
}

/// A patient's consent for one hospital to recover one certificate.
#[derive(Debug, Clone, Copy)]
pub struct ConsentRequest<'a> {
    /// The patient's wallet name.
    pub patient: &'a str,
    /// H', the hospital that will recover.
    pub hospital: &'a str,
    /// The certificate to be recovered.
    pub certificate_id: u64,
    /// How long the consent stays valid.
    pub valid_for: Duration,
    /// Where to write the consent file (must not exist).
    pub out: &'a Path,
}

/// The consent file written, and where.
#[derive(Debug, Serialize)]
pub struct ConsentReport {
    /// The consent file written.
    pub path: PathBuf,
    /// The consent file's contents.
    #[serde(flatten)]
    pub consent: ConsentFile,
}

/// Signs the consent with the patient's wallet and writes the consent file (all or
/// nothing, mode 0600).
pub async fn sign_consent(
    network: &Network,
    patients_dir: &Path,
    request: &ConsentRequest<'_>,
) -> Result<ConsentReport, FlowError> {
    sign_consent_with(network, patients_dir, request, SignatureSource::Wallet)
        .await
        .map(Signed::signed_by_wallet)
}

/// [`sign_consent`] with the patient's signature from `signature`: for
/// [`SignatureSource::TypedDataOnly`], the typed data of a consent valid for
/// `request.valid_for` from now, nothing recorded or written; for
/// [`SignatureSource::Given`], a consent for this hospital and certificate, not yet
/// expired (its own expiry holds), signed by the patient.
pub async fn sign_consent_with(
    network: &Network,
    patients_dir: &Path,
    request: &ConsentRequest<'_>,
    signature: SignatureSource<'_>,
) -> Result<Signed<ConsentReport>, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    let hospital_word = hospital_id(&hospital.id).ok_or_else(|| FlowError::HospitalIdTooLong {
        hospital: hospital.id.clone(),
    })?;
    if request.out.exists() {
        return Err(FlowError::OutputExists {
            path: request.out.to_owned(),
        });
    }
    if request.valid_for.is_zero() {
        return Err(FlowError::ZeroValidity);
    }
    let mut wallet = PatientWallet::open(patients_dir, request.patient)?;
    let client = certificate_reader(network)?;
    let certificate = client.certificate(request.certificate_id).await?;
    if certificate.patient != Address::from(wallet.patient_address()) {
        return Err(FlowError::NotPatientsCertificate {
            certificate_id: request.certificate_id,
            patient: request.patient.to_owned(),
        });
    }
    if !certificate.recoverable {
        return Err(FlowError::NotRecoverable {
            certificate_id: request.certificate_id,
        });
    }

    // The relay serves a consent only to a hospital registered on the contract.
    client.hospital(hospital_word).await?;
    let source_hospital = word_text(&certificate.hospital);
    let record_id = word_text(&certificate.record_id);

    // The contract judges expiry by the chain's time, which need not be the clock's; a
    // consent is served after it is signed: the agent looks for it from this block on.
    let latest = client.latest_block().await?;
    let consent = Consent {
        hospital: hospital_word,
        certificate_id: request.certificate_id,
        expiry: latest
            .timestamp
            .saturating_add(request.valid_for.as_secs().max(1)),
        nonce: unused_nonce(&client, &wallet).await?,
    };
    let domain = client.domain();
    let from_block = latest.number;
    let (consent, signature) = match signature {
        SignatureSource::Wallet => (
            consent,
            wallet.patient_signer()?.sign_consent(&consent, &domain),
        ),
        SignatureSource::TypedDataOnly => {
            return Ok(Signed::ask(&wallet, consent.typed_data(&domain)));
        }
        SignatureSource::Given {
            typed_data,
            signature,
        } => {
            let signed =
                Consent::from_typed_data(typed_data, &domain).map_err(FlowError::TypedData)?;
            same_field("hospital", hospital.id.clone(), word_text(&signed.hospital))?;
            same_field(
                "certificateId",
                request.certificate_id,
                signed.certificate_id,
            )?;
            if signed.expiry <= latest.timestamp {
                return Err(FlowError::SignedConsentExpired {
                    expiry: signed.expiry,
                });
            }
            check_given(&wallet, &signed.digest(&domain), &signature)?;
            (signed, signature)
        }
    };
    let signed = SignedConsent { consent, signature };
    let file = ConsentFile {
        version: CONSENT_FILE_VERSION,
        hospital: hospital.id.clone(),
        certificate_id: request.certificate_id,
        record_id,
        source_hospital,
        cid: certificate.cid.clone(),
        patient_address: wallet.info().address.clone(),
        expiry: consent.expiry,
        nonce: consent.nonce,
        signed_consent: hex::encode(signed.to_bytes()),
    };
    // The agent releases a key only for a consent its wallet knows, so record it first.
    wallet.add_consent(IssuedConsent {
        hospital: hospital.id.clone(),
        certificate_id: request.certificate_id,
        nonce: consent.nonce,
        expiry: consent.expiry,
        from_block,
        revoked: false,
        settled: None,
    })?;
    write_new(
        request.out,
        &serde_json::to_vec_pretty(&file).expect("serialises"),
    )?;
    Ok(Signed::Done(ConsentReport {
        path: request.out.to_owned(),
        consent: file,
    }))
}

/// Writes a new file beside its final name and renames it into place.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), FlowError> {
    let write = |source| FlowError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut staging = tempfile::Builder::new()
        .prefix(".consent")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(write)?;
    staging.write_all(bytes).map_err(write)?;
    staging.as_file().sync_all().map_err(write)?;
    staging
        .persist_noclobber(path)
        .map_err(|e| write(e.error))?;
    Ok(())
}

/// A nonce for the patient's next authorisation or consent: unspent on the contract and
/// not one of the consents the wallet signed (those are spent only when served), close
/// to the patient's other nonces so that spending it reuses a storage slot.
///
/// Flows of one process may sign for the same patient at once from the same wallet
/// snapshot: the nonces this process has handed out are skipped too, so that two of its
/// consents never share one.
pub(crate) async fn unused_nonce(
    client: &MedicalCertificateClient,
    wallet: &PatientWallet,
) -> Result<u64, FlowError> {
    static HANDED_OUT: tokio::sync::Mutex<Vec<(Address, u64)>> =
        tokio::sync::Mutex::const_new(Vec::new());
    let patient = Address::from(wallet.patient_address());
    let mut handed_out = HANDED_OUT.lock().await;
    let taken: Vec<u64> = wallet
        .info()
        .consents
        .iter()
        .map(|c| c.nonce)
        .chain(
            handed_out
                .iter()
                .filter(|(p, _)| *p == patient)
                .map(|(_, n)| *n),
        )
        .collect();
    let nonce = client.unused_nonce(patient, &taken).await?;
    handed_out.push((patient, nonce));
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medcert_eip712::PatientSigner;

    fn sample() -> ConsentFile {
        let signer = PatientSigner::from_seed(&[7; 32]);
        let consent = Consent {
            hospital: hospital_id("hospital3").unwrap(),
            certificate_id: 12,
            expiry: 2_000_000_000,
            nonce: 5,
        };
        let domain = medcert_eip712::CertificateDomain {
            chain_id: 31337,
            verifying_contract: [1; 20],
        };
        let signed = SignedConsent {
            consent,
            signature: signer.sign_consent(&consent, &domain),
        };
        ConsentFile {
            version: CONSENT_FILE_VERSION,
            hospital: "hospital3".into(),
            certificate_id: 12,
            record_id: "R-1".into(),
            source_hospital: "hospital1".into(),
            cid: "bafy".into(),
            patient_address: format!("0x{}", hex::encode(signer.address())),
            expiry: 2_000_000_000,
            nonce: 5,
            signed_consent: hex::encode(signed.to_bytes()),
        }
    }

    #[test]
    fn consent_files_are_written_privately_once_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("consent.json");
        let file = sample();
        write_new(&path, &serde_json::to_vec(&file).unwrap()).unwrap();
        assert_eq!(ConsentFile::read(&path).unwrap(), file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_new(&path, b"{}").is_err(), "an existing file is kept");
        assert_eq!(ConsentFile::read(&path).unwrap(), file);
    }

    #[test]
    fn bad_consent_files_are_refused_with_a_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.json");
        std::fs::write(&path, "not json").unwrap();
        let error = ConsentFile::read(&path).unwrap_err();
        assert!(
            matches!(error, FlowError::NotAConsentFile { .. }),
            "{error}"
        );

        let mut other_hospital = sample();
        other_hospital.hospital = "hospital2".into();
        std::fs::write(&path, serde_json::to_vec(&other_hospital).unwrap()).unwrap();
        let error = ConsentFile::read(&path).unwrap_err();
        assert!(
            matches!(error, FlowError::ConsentContradicts { .. }),
            "{error}"
        );

        let mut short_signature = sample();
        short_signature.signed_consent = "abcd".into();
        std::fs::write(&path, serde_json::to_vec(&short_signature).unwrap()).unwrap();
        assert!(ConsentFile::read(&path).is_err());

        let mut old = serde_json::to_value(sample()).unwrap();
        old["version"] = 1.into();
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        assert!(matches!(
            ConsentFile::read(&path),
            Err(FlowError::ConsentVersion { version: 1, .. })
        ));

        let missing = tmp.path().join("missing.json");
        assert!(matches!(
            ConsentFile::read(&missing),
            Err(FlowError::Read { .. })
        ));
    }
}
