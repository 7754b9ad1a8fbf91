//! Marks or checks an XML record from the command line:
//!
//! ```text
//! MEDCERT_WATERMARK_KEY=<64 hex digits> cargo run -p medcert-watermark --example watermark -- \
//!     embed <in.xml> <out.xml> <hospital-id> <record-id>
//! MEDCERT_WATERMARK_KEY=<64 hex digits> cargo run -p medcert-watermark --example watermark -- \
//!     verify <in.xml>
//! ```
//!
//! The key is the hospital's Ed25519 secret key; `verify` derives the verifying key from it.

#![allow(unused_crate_dependencies)] // an example links every dependency of its package

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::time::{SystemTime, UNIX_EPOCH};

use medcert_watermark::{Mark, SigningKey, Verdict, embed, verify};
use zeroize::Zeroizing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secret = Zeroizing::new(
        std::env::var("MEDCERT_WATERMARK_KEY")
            .map_err(|_| "set MEDCERT_WATERMARK_KEY to the hospital's key, 64 hex digits")?,
    );
    let secret = Zeroizing::new(hex::decode(secret.trim())?);
    let key =
        SigningKey::try_from(&secret[..]).map_err(|_| "MEDCERT_WATERMARK_KEY must be 32 bytes")?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["embed", input, output, hospital_id, record_id] => {
            let mut source = BufReader::with_capacity(256 * 1024, File::open(input)?);
            let out = BufWriter::new(File::create(output)?);
            let issued_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let mark = Mark {
                hospital_id,
                record_id,
                issued_at,
            };
            let report = embed(&mut source, out, &mark, &key)?;
            println!(
                "marked: {} copies, {} of {} carrier bits\ncontent fingerprint:   {}\nwatermark fingerprint: {}",
                report.copies,
                report.used_bits,
                report.available_bits,
                hex::encode(report.content_fingerprint),
                hex::encode(report.watermark_fingerprint)
            );
        }
        ["verify", input] => {
            let source = BufReader::with_capacity(256 * 1024, File::open(input)?);
            let verifying_key = key.verifying_key();
            let verification = verify(source, |_| Some(verifying_key))?;
            match verification.verdict {
                Verdict::Authentic {
                    hospital_id,
                    record_id,
                    issued_at,
                    signer,
                } => println!(
                    "authentic: hospital {hospital_id}, record {record_id}, issued at {issued_at}, \
                     signer {}",
                    hex::encode(signer.as_bytes())
                ),
                other => println!("{other:?}"),
            }
            println!(
                "content fingerprint: {}",
                hex::encode(verification.content_fingerprint)
            );
        }
        _ => {
            return Err(
                "usage: watermark embed <in> <out> <hospital-id> <record-id> | verify <in>".into(),
            );
        }
    }
    Ok(())
}
