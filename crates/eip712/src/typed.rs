//! The four messages as Solidity structs (alloy's `sol!`), their domains, digests and
//! typed-data JSON, and the signed consent's wire form.

use alloy_dyn_abi::eip712::Resolver;
use alloy_dyn_abi::{DynSolValue, TypedData};
use alloy_primitives::{U256, hex};
use alloy_sol_types::{Eip712Domain, SolStruct, SolType, SolValue, eip712_domain};
use serde_json::{Map, Value, json};

use crate::Address;

// The single declaration of each message; every digest, type string and typed-data JSON
// medcert produces comes from these.
#[allow(missing_docs, unreachable_pub)]
mod sol {
    alloy_sol_types::sol! {
        struct CertificateAuthorization {
            bytes32 hospital;
            bytes32 recordId;
            string cid;
            bytes32 contentFingerprint;
            bytes32 watermarkFingerprint;
            uint256 nonce;
        }

        struct Consent {
            bytes32 hospital;
            uint256 certificateId;
            uint64 expiry;
            uint256 nonce;
        }

        struct Deletion {
            string channel;
            string recordId;
            uint64 nonce;
        }

        struct AgentAuthorization {
            address agent;
            uint256 nonce;
        }
    }
}

const DELETION_DOMAIN: Eip712Domain = eip712_domain! {
    name: "MedcertDeletion",
    version: "1",
};

/// Why typed-data JSON is not the message medcert expects.
#[derive(Debug, thiserror::Error)]
pub enum TypedDataError {
    /// The JSON is not an EIP-712 typed-data object (`types`, `primaryType`, `domain`,
    /// `message`).
    #[error("not EIP-712 typed data (the JSON object eth_signTypedData_v4 takes)")]
    Json(#[source] serde_json::Error),
    /// The typed data is another message.
    #[error("the typed data is a {found}, not a {expected}")]
    PrimaryType {
        /// The message medcert expects.
        expected: &'static str,
        /// The typed data's `primaryType`.
        found: String,
    },
    /// The message's type differs from medcert's (a field renamed, retyped or missing).
    #[error("the typed data's types do not declare medcert's {expected}")]
    Types {
        /// medcert's EIP-712 type string of the message.
        expected: String,
    },
    /// The typed data is for another signing domain (e.g. another chain or contract).
    #[error("the typed data's domain {found} is not {expected}")]
    Domain {
        /// The domain medcert signs in, as JSON.
        expected: String,
        /// The typed data's domain, as JSON.
        found: String,
    },
    /// A field's value does not fit the field's type.
    #[error("the typed data's message does not fit its type")]
    Message(#[source] alloy_dyn_abi::Error),
    /// A number medcert keeps in 64 bits is larger.
    #[error("the typed data's {field} is larger than 2^64 - 1")]
    TooLarge {
        /// The field's EIP-712 name.
        field: &'static str,
    },
}

/// The `MedicalCertificate` contract's EIP-712 domain (name "MedicalCertificate", version "1").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateDomain {
    /// The certificate chain's EIP-155 chain id.
    pub chain_id: u64,
    /// The deployed `MedicalCertificate` contract.
    pub verifying_contract: Address,
}

impl CertificateDomain {
    /// The EIP-712 domain separator: the hash of the domain struct.
    pub fn separator(&self) -> [u8; 32] {
        self.eip712().separator().0
    }

    fn eip712(&self) -> Eip712Domain {
        eip712_domain! {
            name: "MedicalCertificate",
            version: "1",
            chain_id: self.chain_id,
            verifying_contract: self.verifying_contract.into(),
        }
    }
}

/// The methods every message in the certificate contract's domain has: its digest, its
/// typed-data JSON and the way back, all through its `sol!` struct (`sol` and `from_sol`).
macro_rules! certificate_message {
    ($message:ident, $sol:ty, $what:literal) => {
        impl $message {
            /// The EIP-712 digest the patient signs, in `domain`.
            pub fn digest(&self, domain: &CertificateDomain) -> [u8; 32] {
                self.sol().eip712_signing_hash(&domain.eip712()).0
            }

            #[doc = concat!("The typed-data JSON of this ", $what, " in `domain`, as `eth_signTypedData_v4`")]
            /// takes it (see `Deletion::typed_data` for its form).
            pub fn typed_data(&self, domain: &CertificateDomain) -> Value {
                typed_data(&self.sol(), &domain.eip712())
            }

            #[doc = concat!("Reads a ", $what, " back from its typed-data JSON, which must be in `domain`.")]
            pub fn from_typed_data(
                json: &Value,
                domain: &CertificateDomain,
            ) -> Result<Self, TypedDataError> {
                let message: $sol = message_of(json, &domain.eip712())?;
                Self::from_sol(message)
            }
        }
    };
}

/// The patient's permission for `hospital` to certify one record on the certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthorization {
    /// The issuing hospital's id (see [`crate::hospital_id`]).
    pub hospital: [u8; 32],
    /// The record's id as left-aligned, zero-padded bytes32, like [`crate::hospital_id`].
    pub record_id: [u8; 32],
    /// IPFS CID of the record's envelope (Hash I).
    pub cid: String,
    /// SHA3-256 of the record's canonical content.
    pub content_fingerprint: [u8; 32],
    /// SHA3-256 of the record's signed watermark payload.
    pub watermark_fingerprint: [u8; 32],
    /// Makes the authorisation single-use; shares the patient's nonce space with consents.
    pub nonce: u64,
}

certificate_message!(
    CertificateAuthorization,
    sol::CertificateAuthorization,
    "authorisation"
);

impl CertificateAuthorization {
    fn from_sol(message: sol::CertificateAuthorization) -> Result<Self, TypedDataError> {
        Ok(Self {
            hospital: message.hospital.0,
            record_id: message.recordId.0,
            cid: message.cid,
            content_fingerprint: message.contentFingerprint.0,
            watermark_fingerprint: message.watermarkFingerprint.0,
            nonce: small(message.nonce, "nonce")?,
        })
    }

    fn sol(&self) -> sol::CertificateAuthorization {
        sol::CertificateAuthorization {
            hospital: self.hospital.into(),
            recordId: self.record_id.into(),
            cid: self.cid.clone(),
            contentFingerprint: self.content_fingerprint.into(),
            watermarkFingerprint: self.watermark_fingerprint.into(),
            nonce: U256::from(self.nonce),
        }
    }
}

/// The patient's consent to serve certificate `certificate_id` to `hospital` once, until
/// `expiry` (unix seconds). The nonce makes it single-use and lets the patient revoke it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// The recovering hospital's id (see [`crate::hospital_id`]).
    pub hospital: [u8; 32],
    /// The certificate's id on the `MedicalCertificate` contract.
    pub certificate_id: u64,
    /// The last moment the consent holds, in Unix seconds.
    pub expiry: u64,
    /// Makes the consent single-use and revocable; shares the patient's nonce space with
    /// authorisations.
    pub nonce: u64,
}

certificate_message!(Consent, sol::Consent, "consent");

impl Consent {
    fn from_sol(message: sol::Consent) -> Result<Self, TypedDataError> {
        Ok(Self {
            hospital: message.hospital.0,
            certificate_id: small(message.certificateId, "certificateId")?,
            expiry: message.expiry,
            nonce: small(message.nonce, "nonce")?,
        })
    }

    fn sol(&self) -> sol::Consent {
        sol::Consent {
            hospital: self.hospital.into(),
            certificateId: U256::from(self.certificate_id),
            expiry: self.expiry,
            nonce: U256::from(self.nonce),
        }
    }
}

/// The patient's authorisation for `agent`, an account of the patient's medcert wallet, to
/// act for the patient on the certificate contract: release a served recovery's key and
/// revoke the patient's consents and certificates. It lets a patient whose key lives in
/// another wallet (hardware, browser) run medcert's agent; the agent signs nothing for
/// the patient. The contract keeps one agent per patient; a newer authorisation replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentAuthorization {
    /// The account authorised to act for the patient.
    pub agent: Address,
    /// Makes the authorisation single-use; shares the patient's nonce space with
    /// authorisations and consents.
    pub nonce: u64,
}

certificate_message!(AgentAuthorization, sol::AgentAuthorization, "authorisation");

impl AgentAuthorization {
    fn from_sol(message: sol::AgentAuthorization) -> Result<Self, TypedDataError> {
        Ok(Self {
            agent: message.agent.into_array(),
            nonce: small(message.nonce, "nonce")?,
        })
    }

    fn sol(&self) -> sol::AgentAuthorization {
        sol::AgentAuthorization {
            agent: self.agent.into(),
            nonce: U256::from(self.nonce),
        }
    }
}

/// A patient's request to delete record `record_id` from hospital channel `channel`:
/// EIP-712 `Deletion(string channel,string recordId,uint64 nonce)` in the domain
/// `EIP712Domain(string name,string version)` = ("MedcertDeletion", "1"). The nonce makes
/// it single-use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The hospital's channel on the hospital chain.
    pub channel: String,
    /// The record's id.
    pub record_id: String,
    /// Makes the request single-use.
    pub nonce: u64,
}

impl Deletion {
    /// The EIP-712 digest the patient signs.
    pub fn digest(&self) -> [u8; 32] {
        self.sol().eip712_signing_hash(&DELETION_DOMAIN).0
    }

    /// The typed-data JSON of this request, as `eth_signTypedData_v4` takes it: `types`
    /// (with `EIP712Domain`), `primaryType`, `domain` and `message`; numbers are decimal
    /// strings (exact in any JSON reader), bytes32 values `0x`-hex and addresses EIP-55.
    pub fn typed_data(&self) -> Value {
        typed_data(&self.sol(), &DELETION_DOMAIN)
    }

    /// Reads a deletion request back from its typed-data JSON.
    pub fn from_typed_data(json: &Value) -> Result<Self, TypedDataError> {
        let message: sol::Deletion = message_of(json, &DELETION_DOMAIN)?;
        Ok(Self {
            channel: message.channel,
            record_id: message.recordId,
            nonce: message.nonce,
        })
    }

    fn sol(&self) -> sol::Deletion {
        sol::Deletion {
            channel: self.channel.clone(),
            recordId: self.record_id.clone(),
            nonce: self.nonce,
        }
    }
}

/// Digest of a patient's request to delete record `record_id` from hospital channel
/// `channel` (see [`Deletion`]).
pub fn deletion_digest(channel: &str, record_id: &str, nonce: u64) -> [u8; 32] {
    Deletion {
        channel: channel.to_owned(),
        record_id: record_id.to_owned(),
        nonce,
    }
    .digest()
}

/// A consent with the patient's signature, as it travels from the patient to the
/// hospital, through the hospital's `RequestRecovery`, to the relay: fixed-width bytes
/// hospital (32) ‖ certificate id ‖ expiry ‖ nonce (u64 big-endian each) ‖ signature (65).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedConsent {
    /// What the patient consented to.
    pub consent: Consent,
    /// The patient's signature of the consent's digest, r ‖ s ‖ v.
    pub signature: [u8; 65],
}

impl SignedConsent {
    /// Length of the encoded form.
    pub const LEN: usize = 32 + 8 + 8 + 8 + 65;

    /// The fixed-width encoding described above.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.consent.hospital);
        out[32..40].copy_from_slice(&self.consent.certificate_id.to_be_bytes());
        out[40..48].copy_from_slice(&self.consent.expiry.to_be_bytes());
        out[48..56].copy_from_slice(&self.consent.nonce.to_be_bytes());
        out[56..].copy_from_slice(&self.signature);
        out
    }

    /// Reads the fixed-width encoding; anything but [`SignedConsent::LEN`] bytes is refused.
    /// The signature is not checked here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConsentEncodingError> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| ConsentEncodingError(bytes.len()))?;
        let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let mut hospital = [0u8; 32];
        hospital.copy_from_slice(&bytes[..32]);
        let mut signature = [0u8; 65];
        signature.copy_from_slice(&bytes[56..]);
        Ok(Self {
            consent: Consent {
                hospital,
                certificate_id: word(32),
                expiry: word(40),
                nonce: word(48),
            },
            signature,
        })
    }
}

/// A signed consent of the wrong length; holds the length given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signed consent is {len} bytes, got {0}", len = SignedConsent::LEN)]
pub struct ConsentEncodingError(pub usize);

/// The typed-data JSON of `message` in `domain`, from the struct's own EIP-712 types.
fn typed_data<S: SolStruct + SolValue>(message: &S, domain: &Eip712Domain) -> Value {
    let mut types = Resolver::from_struct::<S>();
    types
        .ingest_string(domain.encode_type())
        .expect("a domain's type string is valid EIP-712");
    let value = types
        .resolve(S::NAME)
        .expect("a sol! struct resolves in its own types")
        .abi_decode(&SolValue::abi_encode(message))
        .expect("a struct's own ABI encoding decodes as its type");
    json!({
        "types": types,
        "primaryType": S::NAME,
        "domain": domain_json(domain),
        "message": value_json(&value),
    })
}

/// The message of typed-data JSON that declares `S` in `domain`.
fn message_of<S: SolStruct>(json: &Value, domain: &Eip712Domain) -> Result<S, TypedDataError> {
    let typed: TypedData = serde_json::from_value(json.clone()).map_err(TypedDataError::Json)?;
    if typed.primary_type != S::NAME {
        return Err(TypedDataError::PrimaryType {
            expected: S::NAME,
            found: typed.primary_type,
        });
    }
    let expected = S::eip712_encode_type();
    if typed.encode_type().ok().as_deref() != Some(&*expected) {
        return Err(TypedDataError::Types {
            expected: expected.into_owned(),
        });
    }
    if typed.domain != *domain {
        return Err(TypedDataError::Domain {
            expected: domain_json(domain).to_string(),
            found: domain_json(&typed.domain).to_string(),
        });
    }
    let value = typed.coerce().map_err(TypedDataError::Message)?;
    Ok(<S as SolType>::abi_decode(&value.abi_encode())
        .expect("a value coerced to the struct's type decodes as the struct"))
}

fn domain_json(domain: &Eip712Domain) -> Value {
    let mut fields = Map::new();
    if let Some(name) = &domain.name {
        fields.insert("name".into(), name.as_ref().into());
    }
    if let Some(version) = &domain.version {
        fields.insert("version".into(), version.as_ref().into());
    }
    if let Some(chain_id) = domain.chain_id {
        fields.insert("chainId".into(), chain_id.to_string().into());
    }
    if let Some(contract) = domain.verifying_contract {
        fields.insert(
            "verifyingContract".into(),
            contract.to_checksum(None).into(),
        );
    }
    if let Some(salt) = domain.salt {
        fields.insert("salt".into(), salt.to_string().into());
    }
    Value::Object(fields)
}

fn value_json(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Uint(number, _) => number.to_string().into(),
        DynSolValue::FixedBytes(word, size) => hex::encode_prefixed(&word[..*size]).into(),
        DynSolValue::String(text) => text.as_str().into(),
        DynSolValue::Address(address) => address.to_checksum(None).into(),
        DynSolValue::CustomStruct {
            prop_names, tuple, ..
        } => Value::Object(
            prop_names
                .iter()
                .cloned()
                .zip(tuple.iter().map(value_json))
                .collect(),
        ),
        other => unreachable!("medcert's messages hold no {other:?}"),
    }
}

fn small(number: U256, field: &'static str) -> Result<u64, TypedDataError> {
    number
        .try_into()
        .map_err(|_| TypedDataError::TooLarge { field })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hospital_id;

    // Digests of the messages below by the hand-written encoding medcert used before
    // alloy's, which the contract, the chaincode and ethers-rs agreed with: the library
    // must not change a single signature.
    const AUTHORIZATION_DIGEST: &str =
        "b386cb0cb8156a287abac096d6686e358f49af4b15f54ddc60217c6d5272eb1c";
    const CONSENT_DIGEST: &str = "9be4aa27b258b7debf1290df11e3422b50c474cae1f7eb1c4333883cdc53e862";
    const DELETION_DIGEST: &str =
        "92b95ecca2716a2f3be843629e4e17d510f7bfffd366a4215dbf7476bfc13562";
    const SEPARATOR: &str = "67e0f49aa23a5a4b3deb5626d03f349b78e336b0d4d91e23425a633bd7917a55";

    fn domain() -> CertificateDomain {
        CertificateDomain {
            chain_id: 31337,
            verifying_contract: [0x5f; 20],
        }
    }

    fn authorization() -> CertificateAuthorization {
        CertificateAuthorization {
            hospital: hospital_id("hospital1").unwrap(),
            record_id: [0x11; 32],
            cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
            content_fingerprint: [0xc0; 32],
            watermark_fingerprint: [0x3a; 32],
            nonce: 7,
        }
    }

    fn consent() -> Consent {
        Consent {
            hospital: hospital_id("hospital2").unwrap(),
            certificate_id: 12,
            expiry: 1_900_000_000,
            nonce: u64::MAX,
        }
    }

    fn deletion() -> Deletion {
        Deletion {
            channel: "hospital1".into(),
            record_id: "record-42".into(),
            nonce: 9,
        }
    }

    fn agent_authorization() -> AgentAuthorization {
        AgentAuthorization {
            agent: [0xa9; 20],
            nonce: 31,
        }
    }

    #[test]
    fn digests_are_those_medcert_always_signed() {
        assert_eq!(hex::encode(domain().separator()), SEPARATOR);
        assert_eq!(
            hex::encode(authorization().digest(&domain())),
            AUTHORIZATION_DIGEST
        );
        assert_eq!(hex::encode(consent().digest(&domain())), CONSENT_DIGEST);
        assert_eq!(hex::encode(deletion().digest()), DELETION_DIGEST);
        assert_eq!(
            hex::encode(deletion_digest("hospital1", "record-42", 9)),
            DELETION_DIGEST
        );
    }

    #[test]
    fn deletion_typed_data_is_the_wallet_json() {
        let expected = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                ],
                "Deletion": [
                    {"name": "channel", "type": "string"},
                    {"name": "recordId", "type": "string"},
                    {"name": "nonce", "type": "uint64"},
                ],
            },
            "primaryType": "Deletion",
            "domain": {"name": "MedcertDeletion", "version": "1"},
            "message": {"channel": "hospital1", "recordId": "record-42", "nonce": "9"},
        });
        assert_eq!(deletion().typed_data(), expected);
    }

    #[test]
    fn certificate_typed_data_writes_numbers_as_decimal_strings_and_words_as_hex() {
        let json = consent().typed_data(&domain());
        assert_eq!(
            json["domain"],
            json!({
                "name": "MedicalCertificate",
                "version": "1",
                "chainId": "31337",
                "verifyingContract": alloy_primitives::Address::from([0x5f; 20]).to_checksum(None),
            })
        );
        assert_eq!(
            json["message"],
            json!({
                "hospital": format!("0x{}", hex::encode(hospital_id("hospital2").unwrap())),
                "certificateId": "12",
                "expiry": "1900000000",
                "nonce": "18446744073709551615",
            })
        );
        assert_eq!(json["primaryType"], "Consent");
        assert_eq!(
            json["types"]["EIP712Domain"].as_array().unwrap().len(),
            4,
            "{json}"
        );
        let message = &authorization().typed_data(&domain())["message"];
        assert_eq!(message["recordId"], format!("0x{}", "11".repeat(32)));
        assert_eq!(message["cid"], authorization().cid);
        assert_eq!(message["nonce"], "7");
    }

    #[test]
    fn typed_data_hashes_to_the_digest_and_reads_back() {
        let digest_of = |json: &Value| {
            serde_json::from_value::<TypedData>(json.clone())
                .unwrap()
                .eip712_signing_hash()
                .unwrap()
                .0
        };
        let json = authorization().typed_data(&domain());
        assert_eq!(digest_of(&json), authorization().digest(&domain()));
        assert_eq!(
            CertificateAuthorization::from_typed_data(&json, &domain()).unwrap(),
            authorization()
        );
        let json = consent().typed_data(&domain());
        assert_eq!(digest_of(&json), consent().digest(&domain()));
        assert_eq!(
            Consent::from_typed_data(&json, &domain()).unwrap(),
            consent()
        );
        let json = deletion().typed_data();
        assert_eq!(digest_of(&json), deletion().digest());
        assert_eq!(Deletion::from_typed_data(&json).unwrap(), deletion());
        let json = agent_authorization().typed_data(&domain());
        assert_eq!(digest_of(&json), agent_authorization().digest(&domain()));
        assert_eq!(
            AgentAuthorization::from_typed_data(&json, &domain()).unwrap(),
            agent_authorization()
        );
    }

    #[test]
    fn agent_authorization_typed_data_names_the_agent_as_wallets_show_addresses() {
        let json = agent_authorization().typed_data(&domain());
        assert_eq!(json["primaryType"], "AgentAuthorization");
        assert_eq!(
            json["types"]["AgentAuthorization"],
            json!([
                {"name": "agent", "type": "address"},
                {"name": "nonce", "type": "uint256"},
            ])
        );
        assert_eq!(
            json["message"],
            json!({
                "agent": alloy_primitives::Address::from([0xa9; 20]).to_checksum(None),
                "nonce": "31",
            })
        );
        // Another agent, or the same agent in another domain, is another digest.
        let other = AgentAuthorization {
            agent: [0xaa; 20],
            ..agent_authorization()
        };
        assert_ne!(
            other.digest(&domain()),
            agent_authorization().digest(&domain())
        );
        let other_contract = CertificateDomain {
            verifying_contract: [0x60; 20],
            ..domain()
        };
        assert_ne!(
            agent_authorization().digest(&other_contract),
            agent_authorization().digest(&domain())
        );
        let error = AgentAuthorization::from_typed_data(&json, &other_contract).unwrap_err();
        assert!(matches!(error, TypedDataError::Domain { .. }), "{error}");
        let error =
            AgentAuthorization::from_typed_data(&consent().typed_data(&domain()), &domain())
                .unwrap_err();
        assert!(
            matches!(
                error,
                TypedDataError::PrimaryType {
                    expected: "AgentAuthorization",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn typed_data_of_another_message_domain_or_type_is_refused() {
        let json = consent().typed_data(&domain());
        let error = Deletion::from_typed_data(&json).unwrap_err();
        assert!(
            matches!(error, TypedDataError::PrimaryType { expected: "Deletion", ref found } if found == "Consent"),
            "{error}"
        );

        let other_chain = CertificateDomain {
            chain_id: 1,
            ..domain()
        };
        let error = Consent::from_typed_data(&json, &other_chain).unwrap_err();
        assert!(matches!(error, TypedDataError::Domain { .. }), "{error}");
        assert!(error.to_string().contains("\"chainId\":\"1\""), "{error}");

        let mut retyped = json.clone();
        retyped["types"]["Consent"][2]["type"] = "uint256".into();
        let error = Consent::from_typed_data(&retyped, &domain()).unwrap_err();
        assert!(matches!(error, TypedDataError::Types { .. }), "{error}");

        let mut huge = json.clone();
        huge["message"]["nonce"] = "18446744073709551616".into();
        let error = Consent::from_typed_data(&huge, &domain()).unwrap_err();
        assert!(
            matches!(error, TypedDataError::TooLarge { field: "nonce" }),
            "{error}"
        );

        let mut not_a_word = json.clone();
        not_a_word["message"]["hospital"] = "hospital2".into();
        let error = Consent::from_typed_data(&not_a_word, &domain()).unwrap_err();
        assert!(matches!(error, TypedDataError::Message(_)), "{error}");

        let error = Consent::from_typed_data(&json!({"message": {}}), &domain()).unwrap_err();
        assert!(matches!(error, TypedDataError::Json(_)), "{error}");
    }

    #[test]
    fn signed_consent_round_trips_and_rejects_wrong_lengths() {
        let signed = SignedConsent {
            consent: consent(),
            signature: [0x42; 65],
        };
        let bytes = signed.to_bytes();
        assert_eq!(SignedConsent::from_bytes(&bytes), Ok(signed));
        assert_eq!(
            SignedConsent::from_bytes(&bytes[1..]),
            Err(ConsentEncodingError(SignedConsent::LEN - 1))
        );
    }
}
