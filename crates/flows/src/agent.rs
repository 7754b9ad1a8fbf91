//! The patient's agent: releases a record's key to the recovering hospital H' only after
//! the certificate chain proves that H''s recovery was served under one of the patient's
//! own consents (DESIGN.md, "Trust": key release after proven service).
//!
//! One pass ([`PatientAgent::release_pass`]) looks, for every consent the wallet issued
//! and has not yet settled, for its `RecoveryServed` on the certificate chain. It takes
//! the event only from a receipt it has verified against a verified block header (the
//! relay's own proof code, `medcert_ethereum::proof`), then checks that the consent is
//! still unexpired at the chain's latest block and not withdrawn, that the certificate is
//! still recoverable and the key not yet released. Only then it opens the record's key
//! from the envelope on IPFS (wrapped to the patient) and re-wraps it to H''s X25519 key
//! as published on the contract, and sends `releaseKey`, which the contract accepts only
//! from the certificate's patient (or its agent) for a served request, once. H''s key
//! service opens that key only for the committed `CompleteRecovery` of the same recovery
//! on H''s channel.
//!
//! The agent sends from the wallet's own account. That is the patient's account, unless
//! the patient's key lives in another wallet: then the wallet's account is the patient's
//! agent, which the patient authorises once on the contract ([`authorize_agent`], an
//! EIP-712 `AgentAuthorization` signed by the other wallet) before it can release keys or
//! revoke for the patient.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medcert_crypto::{CryptoError, EnvelopeHeader, KeyBinding, PublicKey, WrapPurpose, wrap_key};
use medcert_eip712::{AgentAuthorization, hospital_id};
use medcert_ethereum::ethers::types::{Address, H256, Log, U256};
use medcert_ethereum::proof::{HashChainVerifier, HeaderCheckpoint, prove_receipt};
use medcert_ethereum::{
    Client, EthereumError, HospitalKeys, MedicalCertificateClient, RecoveryServed, patient_wallet,
    wallet_from_hex,
};
use medcert_network::Network;
use serde::Serialize;

use crate::connect::{certificate_reader, ipfs};
use crate::error::FlowError;
use crate::ids::word_text;
use crate::signing::{SignatureSource, Signed, check_given, same_field};
use crate::wallet::{IssuedConsent, PatientWallet};

/// What one pass of the agent did.
#[derive(Debug, Default, Serialize)]
pub struct ReleasePass {
    /// Keys released in this pass.
    pub released: Vec<Release>,
    /// Served recoveries the agent refused to release a key for, with the reason.
    pub refused: Vec<Refusal>,
    /// Consents still waiting for their recovery to be served.
    pub waiting: usize,
}

/// A key released to H'.
#[derive(Debug, Serialize)]
pub struct Release {
    /// H'.
    pub hospital: String,
    /// The recovered certificate.
    pub certificate_id: u64,
    /// The served request, `0x` hex.
    pub request_id: String,
    /// The `releaseKey` transaction, `0x` hex.
    pub tx: String,
}

/// A served recovery the agent released nothing for.
#[derive(Debug, Serialize)]
pub struct Refusal {
    /// H'.
    pub hospital: String,
    /// The certificate.
    pub certificate_id: u64,
    /// The consent's nonce.
    pub nonce: u64,
    /// Why nothing was released.
    pub reason: String,
}

/// The patient's agent, bound to one wallet.
pub struct PatientAgent<'a> {
    network: &'a Network,
    patients_dir: &'a Path,
    patient: String,
    /// The certificate chain, sending as the wallet's account (the patient's or its agent).
    chain: MedicalCertificateClient,
    /// Verifies the certificate chain's headers from the wallet's persisted checkpoint.
    verifier: Verifier,
    /// Where the verifier's checkpoint is kept between runs.
    checkpoint_path: PathBuf,
}

type Verifier = HashChainVerifier<Arc<Client>>;

/// How often a running agent asks whether the certificate chain has a new block. The
/// hospital needs the release only after the relay's CompleteRecovery commits and the
/// envelope is fetched (about 50 ms after the RecoveryServed block), so a poll within
/// that leaves the recovery's time as it is and asks the node a third as often as 10 ms.
const BLOCK_POLL: Duration = Duration::from_millis(30);

/// What a consent is settled with when it expired or was withdrawn before being served.
const UNSERVED: &str = "unserved";

/// One release pass at a time in this process (see [`PatientAgent::release_pass`]).
static PASSES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The agent's header checkpoint, in the patient's wallet directory.
const CHECKPOINT_FILE: &str = "header-checkpoint.json";

impl std::fmt::Debug for PatientAgent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientAgent")
            .field("patient", &self.patient)
            .finish_non_exhaustive()
    }
}

/// A patient's account is topped up to this much ether on a development chain…
const TOP_UP_WEI: u128 = 1_000_000_000_000_000_000;
/// How often a top-up that lost its funding account's nonce to another is tried.
const TOP_UP_ATTEMPTS: u64 = 30;
/// …when it holds less than this (a `releaseKey` costs well under 0.001 ether there).
const TOP_UP_BELOW_WEI: u128 = 10_000_000_000_000_000;

impl<'a> PatientAgent<'a> {
    /// Opens `patient`'s wallet and the certificate chain as the wallet's account.
    pub async fn open(
        network: &'a Network,
        patients_dir: &'a Path,
        patient: &str,
    ) -> Result<Self, FlowError> {
        let wallet = PatientWallet::open(patients_dir, patient)?;
        let chain = patient_chain(network, &wallet).await?;
        let checkpoint_path = PatientWallet::dir(patients_dir, patient)?.join(CHECKPOINT_FILE);
        let checkpoint = match std::fs::read(&checkpoint_path) {
            Ok(bytes) => Some(serde_json::from_slice::<HeaderCheckpoint>(&bytes).map_err(
                |source| FlowError::MalformedJson {
                    what: "header checkpoint",
                    from: checkpoint_path.display().to_string(),
                    source,
                },
            )?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(FlowError::Read {
                    path: checkpoint_path,
                    source,
                });
            }
        };
        let verifier = HashChainVerifier::new(
            chain.contract().client(),
            chain.config().confirmations as u64,
            checkpoint,
        );
        Ok(Self {
            network,
            patients_dir,
            patient: patient.to_owned(),
            chain,
            verifier,
            checkpoint_path,
        })
    }

    /// One pass over the wallet's unsettled consents: releases the key of every served
    /// recovery that passes every check; refuses the others with a reason.
    pub async fn release_pass(&self) -> Result<ReleasePass, FlowError> {
        // Agents of one process (the demo, the benchmark) take turns: each rewrites the
        // wallet's consent list and sends from the patient's account, whose nonce a
        // concurrent pass would race for.
        let _turn = PASSES.lock().await;
        let mut wallet = PatientWallet::open(self.patients_dir, &self.patient)?;
        let mut pass = ReleasePass::default();
        let now = self.now().await?;
        let pending: Vec<IssuedConsent> = wallet
            .info()
            .consents
            .iter()
            .filter(|c| c.settled.is_none())
            .cloned()
            .collect();
        // One search for every outstanding consent: a patient may have many (a query each
        // made a pass grow with them: 200 ms and more in the benchmark's long runs).
        let mut certificates: Vec<u64> = pending.iter().map(|c| c.certificate_id).collect();
        certificates.sort_unstable();
        certificates.dedup();
        let from_block = pending.iter().map(|c| c.from_block).min().unwrap_or(0);
        let served = self
            .chain
            .recoveries_served(&certificates, from_block)
            .await?;
        for consent in pending {
            let Some(hospital) = hospital_id(&consent.hospital) else {
                continue;
            };
            let served = served
                .iter()
                .find(|event| {
                    event.certificate_id == consent.certificate_id
                        && event.hospital == hospital
                        && event.consent_nonce == consent.nonce
                        && event.block_number >= consent.from_block
                })
                .cloned();
            let Some(event) = served else {
                // Unserved and expired or withdrawn: it can never be served now.
                if now > consent.expiry || consent.revoked {
                    wallet.settle_consent(consent.nonce, UNSERVED)?;
                } else {
                    pass.waiting += 1;
                }
                continue;
            };
            let request_id = format!("0x{}", hex::encode(event.request_id));
            match self.release(&wallet, &consent, &event).await? {
                Ok(tx) => {
                    wallet.settle_consent(consent.nonce, &request_id)?;
                    pass.released.push(Release {
                        hospital: consent.hospital.clone(),
                        certificate_id: consent.certificate_id,
                        request_id,
                        tx,
                    });
                }
                Err(reason) => {
                    wallet.settle_consent(consent.nonce, &request_id)?;
                    pass.refused.push(Refusal {
                        hospital: consent.hospital.clone(),
                        certificate_id: consent.certificate_id,
                        nonce: consent.nonce,
                        reason,
                    });
                }
            }
        }
        self.save_checkpoint().await?;
        Ok(pass)
    }

    /// The time consents expire by: the later of the chain's latest block and the local
    /// clock, since a chain that mines only on demand (anvil) may not have moved for a
    /// while, and a patient's consent ends when its expiry passes on either.
    async fn now(&self) -> Result<u64, FlowError> {
        let local = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        Ok(self.chain.latest_block().await?.timestamp.max(local))
    }

    /// Persists the newest verified header, so the next run links to it.
    async fn save_checkpoint(&self) -> Result<(), FlowError> {
        let Some(checkpoint) = self.verifier.checkpoint().await else {
            return Ok(());
        };
        let json = serde_json::to_vec(&checkpoint).expect("a checkpoint serialises");
        let tmp = self.checkpoint_path.with_extension("tmp");
        let write = |source| FlowError::Write {
            path: self.checkpoint_path.clone(),
            source,
        };
        std::fs::write(&tmp, json).map_err(write)?;
        std::fs::rename(&tmp, &self.checkpoint_path).map_err(write)
    }

    /// Passes until `stop` completes, telling each pass that did something to
    /// `on_pass`: as soon as the certificate chain has a block the last pass may not have
    /// seen (a served recovery arrives in one), and at least every `interval` (consents
    /// expire by time). A pass that fails (a service briefly unreachable) is told too,
    /// and the agent goes on.
    pub async fn run(
        &self,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
        mut on_pass: impl FnMut(Result<&ReleasePass, &FlowError>),
    ) {
        tokio::pin!(stop);
        loop {
            // Read before the pass, so a block mined during it brings another one.
            let seen = self.chain.latest_block().await.ok().map(|b| b.number);
            match self.release_pass().await {
                Ok(pass) if pass.released.is_empty() && pass.refused.is_empty() => {}
                Ok(pass) => on_pass(Ok(&pass)),
                Err(e) => on_pass(Err(&e)),
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.new_block_after(seen, interval) => {}
            }
        }
    }

    /// Returns once the chain's newest block is past `seen`, or after `interval`. A
    /// block number is one cheap query; a pass reads the wallet and the chain's logs
    /// and takes the process's turn, so passes wait for blocks.
    async fn new_block_after(&self, seen: Option<u64>, interval: Duration) {
        let Some(seen) = seen else {
            return tokio::time::sleep(interval).await;
        };
        let started = tokio::time::Instant::now();
        while started.elapsed() < interval {
            tokio::time::sleep(BLOCK_POLL.min(interval)).await;
            if let Ok(block) = self.chain.latest_block().await
                && block.number > seen
            {
                return;
            }
        }
    }

    /// Runs the agent beside `work` until `work` completes, for a process that plays both
    /// a hospital and its patients (the demo, the benchmark, the tests).
    pub async fn beside<T>(
        &self,
        interval: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let (done, stop) = tokio::sync::oneshot::channel::<()>();
        let agent = self.run(
            interval,
            async {
                let _ = stop.await;
            },
            |pass| {
                if let Err(e) = pass {
                    tracing::warn!(patient = %self.patient, error = %e, "agent pass failed");
                }
            },
        );
        let work = async {
            let out = work.await;
            let _ = done.send(());
            out
        };
        tokio::join!(agent, work).1
    }

    /// Checks one served recovery and releases its key: `Ok(Err(reason))` when a check
    /// refuses it.
    async fn release(
        &self,
        wallet: &PatientWallet,
        consent: &IssuedConsent,
        event: &RecoveryServed,
    ) -> Result<Result<String, String>, FlowError> {
        proven(&self.chain, &self.verifier, event).await?;
        if consent.revoked {
            return Ok(Err("the patient revoked this consent".to_owned()));
        }
        let now = self.now().await?;
        if now > consent.expiry {
            return Ok(Err(format!(
                "the consent expired at {} (the chain's time is {now})",
                consent.expiry
            )));
        }
        if self.chain.key_released(event.request_id).await? {
            return Ok(Err(
                "the key was already released for this request".to_owned()
            ));
        }
        let certificate = self.chain.certificate(event.certificate_id).await?;
        if !certificate.recoverable {
            return Ok(Err(format!(
                "the patient revoked certificate {} for recovery",
                event.certificate_id
            )));
        }
        let registered = self.chain.hospital(event.hospital).await?;
        let Some(keys) = HospitalKeys::of(&registered) else {
            return Ok(Err(format!(
                "hospital {} publishes a malformed key",
                consent.hospital
            )));
        };

        // Not a refusal of this recovery: the patient may authorise the agent meanwhile.
        may_act(&self.chain, wallet).await?;
        let header = envelope_header(&ipfs(self.network)?, &event.cid).await?;
        if hospital_id(&header.hospital_id) != Some(certificate.hospital)
            || word_text(&certificate.record_id) != header.record_id
        {
            return Ok(Err(format!(
                "the envelope {} names record {} of {}, not certificate {}'s record",
                event.cid, header.record_id, header.hospital_id, event.certificate_id
            )));
        }
        let dek = header.unwrap_dek(wallet.x25519()).map_err(|e| match e {
            CryptoError::WrongKey(_) => FlowError::EnvelopeNotForPatient {
                record_id: header.record_id.clone(),
                patient: wallet.info().name.clone(),
                source: e,
            },
            other => other.into(),
        })?;
        let wrapped = wrap_key(
            &dek,
            &PublicKey::from_bytes(keys.public_key),
            &KeyBinding {
                record_id: &header.record_id,
                purpose: WrapPurpose::Recovery,
            },
        )?;
        let receipt = self
            .chain
            .release_key(event.request_id, wrapped.as_bytes())
            .await?;
        Ok(Ok(format!("{:#x}", receipt.transaction_hash)))
    }
}

/// The patient's authorisation of the wallet's account as its agent, on the contract.
#[derive(Debug, Serialize)]
pub struct AgentAuthorized {
    /// The patient's wallet name.
    pub patient: String,
    /// The patient's Ethereum address, which signed the authorisation.
    pub address: String,
    /// The agent: the wallet's own account, `0x` hex.
    pub agent: String,
    /// The `authorizeAgent` transaction, `0x` hex; `None` when the agent was authorised
    /// already (nothing was signed or sent).
    pub tx: Option<String>,
}

/// Authorises the wallet's own account as the agent of a patient whose account is in
/// another wallet, so that the patient's agent can release keys and revoke for it: for
/// [`SignatureSource::TypedDataOnly`], the `AgentAuthorization`'s typed data (with a fresh
/// nonce) for that wallet to sign; for [`SignatureSource::Given`], an authorisation of
/// this wallet's account signed by the patient, which the agent's account submits
/// (`authorizeAgent`, funded on a development network). A wallet holding the patient's
/// own key needs no agent and is refused, as is [`SignatureSource::Wallet`].
pub async fn authorize_agent(
    network: &Network,
    patients_dir: &Path,
    patient: &str,
    signature: SignatureSource<'_>,
) -> Result<Signed<AgentAuthorized>, FlowError> {
    let wallet = PatientWallet::open(patients_dir, patient)?;
    let agent = wallet
        .agent_address()
        .ok_or_else(|| FlowError::NoAgentNeeded {
            patient: patient.to_owned(),
        })?;
    let address = Address::from(wallet.patient_address());
    let reader = certificate_reader(network)?;
    let report = |tx| AgentAuthorized {
        patient: patient.to_owned(),
        address: wallet.info().address.clone(),
        agent: format!("0x{}", hex::encode(agent)),
        tx,
    };
    if reader.agent_of(address).await? == Some(Address::from(agent)) {
        return Ok(Signed::Done(report(None)));
    }
    let domain = reader.domain();
    let (authorization, signature) = match signature {
        SignatureSource::Wallet => {
            wallet.patient_signer()?;
            unreachable!("a wallet with an agent holds no key of the patient's to sign with")
        }
        SignatureSource::TypedDataOnly => {
            let authorization = AgentAuthorization {
                agent,
                nonce: rand::random(),
            };
            return Ok(Signed::ask(&wallet, authorization.typed_data(&domain)));
        }
        SignatureSource::Given {
            typed_data,
            signature,
        } => {
            let signed = AgentAuthorization::from_typed_data(typed_data, &domain)
                .map_err(FlowError::TypedData)?;
            same_field(
                "agent",
                format!("0x{}", hex::encode(agent)),
                format!("0x{}", hex::encode(signed.agent)),
            )?;
            check_given(&wallet, &signed.digest(&domain), &signature)?;
            (signed, signature)
        }
    };
    let chain = patient_chain(network, &wallet).await?;
    let receipt = chain
        .authorize_agent(address, &authorization, &signature)
        .await?;
    Ok(Signed::Done(report(Some(format!(
        "{:#x}",
        receipt.transaction_hash
    )))))
}

/// Checks that the wallet's account may act for the patient on the contract: it is the
/// patient's own, or the agent the patient authorised (and has not revoked).
pub(crate) async fn may_act(
    chain: &MedicalCertificateClient,
    wallet: &PatientWallet,
) -> Result<(), FlowError> {
    let Some(agent) = wallet.agent_address() else {
        return Ok(());
    };
    let patient = Address::from(wallet.patient_address());
    if chain.agent_of(patient).await? == Some(Address::from(agent)) {
        return Ok(());
    }
    Err(FlowError::AgentNotAuthorized {
        patient: wallet.info().name.clone(),
        address: wallet.info().address.clone(),
        agent: format!("0x{}", hex::encode(agent)),
    })
}

/// The certificate contract, sending as the wallet's own account: the patient's, or the
/// patient's agent when the patient's key is in another wallet. On a development network
/// (one whose description lists funded accounts), that account is funded for its
/// transactions (key releases, revocations, the agent's authorisation) first.
pub(crate) async fn patient_chain(
    network: &Network,
    wallet: &PatientWallet,
) -> Result<MedicalCertificateClient, FlowError> {
    let reader = certificate_reader(network)?;
    if let Some(funder) = network.ethereum.accounts.first() {
        let funder = reader.with_signer(wallet_from_hex(&funder.private_key)?)?;
        let to = Address::from(wallet.signer().address());
        // Agents started at once share the funding account: concurrent transfers from
        // it race for its nonce, and the loser tries again (or finds itself funded).
        let mut attempt = 1;
        loop {
            match funder
                .top_up(to, U256::from(TOP_UP_BELOW_WEI), U256::from(TOP_UP_WEI))
                .await
            {
                Err(EthereumError::Rpc(_)) if attempt < TOP_UP_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 + rand::random::<u64>() % 190))
                        .await;
                }
                outcome => {
                    outcome?;
                    break;
                }
            };
        }
    }
    Ok(reader.with_signer(patient_wallet(wallet.signer()))?)
}

/// `event` (as `eth_getLogs` told it) only if the receipt of its transaction, proven
/// against a verified header of its block, succeeded and holds a log of the contract that
/// decodes to exactly the same event.
async fn proven(
    chain: &MedicalCertificateClient,
    verifier: &Verifier,
    event: &RecoveryServed,
) -> Result<(), FlowError> {
    let unproven = |what: String| FlowError::ServiceUnproven {
        request_id: format!("0x{}", hex::encode(event.request_id)),
        what,
    };
    let provider = chain.contract().client();
    let tx = event.transaction_hash;
    let verified = prove_receipt(&*provider, verifier, tx.0.into())
        .await?
        .ok_or_else(|| unproven(format!("the node has no receipt of {tx}")))?;
    if !verified.receipt.success || verified.header.number() != event.block_number {
        return Err(unproven(format!(
            "the proven receipt of {tx} is not a successful transaction of block {}",
            event.block_number
        )));
    }
    let in_receipt = verified.logs().iter().any(|log| {
        let log = Log {
            address: Address::from(log.address.0.0),
            topics: log.topics.iter().map(|t| H256(t.0)).collect(),
            data: log.data.to_vec().into(),
            block_number: Some(event.block_number.into()),
            transaction_hash: Some(event.transaction_hash),
            log_index: Some(event.log_index.into()),
            ..Log::default()
        };
        chain.parse_recovery_served(log).ok().as_ref() == Some(event)
    });
    if !in_receipt {
        return Err(unproven(format!(
            "the proven receipt of {tx} holds no such RecoveryServed"
        )));
    }
    Ok(())
}

/// Reads just the envelope header of `cid` from IPFS.
pub(crate) async fn envelope_header(
    ipfs: &medcert_ipfs::Ipfs,
    cid: &str,
) -> Result<EnvelopeHeader, FlowError> {
    let prefix = ipfs.cat_prefix(cid, EnvelopeHeader::MAX_LEN).await?;
    Ok(EnvelopeHeader::read(&mut prefix.as_slice())?)
}
