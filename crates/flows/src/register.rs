//! A patient's registration at a hospital: the wallet (created on the first one), the
//! treatment number bound to a hash of the patient's ID number, and the password.

use std::path::Path;
use std::time::Instant;

use medcert_hospital_api::args;
use medcert_network::Network;
use serde::Serialize;
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::connect::{Actor, hospital_client};
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
    /// The patient's password at the hospital.
    pub password: &'a Zeroizing<String>,
}

/// The patient's keys and the registration's transaction.
#[derive(Debug, Serialize)]
pub struct RegisterReport {
    /// The patient's wallet name.
    pub patient: String,
    /// The patient's Ethereum address.
    pub address: String,
    /// The patient's X25519 public key, hex.
    pub x25519_public: String,
    /// Whether this registration created the wallet.
    pub wallet_created: bool,
    /// The hospital's id.
    pub hospital: String,
    /// The patient's treatment number at the hospital (assigned or given).
    pub treatment_number: String,
    /// The registration's transaction on the hospital chain.
    pub tx_id: String,
    /// The block holding `tx_id`.
    pub block_number: u64,
    /// Time to register on the hospital chain, in milliseconds.
    pub register_ms: f64,
}

/// Creates (or opens) the patient's wallet and registers the patient at the hospital. A
/// wallet created by a registration that fails is removed again.
pub async fn register_patient(
    network: &Network,
    patients_dir: &Path,
    request: &RegisterRequest<'_>,
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
    let client = hospital_client(network, hospital, Actor::Doctor(request.doctor)).await?;
    let (mut wallet, created) = PatientWallet::open_or_create(patients_dir, request.patient)?;
    let address = wallet.info().address.clone();
    let x25519_public = wallet.info().x25519_public.clone();
    let args = args::RegisterPatient {
        treatment_number: treatment_number.clone(),
        id_hash: Sha3_256::digest(request.id_number.as_bytes()).into(),
        eth_address: wallet.signer().address(),
        x25519_public: wallet.x25519().public_key().to_bytes(),
    };
    let started = Instant::now();
    let committed = client
        .register_patient(&args, request.password.as_bytes())
        .await;
    let committed = match committed {
        Ok(committed) => committed,
        Err(source) => {
            if created {
                let dir = PatientWallet::dir(patients_dir, request.patient)?;
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(error = %e, dir = %dir.display(), "could not remove the wallet of a failed registration");
                }
            }
            return Err(FlowError::chain(&hospital.channel, source));
        }
    };
    let register_ms = ms(started);
    wallet.add_registration(Registration {
        hospital: hospital.id.clone(),
        treatment_number: treatment_number.clone(),
        tx_id: committed.tx_id.clone(),
    })?;
    Ok(RegisterReport {
        patient: request.patient.to_owned(),
        address,
        x25519_public,
        wallet_created: created,
        hospital: hospital.id.clone(),
        treatment_number,
        tx_id: committed.tx_id,
        block_number: committed.block_number,
        register_ms,
    })
}
