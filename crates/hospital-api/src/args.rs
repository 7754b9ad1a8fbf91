//! The arguments of each function: one struct per function, encoded by clients and
//! decoded (and checked) by the chaincode with the same code, so both sides agree on
//! every position and format.
//!
//! Arguments are UTF-8 text: identifiers by [`crate::IDENTIFIER_RULE`], numbers in
//! decimal, bytes in lowercase hex (decoded with or without `0x`).

use crate::{ChainProof, Function, MAX_ARG_LEN, MAX_CERTIFICATE_ID_DIGITS, is_identifier};

/// Why the chaincode refused a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// Too many or too few arguments.
    #[error(
        "{function} takes {expected} argument(s) ({names}), got {got}",
        expected = names.len(),
        names = names.join(", ")
    )]
    Count {
        /// The function called.
        function: Function,
        /// The names of the arguments it takes, in order.
        names: &'static [&'static str],
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
    const NAMES: &'static [&'static str];
    /// The arguments in the order the function takes them.
    fn encode(&self) -> Vec<Vec<u8>>;
    /// Reads and checks a call's arguments: their count, each one's size, then each one's
    /// format in order.
    fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError>;
}

/// Declares each function's argument struct from its list of fields (the argument's
/// name on the wire and its [`Codec`]) and derives [`Arguments`] from the same list, so
/// a position, a name or a format is written once.
macro_rules! arguments {
    ($(
        $(#[doc = $doc:literal])*
        $function:ident {
            $(
                $(#[doc = $field_doc:literal])*
                $field:ident: $ty:ty = $name:literal as $codec:ident,
            )*
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $function {
            $($(#[doc = $field_doc])* pub $field: $ty,)*
        }

        impl Arguments for $function {
            const FUNCTION: Function = Function::$function;
            const NAMES: &'static [&'static str] = &[$($name),*];

            fn encode(&self) -> Vec<Vec<u8>> {
                vec![$(<$codec as Codec<$ty>>::encode(&self.$field)),*]
            }

            #[allow(unused_variables, unused_mut)] // a function without arguments reads none
            fn decode(args: &[Vec<u8>]) -> Result<Self, ArgumentError> {
                let mut args = checked::<Self>(args)?.iter();
                Ok(Self {
                    $($field: <$codec as Codec<$ty>>::decode(
                        $name,
                        args.next().expect("the count was checked"),
                    )?,)*
                })
            }
        }
    )*};
}

arguments! {
    /// `Version`: none.
    Version {}

    /// `SetKeyService`'s argument (hospital admins only).
    SetKeyService {
        /// The key service's Ed25519 public key, which the chaincode verifies password
        /// tickets with.
        ticket_key: [u8; 32] = "ticketKey" as Hex,
    }

    /// `GetKeyService`: none.
    GetKeyService {}

    /// `RegisterPatient`'s arguments (the key service enrolls the password).
    RegisterPatient {
        /// The treatment number the patient gets at this hospital.
        treatment_number: String = "treatmentNumber" as Identifier,
        /// SHA3-256 of the patient's ID number.
        id_hash: [u8; 32] = "idHash" as Hex,
        /// The patient's Ethereum address: signs deletions.
        eth_address: [u8; 20] = "ethAddress" as Address,
        /// The patient's X25519 public key: receives wrapped record keys.
        x25519_public: [u8; 32] = "x25519PublicKey" as Hex,
    }

    /// `CreateRecord`'s arguments.
    CreateRecord {
        /// The patient.
        treatment_number: String = "treatmentNumber" as Identifier,
        /// The new record's id.
        record_id: String = "recordId" as Identifier,
        /// SHA3-256 of the encrypted record: its key in the CSP.
        hash_c: [u8; 32] = "hashC" as Hex,
        /// Size of the encrypted record in bytes.
        size: u64 = "size" as Number,
        /// SHA3-256 of the record's canonical content.
        content_fingerprint: [u8; 32] = "contentFingerprint" as Hex,
        /// Fingerprint of the record's watermark.
        watermark_fingerprint: [u8; 32] = "watermarkFingerprint" as Hex,
        /// The key service's password ticket for this creation
        /// ([`SignedTicket::encode`](crate::ticket::SignedTicket::encode)).
        ticket: Vec<u8> = "ticket" as Hex,
    }

    /// `QueryRecord`'s arguments.
    QueryRecord {
        /// The patient.
        treatment_number: String = "treatmentNumber" as Identifier,
        /// The record.
        record_id: String = "recordId" as Identifier,
        /// The key service's password ticket for this query
        /// ([`SignedTicket::encode`](crate::ticket::SignedTicket::encode)).
        ticket: Vec<u8> = "ticket" as Hex,
    }

    /// `GetRecord`'s argument.
    GetRecord {
        /// The record.
        record_id: String = "recordId" as Identifier,
    }

    /// `GetRecordHistory`'s argument.
    GetRecordHistory {
        /// The record.
        record_id: String = "recordId" as Identifier,
    }

    /// `DeleteRecord`'s arguments.
    DeleteRecord {
        /// The record.
        record_id: String = "recordId" as Identifier,
        /// The nonce of the patient's request (each is accepted once per patient).
        nonce: u64 = "nonce" as Number,
        /// The patient's EIP-712 signature of the deletion (65 bytes, r ‖ s ‖ v).
        patient_signature: Vec<u8> = "patientSignature" as Hex,
    }

    /// `RequestRecovery`'s arguments.
    RequestRecovery {
        /// The patient, registered at the requesting hospital.
        treatment_number: String = "treatmentNumber" as Identifier,
        /// The record to recover.
        record_id: String = "recordId" as Identifier,
        /// The certificate on the certificate chain, decimal (a uint256).
        certificate_id: String = "certificateId" as Decimal,
        /// The patient's signed consent, as bytes.
        consent: Vec<u8> = "consent" as Hex,
        /// Certificate-chain time (Unix seconds) after which the request may no longer be
        /// served: past it the relay fails the request, with proof it was not served.
        deadline: u64 = "deadline" as Number,
        /// The key service's password ticket for this request
        /// ([`SignedTicket::encode`](crate::ticket::SignedTicket::encode)).
        ticket: Vec<u8> = "ticket" as Hex,
    }

    /// `CompleteRecovery`'s arguments.
    CompleteRecovery {
        /// The recovery.
        index: u64 = "index" as Number,
        /// JSON of the [`RecoveryResult`](crate::RecoveryResult).
        result: String = "result" as Text,
        /// What the relay proved: the `RecoveryServed` receipt.
        proof: ChainProof = "proof" as Json,
    }

    /// `FailRecovery`'s arguments.
    FailRecovery {
        /// The recovery.
        index: u64 = "index" as Number,
        /// Why it failed.
        reason: String = "reason" as Text,
        /// What the relay proved (for a timeout: the request unserved past its deadline);
        /// empty for a request the certificate chain refused.
        proof: Option<ChainProof> = "proof" as Json,
    }

    /// `GetRecoveryStatus`'s argument.
    GetRecoveryStatus {
        /// The recovery.
        index: u64 = "index" as Number,
    }

    /// `GetAudit`'s arguments.
    GetAudit {
        /// A record's or a patient's trail.
        kind: AuditKind = "kind" as Kind,
        /// The record id or treatment number.
        id: String = "id" as Identifier,
    }
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

/// The call's arguments, exactly as many as `A` takes, each within [`MAX_ARG_LEN`].
fn checked<A: Arguments>(args: &[Vec<u8>]) -> Result<&[Vec<u8>], ArgumentError> {
    if args.len() != A::NAMES.len() {
        return Err(ArgumentError::Count {
            function: A::FUNCTION,
            names: A::NAMES,
            got: args.len(),
        });
    }
    if let Some((name, arg)) = A::NAMES
        .iter()
        .zip(args)
        .find(|(_, a)| a.len() > MAX_ARG_LEN)
    {
        return Err(ArgumentError::Oversized {
            name,
            len: arg.len(),
            max: MAX_ARG_LEN,
        });
    }
    Ok(args)
}

/// How a value of type `T` is written as an argument and read back.
trait Codec<T> {
    fn encode(value: &T) -> Vec<u8>;
    fn decode(name: &'static str, arg: &[u8]) -> Result<T, ArgumentError>;
}

/// Any UTF-8 text.
struct Text;
/// A name by [`crate::IDENTIFIER_RULE`].
struct Identifier;
/// A non-negative integer, decimal.
struct Number;
/// A decimal uint256 (a certificate id).
struct Decimal;
/// Bytes in hex, with or without `0x`.
struct Hex;
/// An Ethereum address: `0x` and 40 hex digits.
struct Address;
/// `record` or `patient`.
struct Kind;
/// A JSON value; `None` is the empty argument.
struct Json;

fn malformed(name: &'static str, reason: impl Into<String>) -> ArgumentError {
    ArgumentError::Malformed {
        name,
        reason: reason.into(),
    }
}

impl Codec<String> for Text {
    fn encode(value: &String) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
        String::from_utf8(arg.to_vec()).map_err(|_| malformed(name, "not UTF-8"))
    }
}

impl Codec<String> for Identifier {
    fn encode(value: &String) -> Vec<u8> {
        Text::encode(value)
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
        if !is_identifier(arg) {
            return Err(malformed(
                name,
                format!("must be {}", crate::IDENTIFIER_RULE),
            ));
        }
        Text::decode(name, arg)
    }
}

impl Codec<u64> for Number {
    fn encode(value: &u64) -> Vec<u8> {
        value.to_string().into_bytes()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<u64, ArgumentError> {
        Text::decode(name, arg)?
            .parse()
            .map_err(|e| malformed(name, format!("not a non-negative integer: {e}")))
    }
}

impl Codec<String> for Decimal {
    fn encode(value: &String) -> Vec<u8> {
        Text::encode(value)
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<String, ArgumentError> {
        if arg.is_empty()
            || arg.len() > MAX_CERTIFICATE_ID_DIGITS
            || !arg.iter().all(u8::is_ascii_digit)
        {
            return Err(malformed(
                name,
                format!("must be a decimal number of at most {MAX_CERTIFICATE_ID_DIGITS} digits"),
            ));
        }
        Text::decode(name, arg)
    }
}

impl Codec<Vec<u8>> for Hex {
    fn encode(value: &Vec<u8>) -> Vec<u8> {
        hex::encode(value).into_bytes()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<Vec<u8>, ArgumentError> {
        let arg = arg.strip_prefix(b"0x").unwrap_or(arg);
        hex::decode(arg).map_err(|e| malformed(name, format!("not hex: {e}")))
    }
}

impl<const N: usize> Codec<[u8; N]> for Hex {
    fn encode(value: &[u8; N]) -> Vec<u8> {
        hex::encode(value).into_bytes()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<[u8; N], ArgumentError> {
        let bytes = <Hex as Codec<Vec<u8>>>::decode(name, arg)?;
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| malformed(name, format!("must be {N} bytes, got {len}")))
    }
}

impl Codec<[u8; 20]> for Address {
    fn encode(value: &[u8; 20]) -> Vec<u8> {
        format!("0x{}", hex::encode(value)).into_bytes()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<[u8; 20], ArgumentError> {
        Hex::decode(name, arg)
    }
}

impl Codec<ChainProof> for Json {
    fn encode(value: &ChainProof) -> Vec<u8> {
        serde_json::to_vec(value).expect("a chain proof serialises")
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<ChainProof, ArgumentError> {
        serde_json::from_slice(arg).map_err(|e| malformed(name, format!("not its JSON: {e}")))
    }
}

impl Codec<Option<ChainProof>> for Json {
    fn encode(value: &Option<ChainProof>) -> Vec<u8> {
        value.as_ref().map(Json::encode).unwrap_or_default()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<Option<ChainProof>, ArgumentError> {
        (!arg.is_empty())
            .then(|| Json::decode(name, arg))
            .transpose()
    }
}

impl Codec<AuditKind> for Kind {
    fn encode(value: &AuditKind) -> Vec<u8> {
        value.as_str().as_bytes().to_vec()
    }
    fn decode(name: &'static str, arg: &[u8]) -> Result<AuditKind, ArgumentError> {
        [AuditKind::Record, AuditKind::Patient]
            .into_iter()
            .find(|kind| kind.as_str().as_bytes() == arg)
            .ok_or_else(|| malformed(name, r#"must be "record" or "patient""#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{NONCE_LEN, SigningKey, Ticket, Verdict};

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
            ticket: vec![9; 40],
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
        assert_eq!(audit.encode(), raw(&["patient", "T-1"]));
        assert_eq!(GetAudit::decode(&audit.encode()), Ok(audit));
        let request = RequestRecovery {
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            certificate_id: "42".into(),
            consent: vec![0xc0, 0xff, 0xee],
            deadline: 1_700_000_600,
            ticket: vec![0xab],
        };
        assert_eq!(request.encode()[3], b"c0ffee");
        assert_eq!(request.encode()[4], b"1700000600");
        assert_eq!(request.encode()[5], b"ab");
        assert_eq!(RequestRecovery::decode(&request.encode()), Ok(request));
        let proof = crate::ChainProof {
            kind: crate::ProofKind::Unserved,
            chain_id: 31337,
            block_number: 12,
            block_hash: [0xab; 32],
            block_time: 1_700_000_601,
            digest: [0xcd; 32],
        };
        let completion = CompleteRecovery {
            index: 3,
            result: "{}".into(),
            proof: proof.clone(),
        };
        assert_eq!(
            CompleteRecovery::decode(&completion.encode()),
            Ok(completion)
        );
        let failure = FailRecovery {
            index: 3,
            reason: "refused".into(),
            proof: None,
        };
        assert_eq!(failure.encode()[2], b"");
        assert_eq!(FailRecovery::decode(&failure.encode()), Ok(failure));
        let timeout = FailRecovery {
            index: 4,
            reason: "deadline passed".into(),
            proof: Some(proof),
        };
        assert_eq!(FailRecovery::decode(&timeout.encode()), Ok(timeout));
        let error = FailRecovery::decode(&raw(&["4", "r", "{}"])).unwrap_err();
        assert!(
            error.to_string().starts_with("argument proof is malformed"),
            "{error}"
        );
        let key = SetKeyService {
            ticket_key: [6; 32],
        };
        assert_eq!(SetKeyService::decode(&key.encode()), Ok(key));
        assert_eq!(Version {}.encode(), Vec::<Vec<u8>>::new());
        assert_eq!(GetKeyService::decode(&[]), Ok(GetKeyService {}));
    }

    #[test]
    fn the_gated_functions_take_a_ticket_last() {
        for names in [
            CreateRecord::NAMES,
            QueryRecord::NAMES,
            RequestRecovery::NAMES,
        ] {
            assert_eq!(names.last(), Some(&"ticket"));
        }
        let query = QueryRecord::decode(&raw(&["T-1", "R-1", "0x0a0b"])).unwrap();
        assert_eq!(query.ticket, [0x0a, 0x0b]);
        // An empty ticket is well-formed here; the chaincode refuses it, recorded.
        let query = QueryRecord::decode(&raw(&["T-1", "R-1", ""])).unwrap();
        assert!(query.ticket.is_empty());
    }

    #[test]
    fn the_largest_ticket_fits_an_argument() {
        // Fabric channel names have at most 249 characters.
        let ticket = Ticket {
            channel: "c".repeat(249),
            function: Function::RequestRecovery,
            treatment_number: "T".repeat(crate::MAX_IDENTIFIER_LEN),
            record_id: "R".repeat(crate::MAX_IDENTIFIER_LEN),
            doctor_cert_id: [1; 32],
            nonce: [2; NONCE_LEN],
            issued_at_ms: i64::MAX,
            verdict: Verdict::Rejected {
                attempt: u32::MAX,
                limit: u32::MAX,
            },
        }
        .sign(&SigningKey::from_bytes(&[3; 32]));
        let query = QueryRecord {
            treatment_number: "T-1".into(),
            record_id: "R-1".into(),
            ticket: ticket.encode(),
        };
        let encoded = query.encode();
        assert!(encoded[2].len() <= MAX_ARG_LEN, "{}", encoded[2].len());
        assert_eq!(QueryRecord::decode(&encoded), Ok(query));
    }

    #[test]
    fn refusals_name_the_argument_and_the_rule() {
        let error = CreateRecord::decode(&raw(&["T-1"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "CreateRecord takes 7 argument(s) (treatmentNumber, recordId, hashC, size, \
             contentFingerprint, watermarkFingerprint, ticket), got 1"
        );
        let error = Version::decode(&raw(&["x"])).unwrap_err();
        assert_eq!(error.to_string(), "Version takes 0 argument(s) (), got 1");
        let error = GetRecord::decode(&raw(&["R/1"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument recordId is malformed: must be 1 to 128 of A-Z a-z 0-9 . _ : -"
        );
        let error = QueryRecord::decode(&[
            b"T-1".to_vec(),
            b"R-1".to_vec(),
            vec![b'a'; MAX_ARG_LEN + 1],
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument ticket is 4097 bytes, over the limit of 4096"
        );
        let error = QueryRecord::decode(&raw(&["T-1", "R-1", "xyz"])).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("argument ticket is malformed: not hex"),
            "{error}"
        );
        let error = RegisterPatient::decode(&raw(&["T", "00", "0x00", "00"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument idHash is malformed: must be 32 bytes, got 1"
        );
        let error = SetKeyService::decode(&raw(&["00"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument ticketKey is malformed: must be 32 bytes, got 1"
        );
        let error = GetRecoveryStatus::decode(&raw(&["-1"])).unwrap_err();
        assert!(error.to_string().contains("not a non-negative integer"));
        let error = RequestRecovery::decode(&raw(&["T", "R", "1e3", "00", "9", ""])).unwrap_err();
        assert!(error.to_string().contains("at most 78 digits"), "{error}");
        let error = GetAudit::decode(&raw(&["doctor", "x"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"argument kind is malformed: must be "record" or "patient""#
        );
    }
}
