//! The command line: global options, the commands, and what every command reads from
//! them (settings, the network description, the patients' directory, progress bars).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use medcert_flows::certify::Certified;
use medcert_flows::{Actor, CertifyRequest, DeleteRequest};
use medcert_network::Network;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::progress::Bars;
use crate::{cmd, output};

const AFTER_HELP: &str = "Exit codes:
  0  success (for `ehr verify` and `doctor query --out`: the record is authentic)
  1  the command failed; the message says what is wrong and what to do
  2  bad usage
  3  not authentic: a watermark or fingerprint is not the issuing hospital's
     (tampered, forged, absent), so nothing was stored
  4  refused by a chain or a hospital's key service: wrong password (recorded on the
     chain), locked patient, too many attempts, unknown patient or record, expired,
     replayed or missing consent, a recovery the relay failed
  5  a service (Fabric peer, Ethereum node, IPFS, CSP, key service) is unreachable or
     timed out

Passwords: typed at a prompt, piped with --password-stdin, or (for scripts) taken from
MEDCERT_PASSWORD. Never pass one as an argument. Only the hospital's key service checks
and keeps them; after 5 wrong ones in a row (the service's default) the patient is
locked until the hospital's admin runs `medcert patient unlock`.

Configuration: --config FILE or MEDCERT_CONFIG, else ~/.config/medcert/config.toml:
  network = \"path/to/network.json\"   patients_dir = \"dir\"
  [relay] confirmations = 1, request_timeout_s = 60, state_dir = \"dir\"
  [recover] wait_s = 180
Environment overrides the file: MEDCERT_NETWORK, MEDCERT_PATIENTS_DIR,
MEDCERT_RELAY_CONFIRMATIONS, MEDCERT_RELAY_TIMEOUT_S, MEDCERT_RELAY_STATE_DIR,
MEDCERT_RECOVER_WAIT_S; flags override both.";

#[derive(Parser)]
#[command(
    name = "medcert",
    version,
    about = "Delete and recover health records across hospital chains, with the patient's consent",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// Print one JSON object instead of text (and no progress bars).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The network description (default: the one deploy/up wrote).
    #[arg(long, global = true)]
    network: Option<PathBuf>,
    /// The config file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where patient wallets live (default: <run_dir>/patients).
    #[arg(long, global = true)]
    patients_dir: Option<PathBuf>,
    /// More logs on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Start, stop, inspect and bootstrap the local network.
    #[command(subcommand)]
    Network(cmd::network::NetworkCmd),
    /// The cross-chain relay.
    #[command(subcommand)]
    Relay(cmd::relay::RelayCmd),
    /// What a patient does: register, list certificates, consent, delete.
    #[command(subcommand)]
    Patient(cmd::patient::PatientCmd),
    /// What a doctor does: create a record, query one (audited).
    #[command(subcommand)]
    Doctor(cmd::doctor::DoctorCmd),
    /// Records: store, certify, recover, verify.
    #[command(subcommand)]
    Ehr(cmd::ehr::EhrCmd),
    /// The paper's whole story on the running network, step by step.
    Demo(cmd::demo::DemoArgs),
    /// The paper's Figures 4-8 on the running network (the medcert-bench library, in
    /// this process).
    Bench(cmd::bench::BenchCmd),
}

/// The patient's password, from stdin, the environment or a prompt.
#[derive(Args, Clone)]
pub(crate) struct PasswordArgs {
    /// Read the patient's password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    /// Reads the password: stdin with --password-stdin, else MEDCERT_PASSWORD, else a
    /// prompt on a terminal.
    pub(crate) fn read(&self) -> Result<Zeroizing<String>> {
        if self.password_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            return Ok(Zeroizing::new(
                line.trim_end_matches(['\r', '\n']).to_owned(),
            ));
        }
        if let Ok(password) = std::env::var("MEDCERT_PASSWORD") {
            return Ok(Zeroizing::new(password));
        }
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "no password: give --password-stdin with the password on stdin, or set MEDCERT_PASSWORD"
            );
        }
        Ok(Zeroizing::new(
            rpassword::prompt_password("patient's password: ")
                .context("cannot read the password")?,
        ))
    }
}

/// Which of the hospital's doctors acts.
#[derive(Args, Clone, Copy)]
pub(crate) struct DoctorArg {
    /// Which of the hospital's doctors acts (0-based).
    #[arg(long, default_value_t = 0)]
    pub(crate) doctor: usize,
}

/// A doctor seeing a patient at a hospital: what every command that reads or writes the
/// patient's records there asks for, the patient's password included.
#[derive(Args)]
pub(crate) struct VisitArgs {
    /// The hospital.
    #[arg(long)]
    pub(crate) hospital: String,
    /// The patient's treatment number at the hospital.
    #[arg(long)]
    pub(crate) treatment: String,
    #[command(flatten)]
    pub(crate) doctor: DoctorArg,
    #[command(flatten)]
    pub(crate) password: PasswordArgs,
}

/// A patient's record at a hospital, and which of the hospital's doctors handles it.
#[derive(Args)]
pub(crate) struct PatientRecordArgs {
    /// The patient's wallet.
    #[arg(long)]
    pub(crate) patient: String,
    /// The hospital holding the record.
    #[arg(long)]
    pub(crate) hospital: String,
    /// The record's id.
    #[arg(long)]
    pub(crate) record: String,
    #[command(flatten)]
    pub(crate) doctor: DoctorArg,
}

impl PatientRecordArgs {
    /// The request to certify the record for the patient.
    pub(crate) fn certify_request(&self) -> CertifyRequest<'_> {
        CertifyRequest {
            hospital: &self.hospital,
            doctor: self.doctor.doctor,
            record_id: &self.record,
            patient: &self.patient,
        }
    }

    /// The request to delete the record, submitted by the doctor.
    pub(crate) fn delete_request(&self) -> DeleteRequest<'_> {
        DeleteRequest {
            patient: &self.patient,
            hospital: &self.hospital,
            record_id: &self.record,
            submitter: Actor::Doctor(self.doctor.doctor),
        }
    }

    /// The headline of the record's certificate.
    pub(crate) fn certified(&self, certificate: &Certified) -> String {
        format!(
            "record {} has certificate {}",
            self.record, certificate.certificate_id
        )
    }
}

/// What every command reads from the global options and the settings.
pub(crate) struct Context {
    pub(crate) json: bool,
    pub(crate) settings: Settings,
    pub(crate) network_path: PathBuf,
    patients_dir: Option<PathBuf>,
    pub(crate) bars: Bars,
}

impl Context {
    pub(crate) fn new(cli: &Cli) -> Result<Self> {
        let settings = Settings::load(cli.config.as_deref(), &|name| std::env::var(name).ok())?;
        let network_path = cli
            .network
            .clone()
            .or_else(|| settings.network.clone())
            .unwrap_or_else(medcert_network::default_path);
        Ok(Self {
            json: cli.json,
            patients_dir: cli
                .patients_dir
                .clone()
                .or_else(|| settings.patients_dir.clone()),
            settings,
            network_path,
            bars: if cli.json {
                Bars::hidden()
            } else {
                Bars::on_terminal()
            },
        })
    }

    /// The network description.
    pub(crate) fn network(&self) -> Result<Network> {
        Network::load_from(&self.network_path).with_context(|| {
            format!(
                "no usable network description at {}: run `medcert network up`, or give --network",
                self.network_path.display()
            )
        })
    }

    /// Where patient wallets live.
    pub(crate) fn patients_dir(&self, network: &Network) -> PathBuf {
        self.patients_dir
            .clone()
            .unwrap_or_else(|| network.run_dir.join("patients"))
    }

    /// The network description and where its patients' wallets live.
    pub(crate) fn network_and_patients(&self) -> Result<(Network, PathBuf)> {
        let network = self.network()?;
        let patients = self.patients_dir(&network);
        Ok((network, patients))
    }

    /// Prints a command's report (see [`output::print`]).
    pub(crate) fn print(&self, headline: &str, report: &impl Serialize) -> Result<()> {
        output::print(self.json, headline, report)
    }
}
