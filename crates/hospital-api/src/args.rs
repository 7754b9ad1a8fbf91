//! The arguments of each function: one struct per function, encoded by clients and
//! decoded (and checked) by the chaincode with the same code, so both sides agree on
//! every position and format.
//!
//! Arguments are UTF-8 text: identifiers by [`crate::IDENTIFIER_RULE`], numbers in
//! decimal, bytes in lowercase hex (decoded with or without `0x`).

use crate::{Function, MAX_ARG_LEN, MAX_CERTIFICATE_ID_DIGITS, is_identifier};

/// Why the chaincode refused a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// Too many or too few arguments.
    #[error("{function} takes {expected} argument(s) ({names}), got {got}")]
    Count {
        /// The function called.
        function: Function,
        /// How many it takes.
        expected: usize,
        /// Their names, in order.
        names: &'static str,
        /// How many came.
        got: usize,
    },
    /// An argument over [`MAX_ARG_LEN`].
    #[error("argument {name} is {len} bytes, over the limit of {max}")]
    Oversized {
        /// What was too long.
        name: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An argument that does not have its format.
    #[error("argument {name} is malformed: {reason}")]
    Malformed {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The arguments of one chaincode function.
pub trait Arguments: Sized {
    /// The function they are for.
    const FUNCTION: Function;
    /// Their names in order, as messages give them.
    const NAMES: &'static str;
    /// The arguments in the order the function takes them.
    fn encode(&self) -> Vec<Vec<u8>>;
    /// Reads and checks a call's arguments: their count, each one's size, then each one's
    /// format in order.
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError>;
}

/// `Version`: none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version;

/// `RegisterPatient`'s arguments (the password goes in the transient map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPatient {
    /// The treatment number the patient gets at this hospital.
    pub treatment_number: String,
    /// SHA3-256 of the patient's ID number.
    pub id_hash: [u8; 32],
    /// The patient's Ethereum address: signs deletions.
    pub eth_address: [u8; 20],
    /// The patient's X25519 public key: receives wrapped record keys.
    pub x25519_public: [u8; 32],
}

/// `UnlockPatient`'s argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockPatient {
    /// The locked patient.
    pub treatment_number: String,
}

/// `CreateRecord`'s arguments (the password goes in the transient map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRecord {
    /// The patient.
    pub treatment_number: String,
    /// The new record's id.
    pub record_id: String,
    /// SHA3-256 of the encrypted record: its key in the CSP.
    pub hash_c: [u8; 32],
    /// Size of the encrypted record in bytes.
    pub size: u64,
    /// SHA3-256 of the record's canonical content.
    pub content_fingerprint: [u8; 32],
    /// Fingerprint of the record's watermark.
    pub watermark_fingerprint: [u8; 32],
}

/// `QueryRecord`'s arguments (the password goes in the transient map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    /// The patient.
    pub treatment_number: String,
    /// The record.
    pub record_id: String,
}

/// `GetRecord`'s argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecord {
    /// The record.
    pub record_id: String,
}

/// `GetRecordHistory`'s argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordHistory {
    /// The record.
    pub record_id: String,
}

/// `DeleteRecord`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRecord {
    /// The record.
    pub record_id: String,
    /// The nonce of the patient's request (each is accepted once per patient).
    pub nonce: u64,
    /// The patient's EIP-712 signature of the deletion (65 bytes, r ‖ s ‖ v).
    pub patient_signature: Vec<u8>,
}

/// `RequestRecovery`'s arguments (the password goes in the transient map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecovery {
    /// The patient, registered at the requesting hospital.
    pub treatment_number: String,
    /// The record to recover.
    pub record_id: String,
    /// The certificate on the certificate chain, decimal (a uint256).
    pub certificate_id: String,
    /// The patient's signed consent, as bytes.
    pub consent: Vec<u8>,
}

/// `CompleteRecovery`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteRecovery {
    /// The recovery.
    pub index: u64,
    /// JSON of the [`RecoveryResult`](crate::RecoveryResult).
    pub result: String,
}

/// `FailRecovery`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailRecovery {
    /// The recovery.
    pub index: u64,
    /// Why it failed.
    pub reason: String,
}

/// `GetRecoveryStatus`'s argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecoveryStatus {
    /// The recovery.
    pub index: u64,
}

/// Whose audit trail `GetAudit` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A record's.
    Record,
    /// A patient's.
    Patient,
}

impl AuditKind {
    /// The argument's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Patient => "patient",
        }
    }
}

/// `GetAudit`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAudit {
    /// A record's or a patient's trail.
    pub kind: AuditKind,
    /// The record id or treatment number.
    pub id: String,
}

impl Arguments for Version {
    const FUNCTION: Function = Function::Version;
    const NAMES: &'static str = "";
    fn encode(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [] = take::<Self, 0>(args)?;
        Ok(Self)
    }
}

impl Arguments for RegisterPatient {
    const FUNCTION: Function = Function::RegisterPatient;
    const NAMES: &'static str = "treatmentNumber, idHash, ethAddress, x25519PublicKey";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![
            text_arg(&self.treatment_number),
            hex_arg(self.id_hash),
            format!("0x{}", hex::encode(self.eth_address)).into_bytes(),
            hex_arg(self.x25519_public),
        ]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [treatment_number, id_hash, eth_address, x25519_public] = take::<Self, 4>(args)?;
        Ok(Self {
            treatment_number: identifier("treatmentNumber", treatment_number)?,
            id_hash: hex_array("idHash", id_hash)?,
            eth_address: hex_array("ethAddress", eth_address)?,
            x25519_public: hex_array("x25519PublicKey", x25519_public)?,
        })
    }
}

impl Arguments for UnlockPatient {
    const FUNCTION: Function = Function::UnlockPatient;
    const NAMES: &'static str = "treatmentNumber";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.treatment_number)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [treatment_number] = take::<Self, 1>(args)?;
        Ok(Self {
            treatment_number: identifier("treatmentNumber", treatment_number)?,
        })
    }
}

impl Arguments for CreateRecord {
    const FUNCTION: Function = Function::CreateRecord;
    const NAMES: &'static str =
        "treatmentNumber, recordId, hashC, size, contentFingerprint, watermarkFingerprint";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![
            text_arg(&self.treatment_number),
            text_arg(&self.record_id),
            hex_arg(self.hash_c),
            text_arg(&self.size.to_string()),
            hex_arg(self.content_fingerprint),
            hex_arg(self.watermark_fingerprint),
        ]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [
            treatment_number,
            record_id,
            hash_c,
            size,
            content,
            watermark,
        ] = take::<Self, 6>(args)?;
        Ok(Self {
            treatment_number: identifier("treatmentNumber", treatment_number)?,
            record_id: identifier("recordId", record_id)?,
            hash_c: hex_array("hashC", hash_c)?,
            size: number("size", size)?,
            content_fingerprint: hex_array("contentFingerprint", content)?,
            watermark_fingerprint: hex_array("watermarkFingerprint", watermark)?,
        })
    }
}

impl Arguments for QueryRecord {
    const FUNCTION: Function = Function::QueryRecord;
    const NAMES: &'static str = "treatmentNumber, recordId";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.treatment_number), text_arg(&self.record_id)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [treatment_number, record_id] = take::<Self, 2>(args)?;
        Ok(Self {
            treatment_number: identifier("treatmentNumber", treatment_number)?,
            record_id: identifier("recordId", record_id)?,
        })
    }
}

impl Arguments for GetRecord {
    const FUNCTION: Function = Function::GetRecord;
    const NAMES: &'static str = "recordId";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.record_id)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [record_id] = take::<Self, 1>(args)?;
        Ok(Self {
            record_id: identifier("recordId", record_id)?,
        })
    }
}

impl Arguments for GetRecordHistory {
    const FUNCTION: Function = Function::GetRecordHistory;
    const NAMES: &'static str = "recordId";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.record_id)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [record_id] = take::<Self, 1>(args)?;
        Ok(Self {
            record_id: identifier("recordId", record_id)?,
        })
    }
}

impl Arguments for DeleteRecord {
    const FUNCTION: Function = Function::DeleteRecord;
    const NAMES: &'static str = "recordId, nonce, patientSignature";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![
            text_arg(&self.record_id),
            text_arg(&self.nonce.to_string()),
            hex_arg(&self.patient_signature),
        ]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [record_id, nonce, signature] = take::<Self, 3>(args)?;
        Ok(Self {
            record_id: identifier("recordId", record_id)?,
            nonce: number("nonce", nonce)?,
            patient_signature: hex_bytes("patientSignature", signature)?,
        })
    }
}

impl Arguments for RequestRecovery {
    const FUNCTION: Function = Function::RequestRecovery;
    const NAMES: &'static str = "treatmentNumber, recordId, certificateId, consent";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![
            text_arg(&self.treatment_number),
            text_arg(&self.record_id),
            text_arg(&self.certificate_id),
            hex_arg(&self.consent),
        ]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [treatment_number, record_id, certificate_id, consent] = take::<Self, 4>(args)?;
        Ok(Self {
            treatment_number: identifier("treatmentNumber", treatment_number)?,
            record_id: identifier("recordId", record_id)?,
            certificate_id: decimal("certificateId", certificate_id)?,
            consent: hex_bytes("consent", consent)?,
        })
    }
}

impl Arguments for CompleteRecovery {
    const FUNCTION: Function = Function::CompleteRecovery;
    const NAMES: &'static str = "index, result";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.index.to_string()), text_arg(&self.result)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [index, result] = take::<Self, 2>(args)?;
        Ok(Self {
            index: number("index", index)?,
            result: text("result", result)?,
        })
    }
}

impl Arguments for FailRecovery {
    const FUNCTION: Function = Function::FailRecovery;
    const NAMES: &'static str = "index, reason";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.index.to_string()), text_arg(&self.reason)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [index, reason] = take::<Self, 2>(args)?;
        Ok(Self {
            index: number("index", index)?,
            reason: text("reason", reason)?,
        })
    }
}

impl Arguments for GetRecoveryStatus {
    const FUNCTION: Function = Function::GetRecoveryStatus;
    const NAMES: &'static str = "index";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(&self.index.to_string())]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [index] = take::<Self, 1>(args)?;
        Ok(Self {
            index: number("index", index)?,
        })
    }
}

impl Arguments for GetAudit {
    const FUNCTION: Function = Function::GetAudit;
    const NAMES: &'static str = "kind (record or patient), id";
    fn encode(&self) -> Vec<Vec<u8>> {
        vec![text_arg(self.kind.as_str()), text_arg(&self.id)]
    }
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
        let [kind, id] = take::<Self, 2>(args)?;
        let kind = match kind {
            b"record" => AuditKind::Record,
            b"patient" => AuditKind::Patient,
            _ => {
                return Err(ArgumentError::Malformed {
                    name: "kind",
                    reason: "must be \"record\" or \"patient\"".into(),
                });
            }
        };
        Ok(Self {
            kind,
            id: identifier("id", id)?,
        })
    }
}

/// The call's arguments, exactly `N` of them, each within [`MAX_ARG_LEN`].
fn take<A: Arguments, const N: usize>(args: &[Vec<u8>]) -> Result<[&[u8]; N], ArgumentError> {
    if args.len() != N {
        return Err(ArgumentError::Count {
            function: A::FUNCTION,
            expected: N,
            names: A::NAMES,
            got: args.len(),
        });
    }
    if let Some(arg) = args.iter().find(|a| a.len() > MAX_ARG_LEN) {
        return Err(ArgumentError::Oversized {
            name: "argument",
            len: arg.len(),
            max: MAX_ARG_LEN,
        });
    }
    Ok(std::array::from_fn(|i| args[i].as_slice()))
}

fn text_arg(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn hex_arg(bytes: impl AsRef<[u8]>) -> Vec<u8> {
    hex::encode(bytes).into_bytes()
}

fn malformed(name: &'static str, reason: impl Into<String>) -> ArgumentError {
    ArgumentError::Malformed {
        name,
        reason: reason.into(),
    }
}

fn text(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
    String::from_utf8(arg.to_vec()).map_err(|_| malformed(name, "not UTF-8"))
}

fn identifier(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
    if !is_identifier(arg) {
        return Err(malformed(
            name,
            format!("must be {}", crate::IDENTIFIER_RULE),
        ));
    }
    text(name, arg)
}

fn number(name: &'static str, arg: &[u8]) -> Result<u64, ArgumentError> {
    text(name, arg)?
        .parse()
        .map_err(|e| malformed(name, format!("not a non-negative integer: {e}")))
}

/// A decimal uint256 (a certificate id).
fn decimal(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
    if arg.is_empty()
        || arg.len() > MAX_CERTIFICATE_ID_DIGITS
        || !arg.iter().all(u8::is_ascii_digit)
    {
        return Err(malformed(
            name,
            format!("must be a decimal number of at most {MAX_CERTIFICATE_ID_DIGITS} digits"),
        ));
    }
    text(name, arg)
}

/// Hex bytes, with or without `0x`.
fn hex_bytes(name: &'static str, arg: &[u8]) -> Result<Vec<u8>, ArgumentError> {
    let arg = arg.strip_prefix(b"0x").unwrap_or(arg);
    hex::decode(arg).map_err(|e| malformed(name, format!("not hex: {e}")))
}

/// Exactly `N` hex bytes, with or without `0x`.
fn hex_array<const N: usize>(name: &'static str, arg: &[u8]) -> Result<[u8; N], ArgumentError> {
    let bytes = hex_bytes(name, arg)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| malformed(name, format!("must be {N} bytes, got {len}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn arguments_round_trip() {
        let create = CreateRecord {
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            hash_c: [0xab; 32],
            size: 1234,
            content_fingerprint: [1; 32],
            watermark_fingerprint: [2; 32],
        };
        assert_eq!(CreateRecord::decode(&create.encode()), Ok(create));
        let register = RegisterPatient {
            treatment_number: "T-1".into(),
            id_hash: [3; 32],
            eth_address: [4; 20],
            x25519_public: [5; 32],
        };
        let encoded = register.encode();
        assert!(encoded[2].starts_with(b"0x"));
        assert_eq!(RegisterPatient::decode(&encoded), Ok(register));
        let audit = GetAudit {
            kind: AuditKind::Patient,
            id: "T-1".into(),
        };
        assert_eq!(GetAudit::decode(&audit.encode()), Ok(audit));
        let request = RequestRecovery {
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            certificate_id: "42".into(),
            consent: vec![0xc0, 0xff, 0xee],
        };
        assert_eq!(request.encode()[3], b"c0ffee");
        assert_eq!(RequestRecovery::decode(&request.encode()), Ok(request));
    }

    #[test]
    fn refusals_name_the_argument_and_the_rule() {
        let error = CreateRecord::decode(&raw(&["T-1"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "CreateRecord takes 6 argument(s) (treatmentNumber, recordId, hashC, size, \
             contentFingerprint, watermarkFingerprint), got 1"
        );
        let error = GetRecord::decode(&raw(&["R/1"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument recordId is malformed: must be 1 to 128 of A-Z a-z 0-9 . _ : -"
        );
        let error = GetRecord::decode(&[vec![b'a'; MAX_ARG_LEN + 1]]).unwrap_err();
        assert!(matches!(error, ArgumentError::Oversized { .. }), "{error}");
        let error = RegisterPatient::decode(&raw(&["T", "00", "0x00", "00"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument idHash is malformed: must be 32 bytes, got 1"
        );
        let error = GetRecoveryStatus::decode(&raw(&["-1"])).unwrap_err();
        assert!(error.to_string().contains("not a non-negative integer"));
        let error = RequestRecovery::decode(&raw(&["T", "R", "1e3", "00"])).unwrap_err();
        assert!(error.to_string().contains("at most 78 digits"), "{error}");
        let error = GetAudit::decode(&raw(&["doctor", "x"])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(r#"must be "record" or "patient""#)
        );
    }
}
