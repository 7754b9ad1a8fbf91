//! The `medcert` command.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medcert_cli::{init_network, verify::VerdictReport, verify_file};
use medcert_network::Network;

const EXIT_CODES: &str = "Exit codes:
  0  success (for `ehr verify`: the record is authentic)
  1  the command failed (the message says what is wrong and what to do)
  2  bad usage (clap)
  3  `ehr verify`: the record is tampered, forged or carries no watermark";

#[derive(Parser)]
#[command(name = "medcert", version, about = "Delete and recover health records with patient consent", after_help = EXIT_CODES)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The network description (default: the one deploy/up wrote).
    #[arg(long, global = true, env = "MEDCERT_NETWORK")]
    network: Option<PathBuf>,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Start, stop, inspect and bootstrap the local network.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Electronic health records.
    #[command(subcommand)]
    Ehr(EhrCmd),
}

#[derive(Subcommand)]
enum NetworkCmd {
    /// deploy/up, then init.
    Up {
        #[arg(long, default_value_t = 3)]
        hospitals: usize,
    },
    /// deploy/down.
    Down,
    /// deploy/status.
    Status,
    /// Deploy the certificate contract if needed, set the relay, create each hospital's
    /// keys and register it on the contract (idempotent).
    Init,
}

#[derive(Subcommand)]
enum EhrCmd {
    /// The watermark verdict for a file.
    Verify { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("medcert: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn network_path(cli: &Cli) -> PathBuf {
    cli.network
        .clone()
        .unwrap_or_else(medcert_network::default_path)
}

fn load(cli: &Cli) -> Result<Network> {
    let path = network_path(cli);
    Network::load_from(&path).with_context(|| {
        format!(
            "no usable network description at {}: run `medcert network up`",
            path.display()
        )
    })
}

fn deploy_script(name: &str, args: &[String]) -> Result<()> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let status = Command::new(&script)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    anyhow::ensure!(status.success(), "deploy/{name} failed ({status})");
    Ok(())
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Top::Network(NetworkCmd::Up { hospitals }) => {
            deploy_script("up", &["--hospitals".into(), hospitals.to_string()])?;
            init(cli)
        }
        Top::Network(NetworkCmd::Down) => deploy_script("down", &[]).map(|()| ExitCode::SUCCESS),
        Top::Network(NetworkCmd::Status) => {
            deploy_script("status", &[]).map(|()| ExitCode::SUCCESS)
        }
        Top::Network(NetworkCmd::Init) => init(cli),
        Top::Ehr(EhrCmd::Verify { file }) => {
            let network = load(cli)?;
            let report = verify_file(&network, file)?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                match &report.verdict {
                    VerdictReport::Authentic {
                        hospital_id,
                        record_id,
                        issued_at,
                    } => println!(
                        "authentic: record {record_id} marked by {hospital_id} at {issued_at}"
                    ),
                    VerdictReport::Tampered {
                        hospital_id,
                        record_id,
                        ..
                    } => println!(
                        "TAMPERED: record {record_id} of {hospital_id} changed after it was marked"
                    ),
                    VerdictReport::Forged {
                        claimed_hospital_id,
                    } => println!(
                        "FORGED: the mark claims {claimed_hospital_id} but is not its signature"
                    ),
                    VerdictReport::Absent => println!("ABSENT: no watermark in this file"),
                }
            }
            Ok(match report.verdict {
                VerdictReport::Authentic { .. } => ExitCode::SUCCESS,
                _ => ExitCode::from(3),
            })
        }
    }
}

fn init(cli: &Cli) -> Result<ExitCode> {
    let path = network_path(cli);
    let mut network = load(cli)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(init_network(&mut network, &path))?;
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "contract {} ({}); relay {}; registered: [{}]; already registered: [{}]",
            report.contract_address,
            if report.deployed {
                "deployed now"
            } else {
                "existing"
            },
            if report.relay_set { "set" } else { "unchanged" },
            report.registered.join(", "),
            report.already_registered.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
