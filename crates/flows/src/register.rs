//! A patient's registration at a hospital: the wallet (created on the first one), the
//! treatment number bound to a hash of the patient's ID number and to the patient's
//! Ethereum address on the hospital chain, and the password, which only the hospital's key
//! service keeps (as an Argon2id verifier). The address is the wallet's own account, or
//! one whose key lives in another wallet ([`register_patient_as`]).

use std::path::Path;
use std::time::Instant;

use medcert_eip712::Address;
use medcert_hospital_api::{ClientError, args};
use medcert_key_service::KeyServiceError;
use medcert_network::Network;
use serde::Serialize;
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::connect::{Actor, hospital_client, key_service};
use crate::error::FlowError;
use crate::ids::{check_identifier, check_password, new_id};
use crate::ms;
use crate::wallet::{PatientWallet, Registration};

/// A patient registering at a hospital, through one of its doctors.
#[derive(Debug, Clone, Copy)]
pub struct RegisterRequest<'a> {
    /// The wallet name; the wallet is created on the patient's first registration.
    pub patient: &'a str,
    /// The hospital the patient registers at.
    pub hospital: &'a str,
    /// The hospital's doctor (0-based) who registers the patient.
    pub doctor: usize,
    /// The medical treatment number; the hospital assigns a fresh one when `None`.
    pub treatment_number: Option<&'a str>,
    /// The patient's ID number; only its SHA3-256 reaches the chain.
    pub id_number: &'a str,
    /// The patient's password at the hospital; only its key service keeps it.
    pub password: &'a Zeroizing<String>,
}

/// The patient's keys and the registration's transaction.
#[derive(Debug, Serialize)]
pub struct RegisterReport {
    /// The patient's wallet name.
    pub patient: String,
    /// The patient's Ethereum address.
    pub address: String,
    /// When the patient's account is in another wallet: the wallet's own account, which
    /// the patient authorises once as its agent on the certificate contract.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The patient's X25519 public key, hex.
    pub x25519_public: String,
    /// Whether this registration created the wallet.
    pub wallet_created: bool,
    /// The hospital's id.
    pub hospital: String,
    /// The patient's treatment number at the hospital (assigned or given).
    pub treatment_number: String,
    /// The registration's transaction on the hospital chain (an earlier run's, when this
    /// one finished a registration whose password was not yet enrolled).
    pub tx_id: String,
    /// The block holding `tx_id`; `None` when an earlier run registered on the chain.
    pub block_number: Option<u64>,
    /// Time to register on the hospital chain, in milliseconds.
    pub register_ms: f64,
    /// Time to enroll the password in the hospital's key service, in milliseconds.
    pub enroll_ms: f64,
}

/// Creates (or opens) the patient's wallet, registers the patient on the hospital chain
/// (no secret goes there), then enrolls the password in the hospital's key service. A
/// wallet created by a registration the chain refused is removed again. Running it again
/// after the enrollment failed finishes the registration: the wallet notes what the chain
/// registered, so only its own registration is taken up, never another patient's.
pub async fn register_patient(
    network: &Network,
    patients_dir: &Path,
    request: &RegisterRequest<'_>,
) -> Result<RegisterReport, FlowError> {
    register_patient_as(network, patients_dir, request, None).await
}

/// [`register_patient`] for the patient whose Ethereum account is `outside`, when given:
/// an account whose key lives in another wallet (hardware, browser), which the chain
/// registers and which signs every certificate authorisation, consent and deletion. The
/// wallet then keeps only the X25519 key and its own account, the patient's agent (see
/// [`crate::agent::authorize_agent`]). An existing wallet must already be for `outside`;
/// `None` takes an existing wallet as it is.
pub async fn register_patient_as(
    network: &Network,
    patients_dir: &Path,
    request: &RegisterRequest<'_>,
    outside: Option<Address>,
) -> Result<RegisterReport, FlowError> {
    let hospital = network.hospital(request.hospital)?;
    let treatment_number = match request.treatment_number {
        Some(number) => {
            check_identifier("treatment number", number)?;
            number.to_owned()
        }
        None => new_id("T"),
    };
    check_password(request.password)?;
    if request.id_number.trim().is_empty() {
        return Err(FlowError::EmptyIdNumber);
    }
    let actor = Actor::Doctor(request.doctor);
    let client = hospital_client(network, hospital, actor).await?;
    let keys = key_service(hospital, actor).await?;
    let (mut wallet, created) =
        PatientWallet::open_or_create_for(patients_dir, request.patient, outside)?;
    let address = wallet.info().address.clone();
    let agent = wallet.info().agent.clone();
    let x25519_public = wallet.info().x25519_public.clone();
    let args = args::RegisterPatient {
        treatment_number: treatment_number.clone(),
        id_hash: Sha3_256::digest(request.id_number.as_bytes()).into(),
        eth_address: wallet.patient_address(),
        x25519_public: wallet.x25519().public_key().to_bytes(),
    };
    let already_registered = || FlowError::AlreadyRegistered {
        hospital: hospital.id.clone(),
        treatment_number: treatment_number.clone(),
    };
    let started = Instant::now();
    let (tx_id, block_number) = match client.register_patient(&args).await {
        Ok(committed) => {
            // Noted before enrolling, so a re-run knows this registration is its own.
            wallet.add_registration(Registration {
                hospital: hospital.id.clone(),
                treatment_number: treatment_number.clone(),
                tx_id: committed.tx_id.clone(),
            })?;
            (committed.tx_id, Some(committed.block_number))
        }
        Err(source) => {
            let earlier = wallet
                .info()
                .registrations
                .iter()
                .find(|r| r.hospital == hospital.id && r.treatment_number == treatment_number)
                .map(|r| r.tx_id.clone());
            match earlier {
                // A re-run: the chain holds this wallet's registration; enroll below.
                Some(tx_id) if patient_exists(&source) => (tx_id, None),
                _ => {
                    if created {
                        remove_wallet(patients_dir, request.patient);
                    }
                    return Err(if patient_exists(&source) {
                        already_registered()
                    } else {
                        FlowError::chain(&hospital.channel, source)
                    });
                }
            }
        }
    };
    let register_ms = ms(started);

    let started = Instant::now();
    match keys
        .enroll_patient(&treatment_number, request.password.as_bytes())
        .await
    {
        Ok(()) => {}
        // The service refuses a second enrollment: the patient is registered already.
        Err(KeyServiceError::Conflict { .. }) => return Err(already_registered()),
        Err(source) => {
            return Err(FlowError::NotEnrolled {
                hospital: hospital.id.clone(),
                treatment_number,
                source,
            });
        }
    }
    Ok(RegisterReport {
        patient: request.patient.to_owned(),
        address,
        agent,
        x25519_public,
        wallet_created: created,
        hospital: hospital.id.clone(),
        treatment_number,
        tx_id,
        block_number,
        register_ms,
        enroll_ms: ms(started),
    })
}

/// Whether the chain refused a registration because the treatment number is taken.
fn patient_exists(error: &ClientError) -> bool {
    crate::error::chain_says(error, "already exists")
}

fn remove_wallet(patients_dir: &Path, patient: &str) {
    let Ok(dir) = PatientWallet::dir(patients_dir, patient) else {
        return;
    };
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "could not remove the wallet of a failed registration");
    }
}
