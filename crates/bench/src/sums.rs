//! The floors of medcert's operations and of their steps: every commit, transaction,
//! round trip and pass over the bytes each must take, as the flows do them
//! (crates/flows: store.rs, certify.rs, query.rs, recover.rs, agent.rs), summed from the
//! floors measured in the same run.

use crate::floors::{FixedFloors, Part, SizeFloors};

/// One part an operation takes, how often, and what for.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The floor it cannot beat.
    pub part: Part,
    /// How many times the operation takes it.
    pub count: u32,
    /// What it is in the flow.
    pub why: &'static str,
}

const fn step(part: Part, count: u32, why: &'static str) -> Step {
    Step { part, count, why }
}

/// `ehr store --certify` (Figure 4's store).
pub const STORE: &[Step] = &[
    step(
        Part::KeyService,
        1,
        "password check for CreateRecord's ticket",
    ),
    step(Part::PasswordHash, 1, "its Argon2id check"),
    step(Part::KeyService, 1, "SignWatermark"),
    step(Part::WatermarkEmbed, 1, "watermark embedding"),
    step(Part::AesEncrypt, 1, "encryption with Hash C"),
    step(Part::S3Put, 1, "CSP put"),
    step(Part::Sha3, 1, "the CSP adapter's Hash C check"),
    step(Part::KeyService, 1, "DepositKey"),
    step(Part::FabricCommit, 1, "CreateRecord"),
    step(Part::KeyService, 1, "WrapForPatient"),
    step(Part::IpfsAdd, 1, "IPFS add of the envelope"),
    step(Part::AnvilTx, 1, "issueCertificate"),
];

/// `doctor query --out` (Figure 4's retrieve).
pub const RETRIEVE: &[Step] = &[
    step(
        Part::KeyService,
        1,
        "password check for QueryRecord's ticket",
    ),
    step(Part::PasswordHash, 1, "its Argon2id check"),
    step(Part::FabricCommit, 1, "QueryRecord"),
    step(Part::S3Get, 1, "CSP get"),
    step(Part::Sha3, 1, "the CSP adapter's Hash C check"),
    step(Part::KeyService, 1, "ReleaseKey"),
    step(Part::AesDecrypt, 1, "decryption"),
    step(Part::WatermarkCheck, 1, "watermark and fingerprint check"),
];

/// A recovery as Figures 5 and 6 time it: request → verified plaintext at the hospital,
/// without storing it again.
pub const RECOVERY: &[Step] = &[
    step(
        Part::KeyService,
        1,
        "password check for RequestRecovery's ticket",
    ),
    step(Part::PasswordHash, 1, "its Argon2id check"),
    step(Part::FabricCommit, 1, "RequestRecovery"),
    step(Part::AnvilTx, 1, "the relay's serveRecovery"),
    step(Part::FabricCommit, 1, "the relay's CompleteRecovery"),
    step(Part::IpfsCat, 1, "IPFS cat of the envelope"),
    step(Part::AnvilTx, 1, "the patient agent's releaseKey"),
    step(Part::KeyService, 1, "ReleaseKey"),
    step(Part::AesDecrypt, 1, "decryption"),
    step(
        Part::WatermarkCheck,
        1,
        "watermark check with its SHA3-256 content fingerprint",
    ),
];

/// Storing the recovered record again at the hospital (`recovery.store_again`; Figures 7
/// and 8 include it, as `ehr recover` does). Its CreateRecord ticket came with the
/// recovery's one password check.
pub const STORE_AGAIN: &[Step] = &[
    step(Part::AesEncrypt, 1, "encryption with Hash C"),
    step(Part::S3Put, 1, "CSP put"),
    step(Part::Sha3, 1, "the CSP adapter's Hash C check"),
    step(Part::KeyService, 1, "DepositKey"),
    step(Part::FabricCommit, 1, "CreateRecord"),
];

/// The floors of the steps the figures time, by the step's name in fig4.csv / fig5.csv.
pub fn of_step(operation: &str) -> &'static [Step] {
    match operation {
        "store" => STORE,
        "store.watermark" => {
            const {
                &[
                    step(Part::KeyService, 1, "SignWatermark"),
                    step(Part::WatermarkEmbed, 1, "watermark embedding"),
                ]
            }
        }
        "store.encrypt" => const { &[step(Part::AesEncrypt, 1, "encryption with Hash C")] },
        "store.csp_put" => {
            const {
                &[
                    step(Part::S3Put, 1, "CSP put"),
                    step(Part::Sha3, 1, "the CSP adapter's Hash C check"),
                ]
            }
        }
        "store.create_record" | "retrieve.query_record" => {
            const { &[step(Part::FabricCommit, 1, "the transaction")] }
        }
        "recovery.request" => {
            const {
                &[
                    step(
                        Part::KeyService,
                        1,
                        "password check for RequestRecovery's ticket",
                    ),
                    step(Part::PasswordHash, 1, "its Argon2id check"),
                    step(Part::FabricCommit, 1, "RequestRecovery"),
                ]
            }
        }
        "store.ipfs_add" => const { &[step(Part::IpfsAdd, 1, "IPFS add")] },
        "store.issue_certificate" | "baseline.grant" => {
            const { &[step(Part::AnvilTx, 1, "the transaction")] }
        }
        "retrieve" => RETRIEVE,
        "retrieve.csp_get" => {
            const {
                &[
                    step(Part::S3Get, 1, "CSP get"),
                    step(Part::Sha3, 1, "the CSP adapter's Hash C check"),
                ]
            }
        }
        "retrieve.decrypt" | "recovery.decrypt" => {
            const { &[step(Part::AesDecrypt, 1, "decryption")] }
        }
        "retrieve.verify" | "recovery.verify" => {
            const { &[step(Part::WatermarkCheck, 1, "watermark check")] }
        }
        "recovery" => RECOVERY,
        "recovery.relay_wait" => {
            const {
                &[
                    step(Part::AnvilTx, 1, "the relay's serveRecovery"),
                    step(Part::FabricCommit, 1, "the relay's CompleteRecovery"),
                ]
            }
        }
        "recovery.ipfs_get" => const { &[step(Part::IpfsCat, 1, "IPFS cat")] },
        "recovery.patient_release" => {
            const { &[step(Part::AnvilTx, 1, "the patient agent's releaseKey")] }
        }
        "recovery.release_key" => const { &[step(Part::KeyService, 1, "ReleaseKey")] },
        "recovery.store_again" => STORE_AGAIN,
        _ => &[],
    }
}

/// A sum of floors: wall time (p50s) and CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sum {
    /// Sum of the parts' p50 wall times, in ms.
    pub wall_p50_ms: f64,
    /// Sum of the parts' CPU, in core-ms.
    pub cpu_ms: f64,
}

/// The floors of `steps` over a record with floors `size`; `None` when a step has none.
pub fn sum(steps: &[Step], fixed: &FixedFloors, size: &SizeFloors) -> Option<Sum> {
    if steps.is_empty() {
        return None;
    }
    let mut total = Sum::default();
    for s in steps {
        let floor = fixed.get(s.part).or_else(|| size.get(s.part))?;
        total.wall_p50_ms += f64::from(s.count) * floor.wall.p50_ms;
        total.cpu_ms += f64::from(s.count) * floor.cpu_ms;
    }
    Some(total)
}

/// The CPU of the passes over the bytes among `steps` (the parts whose cost grows with
/// the record), in core-ms.
pub fn byte_passes_cpu_ms(steps: &[Step], size: &SizeFloors) -> f64 {
    steps
        .iter()
        .filter(|s| s.part.per_byte())
        .filter_map(|s| size.get(s.part).map(|f| f64::from(s.count) * f.cpu_ms))
        .sum()
}

/// `name = part (why) + part (why) + …`, for the summary.
pub fn describe(name: &str, steps: &[Step]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| {
            let times = if s.count > 1 {
                format!("{} × ", s.count)
            } else {
                String::new()
            };
            format!("{times}{} [{}]", s.why, short(s.part))
        })
        .collect();
    format!("{name} = {}", parts.join(" + "))
}

/// The part's short name in [`describe`].
fn short(part: Part) -> &'static str {
    match part {
        Part::FabricCommit => "Fabric commit",
        Part::FabricRead => "Fabric read",
        Part::AnvilTx => "anvil tx",
        Part::KeyService => "key-service round trip",
        Part::PasswordHash => "Argon2id",
        Part::AesEncrypt => "AES-GCM encrypt",
        Part::AesDecrypt => "AES-GCM decrypt",
        Part::Sha3 => "SHA3-256",
        Part::WatermarkEmbed => "watermark embed",
        Part::WatermarkCheck => "watermark check",
        Part::S3Put => "S3 put",
        Part::S3Get => "S3 get",
        Part::IpfsAdd => "Kubo add",
        Part::IpfsCat => "Kubo cat",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floors::Floor;
    use crate::stats::Stats;

    fn floor(p50: f64, cpu: f64) -> Floor {
        Floor {
            wall: Stats::of_ms(vec![p50]).unwrap(),
            cpu_ms: cpu,
        }
    }

    #[test]
    fn a_recovery_sums_each_part_it_takes() {
        let fixed = FixedFloors {
            fabric_commit: floor(100.0, 10.0),
            fabric_read: floor(5.0, 1.0),
            anvil_tx: floor(8.0, 2.0),
            key_service: floor(1.0, 0.5),
            password_hash: floor(20.0, 20.0),
        };
        let bytes = floor(3.0, 3.0);
        let size = SizeFloors {
            aes_encrypt: bytes,
            aes_decrypt: bytes,
            sha3: bytes,
            watermark_embed: bytes,
            watermark_check: bytes,
            s3_put: bytes,
            s3_get: bytes,
            ipfs_add: bytes,
            ipfs_cat: bytes,
        };
        // 2 commits, 2 anvil transactions, 2 key-service round trips, one password
        // check, 3 byte passes.
        let total = sum(RECOVERY, &fixed, &size).unwrap();
        assert_eq!(total.wall_p50_ms, 200.0 + 16.0 + 2.0 + 20.0 + 9.0);
        assert_eq!(total.cpu_ms, 20.0 + 4.0 + 1.0 + 20.0 + 9.0);
        assert_eq!(byte_passes_cpu_ms(RECOVERY, &size), 9.0);
        assert_eq!(
            sum(of_step("recovery.verify"), &fixed, &size)
                .unwrap()
                .wall_p50_ms,
            3.0
        );
        assert!(sum(of_step("baseline"), &fixed, &size).is_none());
        let text = describe("recovery", RECOVERY);
        assert!(text.starts_with("recovery = password check"), "{text}");
        assert!(
            text.contains("the patient agent's releaseKey [anvil tx]"),
            "{text}"
        );
    }
}
