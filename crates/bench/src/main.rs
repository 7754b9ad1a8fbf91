//! `medcert-bench`: the paper's Figures 4–8 on the running network.
//!
//!     cargo run --release -p medcert-bench -- [--figure fig4 ...] [--quick] [--out results]

#![allow(unused_crate_dependencies)] // the binary links every dependency of its library

use clap::Parser;
use medcert_bench::BenchArgs;
use medcert_network::Network;

#[derive(Debug, Parser)]
#[command(
    name = "medcert-bench",
    about = "Benchmarks of the paper's Figures 4-8, with the services' floors"
)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "medcert_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let network = Network::load()?;
    let summary = medcert_bench::run(&network, &cli.bench).await?;
    println!("{}", summary.to_markdown());
    for file in &summary.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}
