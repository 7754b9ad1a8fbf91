//! Recovery requests on the shared network, made the way a hospital makes them: a fresh
//! patient registered at the requesting hospital (its password enrolled in the hospital's
//! key service), a certificate issued on Ethereum with the patient's authorisation, the
//! patient's consent, and `RequestRecovery` with the key service's password ticket.
#![allow(dead_code)] // each test binary uses its own part

use std::time::{Duration, Instant};

use medcert_eip712::{
    CertificateAuthorization, Consent, PatientSigner, SignedConsent, hospital_id,
};
use medcert_ethereum::bindings::RecoveryServedFilter;
use medcert_ethereum::ethers::contract::EthEvent;
use medcert_ethereum::ethers::providers::Middleware;
use medcert_ethereum::ethers::types::{Address, Filter, H256, Log};
use medcert_ethereum::{ChainConfig, EthereumError, MedicalCertificateClient, wallet_from_hex};
use medcert_hospital_api::{ClientError, Function, HospitalClient, args};
use medcert_key_service::KeyServiceClient;
use medcert_network::{Hospital, Network};
use serde_json::Value;

pub(crate) const PASSWORD: &str = "relay-test-password-5d1e";
const HASH: [u8; 32] = [0x33; 32];

pub(crate) use medcert_test_support::{network, unique, unix_now};

pub(crate) fn chain_config(network: &Network) -> ChainConfig {
    ChainConfig::new(network.ethereum.rpc_url.clone(), network.ethereum.chain_id)
}

pub(crate) fn contract_address(network: &Network) -> Address {
    network
        .ethereum
        .contract_address
        .as_deref()
        .expect("no contract address: run `medcert network init`")
        .parse()
        .unwrap()
}

/// The certificate chain as hospital `hospital`'s issuer account.
pub(crate) fn issuer(network: &Network, hospital: &Hospital) -> MedicalCertificateClient {
    let account = network.hospital_account(hospital).unwrap();
    MedicalCertificateClient::attach(
        &chain_config(network),
        contract_address(network),
        wallet_from_hex(&account.private_key).unwrap(),
    )
    .unwrap()
}

/// A doctor of `hospital` on its channel.
pub(crate) async fn doctor(network: &Network, hospital: &Hospital) -> HospitalClient {
    medcert_flows::connect::hospital_client(network, hospital, medcert_flows::Actor::Doctor(0))
        .await
        .unwrap()
}

/// Doctor 0 of `hospital` at its key service.
pub(crate) async fn key_service(hospital: &Hospital) -> KeyServiceClient {
    medcert_flows::connect::key_service(hospital, medcert_flows::Actor::Doctor(0))
        .await
        .unwrap()
}

/// Other processes send as the same hospital account: retry when they took our nonce.
async fn retry_nonce<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EthereumError>>,
{
    for attempt in 1.. {
        match call().await {
            Ok(value) => return value,
            Err(EthereumError::Rpc(e)) if attempt < 20 && e.to_string().contains("nonce") => {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!()
}

/// A patient registered at one hospital, holding one certificate on Ethereum.
pub(crate) struct Patient {
    pub(crate) signer: PatientSigner,
    pub(crate) treatment: String,
    pub(crate) certificate_id: u64,
    pub(crate) hospital: Hospital,
    pub(crate) doctor: HospitalClient,
    pub(crate) key_service: KeyServiceClient,
    pub(crate) cid: String,
    pub(crate) domain: medcert_eip712::CertificateDomain,
    /// The deadline (certificate-chain time) of the recoveries this patient requests.
    pub(crate) deadline: u64,
    /// The certificate chain's time when the patient was made, or the clock's if later:
    /// anvil's time runs ahead of the clock once the deadline test has moved it.
    pub(crate) now: u64,
}

impl Patient {
    /// Registers a fresh patient at `hospital` and has that hospital certify a record of
    /// theirs (authorisation nonce 1).
    pub(crate) async fn new(network: &Network, hospital: &Hospital) -> Self {
        let signer = PatientSigner::from_seed(&rand::random());
        let treatment = unique("T");
        let doctor = doctor(network, hospital).await;
        let registration = args::RegisterPatient {
            treatment_number: treatment.clone(),
            id_hash: HASH,
            eth_address: signer.address(),
            x25519_public: HASH,
        };
        doctor.register_patient(&registration).await.unwrap();
        let key_service = key_service(hospital).await;
        key_service
            .enroll_patient(&treatment, PASSWORD.as_bytes())
            .await
            .unwrap();

        let issuer = issuer(network, hospital);
        let domain = issuer.domain();
        let cid = format!("bafkrelaytest{:016x}", rand::random::<u64>());
        let authorization = CertificateAuthorization {
            hospital: hospital_id(&hospital.id).unwrap(),
            record_id: rand::random(),
            cid: cid.clone(),
            content_fingerprint: [0xc1; 32],
            watermark_fingerprint: [0x3b; 32],
            nonce: 1,
        };
        let signature = signer.sign_certificate_authorization(&authorization, &domain);
        let patient = Address::from(signer.address());
        let issued =
            retry_nonce(|| issuer.issue_certificate(&authorization, patient, &signature)).await;
        let now = issuer
            .latest_block()
            .await
            .unwrap()
            .timestamp
            .max(unix_now());
        Self {
            signer,
            treatment,
            certificate_id: issued.certificate_id,
            hospital: hospital.clone(),
            doctor,
            key_service,
            cid,
            domain,
            deadline: now + 600,
            now,
        }
    }

    /// The patient's consent for this hospital to recover the certificate.
    pub(crate) fn consent(&self, nonce: u64, expiry: u64) -> SignedConsent {
        let consent = Consent {
            hospital: hospital_id(&self.hospital.id).unwrap(),
            certificate_id: self.certificate_id,
            expiry,
            nonce,
        };
        SignedConsent {
            signature: self.signer.sign_consent(&consent, &self.domain),
            consent,
        }
    }

    /// Submits `RequestRecovery` with `consent` (the signed-consent bytes);
    /// returns the request's index on the channel.
    pub(crate) async fn request_recovery_raw(&self, consent: &[u8]) -> u64 {
        self.request_recovery_at(consent).await.0
    }

    /// Like [`Self::request_recovery_raw`], also returning the request's block number.
    pub(crate) async fn request_recovery_at(&self, consent: &[u8]) -> (u64, u64) {
        let record_id = unique("R");
        // Requests on one channel share its counter: concurrent ones conflict (MVCC)
        // and are submitted again, as a hospital application would, each time with a new
        // ticket (a ticket is spent by the attempt that carried it).
        for attempt in 1.. {
            let ticket = self
                .key_service
                .check_password(
                    Function::RequestRecovery,
                    &self.treatment,
                    &record_id,
                    PASSWORD.as_bytes(),
                )
                .await
                .unwrap();
            let request = args::RequestRecovery {
                treatment_number: self.treatment.clone(),
                record_id: record_id.clone(),
                certificate_id: self.certificate_id.to_string(),
                consent: consent.to_vec(),
                deadline: self.deadline,
                ticket: ticket.encode(),
            };
            match self.doctor.request_recovery(&request).await {
                Ok(committed) => return (committed.answer.index, committed.block_number),
                Err(ClientError::Fabric {
                    source: medcert_fabric::Error::NotCommitted { code, .. },
                    ..
                }) if attempt < 10
                    && code
                        == medcert_fabric_protos::protos::TxValidationCode::MvccReadConflict =>
                {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => panic!("RequestRecovery: {e}"),
            }
        }
        unreachable!()
    }

    pub(crate) async fn request_recovery(&self, consent: SignedConsent) -> u64 {
        self.request_recovery_raw(&consent.to_bytes()).await
    }

    /// The recovery's `outcome` JSON as the channel holds it now.
    pub(crate) async fn outcome_now(&self, index: u64) -> Value {
        let recovery = self
            .doctor
            .get_recovery_status(&args::GetRecoveryStatus { index })
            .await
            .unwrap();
        serde_json::to_value(recovery.outcome).unwrap()
    }

    /// Waits (up to `limit`) until the channel holds an answer for `index`; returns the
    /// recovery's `outcome` JSON.
    pub(crate) async fn outcome(&self, index: u64, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let outcome = self.outcome_now(index).await;
            if outcome["state"] != "pending" {
                return outcome;
            }
            assert!(
                start.elapsed() < limit,
                "request {index} on {} still pending after {limit:?}",
                self.hospital.channel
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Every `RecoveryServed` log of `request_id` on the chain.
pub(crate) async fn served_logs(network: &Network, request_id: [u8; 32]) -> Vec<Log> {
    let client = issuer(network, &network.fabric.hospitals[0]);
    let filter = Filter::new()
        .address(contract_address(network))
        .topic0(RecoveryServedFilter::signature())
        .topic1(H256::from(request_id))
        .from_block(0u64);
    client.contract().client().get_logs(&filter).await.unwrap()
}

/// Checks a completed outcome against the one `RecoveryServed` event of its request.
pub(crate) async fn assert_completed_once(
    network: &Network,
    patient: &Patient,
    index: u64,
    outcome: &Value,
) {
    assert_eq!(outcome["state"], "completed", "{outcome}");
    let id = medcert_relay::request_id(&patient.hospital.channel, index);
    let logs = served_logs(network, id).await;
    assert_eq!(logs.len(), 1, "RecoveryServed events of request {index}");
    let result: Value = serde_json::from_str(outcome["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["certificate_id"], patient.certificate_id);
    assert_eq!(result["cid"], patient.cid.as_str());
    assert_eq!(result["content_fingerprint"], "c1".repeat(32));
    assert_eq!(result["watermark_fingerprint"], "3b".repeat(32));
    assert_eq!(result["request_id"], format!("0x{}", hex::encode(id)));
    assert_eq!(
        result["eth_tx"],
        format!("{:#x}", logs[0].transaction_hash.unwrap())
    );
    assert_eq!(result["eth_block"], logs[0].block_number.unwrap().as_u64());
}
