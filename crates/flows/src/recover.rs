//! Recovery: a doctor at H' recovers a patient's record with the patient's
//! consent (DESIGN.md, "Flows", Recover).
//!
//! H''s key service checks the patient's password → HB `RequestRecovery` with its ticket
//! → the relay serves it on the certificate chain and answers with `CompleteRecovery` or
//! `FailRecovery` → on completion: IPFS cat by CID, and a wait for the patient's agent
//! to release the record's key on the certificate chain (wrapped to H''s published key,
//! only after it verified the `RecoveryServed`) → H''s key service, shown the committed
//! `CompleteRecovery`, opens that key and releases it to the doctor → decrypt → the content fingerprint and the watermark must be the
//! certificate's and the source hospital's → stored again at H' like any store (password
//! ticket, new DEK deposited in the key service, new Hash C, `CreateRecord`). Nothing is
//! stored unless every check passes.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use medcert_crypto::{CryptoError, EnvelopeHeader, WrappedKey};
use medcert_hospital_api::{
    ChainProof, HospitalClient, Recovery, RecoveryResult, RecoveryState, args, events,
};
use medcert_key_service::Access;
use medcert_network::Network;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::connect::{Actor, certificate_reader, csp, gateway, hospital_client, ipfs, key_service};
use crate::consent::ConsentFile;
use crate::digest::Fingerprints;
use crate::error::FlowError;
use crate::gate::gated;
use crate::ids::{check_identifier, check_password, check_record_id};
use crate::observer::Observer;
use crate::store::{Services, StoreRequest, Stored, create_ticket, store_marked};
use crate::verify::{VerdictReport, VerifyReport, verify_file};
use crate::{ms, scratch_dir};
use medcert_hospital_api::digest::prefixed_hex32;

/// How often the recovery's status is read while waiting for the relay when the channel's
/// event stream cannot be had or breaks off. A read is one query (a few ms); at 200 ms the
/// wait was quantised to whole polls and added about 100 ms to every recovery (docs/bench,
/// Figure 5).
const POLL_INTERVAL: Duration = Duration::from_millis(40);

/// How often the certificate chain is asked for the patient's release. anvil answers a
/// log query in about a millisecond on loopback, and the release follows the relay's
/// answer by one transaction, so a short interval costs little and takes no poll's worth
/// of waiting off every recovery.
const RELEASE_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The buffer between Kubo's stream and the envelope's scratch file.
const SCRATCH_WRITE_BUFFER: usize = 1 << 20;

/// How long the certificate chain may take to serve a recovery request by default.
pub const DEFAULT_SERVE_WITHIN: Duration = Duration::from_secs(600);

/// A doctor at H' recovering a record for a patient registered at H'.
#[derive(Debug, Clone, Copy)]
pub struct RecoverRequest<'a> {
    /// H'.
    pub hospital: &'a str,
    /// The doctor (0-based) at H' who recovers the record.
    pub doctor: usize,
    /// The patient's treatment number and password at H'.
    pub treatment_number: &'a str,
    /// The patient's password at H', which H''s key service checks.
    pub password: &'a Zeroizing<String>,
    /// The patient's consent file.
    pub consent: &'a Path,
    /// The id of the recovered record at H'; the original id when `None`.
    pub record_id: Option<&'a str>,
    /// Continue recovery `index` of H' (after a timeout) instead of requesting anew.
    pub resume: Option<u64>,
    /// How long to wait for the relay's answer.
    pub wait: Duration,
    /// How long the certificate chain may take to serve the request: its deadline, in
    /// block time, is now plus this; after it the relay fails the request with proof
    /// that it was not served ([`DEFAULT_SERVE_WITHIN`] unless the hospital says).
    pub serve_within: Duration,
    /// Also write the recovered document here.
    pub out: Option<&'a Path>,
}

/// How long each step of a recovery took, in ms.
#[derive(Debug, Serialize, Default)]
pub struct RecoverTimings {
    /// Requesting the recovery on H''s chain.
    pub request: f64,
    /// Waiting for the relay's outcome.
    pub relay_wait: f64,
    /// Fetching the envelope from IPFS.
    pub ipfs_get: f64,
    /// Waiting for the patient's agent to release the record's key on the certificate chain.
    pub patient_release: f64,
    /// The key service releasing the record's key for the completed recovery.
    pub release_key: f64,
    /// Decrypting the record.
    pub decrypt: f64,
    /// Verifying the recovered record.
    pub verify: f64,
    /// Storing the record at H'.
    pub store: f64,
    /// The whole recovery.
    pub total: f64,
}

/// The recovery's transactions on both chains, the verdict and the record stored again.
#[derive(Debug, Serialize)]
pub struct RecoverReport {
    /// H''s id.
    pub hospital: String,
    /// The recovery's index on H''s chain.
    pub index: u64,
    /// `None` when resuming an earlier request.
    pub request_tx: Option<String>,
    /// The relay's `CompleteRecovery` transaction on H''s chain.
    pub complete_tx: String,
    /// What the relay proved on the certificate chain for its answer, as H''s chain
    /// records it (`medcert-relay prove` re-checks it).
    pub proof: Option<ChainProof>,
    /// The recovered certificate's id.
    pub certificate_id: u64,
    /// H, the hospital where the record was created.
    pub source_hospital: String,
    /// The record's id at H.
    pub source_record_id: String,
    /// Hash I: the CID of the envelope on IPFS.
    pub cid: String,
    /// The relay's `serveRecovery` transaction on the certificate chain (`0x` hex in JSON).
    #[serde(with = "prefixed_hex32")]
    pub eth_tx: [u8; 32],
    /// The block holding `eth_tx`.
    pub eth_block: u64,
    /// The request id `serveRecovery` was called with (`0x` hex in JSON).
    #[serde(with = "prefixed_hex32")]
    pub request_id: [u8; 32],
    /// The verdict on the recovered record.
    pub verification: VerifyReport,
    /// The record as stored again at H'.
    pub stored: Stored,
    /// Where the recovered document was also written, if anywhere.
    pub out: Option<PathBuf>,
    /// How long each step took.
    pub timings_ms: RecoverTimings,
}

/// Requests the recovery, waits for the relay, checks the record and stores it at H'.
pub async fn recover(
    network: &Network,
    request: &RecoverRequest<'_>,
    observer: &dyn Observer,
) -> Result<RecoverReport, FlowError> {
    let total = Instant::now();
    let hospital = network.hospital(request.hospital)?;
    check_identifier("treatment number", request.treatment_number)?;
    check_password(request.password)?;
    let consent = ConsentFile::read(request.consent)?;
    if consent.hospital != hospital.id {
        return Err(FlowError::ConsentForOtherHospital {
            consent_hospital: consent.hospital,
            hospital: hospital.id.clone(),
        });
    }
    let record_id = request.record_id.unwrap_or(&consent.record_id).to_owned();
    check_record_id(&record_id)?;
    let actor = Actor::Doctor(request.doctor);
    let keys = key_service(hospital, actor).await?;
    let client = hospital_client(network, hospital, actor).await?;
    let key_service_error = |source| FlowError::key_service(&hospital.id, source);
    let mut timings = RecoverTimings::default();

    let started = Instant::now();
    // Where the channel's events are read from for the relay's answer: the request's
    // block, or when resuming the newest block (the status read covers the ones before).
    let channel = gateway(hospital, actor.identity(hospital)?)
        .await?
        .network(&hospital.channel);
    // The password is checked once for the whole recovery: the check that admits the
    // request also yields the ticket for storing the record again (a resumed recovery,
    // whose request was admitted earlier, checks it at the store).
    let (index, request_tx, from_block, store_ticket) = match request.resume {
        Some(index) => (index, None, None, None),
        None => {
            let checked = keys.check_recovery_password(
                request.treatment_number,
                &consent.record_id,
                &record_id,
                request.password.as_bytes(),
            );
            let (tickets, chain_now) = tokio::join!(checked, chain_time(network));
            let (ticket, store_ticket) = tickets.map_err(key_service_error)?;
            let deadline = chain_now.saturating_add(request.serve_within.as_secs());
            let args = args::RequestRecovery {
                treatment_number: request.treatment_number.to_owned(),
                record_id: consent.record_id.clone(),
                certificate_id: consent.certificate_id.to_string(),
                consent: consent.signed_consent()?.to_bytes().to_vec(),
                deadline,
                ticket: ticket.encode(),
            };
            let committed = gated(&ticket, client.request_recovery(&args).await)
                .map_err(|e| e.on(&hospital.channel))?;
            (
                committed.answer.index,
                Some(committed.tx_id),
                Some(committed.block_number),
                store_ticket,
            )
        }
    };
    timings.request = ms(started);
    tracing::info!(channel = %hospital.channel, index, "recovery requested");

    let started = Instant::now();
    let outcome = {
        let _step = observer.step(&format!("waiting for the relay (recovery {index})"), None);
        let answered = Answered {
            client: &client,
            channel: &channel,
            chaincode: &network.fabric.chaincode_name,
            index,
            request,
            consent: &consent,
        };
        answered.wait(from_block, started).await?
    };
    timings.relay_wait = ms(started);
    let proof = outcome.proof;
    let (result, complete_tx) = match outcome.outcome {
        RecoveryState::Completed { result, tx, .. } => (result, tx),
        RecoveryState::Failed { reason, .. } => {
            return Err(FlowError::RecoveryFailed {
                channel: hospital.channel.clone(),
                index,
                reason,
            });
        }
        RecoveryState::Pending => unreachable!("the wait ends on an outcome"),
    };
    let result: RecoveryResult =
        serde_json::from_str(&result).map_err(|source| FlowError::MalformedJson {
            what: "CompleteRecovery result",
            from: format!("the relay's answer to recovery {index}"),
            source,
        })?;
    if result.certificate_id != consent.certificate_id || result.cid != consent.cid {
        return Err(FlowError::NotAuthentic(format!(
            "the relay served certificate {} ({}), but the consent is for certificate {} ({})",
            result.certificate_id, result.cid, consent.certificate_id, consent.cid
        )));
    }
    let anchored = Fingerprints {
        content: result.content_fingerprint,
        watermark: result.watermark_fingerprint,
    };

    let scratch = scratch_dir()?;
    let started = Instant::now();
    let envelope_path = scratch.path().join("envelope");
    {
        let envelope = tokio::fs::File::create(&envelope_path)
            .await
            .map_err(|source| FlowError::Write {
                path: envelope_path.clone(),
                source,
            })?;
        // Each write of a tokio file is a trip to the blocking pool: gather Kubo's small
        // chunks into large writes.
        let mut envelope = tokio::io::BufWriter::with_capacity(SCRATCH_WRITE_BUFFER, envelope);
        let _step = observer.step("IPFS get", None);
        ipfs(network)?.cat_to(&result.cid, &mut envelope).await?;
    }
    timings.ipfs_get = ms(started);

    let started = Instant::now();
    let released = {
        let _step = observer.step(
            &format!(
                "waiting for patient's agent to release the key (request 0x{}; the patient runs `medcert patient agent`)",
                hex::encode(result.request_id)
            ),
            None,
        );
        wait_for_release(
            network,
            index,
            &result,
            request.wait.saturating_sub(total.elapsed()),
        )
        .await?
    };
    timings.patient_release = ms(started);

    // H''s key service opens the released key only for the committed CompleteRecovery of
    // this doctor's request.
    let started = Instant::now();
    let dek = keys
        .release_key(Access::Recovery {
            tx_id: complete_tx.clone(),
            wrapped_key: released,
        })
        .await
        .map_err(key_service_error)?;
    timings.release_key = ms(started);

    let started = Instant::now();
    let mut reader =
        BufReader::new(
            File::open(&envelope_path).map_err(|source| FlowError::Read {
                path: envelope_path.clone(),
                source,
            })?,
        );
    let header = EnvelopeHeader::read(&mut reader).map_err(not_authentic_if_tampered)?;
    if header.record_id != consent.record_id || header.hospital_id != consent.source_hospital {
        return Err(FlowError::NotAuthentic(format!(
            "the envelope holds record {} of {}, not the consented record {} of {}",
            header.record_id, header.hospital_id, consent.record_id, consent.source_hospital
        )));
    }
    let plain_path = scratch.path().join("record.xml");
    // A scratch file, removed with its directory whatever happens: no sync to disk, and
    // a failed decryption's verified prefix goes with it.
    let plain = File::create(&plain_path).map_err(|source| FlowError::Write {
        path: plain_path.clone(),
        source,
    })?;
    medcert_crypto::decrypt_stream(&dek, &header.aad(), reader, plain)
        .map_err(not_authentic_if_tampered)?;
    drop(dek);
    timings.decrypt = ms(started);

    let started = Instant::now();
    let verification = verify_file(network, &plain_path)
        .await
        .map_err(FlowError::Unverifiable)?;
    check_authentic(&verification, &header, &anchored)?;
    timings.verify = ms(started);

    let started = Instant::now();
    let marked = File::open(&plain_path).map_err(|source| FlowError::Read {
        path: plain_path.clone(),
        source,
    })?;
    let store_request = StoreRequest {
        hospital_id: &hospital.id,
        treatment_number: request.treatment_number,
        record_id: &record_id,
        source: &plain_path,
        password: request.password,
    };
    let csp = csp(network)?;
    let services = Services {
        keys: &keys,
        csp: &csp,
        chain: &client,
    };
    let ticket = match store_ticket {
        Some(ticket) => ticket,
        None => create_ticket(&store_request, services).await?,
    };
    let (stored, _) = store_marked(
        &store_request,
        marked,
        &anchored,
        ticket,
        services,
        observer,
    )
    .await?;
    timings.store = ms(started);

    if let Some(out) = request.out {
        std::fs::copy(&plain_path, out).map_err(|source| FlowError::Write {
            path: out.to_owned(),
            source,
        })?;
    }
    timings.total = ms(total);
    Ok(RecoverReport {
        hospital: hospital.id.clone(),
        index,
        request_tx,
        complete_tx,
        proof,
        certificate_id: result.certificate_id,
        source_hospital: header.hospital_id.clone(),
        source_record_id: header.record_id.clone(),
        cid: result.cid,
        eth_tx: result.eth_tx,
        eth_block: result.eth_block,
        request_id: result.request_id,
        verification,
        stored,
        out: request.out.map(Path::to_owned),
        timings_ms: timings,
    })
}

/// Now in the certificate chain's time, in which the request's deadline is judged: its
/// newest block's time when that is ahead of this clock (a node whose time was moved
/// ahead), else this clock's.
async fn chain_time(network: &Network) -> u64 {
    let local = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_secs());
    let newest = match certificate_reader(network) {
        Ok(chain) => chain.latest_block().await.map(|b| b.timestamp),
        Err(_) => return local,
    };
    match newest {
        Ok(timestamp) => timestamp.max(local),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the certificate chain's time; the deadline follows this clock");
            local
        }
    }
}

/// What waiting for the relay's answer to one recovery request needs.
struct Answered<'a> {
    client: &'a HospitalClient,
    channel: &'a medcert_fabric::Network,
    chaincode: &'a str,
    index: u64,
    request: &'a RecoverRequest<'a>,
    consent: &'a ConsentFile,
}

impl Answered<'_> {
    /// The recovery once the relay has answered it, or a timeout when `request.wait` has
    /// passed since `started`. The answer comes as the chaincode's event, read from block
    /// `from_block` (the request's) or, when that is unknown, from the newest one; the
    /// status is read once after the stream opens, so an answer committed before is not
    /// missed, and read every [`POLL_INTERVAL`] if the stream cannot be had or ends.
    async fn wait(&self, from_block: Option<u64>, started: Instant) -> Result<Recovery, FlowError> {
        let from_block = match from_block {
            Some(block) => Some(block),
            None => self
                .channel
                .height()
                .await
                .ok()
                .map(|h| h.saturating_sub(1)),
        };
        let stream = match from_block {
            Some(block_number) => self
                .channel
                .chaincode_events(
                    self.chaincode,
                    medcert_fabric::Checkpoint {
                        block_number,
                        after_tx_id: None,
                    },
                )
                .await
                .inspect_err(|e| {
                    tracing::warn!(channel = %self.channel.name(), error = %e, "no event stream; polling the recovery's status");
                })
                .ok(),
            None => None,
        };
        if let Some(recovery) = self.status().await? {
            return self.checked(recovery);
        }
        if let Some(stream) = stream {
            let mut stream = std::pin::pin!(stream);
            loop {
                let left = self.request.wait.saturating_sub(started.elapsed());
                match tokio::time::timeout(left, stream.next()).await {
                    Err(_) => return Err(self.timeout(started)),
                    Ok(Some(Ok(event))) => {
                        if let Some(recovery) = self.answer_in(&event) {
                            return self.checked(recovery);
                        }
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(channel = %self.channel.name(), error = %e, "event stream broke off; polling the recovery's status");
                        break;
                    }
                    Ok(None) => break,
                }
            }
        }
        loop {
            if let Some(recovery) = self.status().await? {
                return self.checked(recovery);
            }
            if started.elapsed() >= self.request.wait {
                return Err(self.timeout(started));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The recovery as the ledger holds it, once answered.
    async fn status(&self) -> Result<Option<Recovery>, FlowError> {
        let recovery = self
            .client
            .get_recovery_status(&args::GetRecoveryStatus { index: self.index })
            .await
            .map_err(|e| FlowError::chain(self.channel.name(), e))?;
        Ok((recovery.outcome != RecoveryState::Pending).then_some(recovery))
    }

    /// The answer to this request, if `event` is the relay's.
    fn answer_in(&self, event: &medcert_fabric::ChaincodeEvent) -> Option<Recovery> {
        if event.name != events::RECOVERY_COMPLETED && event.name != events::RECOVERY_FAILED {
            return None;
        }
        let recovery: Recovery = serde_json::from_slice(&event.payload)
            .inspect_err(|e| {
                tracing::warn!(tx = %event.tx_id, error = %e, "unreadable recovery event");
            })
            .ok()?;
        (recovery.index == self.index && recovery.outcome != RecoveryState::Pending)
            .then_some(recovery)
    }

    /// A resumed request must be the one the consent is for.
    fn checked(&self, recovery: Recovery) -> Result<Recovery, FlowError> {
        if self.request.resume.is_some()
            && !recovery
                .consent
                .eq_ignore_ascii_case(&self.consent.signed_consent)
        {
            return Err(FlowError::ResumedWithOtherConsent {
                index: self.index,
                hospital: self.consent.hospital.clone(),
                consent: self.request.consent.to_owned(),
            });
        }
        Ok(recovery)
    }

    fn timeout(&self, started: Instant) -> FlowError {
        FlowError::RecoveryTimeout {
            channel: self.channel.name().to_owned(),
            index: self.index,
            waited_s: started.elapsed().as_secs(),
        }
    }
}

/// The record key the patient's agent released for the served request of `result`, once
/// it is on the certificate chain, within `wait`.
async fn wait_for_release(
    network: &Network,
    index: u64,
    result: &RecoveryResult,
    wait: Duration,
) -> Result<WrappedKey, FlowError> {
    let request_id = result.request_id;
    let chain = certificate_reader(network)?;
    let started = Instant::now();
    loop {
        if let Some(bytes) = chain.released_key(request_id, result.eth_block).await? {
            return Ok(WrappedKey::from_bytes(&bytes)?);
        }
        if started.elapsed() >= wait {
            return Err(FlowError::KeyNotReleased {
                index,
                request_id: format!("0x{}", hex::encode(request_id)),
                waited_s: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(RELEASE_POLL_INTERVAL).await;
    }
}

fn not_authentic_if_tampered(error: CryptoError) -> FlowError {
    match error {
        CryptoError::Tampered | CryptoError::Truncated | CryptoError::Malformed { .. } => {
            FlowError::TamperedEnvelope(error)
        }
        other => other.into(),
    }
}

/// The recovered document must carry the source hospital's authentic mark for this
/// record, and both fingerprints must be the ones the certificate anchors; a document
/// with no mark (stored unmarked, too small for one) must have the anchored content
/// fingerprint.
fn check_authentic(
    verification: &VerifyReport,
    header: &EnvelopeHeader,
    anchored: &Fingerprints,
) -> Result<(), FlowError> {
    match &verification.verdict {
        VerdictReport::Authentic {
            hospital_id,
            record_id,
            ..
        } if *hospital_id == header.hospital_id && *record_id == header.record_id => {}
        VerdictReport::Authentic {
            hospital_id,
            record_id,
            ..
        } => {
            return Err(FlowError::NotAuthentic(format!(
                "the watermark is {hospital_id}'s for record {record_id}, not {}'s for record {}",
                header.hospital_id, header.record_id
            )));
        }
        VerdictReport::Tampered { hospital_id, .. } => {
            return Err(FlowError::NotAuthentic(format!(
                "the record was changed after {hospital_id} marked it (watermark: tampered)"
            )));
        }
        VerdictReport::Forged {
            claimed_hospital_id,
        } => {
            return Err(FlowError::NotAuthentic(format!(
                "the watermark claims {claimed_hospital_id} but is not its signature (forged)"
            )));
        }
        VerdictReport::Absent if verification.content_fingerprint == Some(anchored.content) => {
            return Ok(());
        }
        VerdictReport::Absent => {
            return Err(FlowError::NotAuthentic(
                "the record carries no watermark (absent) and its content is not the one \
                 anchored on the certificate"
                    .into(),
            ));
        }
    }
    if verification.content_fingerprint != Some(anchored.content) {
        return Err(FlowError::NotAuthentic(
            "the content fingerprint is not the one anchored on the certificate".into(),
        ));
    }
    if verification.watermark_fingerprint != Some(anchored.watermark) {
        return Err(FlowError::NotAuthentic(
            "the watermark fingerprint is not the one anchored on the certificate".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{ContentFingerprint, WatermarkFingerprint};
    use medcert_crypto::{Dek, HpkeKeyPair, KeyBinding, RecordAad, WrapPurpose, wrap_key};

    fn header() -> EnvelopeHeader {
        let binding = KeyBinding {
            record_id: "R-1",
            purpose: WrapPurpose::PatientEnvelope,
        };
        let wrapped = wrap_key(
            &Dek::generate(),
            &HpkeKeyPair::generate().public_key(),
            &binding,
        )
        .unwrap();
        let aad = RecordAad {
            record_id: "R-1",
            hospital_id: "hospital1",
        };
        EnvelopeHeader::seal(&aad, wrapped)
    }

    fn report(verdict: VerdictReport, content: [u8; 32], watermark: [u8; 32]) -> VerifyReport {
        VerifyReport {
            verdict,
            content_fingerprint: Some(ContentFingerprint(content)),
            watermark_fingerprint: Some(WatermarkFingerprint(watermark)),
        }
    }

    #[test]
    fn only_the_source_hospitals_authentic_mark_with_anchored_fingerprints_passes() {
        let anchored = Fingerprints {
            content: ContentFingerprint([1; 32]),
            watermark: WatermarkFingerprint([2; 32]),
        };
        let authentic = |hospital: &str, record: &str| VerdictReport::Authentic {
            hospital_id: hospital.into(),
            record_id: record.into(),
            issued_at: 1,
            signer: medcert_watermark::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        };
        let header = header();
        assert!(
            check_authentic(
                &report(authentic("hospital1", "R-1"), [1; 32], [2; 32]),
                &header,
                &anchored
            )
            .is_ok()
        );
        let refusals = [
            report(authentic("hospital2", "R-1"), [1; 32], [2; 32]),
            report(authentic("hospital1", "R-2"), [1; 32], [2; 32]),
            report(authentic("hospital1", "R-1"), [9; 32], [2; 32]),
            report(authentic("hospital1", "R-1"), [1; 32], [9; 32]),
            report(
                VerdictReport::Tampered {
                    hospital_id: "hospital1".into(),
                    record_id: "R-1".into(),
                    issued_at: 1,
                },
                [1; 32],
                [2; 32],
            ),
            report(
                VerdictReport::Forged {
                    claimed_hospital_id: "hospital1".into(),
                },
                [1; 32],
                [2; 32],
            ),
            report(VerdictReport::Absent, [9; 32], [2; 32]),
        ];
        // Stored unmarked (too small for a mark): the anchored content is enough.
        assert!(
            check_authentic(
                &report(VerdictReport::Absent, [1; 32], [2; 32]),
                &header,
                &anchored
            )
            .is_ok()
        );
        for refused in refusals {
            let error = check_authentic(&refused, &header, &anchored).unwrap_err();
            assert_eq!(
                error.kind(),
                crate::FailureKind::NotAuthentic,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn tampered_ciphertext_is_not_authentic_but_a_wrong_key_is_not_blamed_on_it() {
        assert_eq!(
            not_authentic_if_tampered(CryptoError::Tampered).kind(),
            crate::FailureKind::NotAuthentic
        );
        assert_eq!(
            not_authentic_if_tampered(CryptoError::WrongKey("x")).kind(),
            crate::FailureKind::Failed
        );
    }
}
