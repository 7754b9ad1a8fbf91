//! The `medcert` command: parses, runs one command over the flows library, prints its
//! report, and exits with the code of what happened (`medcert --help` lists them).

#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

mod args;
mod cmd;
mod config;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    // Like any Unix filter: a closed stdout (`medcert … | head`) ends the process quietly
    // instead of panicking on the failed write.
    // SAFETY: called first in main, before any thread exists; SIG_DFL is always valid.
    #[allow(unsafe_code)] // the standard library offers no way to reset SIGPIPE
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logs(&cli);
    run(cli)
}

fn init_logs(cli: &Cli) {
    let default = match (cli.verbose, &cli.command) {
        // The benchmark tells its progress in info logs.
        (0, Command::Bench(_)) => "warn,medcert_bench=info",
        (0, _) => "warn",
        (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn run(cli: Cli) -> ExitCode {
    match cmd::run(&cli).await {
        Ok(code) => code,
        Err(error) => output::fail(cli.json, &error),
    }
}
