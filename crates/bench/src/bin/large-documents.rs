//! Flat memory for any document: a 1 GB Unstructured Document (one base64 text node)
//! and a document whose one text node is 1 GB of newlines, each taken through the
//! `medcert` binary as a hospital runs it — `ehr store`, `doctor query` (retrieve,
//! decrypt, verify) and `ehr verify` — on the running network, printing each command's
//! time, throughput and peak resident memory (target: under 64 MiB each).
//!
//! Peak memory is the child's `VmHWM` (its high-water mark, which only grows), read from
//! `/proc` every few milliseconds while it runs.
//!
//!     cargo build --release -p medcert-cli
//!     cargo run --release -p medcert-bench --bin large-documents -- [--size BYTES]

#![allow(unused_crate_dependencies)] // a binary links every dependency of its package

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use medcert_ccda::{DocumentType, GeneratorConfig, generate_document};

#[derive(Parser)]
struct Args {
    /// Size of each document in bytes.
    #[arg(long, default_value_t = 1_000_000_000)]
    size: u64,
    /// The medcert binary to run.
    #[arg(long, default_value = "target/release/medcert")]
    medcert: PathBuf,
    /// Hospital that stores the records.
    #[arg(long, default_value = "hospital1")]
    hospital: String,
    /// Where the documents are written (needs room for four of them).
    #[arg(long)]
    scratch: Option<PathBuf>,
}

const TARGET_RSS_MIB: f64 = 64.0;

struct Measured {
    /// The exit code: `ehr verify` exits 3 for a file that is not authentic by its mark.
    code: Option<i32>,
    seconds: f64,
    peak_rss_mib: f64,
    stdout: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scratch = match &args.scratch {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let patients = scratch.path().join("patients");
    let password = format!("large-{}", std::process::id());
    let run = |command: &[&str]| measure(&args.medcert, &patients, &password, command);

    let registered = run(&[
        "--json",
        "patient",
        "register",
        "--patient",
        &format!("large-{}", std::process::id()),
        "--hospital",
        &args.hospital,
        "--id-number",
        "LARGE-1",
    ])?;
    succeeded("patient register", &registered)?;
    let treatment = json(&registered.stdout)?["treatment_number"]
        .as_str()
        .context("register printed no treatment number")?
        .to_owned();

    println!(
        "| document | bytes | command | seconds | MB/s | peak RSS (MiB) | under {TARGET_RSS_MIB} MiB |"
    );
    println!("|---|---:|---|---:|---:|---:|---|");
    let documents = [
        (
            "unstructured, one base64 node",
            unstructured(scratch.path(), args.size)?,
        ),
        ("one node of newlines", newlines(scratch.path(), args.size)?),
    ];
    for (name, path) in documents {
        let bytes = std::fs::metadata(&path)?.len();
        let report = |command: &str, measured: &Measured| {
            let verdict = if measured.peak_rss_mib < TARGET_RSS_MIB {
                "met"
            } else {
                "missed"
            };
            println!(
                "| {name} | {bytes} | {command} | {:.1} | {:.0} | {:.1} | {verdict} |",
                measured.seconds,
                bytes as f64 / 1e6 / measured.seconds,
                measured.peak_rss_mib,
            );
        };
        let stored = run(&[
            "--json",
            "ehr",
            "store",
            "--hospital",
            &args.hospital,
            "--treatment",
            &treatment,
            "--file",
            path.to_str().context("a UTF-8 scratch path")?,
        ])?;
        report("ehr store", &stored);
        succeeded("ehr store", &stored)?;
        let record = json(&stored.stdout)?["record_id"]
            .as_str()
            .context("store printed no record id")?
            .to_owned();
        std::fs::remove_file(&path)?;

        let copy = scratch.path().join("copy.xml");
        let copy_path = copy.to_str().context("a UTF-8 scratch path")?;
        let queried = run(&[
            "--json",
            "doctor",
            "query",
            "--hospital",
            &args.hospital,
            "--treatment",
            &treatment,
            "--record",
            &record,
            "--out",
            copy_path,
        ])?;
        report("doctor query", &queried);
        succeeded("doctor query", &queried)?;
        if json(&queried.stdout)?["retrieved"]["fingerprint_matches"] != true {
            bail!("{name}: the retrieved copy is not the anchored content");
        }
        let verified = run(&["--json", "ehr", "verify", copy_path])?;
        report("ehr verify", &verified);
        // A header alone is too small for the mark: such a record is stored unmarked and
        // relies on its anchored fingerprint, so its copy reads as absent.
        let verdict = json(&verified.stdout)?["verdict"].clone();
        if verdict != "authentic" && verdict != "absent" {
            bail!("{name}: the retrieved copy verifies as {verdict}");
        }
        println!("|  |  | verdict: {verdict} |  |  |  |  |");
        std::fs::remove_file(&copy)?;
    }
    Ok(())
}

fn succeeded(command: &str, measured: &Measured) -> Result<()> {
    if measured.code != Some(0) {
        bail!(
            "{command} exited with {:?}: {}",
            measured.code,
            measured.stdout
        );
    }
    Ok(())
}

fn json(stdout: &str) -> Result<serde_json::Value> {
    serde_json::from_str(stdout).with_context(|| format!("medcert printed no JSON: {stdout}"))
}

/// Runs medcert to its end, reading its peak resident memory while it runs.
fn measure(medcert: &Path, patients: &Path, password: &str, args: &[&str]) -> Result<Measured> {
    let output = tempfile::NamedTempFile::new()?;
    let errors = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut child = Command::new(medcert)
        .arg("--patients-dir")
        .arg(patients)
        .args(args)
        .env("MEDCERT_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(output.reopen()?)
        .stderr(errors.reopen()?)
        .spawn()
        .with_context(|| format!("running {}", medcert.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0_u64;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|status| high_water_mark_kib(&status))
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    if !matches!(status.code(), Some(0 | 3)) {
        bail!(
            "medcert {} failed: {}",
            args.join(" "),
            std::fs::read_to_string(errors.path())?.trim()
        );
    }
    Ok(Measured {
        code: status.code(),
        seconds,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        stdout: std::fs::read_to_string(output.path())?,
    })
}

fn high_water_mark_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn config(size: u64) -> GeneratorConfig {
    GeneratorConfig {
        seed: 1,
        target_size: size,
        patient_id: "LARGE-1".into(),
        hospital: "Large Documents Hospital".into(),
    }
}

fn unstructured(dir: &Path, size: u64) -> Result<PathBuf> {
    let path = dir.join("unstructured.xml");
    generate_document(
        &config(size),
        DocumentType::UnstructuredDocument,
        File::create(&path)?,
    )?;
    Ok(path)
}

/// An Unstructured Document whose text is `size` bytes of newlines: the generator's
/// header around one text node with no other character.
fn newlines(dir: &Path, size: u64) -> Result<PathBuf> {
    let mut small = Vec::new();
    generate_document(&config(0), DocumentType::UnstructuredDocument, &mut small)?;
    let small = String::from_utf8(small)?;
    let open = r#"<text mediaType="text/plain">"#;
    let (header, _) = small
        .split_once("<text ")
        .context("the generator's nonXMLBody text")?;
    let (_, closing) = small.split_once("</text>").context("the text's end")?;
    let path = dir.join("newlines.xml");
    let mut out = BufWriter::new(File::create(&path)?);
    out.write_all(header.as_bytes())?;
    out.write_all(open.as_bytes())?;
    let block = vec![b'\n'; 1 << 20];
    let mut left = size.saturating_sub((header.len() + open.len() + closing.len() + 7) as u64);
    while left > 0 {
        let take = left.min(block.len() as u64) as usize;
        out.write_all(&block[..take])?;
        left -= take as u64;
    }
    out.write_all(b"</text>")?;
    out.write_all(closing.as_bytes())?;
    out.flush()?;
    Ok(path)
}
