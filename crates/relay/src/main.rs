//! `medcert-relay`: run the relay, or inspect and clear frozen chains in its store.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "medcert's cross-chain relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every hospital channel until interrupted.
    Run,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run => anyhow::bail!("not yet implemented"),
    }
}
