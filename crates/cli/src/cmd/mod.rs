//! One module per command, each with its arguments and its `run`.

pub(crate) mod bench;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod ehr;
pub(crate) mod network;
pub(crate) mod patient;
pub(crate) mod relay;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command, Context};

/// Runs the command `cli` names.
pub(crate) async fn run(cli: &Cli) -> Result<ExitCode> {
    let ctx = Context::new(cli)?;
    match &cli.command {
        Command::Network(command) => command.run(&ctx).await,
        Command::Relay(command) => command.run(&ctx).await,
        Command::Patient(command) => command.run(&ctx).await,
        Command::Doctor(command) => command.run(&ctx).await,
        Command::Ehr(command) => command.run(&ctx).await,
        Command::Demo(args) => args.run(&ctx).await,
        Command::Bench(args) => args.run(&ctx).await,
    }
}
