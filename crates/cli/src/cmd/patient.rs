//! `medcert patient`: register, certificates, consent and its revocation, the agent that
//! releases a served recovery's key, delete, and unlock (the hospital's admin).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use medcert_flows::{
    Actor, CertificatesRequest, ConsentRequest, DeleteRequest, PatientAgent, RegisterRequest,
    UnlockRequest, delete_record, list_certificates, register_patient, revoke_certificate,
    revoke_consent, sign_consent, unlock_patient,
};

use crate::args::{Context, DoctorArg, PasswordArgs};
use crate::config::parse_duration;
use crate::output::{one_line, print};

#[derive(Subcommand)]
pub(crate) enum PatientCmd {
    /// Create the patient's wallet (if new) and register them at a hospital; the
    /// hospital's key service keeps the password.
    Register {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        hospital: String,
        /// The treatment number (default: a fresh one).
        #[arg(long)]
        treatment: Option<String>,
        /// The patient's ID number (only its SHA3-256 reaches the chain).
        #[arg(long)]
        id_number: String,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// The patient's certificates on the certificate chain.
    Certificates {
        #[arg(long)]
        patient: String,
    },
    /// Consent to one hospital recovering one certificate: writes a consent file.
    Consent {
        #[arg(long)]
        patient: String,
        /// The hospital that may recover.
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        certificate: u64,
        /// How long the consent is valid: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        expires: Duration,
        /// The consent file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Withdraw a consent (by its nonce): the agent releases nothing for it, and the relay
    /// can no longer serve it if it is unused.
    RevokeConsent {
        #[arg(long)]
        patient: String,
        /// The consent's nonce (in the consent file and the wallet).
        #[arg(long)]
        nonce: u64,
    },
    /// Withdraw a certificate from recovery for good.
    RevokeCertificate {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        certificate: u64,
    },
    /// Run the patient's agent until Ctrl-C: it releases a record's key to the recovering
    /// hospital only after the certificate chain proves the recovery was served under one
    /// of the patient's unexpired, unrevoked consents.
    Agent {
        #[arg(long)]
        patient: String,
        /// How often the certificate chain is checked.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// One pass of the patient's agent: release the keys of served recoveries, then exit.
    Release {
        #[arg(long)]
        patient: String,
    },
    /// Sign and submit the deletion of a record; re-run to finish a half-done cleanup.
    Delete {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        record: String,
        #[command(flatten)]
        doctor: DoctorArg,
    },
    /// Lift a patient's lock-out after too many wrong passwords (the hospital's admin, in
    /// its key service).
    Unlock {
        #[arg(long)]
        hospital: String,
        /// The patient's treatment number at the hospital.
        #[arg(long)]
        treatment: String,
    },
}

impl PatientCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let network = ctx.network()?;
        let patients = ctx.patients_dir(&network);
        match self {
            PatientCmd::Register {
                patient,
                hospital,
                treatment,
                id_number,
                doctor,
                password,
            } => {
                let password = password.read()?;
                let request = RegisterRequest {
                    patient,
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment.as_deref(),
                    id_number,
                    password: &password,
                };
                let report = register_patient(&network, &patients, &request).await?;
                let headline = format!(
                    "registered {} at {} as {}",
                    report.patient, report.hospital, report.treatment_number
                );
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::Certificates { patient } => {
                let request = CertificatesRequest { patient };
                let report = list_certificates(&network, &patients, &request).await?;
                let headline = format!(
                    "{} has {} certificate(s)",
                    report.patient,
                    report.certificates.len()
                );
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::Consent {
                patient,
                hospital,
                certificate,
                expires,
                out,
            } => {
                let request = ConsentRequest {
                    patient,
                    hospital,
                    certificate_id: *certificate,
                    valid_for: *expires,
                    out,
                };
                let report = sign_consent(&network, &patients, &request).await?;
                let headline = format!(
                    "consent for {} to recover certificate {} written to {}",
                    report.consent.hospital,
                    report.consent.certificate_id,
                    report.path.display()
                );
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::RevokeConsent { patient, nonce } => {
                let report = revoke_consent(&network, &patients, patient, *nonce).await?;
                let headline = format!("consent {nonce} of {patient} revoked");
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::RevokeCertificate {
                patient,
                certificate,
            } => {
                let report = revoke_certificate(&network, &patients, patient, *certificate).await?;
                let headline = format!("certificate {certificate} withdrawn from recovery");
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::Agent { patient, interval } => {
                let agent = PatientAgent::open(&network, &patients, patient).await?;
                if !ctx.json {
                    eprintln!(
                        "{patient}'s agent is watching the certificate chain; Ctrl-C stops it"
                    );
                }
                let stop = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                agent
                    .run(*interval, stop, |pass| match pass {
                        Ok(pass) => {
                            let headline = format!(
                                "released {} key(s), refused {}",
                                pass.released.len(),
                                pass.refused.len()
                            );
                            let _ = print(ctx.json, &headline, pass);
                        }
                        Err(e) => eprintln!("agent pass failed, retrying: {}", one_line(e)),
                    })
                    .await;
            }
            PatientCmd::Release { patient } => {
                let agent = PatientAgent::open(&network, &patients, patient).await?;
                let pass = agent.release_pass().await?;
                let headline = format!(
                    "released {} key(s), refused {}, {} consent(s) not yet served",
                    pass.released.len(),
                    pass.refused.len(),
                    pass.waiting
                );
                print(ctx.json, &headline, &pass)?;
            }
            PatientCmd::Delete {
                patient,
                hospital,
                record,
                doctor,
            } => {
                let request = DeleteRequest {
                    patient,
                    hospital,
                    record_id: record,
                    submitter: Actor::Doctor(doctor.doctor),
                };
                let report = delete_record(&network, &patients, &request).await?;
                let headline = format!(
                    "record {} deleted from {}",
                    report.record_id, report.hospital
                );
                print(ctx.json, &headline, &report)?;
            }
            PatientCmd::Unlock {
                hospital,
                treatment,
            } => {
                let request = UnlockRequest {
                    hospital,
                    treatment_number: treatment,
                };
                let report = unlock_patient(&network, &request).await?;
                let headline = format!(
                    "patient {} unlocked at {}",
                    report.treatment_number, report.hospital
                );
                print(ctx.json, &headline, &report)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
