//! What the command prints: a report as JSON or as indented text, and a failure as one
//! line with what to do next and its exit code.

use std::process::ExitCode;

use anyhow::Result;
use medcert_flows::store::{StoreError, StoreReport};
use medcert_flows::wallet::WalletError;
use medcert_flows::{FailureKind, FlowError, InitError, VerifyError, WrongPassword};
use medcert_key_service::KeyServiceError;
use serde::Serialize;

/// Prints a report: JSON, or a headline and the report's fields as indented lines.
pub(crate) fn print(json: bool, headline: &str, report: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(report)?;
    if json {
        println!("{value}");
    } else {
        println!("{headline}");
        print_value(&value, 1);
    }
    Ok(())
}

/// The headline of a record stored at a hospital: `record R <how> at H`.
pub(crate) fn stored(report: &StoreReport, how: &str) -> String {
    format!(
        "record {} {how} at {}",
        report.stored.record_id, report.hospital
    )
}

fn print_value(value: &serde_json::Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(inner) if !inner.is_empty() => {
                        println!("{indent}{key}:");
                        print_value(value, depth + 1);
                    }
                    serde_json::Value::Array(items)
                        if items.iter().any(serde_json::Value::is_object) =>
                    {
                        println!("{indent}{key}:");
                        for item in items {
                            println!("{indent}  -");
                            print_value(item, depth + 2);
                        }
                    }
                    serde_json::Value::Null => {}
                    other => println!("{indent}{key}: {}", scalar(other)),
                }
            }
        }
        other => println!("{indent}{}", scalar(other)),
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The exit code of a kind of failure (`medcert --help` lists them).
pub(crate) fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Failed => 1,
        FailureKind::NotAuthentic => 3,
        FailureKind::Refused => 4,
        FailureKind::Unreachable => 5,
    }
}

/// The exit code 3: not authentic.
pub(crate) fn not_authentic() -> ExitCode {
    ExitCode::from(exit_code(FailureKind::NotAuthentic))
}

/// An error and its sources on one line.
pub(crate) fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text.replace('\n', " ")
}

/// Reports a failed command on stderr (or as JSON) and returns its exit code.
pub(crate) fn fail(json: bool, error: &anyhow::Error) -> ExitCode {
    let code = error.chain().find_map(kind).map_or(1, exit_code);
    let mut message = format!("{error:#}").replace('\n', " ");
    if let Some(hint) = error.chain().find_map(hint) {
        message = format!("{message}; {hint}");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": message, "exit_code": code })
        );
    } else {
        eprintln!("medcert: {message}");
    }
    ExitCode::from(code)
}

/// The kind of failure an error of the flows library is.
fn kind(error: &(dyn std::error::Error + 'static)) -> Option<FailureKind> {
    if let Some(error) = error.downcast_ref::<FlowError>() {
        return Some(error.kind());
    }
    if let Some(error) = error.downcast_ref::<VerifyError>() {
        return Some(error.kind());
    }
    error.downcast_ref::<InitError>().map(InitError::kind)
}

/// What to type next, for the failures the command line can fix.
fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<FlowError>() {
        return flow_hint(error);
    }
    if let Some(error) = error.downcast_ref::<WalletError>() {
        return wallet_hint(error);
    }
    if let Some(error) = error.downcast_ref::<VerifyError>() {
        return verify_hint(error);
    }
    if let Some(InitError::Hospital { source, .. }) = error.downcast_ref() {
        return flow_hint(source);
    }
    None
}

fn wallet_hint(error: &WalletError) -> Option<String> {
    matches!(error, WalletError::Unknown { .. })
        .then(|| "run `medcert patient register` first".into())
}

fn verify_hint(error: &VerifyError) -> Option<String> {
    match error {
        VerifyError::Read { .. } => Some("check the path".into()),
        VerifyError::Keys { source, .. } => flow_hint(source),
        VerifyError::NotARecord { .. } => None,
    }
}

/// `hospital` names the hospital in the command to type, when the error knows it.
fn key_service_hint(hospital: Option<&str>, error: &KeyServiceError) -> Option<String> {
    let hospital = hospital.unwrap_or("<hospital>");
    Some(match error {
        KeyServiceError::Locked { treatment_number } => unlock_hint(hospital, treatment_number),
        KeyServiceError::RateLimited { retry_after } => format!(
            "wait {} s and try again",
            retry_after.as_secs_f64().ceil().max(1.0)
        ),
        KeyServiceError::Unreachable { .. } => {
            format!("is {hospital}'s key service running? `medcert network status` lists it")
        }
        KeyServiceError::PeerFailed { .. } => format!(
            "{hospital}'s key service cannot read its chain: is {hospital}'s peer running? \
             `medcert network status` lists it"
        ),
        _ => return None,
    })
}

fn unlock_hint(hospital: &str, treatment_number: &str) -> String {
    format!(
        "{hospital}'s admin lifts the lock: `medcert patient unlock --hospital {hospital} \
         --treatment {treatment_number}`"
    )
}

fn wrong_password_hint(wrong: &WrongPassword) -> String {
    if wrong.locked() {
        unlock_hint("<hospital>", &wrong.treatment_number)
    } else {
        format!(
            "check the patient's password: {} more wrong in a row lock the patient",
            wrong.limit - wrong.attempt
        )
    }
}

fn flow_hint(error: &FlowError) -> Option<String> {
    Some(match error {
        // Transparent wrappers hide the inner error from the chain: look inside.
        FlowError::Wallet(inner) => return wallet_hint(inner),
        FlowError::Verify(inner) => return verify_hint(inner),
        FlowError::Store(StoreError::Read { .. }) => "check the path".into(),
        FlowError::Store(StoreError::NotARecord { .. }) => "give a C-CDA XML document".into(),
        FlowError::Store(StoreError::NotCcda { .. }) => "give an HL7 C-CDA XML file".into(),
        FlowError::KeyService { hospital, source } => {
            return key_service_hint(Some(hospital), source);
        }
        FlowError::Store(StoreError::KeyService(source)) => {
            return key_service_hint(None, source);
        }
        FlowError::WrongPassword(wrong) | FlowError::Store(StoreError::WrongPassword(wrong)) => {
            wrong_password_hint(wrong)
        }
        FlowError::NotEnrolled {
            hospital,
            treatment_number,
            source,
        } => {
            // The chain has the registration: only the enrollment is left to do.
            let again = format!(
                "the same `medcert patient register` with --treatment {treatment_number} finishes it"
            );
            match key_service_hint(Some(hospital), source) {
                Some(first) => format!("{first}; then {again}"),
                None => again,
            }
        }
        FlowError::AlreadyRegistered { .. } => {
            "leave out --treatment for a fresh treatment number".into()
        }
        FlowError::EmptyPassword => "type it at the prompt or pipe it with --password-stdin".into(),
        FlowError::EmptyIdNumber => "give --id-number".into(),
        FlowError::RecordTooSmall { minimum, .. } => format!("give --size {minimum} or more"),
        FlowError::OutputExists { .. } => "choose another --out or remove it".into(),
        FlowError::ZeroValidity => "give --expires such as 1h".into(),
        FlowError::NoContract => "run `medcert network init`".into(),
        FlowError::KeyNotRegistered { .. } => {
            "run `medcert network init` to register the current key".into()
        }
        FlowError::NotPatientsCertificate { .. } => {
            "`medcert patient certificates` lists theirs".into()
        }
        FlowError::NotAConsentFile { .. } => {
            "ask the patient for the file `medcert patient consent` wrote".into()
        }
        FlowError::Read { .. } => "check the path".into(),
        FlowError::CertifyAfterStore {
            hospital,
            record_id,
            patient,
            ..
        } => format!(
            "retry with `medcert ehr certify --hospital {hospital} --record {record_id} --patient {patient}`"
        ),
        FlowError::RecoveryTimeout { index, .. } => format!(
            "is a relay running (`medcert relay run`)? `medcert ehr recover --resume {index}` picks it up again"
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_stable() {
        let codes: Vec<u8> = [
            FailureKind::Failed,
            FailureKind::NotAuthentic,
            FailureKind::Refused,
            FailureKind::Unreachable,
        ]
        .into_iter()
        .map(exit_code)
        .collect();
        assert_eq!(codes, [1, 3, 4, 5]);
    }

    #[test]
    fn hints_name_the_flags_to_give() {
        let error = anyhow::Error::from(FlowError::EmptyPassword);
        assert_eq!(
            error.chain().find_map(hint).as_deref(),
            Some("type it at the prompt or pipe it with --password-stdin")
        );
        let timeout = FlowError::RecoveryTimeout {
            channel: "hospital2".into(),
            index: 7,
            waited_s: 180,
        };
        assert!(flow_hint(&timeout).unwrap().contains("--resume 7"));
    }

    #[test]
    fn key_service_refusals_say_what_to_do_and_exit_as_their_kind() {
        let locked = anyhow::Error::from(FlowError::KeyService {
            hospital: "hospital2".into(),
            source: KeyServiceError::Locked {
                treatment_number: "T-9".into(),
            },
        });
        assert_eq!(
            locked.chain().find_map(hint).as_deref(),
            Some(
                "hospital2's admin lifts the lock: `medcert patient unlock --hospital hospital2 \
                 --treatment T-9`"
            )
        );
        assert_eq!(locked.chain().find_map(kind), Some(FailureKind::Refused));
        let limited = FlowError::KeyService {
            hospital: "hospital2".into(),
            source: KeyServiceError::RateLimited {
                retry_after: std::time::Duration::from_millis(2_500),
            },
        };
        assert_eq!(
            flow_hint(&limited).as_deref(),
            Some("wait 3 s and try again")
        );
        let down = anyhow::Error::from(VerifyError::Keys {
            id: "hospital1".into(),
            source: Box::new(FlowError::KeyService {
                hospital: "hospital1".into(),
                source: KeyServiceError::Unreachable {
                    endpoint: "127.0.0.1:1".into(),
                    source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                },
            }),
        });
        assert_eq!(down.chain().find_map(kind), Some(FailureKind::Unreachable));
        assert!(
            down.chain()
                .find_map(hint)
                .is_some_and(|h| h.contains("hospital1's key service running"))
        );
    }

    #[test]
    fn a_wrong_password_tells_how_many_are_left_or_how_to_unlock() {
        let mut wrong = WrongPassword {
            treatment_number: "T-1".into(),
            attempt: 3,
            limit: 5,
            tx_id: "tx".into(),
        };
        assert!(wrong_password_hint(&wrong).contains("2 more wrong"));
        wrong.attempt = 5;
        assert!(wrong_password_hint(&wrong).contains("medcert patient unlock"));
    }

    #[test]
    fn one_line_joins_an_error_and_its_sources() {
        let error = FlowError::Read {
            path: "/x".into(),
            source: std::io::Error::other("gone"),
        };
        assert_eq!(one_line(&error), "cannot read /x: gone");
    }
}
