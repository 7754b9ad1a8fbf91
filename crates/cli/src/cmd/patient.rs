//! `medcert patient`: register, certificates, certify, consent and its revocation, the
//! agent that releases a served recovery's key, delete, and unlock (the hospital's admin).
//! The patient signs certification, consent and deletion with medcert's wallet or, in two
//! runs (`--print-typed-data`, then `--typed-data` and `--signature`), with any Ethereum
//! wallet. A patient registered with `--address` (an account whose key lives in another
//! wallet) signs everything there, and authorises the medcert wallet's own account once
//! as its agent (`authorize-agent`), which then releases keys and revokes for it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use medcert_flows::delete::DeleteReport;
use medcert_flows::signing::{parse_address, parse_signature};
use medcert_flows::{
    CertificatesRequest, ConsentRequest, PatientAgent, RegisterRequest, SignatureSource, Signed,
    UnlockRequest, authorize_agent, certify_record_with, delete_record_with, list_certificates,
    register_patient_as, revoke_certificate, revoke_consent, sign_consent_with, unlock_patient,
};
use serde::Serialize;

use crate::args::{Context, DoctorArg, PasswordArgs, PatientRecordArgs};
use crate::config::parse_duration;
use crate::output::one_line;

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
        /// The patient's Ethereum account when its key lives in another wallet (hardware,
        /// browser): that wallet signs every certificate authorisation, consent and
        /// deletion, and medcert's wallet keeps only the patient's agent.
        #[arg(long, value_name = "0x…")]
        address: Option<String>,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Authorise the wallet's own account as the agent of a patient registered with
    /// --address, once: the patient's other wallet signs the authorisation, the agent
    /// submits it; the agent then releases keys and revokes for the patient.
    AuthorizeAgent {
        #[arg(long)]
        patient: String,
        #[command(flatten)]
        signing: SignatureArgs,
    },
    /// The patient's certificates on the certificate chain.
    Certificates {
        #[arg(long)]
        patient: String,
    },
    /// Authorise the hospital to certify a stored record for the patient on the
    /// certificate chain (the hospital's doctor reads the record and issues).
    Certify {
        #[command(flatten)]
        record: PatientRecordArgs,
        #[command(flatten)]
        signing: SignatureArgs,
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
        #[command(flatten)]
        signing: SignatureArgs,
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
        /// The longest time between two passes; a new block on the certificate chain
        /// brings one sooner.
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
        #[command(flatten)]
        record: PatientRecordArgs,
        #[command(flatten)]
        signing: SignatureArgs,
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
        let (network, patients) = ctx.network_and_patients()?;
        match self {
            PatientCmd::Register {
                patient,
                hospital,
                treatment,
                id_number,
                address,
                doctor,
                password,
            } => {
                let address = address
                    .as_deref()
                    .map(parse_address)
                    .transpose()
                    .context("--address")?;
                let password = password.read()?;
                let request = RegisterRequest {
                    patient,
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment.as_deref(),
                    id_number,
                    password: &password,
                };
                let report = register_patient_as(&network, &patients, &request, address).await?;
                let mut headline = format!(
                    "registered {} at {} as {}",
                    report.patient, report.hospital, report.treatment_number
                );
                if let Some(agent) = report.agent.as_ref().filter(|_| report.wallet_created) {
                    headline = format!(
                        "{headline}; {} signs in its own wallet: authorise the agent {agent} \
                         once with `medcert patient authorize-agent --patient {}`",
                        report.address, report.patient
                    );
                }
                ctx.print(&headline, &report)?;
            }
            PatientCmd::AuthorizeAgent { patient, signing } => {
                let signature = signing.read()?;
                let outcome =
                    authorize_agent(&network, &patients, patient, signature.source()).await?;
                finish(ctx, &outcome, |report| match report.tx {
                    Some(_) => format!(
                        "{} ({}) authorised the agent {}",
                        report.patient, report.address, report.agent
                    ),
                    None => format!(
                        "{} ({}) had authorised the agent {} already",
                        report.patient, report.address, report.agent
                    ),
                })?;
            }
            PatientCmd::Certificates { patient } => {
                let request = CertificatesRequest { patient };
                let report = list_certificates(&network, &patients, &request).await?;
                ctx.print(
                    &format!(
                        "{} has {} certificate(s)",
                        report.patient,
                        report.certificates.len()
                    ),
                    &report,
                )?;
            }
            PatientCmd::Certify { record, signing } => {
                let request = record.certify_request();
                let signature = signing.read()?;
                let outcome = certify_record_with(
                    &network,
                    &patients,
                    &request,
                    signature.source(),
                    &ctx.bars,
                )
                .await?;
                finish(ctx, &outcome, |report| record.certified(report))?;
            }
            PatientCmd::Consent {
                patient,
                hospital,
                certificate,
                expires,
                out,
                signing,
            } => {
                let request = ConsentRequest {
                    patient,
                    hospital,
                    certificate_id: *certificate,
                    valid_for: *expires,
                    out,
                };
                let signature = signing.read()?;
                let outcome =
                    sign_consent_with(&network, &patients, &request, signature.source()).await?;
                finish(ctx, &outcome, |report| {
                    format!(
                        "consent for {} to recover certificate {} written to {}",
                        report.consent.hospital,
                        report.consent.certificate_id,
                        report.path.display()
                    )
                })?;
            }
            PatientCmd::RevokeConsent { patient, nonce } => {
                let report = revoke_consent(&network, &patients, patient, *nonce).await?;
                ctx.print(&format!("consent {nonce} of {patient} revoked"), &report)?;
            }
            PatientCmd::RevokeCertificate {
                patient,
                certificate,
            } => {
                let report = revoke_certificate(&network, &patients, patient, *certificate).await?;
                ctx.print(
                    &format!("certificate {certificate} withdrawn from recovery"),
                    &report,
                )?;
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
                            let _ = ctx.print(&headline, pass);
                        }
                        Err(e) => eprintln!("agent pass failed, retrying: {}", one_line(e)),
                    })
                    .await;
            }
            PatientCmd::Release { patient } => {
                let agent = PatientAgent::open(&network, &patients, patient).await?;
                let pass = agent.release_pass().await?;
                ctx.print(
                    &format!(
                        "released {} key(s), refused {}, {} consent(s) not yet served",
                        pass.released.len(),
                        pass.refused.len(),
                        pass.waiting
                    ),
                    &pass,
                )?;
            }
            PatientCmd::Delete { record, signing } => {
                let request = record.delete_request();
                let signature = signing.read()?;
                let outcome =
                    delete_record_with(&network, &patients, &request, signature.source()).await?;
                finish(ctx, &outcome, deleted)?;
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
                ctx.print(
                    &format!(
                        "patient {} unlocked at {}",
                        report.treatment_number, report.hospital
                    ),
                    &report,
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Who signs the patient's message: medcert's wallet, unless another wallet signs in two
/// runs.
#[derive(Args)]
pub(crate) struct SignatureArgs {
    /// Print the EIP-712 typed-data JSON (what eth_signTypedData_v4 takes) for another
    /// wallet to sign, and stop; nothing is sent to any chain.
    #[arg(long, conflicts_with_all = ["signature", "typed_data"])]
    print_typed_data: bool,
    /// The signature another wallet made of --typed-data: 0x and 130 hex digits.
    #[arg(long, requires = "typed_data", value_name = "0x…")]
    signature: Option<String>,
    /// The typed-data JSON that --signature signs, as --print-typed-data printed it.
    #[arg(long, requires = "signature", value_name = "FILE")]
    typed_data: Option<PathBuf>,
}

/// The patient's signature as the arguments give it.
pub(crate) enum Signature {
    /// medcert's wallet signs.
    Wallet,
    /// Another wallet is to sign: the flow stops at the typed data.
    TypedDataOnly,
    /// Another wallet signed this typed data.
    Given {
        typed_data: serde_json::Value,
        signature: [u8; 65],
    },
}

impl Signature {
    /// Where the flow takes the signature from.
    fn source(&self) -> SignatureSource<'_> {
        match self {
            Signature::Wallet => SignatureSource::Wallet,
            Signature::TypedDataOnly => SignatureSource::TypedDataOnly,
            Signature::Given {
                typed_data,
                signature,
            } => SignatureSource::Given {
                typed_data,
                signature: *signature,
            },
        }
    }
}

impl SignatureArgs {
    /// The signature the arguments give, with the typed data read when another wallet
    /// signed it.
    fn read(&self) -> Result<Signature> {
        let (Some(signature), Some(path)) = (&self.signature, &self.typed_data) else {
            return Ok(if self.print_typed_data {
                Signature::TypedDataOnly
            } else {
                Signature::Wallet
            });
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the typed data {}", path.display()))?;
        let typed_data = serde_json::from_str(&text)
            .with_context(|| format!("the typed data {} is not JSON", path.display()))?;
        let signature = parse_signature(signature).context("--signature")?;
        Ok(Signature::Given {
            typed_data,
            signature,
        })
    }
}

/// The headline of a deletion.
fn deleted(report: &DeleteReport) -> String {
    format!(
        "record {} deleted from {}",
        report.record_id, report.hospital
    )
}

/// Prints a flow's report, or the typed data it stopped at (alone on stdout, so that it
/// can be saved and signed) with what to do next on stderr.
fn finish<T: Serialize>(
    ctx: &Context,
    outcome: &Signed<T>,
    headline: impl FnOnce(&T) -> String,
) -> Result<()> {
    match outcome {
        Signed::Done(report) => ctx.print(&headline(report), report),
        Signed::ToSign(to_sign) => {
            println!("{}", serde_json::to_string_pretty(&to_sign.typed_data)?);
            eprintln!(
                "sign this typed data with the account {} (e.g. save it as FILE and run \
                 `cast wallet sign --data --from-file FILE`), then run the same command with \
                 --typed-data FILE --signature 0x…",
                to_sign.signer
            );
            Ok(())
        }
    }
}
