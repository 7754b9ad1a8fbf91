//! `medcert doctor`: create a visit's record, query one (audited).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use medcert_flows::{CreateRequest, QueryRequest, create_record, query_record};

use crate::args::{Context, DoctorArg, PasswordArgs};
use crate::output::{not_authentic, print};

#[derive(Subcommand)]
pub(crate) enum DoctorCmd {
    /// Create a visit's record (a generated C-CDA document) and store it.
    Create {
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        treatment: String,
        /// The record id (default: a fresh one).
        #[arg(long)]
        record: Option<String>,
        /// Size of the generated document in bytes.
        #[arg(long, default_value_t = 20_000)]
        size: u64,
        /// At the patient's request, certify the record for this patient's wallet.
        #[arg(long, value_name = "PATIENT")]
        certify: Option<String>,
        /// Also keep the generated document in this file.
        #[arg(long)]
        keep: Option<PathBuf>,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Query a record (audited on the hospital chain); with --out, retrieve and check it.
    Query {
        #[arg(long)]
        hospital: String,
        #[arg(long)]
        treatment: String,
        #[arg(long)]
        record: String,
        /// Write the decrypted document here and check its watermark.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        doctor: DoctorArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

impl DoctorCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let network = ctx.network()?;
        match self {
            DoctorCmd::Create {
                hospital,
                treatment,
                record,
                size,
                certify,
                keep,
                doctor,
                password,
            } => {
                let password = password.read()?;
                let request = CreateRequest {
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment,
                    record_id: record.as_deref(),
                    password: &password,
                    size: *size,
                    certify_for: certify.as_deref(),
                    keep: keep.as_deref(),
                };
                let patients = ctx.patients_dir(&network);
                let report = create_record(&network, &patients, &request, &ctx.bars).await?;
                let headline = format!(
                    "record {} created and stored at {}",
                    report.stored.record_id, report.hospital
                );
                print(ctx.json, &headline, &report)?;
                Ok(ExitCode::SUCCESS)
            }
            DoctorCmd::Query {
                hospital,
                treatment,
                record,
                out,
                doctor,
                password,
            } => {
                let password = password.read()?;
                let request = QueryRequest {
                    hospital,
                    doctor: doctor.doctor,
                    treatment_number: treatment,
                    record_id: record,
                    password: &password,
                    out: out.as_deref(),
                };
                let report = query_record(&network, &request, &ctx.bars).await?;
                let authentic = report.retrieved.as_ref().is_none_or(|r| r.authentic());
                let headline = format!(
                    "record {} at {} (query audited in {})",
                    report.record.record_id, report.hospital, report.tx_id
                );
                print(ctx.json, &headline, &report)?;
                Ok(if authentic {
                    ExitCode::SUCCESS
                } else {
                    not_authentic()
                })
            }
        }
    }
}
