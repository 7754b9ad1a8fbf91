//! The demo's story, one function per act; each act returns what later acts need and
//! the details the step prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use medcert_flows::connect::{csp, hospital_client, key_service};
use medcert_flows::delete::{Cleanup, DeleteReport};
use medcert_flows::digest::HashC;
use medcert_flows::hospital_api::RecordState;
use medcert_flows::query::record_state;
use medcert_flows::recover::DEFAULT_SERVE_WITHIN;
use medcert_flows::verify::VerdictReport;
use medcert_flows::{
    Actor, ConsentRequest, CreateRequest, DeleteRequest, FlowError, PatientAgent, QueryRequest,
    Quiet, RecoverRequest, RegisterRequest, create_record, delete_record, ids, query_record,
    recover, register_patient, sign_consent, verify_file,
};
use medcert_key_service::KeyServiceError;
use medcert_network::{Hospital, Network};
use zeroize::Zeroizing;

use super::{DemoOptions, Details, Steps, details};

/// How often the patient's agent checks the certificate chain during the demo.
const AGENT_INTERVAL: Duration = Duration::from_millis(100);

/// A patient of the story: their wallet's name and their password at every hospital.
struct Patient {
    name: String,
    password: Zeroizing<String>,
}

pub(super) struct Story<'a> {
    network: &'a Network,
    options: &'a DemoOptions,
    scratch: PathBuf,
    h1: &'a Hospital,
    h2: &'a Hospital,
    h3: &'a Hospital,
}

impl<'a> Story<'a> {
    /// The story at the first two and the last of `hospitals`, with its files in `scratch`.
    pub(super) fn new(
        network: &'a Network,
        options: &'a DemoOptions,
        scratch: PathBuf,
        hospitals: &'a [Hospital],
    ) -> Self {
        Self {
            network,
            options,
            scratch,
            h1: &hospitals[0],
            h2: &hospitals[1],
            h3: &hospitals[hospitals.len() - 1],
        }
    }

    /// Tells the story step by step; stops at the first step that fails.
    pub(super) async fn tell(&self, steps: &mut Steps) -> Option<()> {
        let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let patient = |name: &str| Patient {
            name: format!("{name}-{suffix}"),
            password: Zeroizing::new(format!("{name}-pw-{suffix}")),
        };
        let (alice, bob) = (patient("alice"), patient("bob"));
        let (h1, h2, h3) = (self.h1, self.h2, self.h3);

        let title = format!("{} registers at {}", alice.name, h1.id);
        let alice_t1 = steps.run(&title, self.register(&alice, h1)).await?;
        let title = format!("{} registers at {}", bob.name, h2.id);
        let bob_t2 = steps.run(&title, self.register(&bob, h2)).await?;

        let title = format!(
            "a doctor at {} creates, stores and certifies a record for {}",
            h1.id, alice.name
        );
        let (record1, certificate1) = steps
            .run(&title, self.create_and_certify(h1, &alice_t1, &alice))
            .await?;
        let title = format!(
            "a doctor at {} creates, stores and certifies a record for {}",
            h2.id, bob.name
        );
        steps
            .run(&title, self.create_and_certify(h2, &bob_t2, &bob))
            .await?;

        let title = format!(
            "the doctor at {} queries {record1} (audited), then {}'s key service releases \
             its key for that query",
            h1.id, h1.id
        );
        steps
            .run(&title, self.query_and_retrieve(&alice_t1, &alice, &record1))
            .await?;
        let title = format!(
            "a wrong password for {record1}: recorded on {}'s chain, then refused",
            h1.id
        );
        steps
            .run(&title, self.wrong_password(&alice_t1, &record1))
            .await?;

        let title = format!("{} deletes {record1} from {}", alice.name, h1.id);
        let hash_c = steps.run(&title, self.delete(&alice, &record1)).await?;
        let title = format!(
            "{} shows {record1} deleted, the CSP has nothing, its key service no key",
            h1.id
        );
        steps
            .run(&title, self.check_deleted(&record1, hash_c))
            .await?;

        let title = format!("{} registers at {}", alice.name, h3.id);
        let alice_t3 = steps.run(&title, self.register(&alice, h3)).await?;
        let consent = self.scratch.join("consent.json");
        let title = format!(
            "{} consents to {} recovering certificate {certificate1}",
            alice.name, h3.id
        );
        steps
            .run(&title, self.consent(&alice, certificate1, &consent))
            .await?;

        let recovered = self.scratch.join("recovered.xml");
        let recovery = RecoverRequest {
            hospital: &h3.id,
            doctor: 0,
            treatment_number: &alice_t3,
            password: &alice.password,
            consent: &consent,
            record_id: None,
            resume: None,
            wait: self.options.recover_wait,
            serve_within: DEFAULT_SERVE_WITHIN,
            out: Some(&recovered),
        };
        let title = format!(
            "a doctor at {} recovers {record1} through the relay, {}'s agent releases the key once the chain proves it, {} stores it",
            h3.id, alice.name, h3.id
        );
        steps.run(&title, self.recover(&alice, &recovery)).await?;
        let title = format!("{} replays the spent consent: refused", h3.id);
        steps.run(&title, self.replay(&recovery)).await?;

        let title = "a record with a forged watermark is caught by ehr verify";
        steps.run(title, self.forged()).await?;
        let title = "a recovered record edited afterwards is caught by ehr verify";
        steps.run(title, self.tampered(&recovered)).await?;
        Some(())
    }

    /// The patient registers at `hospital`; returns their treatment number there.
    async fn register(&self, patient: &Patient, hospital: &Hospital) -> Result<(String, Details)> {
        let request = RegisterRequest {
            patient: &patient.name,
            hospital: &hospital.id,
            doctor: 0,
            treatment_number: None,
            id_number: &format!("ID-{}", patient.name),
            password: &patient.password,
        };
        let report = register_patient(self.network, &self.options.patients_dir, &request).await?;
        let d = details([
            (
                "patient",
                format!("{} ({})", report.patient, report.address),
            ),
            ("treatment number", report.treatment_number.clone()),
            ("tx", with_block(&report.tx_id, report.block_number)),
            (
                "password",
                format!("enrolled in {}'s key service only", report.hospital),
            ),
        ]);
        Ok((report.treatment_number, d))
    }

    /// A doctor at `hospital` creates a record for the patient and certifies it; returns
    /// the record id and the certificate id.
    async fn create_and_certify(
        &self,
        hospital: &Hospital,
        treatment: &str,
        patient: &Patient,
    ) -> Result<((String, u64), Details)> {
        let request = CreateRequest {
            hospital: &hospital.id,
            doctor: 0,
            treatment_number: treatment,
            record_id: None,
            password: &patient.password,
            size: self.options.record_size,
            certify_for: Some(&patient.name),
            keep: None,
        };
        let report =
            create_record(self.network, &self.options.patients_dir, &request, &Quiet).await?;
        let certificate = report
            .certificate
            .as_ref()
            .context("the record was stored without the certificate asked for")?;
        let stored = &report.stored;
        let d = details([
            ("record", stored.record_id.clone()),
            ("Hash C", stored.hash_c.to_string()),
            (
                "CreateRecord tx",
                with_block(&stored.tx_id, stored.block_number),
            ),
            (
                "key",
                format!(
                    "deposited in {}'s key service before CreateRecord",
                    hospital.id
                ),
            ),
            ("Hash I (CID)", certificate.cid.clone()),
            (
                "certificate",
                format!(
                    "{} (tx {})",
                    certificate.certificate_id,
                    certificate.eth_tx.clone().unwrap_or_default()
                ),
            ),
            ("size", format!("{} bytes encrypted", stored.size)),
        ]);
        Ok(((stored.record_id.clone(), certificate.certificate_id), d))
    }

    /// The doctor at H1 queries the record (audited) and retrieves an authentic copy.
    async fn query_and_retrieve(
        &self,
        treatment: &str,
        patient: &Patient,
        record_id: &str,
    ) -> Result<((), Details)> {
        let out = self.scratch.join("record1.xml");
        let request = QueryRequest {
            hospital: &self.h1.id,
            doctor: 0,
            treatment_number: treatment,
            record_id,
            password: &patient.password,
            out: Some(&out),
        };
        let report = query_record(self.network, &request, &Quiet).await?;
        let retrieved = report.retrieved.context("the record was not retrieved")?;
        if !retrieved.authentic() {
            bail!(
                "not authentic: the stored record reads as {:?}",
                retrieved.verification.verdict
            );
        }
        let d = details([
            ("QueryRecord tx", report.tx_id.clone()),
            (
                "key",
                format!(
                    "released for {} only, in {:.0} ms",
                    report.tx_id, retrieved.release_key_ms
                ),
            ),
            ("verdict", verdict_text(&retrieved.verification.verdict)),
            ("bytes", retrieved.bytes.to_string()),
        ]);
        Ok(((), d))
    }

    /// A query at H1 with a wrong password: the chain records the failed attempt, the
    /// query is refused and no key is released.
    async fn wrong_password(&self, treatment: &str, record_id: &str) -> Result<((), Details)> {
        let wrong = Zeroizing::new(format!("not-{}", ids::new_id("pw")));
        let request = QueryRequest {
            hospital: &self.h1.id,
            doctor: 0,
            treatment_number: treatment,
            record_id,
            password: &wrong,
            out: Some(&self.scratch.join("never-written.xml")),
        };
        match query_record(self.network, &request, &Quiet).await {
            Err(FlowError::WrongPassword(wrong)) => {
                let d = details([
                    ("recorded in", wrong.tx_id.clone()),
                    (
                        "attempt",
                        format!(
                            "{} of {} before the patient is locked",
                            wrong.attempt, wrong.limit
                        ),
                    ),
                    ("key", "none released".into()),
                ]);
                Ok(((), d))
            }
            Err(other) => Err(other.into()),
            Ok(report) => Err(anyhow!(
                "a wrong password was let through (query {})",
                report.tx_id
            )),
        }
    }

    /// The patient deletes the record from H1; returns its Hash C.
    async fn delete(&self, patient: &Patient, record_id: &str) -> Result<(HashC, Details)> {
        let request = DeleteRequest {
            patient: &patient.name,
            hospital: &self.h1.id,
            record_id,
            submitter: Actor::Doctor(0),
        };
        let report = delete_record(self.network, &self.options.patients_dir, &request).await?;
        let hash_c = report
            .hash_c
            .context("the deletion did not name the CSP object")?;
        let d = details([
            ("DeleteRecord tx", report.deleted_tx.clone()),
            ("signed by", report.deleted_by.clone()),
            (
                "CSP object",
                format!("{hash_c}: {}", cleanup_text(report.csp_object)),
            ),
            ("key service", shred_text(&report)),
        ]);
        Ok((hash_c, d))
    }

    /// H1's chain says deleted, its CSP holds nothing, its key service has no key for it.
    async fn check_deleted(&self, record_id: &str, hash_c: HashC) -> Result<((), Details)> {
        let client = hospital_client(self.network, self.h1, Actor::Doctor(0)).await?;
        let tombstone = match record_state(&client, &self.h1.channel, record_id).await? {
            RecordState::Deleted { tombstone } => tombstone,
            RecordState::Active { .. } => {
                bail!("{record_id} is still active on {}", self.h1.channel)
            }
        };
        if csp(self.network)?
            .exists(hash_c.as_bytes())
            .await
            .map_err(FlowError::from)?
        {
            bail!("the CSP still holds object {hash_c}");
        }
        // Asked to wrap the record's key to anyone at all, the service has none to wrap.
        let keys = key_service(self.h1, Actor::Doctor(0)).await?;
        let anyone = medcert_crypto::HpkeKeyPair::generate().public_key();
        match keys.wrap_for_patient(record_id, &anyone).await {
            Err(KeyServiceError::NotFound { .. }) => {}
            Ok(_) => bail!(
                "{}'s key service still holds the key of {record_id}",
                self.h1.id
            ),
            Err(source) => {
                return Err(FlowError::KeyService {
                    hospital: self.h1.id.clone(),
                    source,
                }
                .into());
            }
        }
        let d = details([
            ("GetRecord", format!("deleted in {}", tombstone.deleted_tx)),
            ("tombstone by", tombstone.deleted_by),
            ("CSP", format!("no object {hash_c}")),
            ("key service", "no key for the record".into()),
        ]);
        Ok(((), d))
    }

    /// The patient consents to H3 recovering the certificate; the file goes to `out`.
    async fn consent(
        &self,
        patient: &Patient,
        certificate_id: u64,
        out: &Path,
    ) -> Result<((), Details)> {
        let request = ConsentRequest {
            patient: &patient.name,
            hospital: &self.h3.id,
            certificate_id,
            valid_for: Duration::from_secs(3600),
            out,
        };
        let report = sign_consent(self.network, &self.options.patients_dir, &request).await?;
        let d = details([
            ("consent file", report.path.display().to_string()),
            ("nonce", report.consent.nonce.to_string()),
            ("expiry", report.consent.expiry.to_string()),
            ("Hash I (CID)", report.consent.cid.clone()),
        ]);
        Ok(((), d))
    }

    /// A doctor at H3 recovers the record through the relay, while the patient's agent
    /// waits for the served recovery to release the key; H3 checks the record and stores it.
    async fn recover(
        &self,
        patient: &Patient,
        request: &RecoverRequest<'_>,
    ) -> Result<((), Details)> {
        let agent =
            PatientAgent::open(self.network, &self.options.patients_dir, &patient.name).await?;
        let report = agent
            .beside(AGENT_INTERVAL, recover(self.network, request, &Quiet))
            .await?;
        let t = &report.timings_ms;
        let d = details([
            (
                "RequestRecovery tx",
                format!(
                    "{} (index {})",
                    report.request_tx.clone().unwrap_or_default(),
                    report.index
                ),
            ),
            (
                "serveRecovery tx",
                format!(
                    "0x{} (block {})",
                    hex::encode(report.eth_tx),
                    report.eth_block
                ),
            ),
            ("CompleteRecovery tx", report.complete_tx.clone()),
            (
                "relay's proof on the record",
                report
                    .proof
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string),
            ),
            (
                "key",
                format!(
                    "released by {}'s agent on the certificate chain after it proved RecoveryServed; \
                     opened by {}'s key service for {} only",
                    patient.name, report.hospital, report.complete_tx
                ),
            ),
            ("Hash I (CID)", report.cid.clone()),
            ("verdict", verdict_text(&report.verification.verdict)),
            ("new Hash C", report.stored.hash_c.to_string()),
            ("CreateRecord tx", report.stored.tx_id.clone()),
            (
                "timings",
                format!(
                    "request {:.0} ms, relay {:.0} ms, IPFS {:.0} ms, patient's release {:.0} ms, \
                     key service {:.0} ms, decrypt {:.0} ms, verify {:.0} ms, store {:.0} ms",
                    t.request,
                    t.relay_wait,
                    t.ipfs_get,
                    t.patient_release,
                    t.release_key,
                    t.decrypt,
                    t.verify,
                    t.store
                ),
            ),
        ]);
        Ok(((), d))
    }

    /// H3 asks again with the spent consent: the relay must refuse.
    async fn replay(&self, spent: &RecoverRequest<'_>) -> Result<((), Details)> {
        let replay = RecoverRequest {
            record_id: Some(&ids::new_id("R")),
            out: None,
            ..*spent
        };
        match recover(self.network, &replay, &Quiet).await {
            Err(FlowError::RecoveryFailed { index, reason, .. }) => Ok((
                (),
                details([("recovery", index.to_string()), ("relay's reason", reason)]),
            )),
            Err(other) => Err(other.into()),
            Ok(report) => Err(anyhow!(
                "a replayed consent was served (recovery {})",
                report.index
            )),
        }
    }

    /// A record marked in H1's name with a key that is not H1's reads as forged.
    async fn forged(&self) -> Result<((), Details)> {
        let path = self.scratch.join("forged.xml");
        let mut document = Vec::new();
        let config = medcert_ccda::GeneratorConfig {
            seed: rand::random(),
            target_size: 20_000,
            patient_id: "T-forged".into(),
            hospital: self.h1.id.clone(),
        };
        medcert_ccda::generate(&config, &mut document)
            .context("cannot generate the demo's forged record")?;
        // Signed with a key that is not the one H1's key service holds and publishes.
        let impostor = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let mut marked = Vec::new();
        let mark = medcert_watermark::Mark {
            hospital_id: &self.h1.id,
            record_id: "R-forged",
            issued_at: 1_700_000_000,
        };
        medcert_watermark::embed(
            &mut std::io::Cursor::new(document),
            &mut marked,
            &mark,
            &impostor,
        )
        .context("cannot forge the demo record")?;
        std::fs::write(&path, marked)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.expect_caught(&path, "forged").await
    }

    /// A copy of the recovered record whose content changed after marking (text added
    /// before the root's end tag, far from the mark) reads as tampered.
    async fn tampered(&self, recovered: &Path) -> Result<((), Details)> {
        let path = self.scratch.join("tampered.xml");
        let mut text = std::fs::read_to_string(recovered)
            .with_context(|| format!("cannot read {}", recovered.display()))?;
        let at = text
            .rfind("</")
            .with_context(|| format!("{} has no end tag to tamper with", recovered.display()))?;
        text.insert_str(at, "Dose changed to 500 mg.");
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        self.expect_caught(&path, "tampered").await
    }

    async fn expect_caught(&self, path: &Path, expected: &str) -> Result<((), Details)> {
        let report = verify_file(self.network, path).await?;
        let verdict = verdict_text(&report.verdict);
        if !verdict.starts_with(expected) {
            bail!("ehr verify said {verdict:?}, expected {expected}");
        }
        let d = details([
            ("file", path.display().to_string()),
            ("verdict", verdict),
            ("exit code of `medcert ehr verify`", "3".into()),
        ]);
        Ok(((), d))
    }
}

fn with_block(tx_id: &str, block: Option<u64>) -> String {
    match block {
        Some(block) => format!("{tx_id} (block {block})"),
        None => tx_id.to_owned(),
    }
}

fn cleanup_text(cleanup: Cleanup) -> &'static str {
    match cleanup {
        Cleanup::Removed => "removed",
        Cleanup::AlreadyAbsent => "already gone",
        Cleanup::Unknown => "unknown (the note of it is lost)",
    }
}

fn shred_text(report: &DeleteReport) -> String {
    match report.hospital_key {
        Cleanup::Removed => format!("key destroyed for {}", report.deleted_tx),
        _ => format!("key {}", cleanup_text(report.hospital_key)),
    }
}

fn verdict_text(verdict: &VerdictReport) -> String {
    match verdict {
        VerdictReport::Authentic {
            hospital_id,
            record_id,
            ..
        } => format!("authentic ({record_id} marked by {hospital_id})"),
        VerdictReport::Tampered { hospital_id, .. } => {
            format!("tampered (changed after {hospital_id} marked it)")
        }
        VerdictReport::Forged {
            claimed_hospital_id,
        } => format!("forged (claims {claimed_hospital_id}, not its signature)"),
        VerdictReport::Absent => "absent".into(),
    }
}
