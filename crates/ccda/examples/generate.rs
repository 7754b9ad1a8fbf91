//! Writes a generated C-CDA document to standard output:
//! `cargo run -p medcert-ccda --example generate -- <size-bytes> [seed]`.

#![allow(unused_crate_dependencies)] // an example links every dependency of its package

use std::io::Write;

use medcert_ccda::{GeneratorConfig, generate};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let target_size = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let config = GeneratorConfig {
        seed,
        target_size,
        patient_id: "MTN-0001".into(),
        hospital: "Example General Hospital".into(),
    };
    let stdout = std::io::stdout().lock();
    let written = generate(&config, stdout)?;
    writeln!(std::io::stderr(), "wrote {written} bytes")
}
