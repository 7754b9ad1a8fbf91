//! `medcert ehr`: store, certify, recover, verify.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use medcert_flows::verify::VerdictReport;
use medcert_flows::{
    CertifyRequest, RecoverRequest, StoreFlowRequest, certify_record, recover, store, verify_file,
};
use medcert_network::Network;

use crate::args::{Context, DoctorArg, PasswordArgs};
use crate::output::{not_authentic, print};

#[derive(Subcommand)]
pub(crate) enum EhrCmd {
    /// Store a C-CDA document: password check → watermark → encrypt → CSP + key service
    /// + hospital chain (+ IPFS and certificate with --certify).
    Store {
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        treatment: String,
        /// The C-CDA document.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        record: Option<String>,
        /// At the patient's request, certify the record for this patient's wallet.
        #[arg(long, value_name = "PATIENT")]
        certify: Option<String>,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Certify a stored record for its patient (retries a failed `--certify`).
    Certify {
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        record: String,
        #[arg(long)]
        patient: String,
        #[command(flatten)]
        doctor: DoctorArg,
    },
    /// Recover a record with the patient's consent file and store it here.
    Recover {
        /// The recovering hospital (the consent's).
        #[arg(long)]
        hospital: String,
        /// The patient's treatment number at this hospital.
        #[arg(long)]
        treatment: String,
        #[arg(long)]
        consent: PathBuf,
        /// The recovered record's id here (default: its original id).
        #[arg(long)]
        record: Option<String>,
        /// Pick up recovery INDEX again after a timeout, instead of requesting anew.
        #[arg(long, value_name = "INDEX")]
        resume: Option<u64>,
        /// Also write the recovered document here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// The watermark verdict for a file, against the keys the hospitals' key services
    /// publish.
    Verify { file: PathBuf },
}

impl EhrCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let network = ctx.network()?;
        let patients = ctx.patients_dir(&network);
        match self {
            EhrCmd::Store {
                hospital,
                treatment,
                file,
                record,
                certify,
                doctor,
                password,
            } => {
                let password = password.read()?;
                let request = StoreFlowRequest {
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment,
                    record_id: record.as_deref(),
                    source: file,
                    password: &password,
                    certify_for: certify.as_deref(),
                };
                let report = store(&network, &patients, &request, &ctx.bars).await?;
                let headline = format!(
                    "record {} stored at {}",
                    report.stored.record_id, report.hospital
                );
                print(ctx.json, &headline, &report)?;
            }
            EhrCmd::Certify {
                hospital,
                record,
                patient,
                doctor,
            } => {
                let request = CertifyRequest {
                    hospital,
                    doctor: doctor.doctor,
                    record_id: record,
                    patient,
                };
                let report = certify_record(&network, &patients, &request, &ctx.bars).await?;
                let headline = format!("record {record} has certificate {}", report.certificate_id);
                print(ctx.json, &headline, &report)?;
            }
            EhrCmd::Recover {
                hospital,
                treatment,
                consent,
                record,
                resume,
                out,
                doctor,
                password,
            } => {
                let password = password.read()?;
                let request = RecoverRequest {
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment,
                    password: &password,
                    consent,
                    record_id: record.as_deref(),
                    resume: *resume,
                    wait: ctx.settings.recover_wait,
                    out: out.as_deref(),
                };
                let report = recover(&network, &request, &ctx.bars).await?;
                let headline = format!(
                    "record {} of {} recovered and stored at {} as {}",
                    report.source_record_id,
                    report.source_hospital,
                    report.hospital,
                    report.stored.record_id
                );
                print(ctx.json, &headline, &report)?;
            }
            EhrCmd::Verify { file } => return verify(ctx.json, &network, file).await,
        }
        Ok(ExitCode::SUCCESS)
    }
}

async fn verify(json: bool, network: &Network, file: &Path) -> Result<ExitCode> {
    let report = verify_file(network, file).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        match &report.verdict {
            VerdictReport::Authentic {
                hospital_id,
                record_id,
                issued_at,
            } => println!("authentic: record {record_id} marked by {hospital_id} at {issued_at}"),
            VerdictReport::Tampered {
                hospital_id,
                record_id,
                ..
            } => println!(
                "TAMPERED: record {record_id} of {hospital_id} changed after it was marked"
            ),
            VerdictReport::Forged {
                claimed_hospital_id,
            } => println!("FORGED: the mark claims {claimed_hospital_id} but is not its signature"),
            VerdictReport::Absent => println!("ABSENT: no watermark in this file"),
        }
    }
    Ok(match report.verdict {
        VerdictReport::Authentic { .. } => ExitCode::SUCCESS,
        _ => not_authentic(),
    })
}
