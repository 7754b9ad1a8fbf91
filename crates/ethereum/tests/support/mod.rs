//! A fresh MedicalCertificate deployment on the running anvil, shared by the integration
//! tests and the measuring examples.
//!
//! Every role (admin, relay, hospital, patient) gets a fresh random account funded with
//! anvil's `anvil_setBalance`, so tests running in parallel, and other crates' tests on the
//! same node, never race over one account's nonces.
#![allow(dead_code)] // each test binary or example uses its own part of the fixture

use medcert_ethereum::ethers::providers::{Http, Middleware, Provider};
use medcert_ethereum::ethers::signers::LocalWallet;
use medcert_ethereum::ethers::types::{Address, TransactionReceipt, U256};
use medcert_ethereum::{
    CertificateAuthorization, ChainConfig, Consent, HospitalKeys, MedicalCertificateClient,
    PatientSigner, hospital_id, patient_wallet,
};
pub(crate) use medcert_test_support::unix_now;

pub(crate) struct Fixture {
    pub(crate) config: ChainConfig,
    pub(crate) admin: MedicalCertificateClient,
    pub(crate) relay: MedicalCertificateClient,
    /// Registered as "hospital1".
    pub(crate) hospital: MedicalCertificateClient,
    pub(crate) hospital_id: [u8; 32],
    pub(crate) deployment: TransactionReceipt,
    pub(crate) patient: PatientSigner,
    /// Sends as the patient (revocations).
    pub(crate) patient_client: MedicalCertificateClient,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::deploy(chain_config()).await
    }

    pub(crate) async fn deploy(config: ChainConfig) -> Self {
        let admin_wallet = funded_wallet(&config).await;
        let relay_wallet = funded_wallet(&config).await;
        let (admin, deployment) =
            MedicalCertificateClient::deploy(&config, admin_wallet, address_of(&relay_wallet))
                .await
                .expect("deploy the contract");
        let relay = admin.with_signer(relay_wallet).unwrap();
        let hospital_id = hospital_id("hospital1").unwrap();
        let hospital = register(&admin, hospital_id).await;
        let patient = PatientSigner::from_seed(&rand::random());
        fund(&config, Address::from(patient.address())).await;
        let patient_client = admin.with_signer(patient_wallet(&patient)).unwrap();
        Self {
            config,
            admin,
            relay,
            hospital,
            hospital_id,
            deployment,
            patient,
            patient_client,
        }
    }

    pub(crate) fn patient_wallet(&self) -> LocalWallet {
        patient_wallet(&self.patient)
    }

    /// The patient's authorisation to certify record `record` at this fixture's hospital.
    pub(crate) fn authorization(
        &self,
        record: u64,
        nonce: u64,
    ) -> (CertificateAuthorization, [u8; 65]) {
        let authorization = authorization_for(self.hospital_id, record, nonce);
        let signature = self
            .patient
            .sign_certificate_authorization(&authorization, &self.admin.domain());
        (authorization, signature)
    }

    /// Issues a certificate for record `record`, authorised with nonce `record`.
    pub(crate) async fn issue(&self, record: u64) -> u64 {
        let (authorization, signature) = self.authorization(record, record);
        self.hospital
            .issue_certificate(&authorization, self.patient.address().into(), &signature)
            .await
            .expect("issue a certificate")
            .certificate_id
    }

    /// The patient's consent to serve `certificate_id` to `hospital` for an hour.
    pub(crate) fn consent(
        &self,
        hospital: [u8; 32],
        certificate_id: u64,
        nonce: u64,
    ) -> (Consent, [u8; 65]) {
        let consent = Consent {
            hospital,
            certificate_id,
            expiry: unix_now() + 3600,
            nonce,
        };
        let signature = self.patient.sign_consent(&consent, &self.admin.domain());
        (consent, signature)
    }
}

/// The certificate chain of the network started by deploy/up, with default waiting.
pub(crate) fn chain_config() -> ChainConfig {
    let network = medcert_test_support::network();
    ChainConfig::new(network.ethereum.rpc_url, network.ethereum.chain_id)
}

pub(crate) fn authorization_for(
    hospital: [u8; 32],
    record: u64,
    nonce: u64,
) -> CertificateAuthorization {
    let mut record_id = [0u8; 32];
    record_id[24..].copy_from_slice(&record.to_be_bytes());
    CertificateAuthorization {
        hospital,
        record_id,
        // A CIDv1 (base32, sha2-256) is 59 characters, like this one.
        cid: format!("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy5{record:06}"),
        content_fingerprint: [0xc0; 32],
        watermark_fingerprint: [0x3a; 32],
        nonce,
    }
}

/// Registers a fresh funded account as hospital `id` and returns a client sending as it.
pub(crate) async fn register(
    admin: &MedicalCertificateClient,
    id: [u8; 32],
) -> MedicalCertificateClient {
    let wallet = funded_wallet(admin.config()).await;
    admin
        .register_hospital(id, address_of(&wallet), &keys([0x25; 32]))
        .await
        .expect("register a hospital");
    admin.with_signer(wallet).unwrap()
}

pub(crate) async fn funded_wallet(config: &ChainConfig) -> LocalWallet {
    let wallet = patient_wallet(&PatientSigner::from_seed(&rand::random()));
    fund(config, address_of(&wallet)).await;
    wallet
}

pub(crate) fn address_of(wallet: &LocalWallet) -> Address {
    use medcert_ethereum::ethers::signers::Signer;
    wallet.address()
}

/// Gives `account` 100 ether through anvil's `anvil_setBalance` (no transaction, no nonce).
pub(crate) async fn fund(config: &ChainConfig, account: Address) {
    let provider = Provider::<Http>::try_from(config.rpc_url.as_str()).unwrap();
    let balance = U256::exp10(20);
    let _: serde_json::Value = provider
        .request("anvil_setBalance", (account, balance))
        .await
        .unwrap_or_else(|e| panic!("anvil_setBalance at {}: {e}", config.rpc_url));
    assert_eq!(provider.get_balance(account, None).await.unwrap(), balance);
}

/// Transactions sent so far by `account`: unchanged by a refused call.
pub(crate) async fn sent_transactions(config: &ChainConfig, account: Address) -> U256 {
    let provider = Provider::<Http>::try_from(config.rpc_url.as_str()).unwrap();
    provider.get_transaction_count(account, None).await.unwrap()
}

/// A hospital's published keys, both `byte` repeated.
pub(crate) fn keys(byte: [u8; 32]) -> HospitalKeys {
    HospitalKeys {
        public_key: byte,
        watermark_key: byte,
    }
}

/// A recovery request's deadline an hour ahead: far enough for every test.
pub(crate) fn deadline() -> u64 {
    unix_now() + 3600
}
