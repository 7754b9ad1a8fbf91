//! `medcert bench`: the paper's Figures 4-8, measured by the medcert-bench library in
//! this process, with medcert-bench's own arguments.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser};
use medcert_bench::BenchArgs;

use crate::args::Context;

#[derive(Args)]
pub(crate) struct BenchCmd {
    /// Arguments of medcert-bench, e.g. `--figure fig5 --rounds 10` or `-- --help`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// medcert-bench's command line, parsed here as it would be by its binary.
#[derive(Parser)]
#[command(
    name = "medcert bench",
    about = "Benchmarks of the paper's Figures 4-8, with the services' floors"
)]
struct BenchLine {
    #[command(flatten)]
    bench: BenchArgs,
}

impl BenchCmd {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let line = match BenchLine::try_parse_from(
            std::iter::once("medcert bench").chain(self.args.iter().map(String::as_str)),
        ) {
            Ok(line) => line,
            // --help and bad usage print and exit as the benchmark's own binary does.
            Err(error) => error.exit(),
        };
        let network = ctx.network()?;
        let summary = medcert_bench::run(&network, &line.bench).await?;
        println!("{}", summary.to_markdown());
        for file in &summary.files {
            println!("wrote {}", file.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}
