//! The recovery flows Figures 5, 6 and 8 time: medcert's cross-chain recovery (the CLI's
//! `ehr recover` through the relay) and the non-cross-chain baseline built from the same
//! parts.
//!
//! Every recovery gets its own consent (fresh nonce) for one certified record per size,
//! so a single 15 MB certificate serves any number of recoveries; every recovered copy is
//! removed from the CSP and the key store after the round.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use medcert_crypto::{EnvelopeHeader, HpkeKeyPair};
use medcert_ethereum::ethers;
use medcert_fabric_protos::protos::TxValidationCode;
use medcert_flows::consent::ConsentFile;
use medcert_flows::digest::{ContentFingerprint, Fingerprints, HashC, WatermarkFingerprint};
use medcert_flows::hospital_api::ClientError;
use medcert_flows::recover::DEFAULT_SERVE_WITHIN;
use medcert_flows::store::StoreError;
use medcert_flows::{
    ConsentRequest, FlowError, PatientAgent, Quiet, RecoverRequest, StoreFlowRequest, recover,
    sign_consent, store as store_flow,
};
use medcert_network::{Hospital, Network};

use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Middleware, Provider};
use ethers::signers::Signer;
use ethers::types::{Address, Bytes, TransactionRequest, U256};

use crate::anvil::{self, Funded, rpc};
use crate::error::BenchError;
use crate::fixtures::{Patient, Workspace};

/// Longest wait for the relay's answer to one request.
const RELAY_WAIT: Duration = Duration::from_secs(120);
/// How often the patient's agent beside a recovery passes with no new block: each new
/// block brings a pass anyway (a served request arrives in one), so this only bounds
/// how late an expired consent is noticed, as for a patient's own agent.
const AGENT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a consent of the benchmark stays valid.
const CONSENT_VALIDITY: Duration = Duration::from_secs(3600);

/// A record certified for recovery: the source of every recovery of one size.
pub struct Certified {
    /// The record's size, in bytes.
    pub size: u64,
    /// The record's certificate id.
    pub certificate_id: u64,
}

/// Stores and certifies a document of `size` at `source` for the patient.
pub async fn certify(
    network: &Network,
    workspace: &Workspace,
    source: &Hospital,
    patient: &Patient,
    size: u64,
) -> Result<Certified, BenchError> {
    let treatment = patient.treatment_number(&source.id).ok_or_else(|| {
        BenchError::Unavailable(format!("the patient is not registered at {}", source.id))
    })?;
    let document = workspace.document(size, treatment, &source.id)?;
    let stored = store_flow(
        network,
        &workspace.patients_dir(),
        &StoreFlowRequest {
            hospital: &source.id,
            doctor: 0,
            treatment_number: treatment,
            record_id: None,
            source: &document,
            password: &patient.password,
            certify_for: Some(&patient.name),
        },
        &Quiet,
    )
    .await?;
    std::fs::remove_file(&document)
        .map_err(BenchError::io("cannot remove a document", &document))?;
    let certificate = stored.certificate.ok_or_else(|| BenchError::Unexpected {
        what: "the store flow",
        detail: "stored without the certificate it was asked for".into(),
    })?;
    Ok(Certified {
        size,
        certificate_id: certificate.certificate_id,
    })
}

/// A fresh consent of the patient for `hospital` to recover the certificate once.
pub async fn consent(
    network: &Network,
    workspace: &Workspace,
    patient: &Patient,
    hospital: &Hospital,
    certified: &Certified,
) -> Result<PathBuf, BenchError> {
    let out = workspace.path().join(format!(
        "consent-{}-{}-{:016x}.json",
        hospital.id,
        certified.certificate_id,
        rand::random::<u64>()
    ));
    sign_consent(
        network,
        &workspace.patients_dir(),
        &ConsentRequest {
            patient: &patient.name,
            hospital: &hospital.id,
            certificate_id: certified.certificate_id,
            valid_for: CONSENT_VALIDITY,
            out: &out,
        },
    )
    .await?;
    Ok(out)
}

/// Timings of one recovery, in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoveryTimes {
    /// Request on the hospital channel → verified plaintext at the hospital.
    pub end_to_end: f64,
    /// Requesting the recovery on the hospital chain.
    pub request: f64,
    /// Waiting for the relay's outcome.
    pub relay_wait: f64,
    /// Fetching the envelope from IPFS.
    pub ipfs_get: f64,
    /// Waiting for the patient's agent to release the key on the certificate chain.
    pub patient_release: f64,
    /// The hospital's key service opening the released key.
    pub release_key: f64,
    /// Opening the envelope and decrypting the record.
    pub decrypt: f64,
    /// Verifying the recovered record.
    pub verify: f64,
    /// Storing the recovered record again at the hospital (after the end-to-end time).
    pub store_again: f64,
}

/// One cross-chain recovery at `hospital` with the consent at `consent_path`, with the
/// patient's agent running beside it to release the key; the recovered copy is removed
/// again afterwards.
pub async fn recover_once(
    network: &Network,
    workspace: &Workspace,
    patient: &Patient,
    hospital: &Hospital,
    consent_path: &Path,
) -> Result<RecoveryTimes, BenchError> {
    let treatment = patient.treatment_number(&hospital.id).ok_or_else(|| {
        BenchError::Unavailable(format!("the patient is not registered at {}", hospital.id))
    })?;
    let record_id = format!("RB-{:016x}", rand::random::<u64>());
    let request = RecoverRequest {
        hospital: &hospital.id,
        doctor: 0,
        treatment_number: treatment,
        password: &patient.password,
        consent: consent_path,
        record_id: Some(&record_id),
        resume: None,
        wait: RELAY_WAIT,
        serve_within: DEFAULT_SERVE_WITHIN,
        out: None,
    };
    let patients_dir = workspace.patients_dir();
    let agent = PatientAgent::open(network, &patients_dir, &patient.name).await?;
    let recovered = agent.beside(AGENT_INTERVAL, async {
        let mut attempt = 1;
        loop {
            match recover(network, &request, &Quiet).await {
                Err(e) if attempt < CONFLICT_ATTEMPTS && is_write_conflict(&e) => {
                    // Another client of the shared network raced this request for the
                    // channel's recovery counter; nothing was recorded, so ask again.
                    tracing::warn!(hospital = %hospital.id, error = %e, "recovery request retried");
                    CONFLICTS_RETRIED.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
                outcome => break outcome,
            }
        }
    });
    let report = recovered.await?;
    std::fs::remove_file(consent_path)
        .map_err(BenchError::io("cannot remove a consent file", consent_path))?;
    remove_stored(network, &report.stored.hash_c).await?;
    let t = &report.timings_ms;
    Ok(RecoveryTimes {
        end_to_end: t.request
            + t.relay_wait
            + t.ipfs_get
            + t.patient_release
            + t.release_key
            + t.decrypt
            + t.verify,
        request: t.request,
        relay_wait: t.relay_wait,
        ipfs_get: t.ipfs_get,
        patient_release: t.patient_release,
        release_key: t.release_key,
        decrypt: t.decrypt,
        verify: t.verify,
        store_again: t.store,
    })
}

/// The way a recovery goes.
#[derive(Clone, Copy)]
pub enum Route<'a> {
    /// medcert's cross-chain recovery, through the relay.
    CrossChain,
    /// The non-cross-chain baseline.
    Baseline(&'a Baseline),
}

impl Route<'_> {
    /// What the figures call this route's recoveries.
    pub fn recoveries(self) -> &'static str {
        match self {
            Route::CrossChain => "cross-chain recoveries",
            Route::Baseline(_) => "baseline (no cross-chain) recoveries",
        }
    }

    /// One recovery this way at `hospital` with the consent at `consent_path`, for a load
    /// that counts recoveries rather than timing their steps.
    pub async fn recover_once(
        self,
        network: &Network,
        workspace: &Workspace,
        patient: &Patient,
        hospital: &Hospital,
        consent_path: &Path,
    ) -> Result<(), BenchError> {
        match self {
            Route::CrossChain => recover_once(network, workspace, patient, hospital, consent_path)
                .await
                .map(drop),
            Route::Baseline(baseline) => baseline
                .recover_once(network, workspace, hospital, consent_path)
                .await
                .map(drop),
        }
    }
}

/// Tries of one recovery request that loses a write conflict on the hospital chain.
const CONFLICT_ATTEMPTS: usize = 3;

static CONFLICTS_RETRIED: AtomicUsize = AtomicUsize::new(0);

/// Recovery requests asked again after a write conflict, since the process started.
pub fn conflicts_retried() -> usize {
    CONFLICTS_RETRIED.load(Ordering::Relaxed)
}

/// Whether the hospital chain refused a transaction only because a concurrent one
/// changed what it read (MVCC or phantom read conflict): a retry can succeed.
fn is_write_conflict(error: &FlowError) -> bool {
    let source = match error {
        FlowError::HospitalChain {
            source: ClientError::Fabric { source, .. },
            ..
        }
        | FlowError::Store(StoreError::Chain(ClientError::Fabric { source, .. })) => source,
        _ => return false,
    };
    matches!(
        source,
        medcert_fabric::Error::NotCommitted {
            code: TxValidationCode::MvccReadConflict | TxValidationCode::PhantomReadConflict,
            ..
        }
    )
}

/// Removes a stored record's CSP object. Its key stays in the hospital's key service,
/// which releases it only for an audited access.
async fn remove_stored(network: &Network, hash_c: &HashC) -> Result<(), BenchError> {
    medcert_flows::connect::csp(network)?
        .delete(hash_c.as_bytes())
        .await?;
    Ok(())
}

/// Timings of one baseline recovery, in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct BaselineTimes {
    /// Grant sent → verified plaintext at the hospital.
    pub end_to_end: f64,
    /// The patient's grant transaction, until mined.
    pub grant: f64,
    /// Reading the certificate from the contract.
    pub read_certificate: f64,
    /// Fetching the envelope from IPFS.
    pub ipfs_get: f64,
    /// Unwrapping the key and decrypting the record.
    pub decrypt: f64,
    /// Checking the watermark and the anchored fingerprints.
    pub verify: f64,
}

/// The non-cross-chain baseline, from the same parts: the patient grants on chain (a
/// transaction from the patient's account to the hospital's, carrying the signed consent),
/// and once it is mined the hospital reads the certificate straight from the contract,
/// fetches the envelope from IPFS, decrypts it with the key the patient's wallet opens and
/// checks the watermark and the anchored fingerprints. No hospital chain, no relay.
pub struct Baseline {
    /// The patient's name, under which the workspace keeps its wallet.
    patient_name: String,
    patient: SignerMiddleware<Provider<Http>, ethers::signers::LocalWallet>,
    /// The patient's X25519 key: opens the envelope's copy of the record key.
    patient_key: HpkeKeyPair,
    /// The patient's next nonce: grants of concurrent recoveries each take one.
    nonce: tokio::sync::Mutex<U256>,
    gas_price: U256,
}

impl Baseline {
    /// Funds the patient's account (anvil_setBalance) so it can send its grants.
    pub async fn new(
        network: &Network,
        workspace: &Workspace,
        patient: &Patient,
    ) -> Result<Self, BenchError> {
        let wallet = workspace.wallet(&patient.name)?;
        let signer = medcert_ethereum::patient_wallet(wallet.signer())
            .with_chain_id(network.ethereum.chain_id);
        let Funded {
            client,
            nonce,
            gas_price,
        } = anvil::fund(network, signer, Duration::from_millis(5)).await?;
        Ok(Self {
            patient_name: patient.name.clone(),
            patient: client,
            patient_key: HpkeKeyPair::from_secret_bytes(&wallet.x25519().secret_bytes()),
            nonce: tokio::sync::Mutex::new(nonce),
            gas_price,
        })
    }

    /// The patient's grant for one consent: mined before it returns.
    async fn grant(&self, to: Address, consent: &ConsentFile) -> Result<(), BenchError> {
        let data = hex::decode(&consent.signed_consent).map_err(|e| BenchError::Unexpected {
            what: "a consent file",
            detail: format!("signed consent is not hex: {e}"),
        })?;
        let nonce = {
            let mut next = self.nonce.lock().await;
            // The patient's agent sends from the same account (its key releases), so the
            // node's pending count may be ahead of this counter.
            let pending = self
                .patient
                .get_transaction_count(
                    self.patient.address(),
                    Some(ethers::types::BlockNumber::Pending.into()),
                )
                .await
                .map_err(rpc)?;
            *next = (*next).max(pending);
            let nonce = *next;
            *next += U256::one();
            nonce
        };
        let request = TransactionRequest::new()
            .to(to)
            .value(0u64)
            .data(Bytes::from(data))
            .from(self.patient.address())
            .nonce(nonce)
            .gas(100_000u64)
            .gas_price(self.gas_price)
            .chain_id(self.patient.signer().chain_id());
        let pending = self
            .patient
            .send_transaction(request, None)
            .await
            .map_err(rpc)?;
        let receipt = pending
            .await
            .map_err(rpc)?
            .ok_or_else(|| BenchError::Unavailable("the patient's grant was dropped".into()))?;
        if receipt.status != Some(1u64.into()) {
            return Err(BenchError::Unexpected {
                what: "anvil",
                detail: "the patient's grant failed".into(),
            });
        }
        Ok(())
    }

    /// One baseline recovery at `hospital` with the consent at `consent_path`.
    pub async fn recover_once(
        &self,
        network: &Network,
        workspace: &Workspace,
        hospital: &Hospital,
        consent_path: &Path,
    ) -> Result<BaselineTimes, BenchError> {
        let consent = ConsentFile::read(consent_path)?;
        let hospital_account: Address = network
            .hospital_account(hospital)
            .and_then(|a| a.address.parse().ok())
            .ok_or_else(|| {
                BenchError::Unavailable(format!("{} has no Ethereum account", hospital.id))
            })?;
        let reader = medcert_flows::connect::certificate_reader(network)?;
        let ipfs = medcert_flows::connect::ipfs(network)?;
        let scratch = workspace
            .path()
            .join(format!("baseline-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&scratch).map_err(BenchError::io("cannot create", &scratch))?;
        let mut t = BaselineTimes::default();
        let total = Instant::now();

        let started = Instant::now();
        self.grant(hospital_account, &consent).await?;
        t.grant = ms(started);

        let started = Instant::now();
        let certificate = reader.certificate(consent.certificate_id).await?;
        t.read_certificate = ms(started);

        let started = Instant::now();
        let envelope_path = scratch.join("envelope");
        {
            let mut envelope = tokio::fs::File::create(&envelope_path)
                .await
                .map_err(BenchError::io("cannot create", &envelope_path))?;
            ipfs.cat_to(&certificate.cid, &mut envelope).await?;
        }
        t.ipfs_get = ms(started);

        let started = Instant::now();
        let mut reader = BufReader::new(
            File::open(&envelope_path).map_err(BenchError::io("cannot open", &envelope_path))?,
        );
        let header = EnvelopeHeader::read(&mut reader)?;
        // No chain, no relay, so no key service releases the key here: the patient's own
        // key opens the envelope, the same one HPKE open the hospital's service makes.
        let dek = header.unwrap_dek(&self.patient_key)?;
        let plain = scratch.join("record.xml");
        medcert_crypto::decrypt_to_file(&dek, &header.aad(), reader, &plain)?;
        t.decrypt = ms(started);

        let started = Instant::now();
        let verification = medcert_flows::verify_file(network, &plain).await?;
        let anchored = Fingerprints {
            content: ContentFingerprint(certificate.content_fingerprint),
            watermark: WatermarkFingerprint(certificate.watermark_fingerprint),
        };
        if !verification.is_authentic(&header.hospital_id, &header.record_id, &anchored) {
            return Err(BenchError::NotAuthentic {
                record_id: header.record_id.clone(),
                detail: format!(
                    "verdict {:?}, or fingerprints other than the certificate's",
                    verification.verdict
                ),
            });
        }
        t.verify = ms(started);
        t.end_to_end = ms(total);
        // The grant used the consent: withdrawn in the wallet, as the patient would, so
        // the agent settles it instead of watching for its recovery until it expires.
        workspace
            .wallet(&self.patient_name)?
            .revoke_consent(consent.nonce)
            .map_err(|e| BenchError::Flow(e.into()))?;
        std::fs::remove_dir_all(&scratch).map_err(BenchError::io("cannot remove", &scratch))?;
        std::fs::remove_file(consent_path)
            .map_err(BenchError::io("cannot remove a consent file", consent_path))?;
        Ok(t)
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
