//! `medcert demo`: the paper's story on the running network, with an in-process relay.
//!
//! Two patients register at two hospitals, whose doctors create and certify a record for
//! each; a wrong password is recorded on the chain, then refused; the first patient
//! deletes their record (the hospital chain says deleted, the CSP object is gone and the
//! hospital's key service has shredded the key), registers at a third hospital, consents
//! to it, and the third hospital recovers the record through the relay, checks it and
//! stores it; a replay of the spent consent is refused; a forged and a tampered record
//! are caught by `ehr verify`. Every step prints its transaction ids, CIDs, verdicts and
//! timings; the first failing step ends the demo.
//!
//! Each hospital's key service holds every key of the hospital: its record keys, its
//! patients' password verifiers, its watermark key. A doctor's client gets a record key
//! only after a committed, audited access on the hospital's chain (the query, the
//! completed recovery), wrapped to a key made for that one access.

mod story;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use medcert_network::Network;
use serde::Serialize;

use crate::args::Context;
use crate::output::one_line;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// How many hospitals take part (at least 3).
    #[arg(long, default_value_t = 3)]
    hospitals: usize,
    /// Size of the generated records in bytes.
    #[arg(long, default_value_t = 50_000)]
    size: u64,
}

impl DemoArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let network = ctx.network()?;
        let options = DemoOptions {
            hospitals: self.hospitals,
            record_size: self.size,
            patients_dir: ctx.patients_dir(&network),
            relay_confirmations: ctx.settings.relay_confirmations,
            relay_timeout: ctx.settings.relay_timeout,
            recover_wait: ctx.settings.recover_wait,
            print_steps: !ctx.json,
        };
        let report = run(&network, &options).await?;
        if ctx.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        Ok(if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

/// How the demo runs.
struct DemoOptions {
    /// Hospitals taking part (at least 3); the story uses the first two and the last.
    hospitals: usize,
    record_size: u64,
    /// Where the demo's patients keep their wallets.
    patients_dir: PathBuf,
    relay_confirmations: usize,
    relay_timeout: Duration,
    recover_wait: Duration,
    /// Print each step as it ends.
    print_steps: bool,
}

#[derive(Debug, Serialize)]
struct DemoStep {
    step: usize,
    title: String,
    ok: bool,
    ms: f64,
    /// What the step did, in order: transaction ids, CIDs, verdicts.
    details: Vec<(String, String)>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DemoReport {
    passed: bool,
    hospitals: Vec<String>,
    steps: Vec<DemoStep>,
    total_ms: f64,
}

type Details = Vec<(String, String)>;

fn details<const N: usize>(pairs: [(&str, String); N]) -> Details {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The steps so far, printed as they end.
struct Steps {
    steps: Vec<DemoStep>,
    print: bool,
}

impl Steps {
    /// Runs one step; `None` when it failed (the demo stops there).
    async fn run<T>(
        &mut self,
        title: &str,
        step: impl Future<Output = Result<(T, Details)>>,
    ) -> Option<T> {
        let started = Instant::now();
        let outcome = step.await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let number = self.steps.len() + 1;
        let (value, details, error) = match outcome {
            Ok((value, details)) => (Some(value), details, None),
            Err(e) => (None, Details::new(), Some(one_line(e.as_ref()))),
        };
        if self.print {
            let verdict = if error.is_none() { "ok" } else { "FAILED" };
            println!("[{number:>2}] {title} … {verdict} ({ms:.0} ms)");
            for (key, value) in &details {
                println!("       {key}: {value}");
            }
            if let Some(error) = &error {
                println!("       error: {error}");
            }
        }
        self.steps.push(DemoStep {
            step: number,
            title: title.to_owned(),
            ok: error.is_none(),
            ms,
            details,
            error,
        });
        value
    }
}

/// Runs the story; the report says which steps passed.
async fn run(network: &Network, options: &DemoOptions) -> Result<DemoReport> {
    let available = network.fabric.hospitals.len();
    anyhow::ensure!(
        (3..=available).contains(&options.hospitals),
        "the demo takes 3 to {available} hospitals on this network, not {}; give --hospitals \
         in that range (a network needs 3 or more: `medcert network up --hospitals 3`)",
        options.hospitals
    );
    let chosen = &network.fabric.hospitals[..options.hospitals];
    let started = Instant::now();

    // Kept after the run, so its files can be checked again with `medcert ehr verify`.
    let scratch = network.run_dir.join("demo").join(format!(
        "{}-{:04x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        rand::random::<u16>()
    ));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot make the demo's directory {}", scratch.display()))?;
    let mut relay_config = medcert_relay::RelayConfig::new(network.clone(), scratch.join("relay"));
    relay_config.confirmations = options.relay_confirmations;
    relay_config.request_timeout = options.relay_timeout;
    relay_config.only_hospitals = Some(chosen.iter().map(|h| h.id.clone()).collect());
    let relay = medcert_relay::Relay::start(relay_config)
        .await
        .context("cannot start the relay")?;

    let mut steps = Steps {
        steps: Vec::new(),
        print: options.print_steps,
    };
    if options.print_steps {
        println!(
            "medcert demo: {} hospitals ({}), relay in-process, files in {}",
            chosen.len(),
            chosen
                .iter()
                .map(|h| h.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            scratch.display()
        );
        println!(
            "each hospital's key service holds every key it has; a doctor gets a record key \
             only after a committed, audited access"
        );
    }
    let story = story::Story::new(network, options, scratch, chosen);
    story.tell(&mut steps).await;
    relay.shutdown().await;
    let passed = steps.steps.iter().all(|s| s.ok) && !steps.steps.is_empty();
    if options.print_steps {
        println!(
            "demo {} in {:.1} s",
            if passed { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(DemoReport {
        passed,
        hospitals: chosen.iter().map(|h| h.id.clone()).collect(),
        steps: steps.steps,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}
