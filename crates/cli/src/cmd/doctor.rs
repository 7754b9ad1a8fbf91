//! `medcert doctor`: create a visit's record, query one (audited).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use medcert_flows::{CreateRequest, QueryRequest, create_record, query_record};

use crate::args::{Context, VisitArgs};
use crate::output::{not_authentic, stored};

#[derive(Subcommand)]
pub(crate) enum DoctorCmd {
    /// Create a visit's record (a generated C-CDA document) and store it.
    Create {
        #[command(flatten)]
        visit: VisitArgs,
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
    },
    /// Query a record (audited on the hospital chain); with --out, retrieve and check it.
    Query {
        #[command(flatten)]
        visit: VisitArgs,
        #[arg(long)]
        record: String,
        /// Write the decrypted document here and check its watermark.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

impl DoctorCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (network, patients) = ctx.network_and_patients()?;
        match self {
            DoctorCmd::Create {
                visit,
                record,
                size,
                certify,
                keep,
            } => {
                let request = CreateRequest {
                    hospital: &visit.hospital,
                    doctor: visit.doctor.doctor,
                    treatment_number: &visit.treatment,
                    record_id: record.as_deref(),
                    password: &visit.password.read()?,
                    size: *size,
                    certify_for: certify.as_deref(),
                    keep: keep.as_deref(),
                };
                let report = create_record(&network, &patients, &request, &ctx.bars).await?;
                ctx.print(&stored(&report, "created and stored"), &report)?;
                Ok(ExitCode::SUCCESS)
            }
            DoctorCmd::Query { visit, record, out } => {
                let request = QueryRequest {
                    hospital: &visit.hospital,
                    doctor: visit.doctor.doctor,
                    treatment_number: &visit.treatment,
                    record_id: record,
                    password: &visit.password.read()?,
                    out: out.as_deref(),
                };
                let report = query_record(&network, &request, &ctx.bars).await?;
                ctx.print(
                    &format!(
                        "record {} at {} (query audited in {})",
                        report.record.record_id, report.hospital, report.tx_id
                    ),
                    &report,
                )?;
                Ok(if report.retrieved.as_ref().is_none_or(|r| r.authentic()) {
                    ExitCode::SUCCESS
                } else {
                    not_authentic()
                })
            }
        }
    }
}
