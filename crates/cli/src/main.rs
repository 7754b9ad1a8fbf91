//! The `medcert` command: parses, runs one flow of the library, prints its report.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use medcert_cli::config::{Settings, parse_duration};
use medcert_cli::verify::VerdictReport;
use medcert_cli::{
    Actor, CertifyRequest, ConsentRequest, CreateRequest, DeleteRequest, FlowError, Progress,
    QueryRequest, RecoverRequest, RegisterRequest, StoreFlowRequest, demo, init_network,
};
use medcert_network::Network;
use serde::Serialize;
use zeroize::Zeroizing;

const AFTER_HELP: &str = "Exit codes:
  0  success (for `ehr verify` and `doctor query --out`: the record is authentic)
  1  the command failed; the message says what is wrong and what to do
  2  bad usage
  3  not authentic: a watermark or fingerprint is not the issuing hospital's
     (tampered, forged, absent), so nothing was stored
  4  refused by a chain: wrong password, unknown patient or record, expired, replayed
     or missing consent, a recovery the relay failed
  5  a service (Fabric peer, Ethereum node, IPFS, CSP) is unreachable or timed out

Passwords: typed at a prompt, piped with --password-stdin, or (for scripts) taken from
MEDCERT_PASSWORD. Never pass one as an argument.

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
struct Cli {
    /// Print one JSON object instead of text (and no progress bars).
    #[arg(long, global = true)]
    json: bool,
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
    verbose: u8,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Start, stop, inspect and bootstrap the local network.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// The cross-chain relay.
    #[command(subcommand)]
    Relay(RelayCmd),
    /// What a patient does: register, list certificates, consent, delete.
    #[command(subcommand)]
    Patient(PatientCmd),
    /// What a doctor does: create a record, query one (audited).
    #[command(subcommand)]
    Doctor(DoctorCmd),
    /// Records: store, certify, recover, verify.
    #[command(subcommand)]
    Ehr(EhrCmd),
    /// The paper's whole story on the running network, step by step.
    Demo(DemoArgs),
    /// The paper's Figures 4-8 on the running network: runs `medcert-bench` (built beside
    /// `medcert` by `cargo build --release -p medcert-bench`) with these arguments.
    Bench {
        /// Arguments for medcert-bench, e.g. `--figure fig5 --rounds 10` or `-- --help`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
enum RelayCmd {
    /// Run the relay for every hospital until Ctrl-C.
    Run {
        /// The relay's durable state (default: <run_dir>/relay-cli).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Serve Prometheus metrics here (loopback), e.g. 127.0.0.1:9898.
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
}

#[derive(Args, Clone)]
struct PasswordArgs {
    /// Read the patient's password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args, Clone, Copy)]
struct DoctorArg {
    /// Which of the hospital's doctors acts (0-based).
    #[arg(long, default_value_t = 0)]
    doctor: usize,
}

#[derive(Subcommand)]
enum PatientCmd {
    /// Create the patient's wallet (if new) and register them at a hospital.
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
}

#[derive(Subcommand)]
enum DoctorCmd {
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

#[derive(Subcommand)]
enum EhrCmd {
    /// Store a C-CDA document: watermark → encrypt → CSP + hospital chain (+ IPFS and
    /// certificate with --certify).
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
    /// The watermark verdict for a file.
    Verify { file: PathBuf },
}

#[derive(Args)]
struct DemoArgs {
    /// How many hospitals take part (at least 3).
    #[arg(long, default_value_t = 3)]
    hospitals: usize,
    /// Size of the generated records in bytes.
    #[arg(long, default_value_t = 50_000)]
    size: u64,
}

fn main() -> ExitCode {
    // Like any Unix filter: a closed stdout (`medcert … | head`) ends the process quietly
    // instead of panicking on the failed write.
    // SAFETY: called first in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logs(cli.verbose);
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            let code = error
                .chain()
                .find_map(|e| e.downcast_ref::<FlowError>())
                .map(|e| e.kind().exit_code())
                .unwrap_or(1);
            let message = format!("{error:#}").replace('\n', " ");
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "error": message, "exit_code": code })
                );
            } else {
                eprintln!("medcert: {message}");
            }
            ExitCode::from(code)
        }
    }
}

fn init_logs(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

struct Context_ {
    settings: Settings,
    network_path: PathBuf,
    progress: Progress,
}

impl Context_ {
    fn new(cli: &Cli) -> Result<Self> {
        let settings = Settings::load(cli.config.as_deref(), &|name| std::env::var(name).ok())?;
        let network_path = cli
            .network
            .clone()
            .or_else(|| settings.network.clone())
            .unwrap_or_else(medcert_network::default_path);
        let progress = if cli.json {
            Progress::hidden()
        } else {
            Progress::on_terminal()
        };
        Ok(Self {
            settings,
            network_path,
            progress,
        })
    }

    fn network(&self) -> Result<Network> {
        Network::load_from(&self.network_path).with_context(|| {
            format!(
                "no usable network description at {}: run `medcert network up`, or give --network",
                self.network_path.display()
            )
        })
    }

    fn patients_dir(&self, cli: &Cli, network: &Network) -> PathBuf {
        cli.patients_dir
            .clone()
            .or_else(|| self.settings.patients_dir.clone())
            .unwrap_or_else(|| network.run_dir.join("patients"))
    }
}

fn password(args: &PasswordArgs) -> Result<Zeroizing<String>> {
    if args.password_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
        return Ok(trimmed);
    }
    if let Ok(password) = std::env::var("MEDCERT_PASSWORD") {
        return Ok(Zeroizing::new(password));
    }
    if !std::io::stdin().is_terminal() {
        return Err(FlowError::Input(
            "no password: give --password-stdin with the password on stdin, or set MEDCERT_PASSWORD"
                .into(),
        )
        .into());
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password("patient's password: ").context("cannot read the password")?,
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Runtime::new()?)
}

/// Prints a report: JSON, or a headline and the report's fields as indented lines.
fn print(json: bool, headline: &str, report: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(report)?;
    if json {
        println!("{value}");
    } else {
        println!("{headline}");
        print_value(&value, 1);
    }
    Ok(())
}

fn print_value(value: &serde_json::Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(inner) if !inner.is_empty() => {
                        println!("{indent}{key}:");
                        print_value(value, depth + 1);
                    }
                    serde_json::Value::Array(items)
                        if items.iter().any(serde_json::Value::is_object) =>
                    {
                        println!("{indent}{key}:");
                        for item in items {
                            println!("{indent}  -");
                            print_value(item, depth + 2);
                        }
                    }
                    serde_json::Value::Null => {}
                    other => println!("{indent}{key}: {}", scalar(other)),
                }
            }
        }
        other => println!("{indent}{}", scalar(other)),
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let ctx = Context_::new(cli)?;
    let ok = Ok(ExitCode::SUCCESS);
    match &cli.command {
        Top::Network(NetworkCmd::Up { hospitals }) => {
            deploy_script("up", &["--hospitals".into(), hospitals.to_string()])?;
            init(cli, &ctx)
        }
        Top::Network(NetworkCmd::Down) => deploy_script("down", &[]).map(|()| ExitCode::SUCCESS),
        Top::Network(NetworkCmd::Status) => {
            deploy_script("status", &[]).map(|()| ExitCode::SUCCESS)
        }
        Top::Network(NetworkCmd::Init) => init(cli, &ctx),
        Top::Relay(RelayCmd::Run { state_dir, metrics }) => {
            let network = ctx.network()?;
            let state_dir = state_dir
                .clone()
                .or_else(|| ctx.settings.relay_state_dir.clone())
                .unwrap_or_else(|| network.run_dir.join("relay-cli"));
            let mut config = medcert_relay::RelayConfig::new(network, state_dir.clone());
            config.confirmations = ctx.settings.relay_confirmations;
            config.request_timeout = ctx.settings.relay_timeout;
            config.metrics_addr = *metrics;
            runtime()?.block_on(async {
                let handle = medcert_relay::Relay::start(config)
                    .await
                    .context("cannot start the relay")?;
                if !cli.json {
                    eprintln!(
                        "relay running (state in {}); Ctrl-C stops it",
                        state_dir.display()
                    );
                }
                tokio::signal::ctrl_c()
                    .await
                    .context("cannot wait for Ctrl-C")?;
                handle.shutdown().await;
                anyhow::Ok(())
            })?;
            ok
        }
        Top::Patient(command) => patient(cli, &ctx, command),
        Top::Doctor(command) => doctor(cli, &ctx, command),
        Top::Ehr(command) => ehr(cli, &ctx, command),
        // The benchmark crate depends on this one's flows, so it runs as its own binary.
        Top::Bench { args } => {
            let bench = std::env::current_exe()?.with_file_name("medcert-bench");
            let mut command = Command::new(&bench);
            command.args(args);
            if let Some(network) = &cli.network {
                command.env("MEDCERT_NETWORK", network);
            }
            let status = command.status().with_context(|| {
                format!(
                    "cannot run {}; build it with `cargo build --release -p medcert-bench`",
                    bench.display()
                )
            })?;
            Ok(ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ))
        }
        Top::Demo(args) => {
            let network = ctx.network()?;
            let options = demo::DemoOptions {
                hospitals: args.hospitals,
                record_size: args.size,
                patients_dir: ctx.patients_dir(cli, &network),
                relay_confirmations: ctx.settings.relay_confirmations,
                relay_timeout: ctx.settings.relay_timeout,
                recover_wait: ctx.settings.recover_wait,
                print_steps: !cli.json,
            };
            let report = runtime()?.block_on(demo::run(&network, &options))?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn patient(cli: &Cli, ctx: &Context_, command: &PatientCmd) -> Result<ExitCode> {
    let network = ctx.network()?;
    let patients = ctx.patients_dir(cli, &network);
    let rt = runtime()?;
    match command {
        PatientCmd::Register {
            patient,
            hospital,
            treatment,
            id_number,
            doctor,
            password: password_args,
        } => {
            let password = password(password_args)?;
            let request = RegisterRequest {
                patient,
                hospital,
                doctor: doctor.doctor,
                treatment_number: treatment.as_deref(),
                id_number,
                password: &password,
            };
            let report =
                rt.block_on(medcert_cli::register_patient(&network, &patients, &request))?;
            print(
                cli.json,
                &format!(
                    "registered {} at {} as {}",
                    report.patient, report.hospital, report.treatment_number
                ),
                &report,
            )?;
        }
        PatientCmd::Certificates { patient } => {
            let report =
                rt.block_on(medcert_cli::list_certificates(&network, &patients, patient))?;
            print(
                cli.json,
                &format!(
                    "{} has {} certificate(s)",
                    report.patient,
                    report.certificates.len()
                ),
                &report,
            )?;
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
            let report = rt.block_on(medcert_cli::sign_consent(&network, &patients, &request))?;
            print(
                cli.json,
                &format!(
                    "consent for {} to recover certificate {} written to {}",
                    report.consent.hospital,
                    report.consent.certificate_id,
                    report.path.display()
                ),
                &report,
            )?;
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
            let report = rt.block_on(medcert_cli::delete_record(&network, &patients, &request))?;
            print(
                cli.json,
                &format!(
                    "record {} deleted from {}",
                    report.record_id, report.hospital
                ),
                &report,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn doctor(cli: &Cli, ctx: &Context_, command: &DoctorCmd) -> Result<ExitCode> {
    let network = ctx.network()?;
    let patients = ctx.patients_dir(cli, &network);
    let rt = runtime()?;
    match command {
        DoctorCmd::Create {
            hospital,
            treatment,
            record,
            size,
            certify,
            keep,
            doctor,
            password: password_args,
        } => {
            let password = password(password_args)?;
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
            let report = rt.block_on(medcert_cli::create_record(
                &network,
                &patients,
                &request,
                &ctx.progress,
            ))?;
            print(
                cli.json,
                &format!(
                    "record {} created and stored at {}",
                    report.stored.record_id, report.hospital
                ),
                &report,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        DoctorCmd::Query {
            hospital,
            treatment,
            record,
            out,
            doctor,
            password: password_args,
        } => {
            let password = password(password_args)?;
            let request = QueryRequest {
                hospital,
                doctor: doctor.doctor,
                treatment_number: treatment,
                record_id: record,
                password: &password,
                out: out.as_deref(),
            };
            let report =
                rt.block_on(medcert_cli::query_record(&network, &request, &ctx.progress))?;
            let authentic = report.retrieved.as_ref().is_none_or(|r| r.authentic());
            print(
                cli.json,
                &format!(
                    "record {} at {} (query audited in {})",
                    report.record.record_id, report.hospital, report.tx_id
                ),
                &report,
            )?;
            Ok(if authentic {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

fn ehr(cli: &Cli, ctx: &Context_, command: &EhrCmd) -> Result<ExitCode> {
    let network = ctx.network()?;
    let patients = ctx.patients_dir(cli, &network);
    match command {
        EhrCmd::Store {
            hospital,
            treatment,
            file,
            record,
            certify,
            doctor,
            password: password_args,
        } => {
            let password = password(password_args)?;
            let request = StoreFlowRequest {
                hospital,
                doctor: doctor.doctor,
                treatment_number: treatment,
                record_id: record.as_deref(),
                source: file,
                password: &password,
                certify_for: certify.as_deref(),
            };
            let report = runtime()?.block_on(medcert_cli::store(
                &network,
                &patients,
                &request,
                &ctx.progress,
            ))?;
            print(
                cli.json,
                &format!(
                    "record {} stored at {}",
                    report.stored.record_id, report.hospital
                ),
                &report,
            )?;
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
            let report = runtime()?.block_on(medcert_cli::certify_record(
                &network,
                &patients,
                &request,
                &ctx.progress,
            ))?;
            print(
                cli.json,
                &format!("record {record} has certificate {}", report.certificate_id),
                &report,
            )?;
        }
        EhrCmd::Recover {
            hospital,
            treatment,
            consent,
            record,
            resume,
            out,
            doctor,
            password: password_args,
        } => {
            let password = password(password_args)?;
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
            let report =
                runtime()?.block_on(medcert_cli::recover(&network, &request, &ctx.progress))?;
            print(
                cli.json,
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
        EhrCmd::Verify { file } => return verify(cli, &network, file),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(cli: &Cli, network: &Network, file: &Path) -> Result<ExitCode> {
    let report = medcert_cli::verify_file(network, file)?;
    if cli.json {
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
        _ => ExitCode::from(3),
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

fn init(cli: &Cli, ctx: &Context_) -> Result<ExitCode> {
    let mut network = ctx.network()?;
    let report = runtime()?.block_on(init_network(&mut network, &ctx.network_path))?;
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
