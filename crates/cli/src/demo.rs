//! `medcert demo`: the paper's story on the running network, with an in-process relay.
//!
//! Two patients register at two hospitals, whose doctors create and certify a record for
//! each; the first patient deletes theirs (the hospital chain says deleted, the CSP object
//! and the hospital's key are gone), registers at a third hospital, consents to it, and
//! the third hospital recovers the record through the relay, checks it and stores it; a
//! replay of the spent consent is refused; a forged and a tampered record are caught by
//! `ehr verify`. Every step prints its transaction ids, CIDs, verdicts and timings; the
//! first failing step ends the demo.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medcert_crypto::CryptoError;
use medcert_network::{Hospital, Network};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::consent::{ConsentRequest, sign_consent};
use crate::error::FlowError;
use crate::hospital_keys::HospitalKeys;
use crate::ids::new_id;
use crate::ledger::{RecordState, hex32};
use crate::patient::{RegisterRequest, register_patient};
use crate::progress::Progress;
use crate::records::{
    CreateRequest, DeleteRequest, QueryRequest, create_record, delete_record, query_record,
    record_state,
};
use crate::recover::{RecoverRequest, recover};
use crate::services::{Actor, csp, hospital_contract};
use crate::verify::{VerdictReport, verify_file};

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Hospitals taking part (at least 3); the story uses the first two and the last.
    pub hospitals: usize,
    pub record_size: u64,
    /// Where the demo's patients keep their wallets.
    pub patients_dir: PathBuf,
    pub relay_confirmations: usize,
    pub relay_timeout: Duration,
    pub recover_wait: Duration,
    /// Print each step as it ends.
    pub print_steps: bool,
}

#[derive(Debug, Serialize)]
pub struct DemoStep {
    pub step: usize,
    pub title: String,
    pub ok: bool,
    pub ms: f64,
    /// What the step did, in order: transaction ids, CIDs, verdicts.
    pub details: Vec<(String, String)>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub passed: bool,
    pub hospitals: Vec<String>,
    pub steps: Vec<DemoStep>,
    pub total_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the demo takes 3 to {available} hospitals on this network, not {asked}; give --hospitals \
         in that range (a network needs 3 or more: `medcert network up --hospitals 3`)"
    )]
    HospitalCount { asked: usize, available: usize },
    #[error("cannot start the relay: {0}")]
    Relay(String),
    #[error("cannot make the demo's directory {path}: {source}")]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Details = Vec<(String, String)>;

struct Steps {
    steps: Vec<DemoStep>,
    print: bool,
}

impl Steps {
    /// Runs one step; `None` when it failed (the demo stops there).
    async fn run<T>(
        &mut self,
        title: &str,
        step: impl Future<Output = Result<(T, Details), FlowError>>,
    ) -> Option<T> {
        let started = Instant::now();
        let outcome = step.await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let number = self.steps.len() + 1;
        let (value, details, error) = match outcome {
            Ok((value, details)) => (Some(value), details, None),
            Err(e) => (None, Details::new(), Some(e.to_string())),
        };
        if self.print {
            let verdict = if error.is_none() { "ok" } else { "FAILED" };
            println!("[{number:>2}] {title} … {verdict} ({ms:.0} ms)");
            for (key, value) in &details {
                println!("       {key}: {value}");
            }
            if let Some(error) = &error {
                println!("       error: {error}");
            }
        }
        self.steps.push(DemoStep {
            step: number,
            title: title.to_owned(),
            ok: error.is_none(),
            ms,
            details,
            error,
        });
        value
    }
}

fn details<const N: usize>(pairs: [(&str, String); N]) -> Details {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Runs the story; the report says which steps passed.
pub async fn run(network: &Network, options: &DemoOptions) -> Result<DemoReport, DemoError> {
    let available = network.fabric.hospitals.len();
    if options.hospitals < 3 || options.hospitals > available {
        return Err(DemoError::HospitalCount {
            asked: options.hospitals,
            available,
        });
    }
    let chosen = &network.fabric.hospitals[..options.hospitals];
    let (h1, h2, h3) = (&chosen[0], &chosen[1], &chosen[options.hospitals - 1]);
    let started = Instant::now();

    // Kept after the run, so its files can be checked again with `medcert ehr verify`.
    let scratch = network.run_dir.join("demo").join(format!(
        "{}-{:04x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        rand::random::<u16>()
    ));
    std::fs::create_dir_all(&scratch).map_err(|source| DemoError::Scratch {
        path: scratch.clone(),
        source,
    })?;
    let mut relay_config = medcert_relay::RelayConfig::new(network.clone(), scratch.join("relay"));
    relay_config.confirmations = options.relay_confirmations;
    relay_config.request_timeout = options.relay_timeout;
    relay_config.only_hospitals = Some(chosen.iter().map(|h| h.id.clone()).collect());
    let relay = medcert_relay::Relay::start(relay_config)
        .await
        .map_err(|e| DemoError::Relay(e.to_string()))?;

    let mut steps = Steps {
        steps: Vec::new(),
        print: options.print_steps,
    };
    if options.print_steps {
        println!(
            "medcert demo: {} hospitals ({}), relay in-process, files in {}",
            chosen.len(),
            chosen
                .iter()
                .map(|h| h.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            scratch.display()
        );
    }
    let story = Story {
        network,
        options,
        patients: options.patients_dir.clone(),
        scratch,
        h1,
        h2,
        h3,
    };
    story.tell(&mut steps).await;
    relay.shutdown().await;
    let passed = steps.steps.iter().all(|s| s.ok) && !steps.steps.is_empty();
    if options.print_steps {
        println!(
            "demo {} in {:.1} s",
            if passed { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(DemoReport {
        passed,
        hospitals: chosen.iter().map(|h| h.id.clone()).collect(),
        steps: steps.steps,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

struct Story<'a> {
    network: &'a Network,
    options: &'a DemoOptions,
    patients: PathBuf,
    scratch: PathBuf,
    h1: &'a Hospital,
    h2: &'a Hospital,
    h3: &'a Hospital,
}

impl Story<'_> {
    async fn tell(&self, steps: &mut Steps) -> Option<()> {
        let network = self.network;
        let progress = Progress::hidden();
        let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let alice = format!("alice-{suffix}");
        let bob = format!("bob-{suffix}");
        let alice_password = Zeroizing::new(format!("alice-pw-{suffix}"));
        let bob_password = Zeroizing::new(format!("bob-pw-{suffix}"));

        let register = |patient: &str, hospital: &Hospital, password: &Zeroizing<String>| {
            let patient = patient.to_owned();
            let hospital = hospital.id.clone();
            let password = password.clone();
            let patients = self.patients.clone();
            async move {
                let report = register_patient(
                    network,
                    &patients,
                    &RegisterRequest {
                        patient: &patient,
                        hospital: &hospital,
                        doctor: 0,
                        treatment_number: None,
                        id_number: &format!("ID-{patient}"),
                        password: &password,
                    },
                )
                .await?;
                let d = details([
                    (
                        "patient",
                        format!("{} ({})", report.patient, report.address),
                    ),
                    ("treatment number", report.treatment_number.clone()),
                    (
                        "tx",
                        format!("{} (block {})", report.tx_id, report.block_number),
                    ),
                ]);
                Ok((report.treatment_number, d))
            }
        };
        let alice_t1 = steps
            .run(
                &format!("{alice} registers at {}", self.h1.id),
                register(&alice, self.h1, &alice_password),
            )
            .await?;
        let bob_t2 = steps
            .run(
                &format!("{bob} registers at {}", self.h2.id),
                register(&bob, self.h2, &bob_password),
            )
            .await?;

        let create =
            |hospital: &Hospital, treatment: &str, patient: &str, password: &Zeroizing<String>| {
                let hospital = hospital.id.clone();
                let treatment = treatment.to_owned();
                let patient = patient.to_owned();
                let password = password.clone();
                let patients = self.patients.clone();
                let size = self.options.record_size;
                async move {
                    let report = create_record(
                        network,
                        &patients,
                        &CreateRequest {
                            hospital: &hospital,
                            doctor: 0,
                            treatment_number: &treatment,
                            record_id: None,
                            password: &password,
                            size,
                            certify_for: Some(&patient),
                            keep: None,
                        },
                        &progress,
                    )
                    .await?;
                    let certificate = report
                        .certificate
                        .as_ref()
                        .expect("certification was asked for");
                    let d = details([
                        ("record", report.stored.record_id.clone()),
                        ("Hash C", report.stored.hash_c.clone()),
                        (
                            "CreateRecord tx",
                            format!(
                                "{} (block {})",
                                report.stored.tx_id, report.stored.block_number
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
                        ("size", format!("{} bytes encrypted", report.stored.size)),
                    ]);
                    Ok((
                        (report.stored.record_id.clone(), certificate.certificate_id),
                        d,
                    ))
                }
            };
        let (record1, certificate1) = steps
            .run(
                &format!(
                    "a doctor at {} creates, stores and certifies a record for {alice}",
                    self.h1.id
                ),
                create(self.h1, &alice_t1, &alice, &alice_password),
            )
            .await?;
        steps
            .run(
                &format!(
                    "a doctor at {} creates, stores and certifies a record for {bob}",
                    self.h2.id
                ),
                create(self.h2, &bob_t2, &bob, &bob_password),
            )
            .await?;

        let retrieved1 = self.scratch.join("record1.xml");
        steps
            .run(
                &format!(
                    "the doctor at {} queries {record1} (audited) and retrieves it",
                    self.h1.id
                ),
                async {
                    let report = query_record(
                        network,
                        &QueryRequest {
                            hospital: &self.h1.id,
                            doctor: 0,
                            treatment_number: &alice_t1,
                            record_id: &record1,
                            password: &alice_password,
                            out: Some(&retrieved1),
                        },
                        &progress,
                    )
                    .await?;
                    let retrieved = report.retrieved.expect("asked to retrieve");
                    if !retrieved.authentic() {
                        return Err(FlowError::NotAuthentic(format!(
                            "the stored record reads as {:?}",
                            retrieved.verification.verdict
                        )));
                    }
                    Ok((
                        (),
                        details([
                            ("QueryRecord tx", report.tx_id),
                            ("verdict", verdict_text(&retrieved.verification.verdict)),
                            ("bytes", retrieved.bytes.to_string()),
                        ]),
                    ))
                },
            )
            .await?;

        let hash_c = steps
            .run(
                &format!("{alice} deletes {record1} from {}", self.h1.id),
                async {
                    let report = delete_record(
                        network,
                        &self.patients,
                        &DeleteRequest {
                            patient: &alice,
                            hospital: &self.h1.id,
                            record_id: &record1,
                            submitter: Actor::Doctor(0),
                        },
                    )
                    .await?;
                    let hash_c = report.hash_c.clone().ok_or_else(|| {
                        FlowError::Input("the deletion did not name the CSP object".into())
                    })?;
                    let d = details([
                        ("DeleteRecord tx", report.deleted_tx.clone()),
                        ("signed by", report.deleted_by.clone()),
                        ("CSP object", format!("{hash_c}: {:?}", report.csp_object)),
                        ("hospital key", format!("{:?}", report.hospital_key)),
                    ]);
                    Ok((hash_c, d))
                },
            )
            .await?;

        steps
            .run(
                &format!(
                    "{} shows {record1} deleted, the CSP has nothing, the key is shredded",
                    self.h1.id
                ),
                self.check_deleted(&record1, &hash_c),
            )
            .await?;

        let alice_t3 = steps
            .run(
                &format!("{alice} registers at {}", self.h3.id),
                register(&alice, self.h3, &alice_password),
            )
            .await?;

        let consent_path = self.scratch.join("consent.json");
        steps
            .run(
                &format!(
                    "{alice} consents to {} recovering certificate {certificate1}",
                    self.h3.id
                ),
                async {
                    let report = sign_consent(
                        network,
                        &self.patients,
                        &ConsentRequest {
                            patient: &alice,
                            hospital: &self.h3.id,
                            certificate_id: certificate1,
                            valid_for: Duration::from_secs(3600),
                            out: &consent_path,
                        },
                    )
                    .await?;
                    Ok((
                        (),
                        details([
                            ("consent file", report.path.display().to_string()),
                            ("nonce", report.consent.nonce.to_string()),
                            ("expiry", report.consent.expiry.to_string()),
                            ("Hash I (CID)", report.consent.cid.clone()),
                        ]),
                    ))
                },
            )
            .await?;

        let recovered_path = self.scratch.join("recovered.xml");
        let recover_request = RecoverRequest {
            hospital: &self.h3.id,
            doctor: 0,
            treatment_number: &alice_t3,
            password: &alice_password,
            consent: &consent_path,
            record_id: None,
            resume: None,
            wait: self.options.recover_wait,
            out: Some(&recovered_path),
        };
        steps
            .run(
                &format!(
                    "a doctor at {} recovers {record1} through the relay and stores it",
                    self.h3.id
                ),
                async {
                    let report = recover(network, &recover_request, &progress).await?;
                    let t = &report.timings_ms;
                    Ok((
                        (),
                        details([
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
                                format!("{} (block {})", report.eth_tx, report.eth_block),
                            ),
                            ("CompleteRecovery tx", report.complete_tx.clone()),
                            ("Hash I (CID)", report.cid.clone()),
                            ("verdict", verdict_text(&report.verification.verdict)),
                            ("new Hash C", report.stored.hash_c.clone()),
                            ("CreateRecord tx", report.stored.tx_id.clone()),
                            (
                                "timings",
                                format!(
                                    "request {:.0} ms, relay {:.0} ms, IPFS {:.0} ms, decrypt {:.0} ms, verify {:.0} ms, store {:.0} ms",
                                    t.request, t.relay_wait, t.ipfs_get, t.decrypt, t.verify, t.store
                                ),
                            ),
                        ]),
                    ))
                },
            )
            .await?;

        steps
            .run(
                &format!("{} replays the spent consent: refused", self.h3.id),
                async {
                    let replay = RecoverRequest {
                        record_id: Some(&new_id("R")),
                        out: None,
                        ..recover_request
                    };
                    match recover(network, &replay, &progress).await {
                        Err(FlowError::RecoveryFailed { index, reason, .. }) => Ok((
                            (),
                            details([("recovery", index.to_string()), ("relay's reason", reason)]),
                        )),
                        Err(other) => Err(other),
                        Ok(report) => Err(FlowError::Input(format!(
                            "a replayed consent was served (recovery {})",
                            report.index
                        ))),
                    }
                },
            )
            .await?;

        steps
            .run(
                "a record with a forged watermark is caught by ehr verify",
                async {
                    let path = self.scratch.join("forged.xml");
                    self.forge(&path)?;
                    self.expect_caught(&path, "forged")
                },
            )
            .await?;

        steps
            .run(
                "a recovered record edited afterwards is caught by ehr verify",
                async {
                    let path = self.scratch.join("tampered.xml");
                    tamper(&recovered_path, &path)?;
                    self.expect_caught(&path, "tampered")
                },
            )
            .await?;
        Some(())
    }

    async fn check_deleted(
        &self,
        record_id: &str,
        hash_c: &str,
    ) -> Result<((), Details), FlowError> {
        let contract = hospital_contract(self.network, self.h1, Actor::Doctor(0)).await?;
        let tombstone = match record_state(&contract, &self.h1.channel, record_id).await? {
            RecordState::Deleted { tombstone } => tombstone,
            RecordState::Active { .. } => {
                return Err(FlowError::Input(format!(
                    "{record_id} is still active on {}",
                    self.h1.channel
                )));
            }
        };
        if csp_holds(self.network, hash_c).await? {
            return Err(FlowError::Input(format!(
                "the CSP still holds object {hash_c}"
            )));
        }
        let keys =
            HospitalKeys::open_existing(&HospitalKeys::dir(&self.network.run_dir, &self.h1.id))?;
        match keys.key_store.get(record_id) {
            Err(CryptoError::UnknownRecord { .. }) => {}
            Ok(_) => {
                return Err(FlowError::Input(format!(
                    "{}'s key store still opens {record_id}",
                    self.h1.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok((
            (),
            details([
                ("GetRecord", format!("deleted in {}", tombstone.deleted_tx)),
                ("tombstone by", tombstone.deleted_by),
                ("CSP", format!("no object {hash_c}")),
                ("key store", "no key for the record".into()),
            ]),
        ))
    }

    /// A record marked in `h1`'s name with a key that is not `h1`'s.
    fn forge(&self, path: &Path) -> Result<(), FlowError> {
        let mut document = Vec::new();
        let config = medcert_ccda::GeneratorConfig {
            seed: rand::random(),
            target_size: 20_000,
            patient_id: "T-forged".into(),
            hospital: self.h1.id.clone(),
        };
        medcert_ccda::generate(&config, &mut document).map_err(|source| FlowError::Write {
            path: path.to_owned(),
            source,
        })?;
        let impostor = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let mut marked = Vec::new();
        medcert_watermark::embed(
            &mut std::io::Cursor::new(document),
            &mut marked,
            &medcert_watermark::Mark {
                hospital_id: &self.h1.id,
                record_id: "R-forged",
                issued_at: 1_700_000_000,
            },
            &impostor,
        )
        .map_err(|e| FlowError::Input(format!("cannot forge the demo record: {e}")))?;
        std::fs::write(path, marked).map_err(|source| FlowError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn expect_caught(&self, path: &Path, expected: &str) -> Result<((), Details), FlowError> {
        let report =
            verify_file(self.network, path).map_err(|e| FlowError::Input(e.to_string()))?;
        let verdict = verdict_text(&report.verdict);
        if !verdict.starts_with(expected) {
            return Err(FlowError::Input(format!(
                "ehr verify said {verdict:?}, expected {expected}"
            )));
        }
        Ok((
            (),
            details([
                ("file", path.display().to_string()),
                ("verdict", verdict),
                ("exit code of `medcert ehr verify`", "3".into()),
            ]),
        ))
    }
}

/// A copy of `source` whose content changed after marking: text added before the root's
/// end tag, far from the mark in the first tags.
fn tamper(source: &Path, out: &Path) -> Result<(), FlowError> {
    let mut text = std::fs::read_to_string(source).map_err(|e| FlowError::Read {
        path: source.to_owned(),
        source: e,
    })?;
    let at = text.rfind("</").ok_or_else(|| {
        FlowError::Input(format!(
            "{} has no end tag to tamper with",
            source.display()
        ))
    })?;
    text.insert_str(at, "Dose changed to 500 mg.");
    std::fs::write(out, text).map_err(|source| FlowError::Write {
        path: out.to_owned(),
        source,
    })
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

/// Whether Hash C still names an object in the CSP.
async fn csp_holds(network: &Network, hash_c: &str) -> Result<bool, FlowError> {
    Ok(csp(network)?
        .exists(&hex32("Hash C", "the deletion", hash_c)?)
        .await?)
}
