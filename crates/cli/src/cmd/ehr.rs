//! `medcert ehr`: store, certify, recover, verify.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use medcert_flows::verify::VerdictReport;
use medcert_flows::{
    RecoverRequest, StoreFlowRequest, certify_record, recover, store, verify_file,
};
use medcert_network::Network;

use crate::args::{Context, PatientRecordArgs, VisitArgs};
use crate::config::parse_duration;
use crate::output::{not_authentic, stored};

#[derive(Subcommand)]
pub(crate) enum EhrCmd {
    /// Store a C-CDA document: password check → watermark → encrypt → CSP + key service
    /// + hospital chain (+ IPFS and certificate with --certify).
    Store {
        #[command(flatten)]
        visit: VisitArgs,
        /// The C-CDA document.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        record: Option<String>,
        /// At the patient's request, certify the record for this patient's wallet.
        #[arg(long, value_name = "PATIENT")]
        certify: Option<String>,
    },
    /// Certify a stored record for its patient (retries a failed `--certify`).
    Certify(PatientRecordArgs),
    /// Recover a record with the patient's consent file and store it here: at the
    /// recovering hospital (the consent's), under the patient's treatment number there.
    Recover {
        #[command(flatten)]
        visit: VisitArgs,
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
        /// How long the certificate chain may take to serve the request (its deadline in
        /// block time); after it the relay fails the request with proof: 90s, 15m, 1h.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        serve_within: Duration,
    },
    /// The watermark verdict for a file, against the keys the hospitals publish on the
    /// certificate contract.
    Verify { file: PathBuf },
}

impl EhrCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (network, patients) = ctx.network_and_patients()?;
        match self {
            EhrCmd::Store {
                visit,
                file,
                record,
                certify,
            } => {
                let request = StoreFlowRequest {
                    hospital: &visit.hospital,
                    doctor: visit.doctor.doctor,
                    treatment_number: &visit.treatment,
                    record_id: record.as_deref(),
                    source: file,
                    password: &visit.password.read()?,
                    certify_for: certify.as_deref(),
                };
                let report = store(&network, &patients, &request, &ctx.bars).await?;
                ctx.print(&stored(&report, "stored"), &report)?;
            }
            EhrCmd::Certify(record) => {
                let request = record.certify_request();
                let report = certify_record(&network, &patients, &request, &ctx.bars).await?;
                ctx.print(&record.certified(&report), &report)?;
            }
            EhrCmd::Recover {
                visit,
                consent,
                record,
                resume,
                out,
                serve_within,
            } => {
                let request = RecoverRequest {
                    hospital: &visit.hospital,
                    doctor: visit.doctor.doctor,
                    treatment_number: &visit.treatment,
                    password: &visit.password.read()?,
                    consent,
                    record_id: record.as_deref(),
                    resume: *resume,
                    wait: ctx.settings.recover_wait,
                    serve_within: *serve_within,
                    out: out.as_deref(),
                };
                let report = recover(&network, &request, &ctx.bars).await?;
                ctx.print(
                    &format!(
                        "record {} of {} recovered and stored at {} as {}",
                        report.source_record_id,
                        report.source_hospital,
                        report.hospital,
                        report.stored.record_id
                    ),
                    &report,
                )?;
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
                ..
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
