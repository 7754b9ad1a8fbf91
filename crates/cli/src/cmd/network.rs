//! `medcert network`: the deploy scripts, and the certificate chain's bootstrap.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use medcert_flows::init_network;

use crate::args::Context;

#[derive(Subcommand)]
pub(crate) enum NetworkCmd {
    /// deploy/up, then init.
    Up {
        #[arg(long, default_value_t = 3)]
        hospitals: usize,
    },
    /// deploy/down.
    Down,
    /// deploy/status.
    Status,
    /// Deploy the certificate contract if needed, set the relay, register each hospital
    /// on the contract with its key service's key, and each key service's ticket key on
    /// its hospital's channel (idempotent).
    Init,
}

impl NetworkCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match self {
            NetworkCmd::Up { hospitals } => {
                deploy_script("up", &["--hospitals".into(), hospitals.to_string()]).await?;
                init(ctx).await?;
            }
            NetworkCmd::Down => deploy_script("down", &[]).await?,
            NetworkCmd::Status => deploy_script("status", &[]).await?,
            NetworkCmd::Init => init(ctx).await?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

async fn deploy_script(name: &str, args: &[String]) -> Result<()> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let status = tokio::process::Command::new(&script)
        .args(args)
        .status()
        .await
        .with_context(|| format!("cannot run {}", script.display()))?;
    anyhow::ensure!(status.success(), "deploy/{name} failed ({status})");
    Ok(())
}

async fn init(ctx: &Context) -> Result<()> {
    let mut network = ctx.network()?;
    let report = init_network(&mut network, &ctx.network_path).await?;
    if ctx.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "contract {} ({}); relay {}; registered: [{}]; already registered: [{}]; key \
             services set: [{}]; unchanged: [{}]",
            report.contract_address,
            if report.deployed {
                "deployed now"
            } else {
                "existing"
            },
            if report.relay_set { "set" } else { "unchanged" },
            report.registered.join(", "),
            report.already_registered.join(", "),
            report.key_services_set.join(", "),
            report.key_services_unchanged.join(", ")
        );
    }
    Ok(())
}
