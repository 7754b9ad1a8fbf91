//! Fabric's policies evaluated over a set of verified signers: signature policies (n-of
//! gates over MSP principals) and implicit meta policies over a configuration group's
//! children, with Fabric's semantics (each signer satisfies at most one principal of a
//! gate, gates are tried in order and keep what they used when satisfied).

use medcert_fabric_protos::common::{
    ImplicitMetaPolicy, MspPrincipal, MspRole, SignaturePolicyEnvelope, implicit_meta_policy,
    msp_principal, msp_role, signature_policy,
};
use medcert_fabric_protos::msp::SerializedIdentity;
use medcert_fabric_protos::protos::{ApplicationPolicy, application_policy};
use prost::Message;

use crate::msp::{Member, Role};

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Part of the policy does not decode.
    #[error("malformed {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: prost::DecodeError,
    },
    /// The policy holds no rule.
    #[error("the policy names no rule")]
    Empty,
    /// A rule names a principal the envelope does not list.
    #[error("a rule names principal {index}, but the policy lists {listed}")]
    NoSuchPrincipal {
        /// The index named.
        index: i32,
        /// How many the envelope lists.
        listed: usize,
    },
    /// A principal's identity is not a certificate.
    #[error("identity principal")]
    Certificate(#[source] crate::msp::CertificateError),
    /// A policy reference that is not an absolute path under `/Channel`.
    #[error("policy reference {0:?} is not a path /Channel/…/<policy>")]
    Path(String),
    /// A policy reference naming nothing in the channel configuration.
    #[error("the channel configuration has no policy {0}")]
    Missing(String),
}

/// A member that signed, with its MSP: what a policy principal is matched against.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    /// The MSP that verified its certificate.
    pub msp_id: String,
    /// The verified certificate.
    pub member: Member,
}

/// A compiled `common.SignaturePolicyEnvelope`.
#[derive(Debug, Clone)]
pub(crate) struct SignaturePolicy {
    rule: Rule,
    principals: Vec<Principal>,
}

#[derive(Debug, Clone)]
enum Rule {
    SignedBy(usize),
    OutOf { n: i32, rules: Vec<Rule> },
}

#[derive(Debug, Clone)]
enum Principal {
    Role {
        msp_id: String,
        role: msp_role::MspRoleType,
    },
    /// One certificate, by its SHA3-256 `cert_id`.
    Identity { msp_id: String, cert_id: [u8; 32] },
    /// Organisational-unit, anonymity and combined principals: never satisfied here.
    Unsupported(i32),
}

impl SignaturePolicy {
    /// Compiles `envelope`, checking every principal index.
    pub(crate) fn compile(envelope: &SignaturePolicyEnvelope) -> Result<Self, PolicyError> {
        let principals = envelope
            .identities
            .iter()
            .map(Principal::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let rule = envelope.rule.as_ref().ok_or(PolicyError::Empty)?;
        Ok(Self {
            rule: Rule::compile(rule, principals.len())?,
            principals,
        })
    }

    /// Whether `signers` (distinct, verified) satisfy the policy.
    pub(crate) fn satisfied_by(&self, signers: &[Signer]) -> bool {
        let mut used = vec![false; signers.len()];
        self.rule.satisfied(&self.principals, signers, &mut used)
    }
}

impl Rule {
    fn compile(
        rule: &medcert_fabric_protos::common::SignaturePolicy,
        listed: usize,
    ) -> Result<Self, PolicyError> {
        match rule.r#type.as_ref().ok_or(PolicyError::Empty)? {
            signature_policy::Type::SignedBy(index) => usize::try_from(*index)
                .ok()
                .filter(|i| *i < listed)
                .map(Rule::SignedBy)
                .ok_or(PolicyError::NoSuchPrincipal {
                    index: *index,
                    listed,
                }),
            signature_policy::Type::NOutOf(gate) => Ok(Rule::OutOf {
                n: gate.n,
                rules: gate
                    .rules
                    .iter()
                    .map(|r| Rule::compile(r, listed))
                    .collect::<Result<_, _>>()?,
            }),
        }
    }

    /// Fabric's evaluation: a principal takes the first unused signer that satisfies it;
    /// a gate tries each rule on a copy of `used` and keeps the copy when it succeeds.
    fn satisfied(&self, principals: &[Principal], signers: &[Signer], used: &mut [bool]) -> bool {
        match self {
            Rule::SignedBy(index) => {
                let principal = &principals[*index];
                let found = signers
                    .iter()
                    .enumerate()
                    .find(|(i, signer)| !used[*i] && principal.satisfied_by(signer));
                match found {
                    Some((i, _)) => {
                        used[i] = true;
                        true
                    }
                    None => false,
                }
            }
            Rule::OutOf { n, rules } => {
                let mut satisfied = 0;
                for rule in rules {
                    let mut trial = used.to_vec();
                    if rule.satisfied(principals, signers, &mut trial) {
                        satisfied += 1;
                        used.copy_from_slice(&trial);
                    }
                }
                satisfied >= *n
            }
        }
    }

    fn fmt(&self, principals: &[Principal], f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::SignedBy(index) => write!(f, "{}", principals[*index]),
            Rule::OutOf { n, rules } => {
                write!(f, "OutOf({n}")?;
                for rule in rules {
                    f.write_str(", ")?;
                    rule.fmt(principals, f)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl std::fmt::Display for SignaturePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.rule.fmt(&self.principals, f)
    }
}

impl Principal {
    fn decode(principal: &MspPrincipal) -> Result<Self, PolicyError> {
        let malformed = |what| move |source| PolicyError::Malformed { what, source };
        let classification = principal.principal_classification;
        if classification == msp_principal::Classification::Role as i32 {
            let role = MspRole::decode(principal.principal.as_slice())
                .map_err(malformed("MSP role principal"))?;
            Ok(Principal::Role {
                role: role.role(),
                msp_id: role.msp_identifier,
            })
        } else if classification == msp_principal::Classification::Identity as i32 {
            let identity = SerializedIdentity::decode(principal.principal.as_slice())
                .map_err(malformed("identity principal"))?;
            Ok(Principal::Identity {
                cert_id: crate::msp::cert_id(&identity.id_bytes)
                    .map_err(PolicyError::Certificate)?,
                msp_id: identity.mspid,
            })
        } else {
            Ok(Principal::Unsupported(classification))
        }
    }

    fn satisfied_by(&self, signer: &Signer) -> bool {
        match self {
            Principal::Role { msp_id, role } => {
                *msp_id == signer.msp_id
                    && match role {
                        msp_role::MspRoleType::Member => true,
                        msp_role::MspRoleType::Admin => signer.member.role == Role::Admin,
                        msp_role::MspRoleType::Client => signer.member.role == Role::Client,
                        msp_role::MspRoleType::Peer => signer.member.role == Role::Peer,
                        msp_role::MspRoleType::Orderer => signer.member.role == Role::Orderer,
                    }
            }
            Principal::Identity { msp_id, cert_id } => {
                *msp_id == signer.msp_id && *cert_id == signer.member.cert_id
            }
            Principal::Unsupported(_) => false,
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Role { msp_id, role } => {
                write!(f, "'{msp_id}.{}'", role.as_str_name().to_lowercase())
            }
            Principal::Identity { msp_id, cert_id } => {
                write!(f, "'{msp_id} certificate {}'", hex::encode(&cert_id[..8]))
            }
            Principal::Unsupported(classification) => {
                write!(f, "<unsupported principal kind {classification}>")
            }
        }
    }
}

/// A policy of the channel configuration.
#[derive(Debug, Clone)]
pub(crate) enum ConfigPolicy {
    Signature(SignaturePolicy),
    ImplicitMeta {
        sub_policy: String,
        rule: implicit_meta_policy::Rule,
    },
    /// A policy type Fabric no longer writes (MSP): never satisfied.
    Unsupported(i32),
}

impl ConfigPolicy {
    pub(crate) fn implicit_meta(policy: &ImplicitMetaPolicy) -> Self {
        ConfigPolicy::ImplicitMeta {
            rule: policy.rule(),
            sub_policy: policy.sub_policy.clone(),
        }
    }
}

impl std::fmt::Display for ConfigPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigPolicy::Signature(policy) => policy.fmt(f),
            ConfigPolicy::ImplicitMeta { sub_policy, rule } => {
                write!(f, "{} {sub_policy}", rule.as_str_name())
            }
            ConfigPolicy::Unsupported(kind) => write!(f, "<unsupported policy type {kind}>"),
        }
    }
}

/// How many of `total` sub-policies an implicit meta policy needs. Fabric counts no
/// sub-policies as satisfied: the light client adds its own floor where that matters.
pub(crate) fn implicit_threshold(rule: implicit_meta_policy::Rule, total: usize) -> usize {
    if total == 0 {
        return 0;
    }
    match rule {
        implicit_meta_policy::Rule::Any => 1,
        implicit_meta_policy::Rule::All => total,
        implicit_meta_policy::Rule::Majority => total / 2 + 1,
    }
}

/// A chaincode's endorsement policy, from the validation parameter of its committed
/// definition (`_lifecycle`'s `QueryChaincodeDefinition`): a signature policy of its own,
/// or a reference to a channel policy such as `/Channel/Application/Endorsement` (the
/// default, `MAJORITY Endorsement` of the application organisations).
#[derive(Debug, Clone)]
pub struct EndorsementPolicy(pub(crate) EndorsementRule);

#[derive(Debug, Clone)]
pub(crate) enum EndorsementRule {
    Signature(SignaturePolicy),
    Reference(String),
}

impl EndorsementPolicy {
    /// The policy a chaincode definition's validation parameter (a
    /// `protos.ApplicationPolicy`) holds.
    pub fn from_validation_parameter(bytes: &[u8]) -> Result<Self, PolicyError> {
        let policy = ApplicationPolicy::decode(bytes).map_err(|source| PolicyError::Malformed {
            what: "application policy",
            source,
        })?;
        match policy.r#type.ok_or(PolicyError::Empty)? {
            application_policy::Type::SignaturePolicy(envelope) => Ok(Self(
                EndorsementRule::Signature(SignaturePolicy::compile(&envelope)?),
            )),
            application_policy::Type::ChannelConfigPolicyReference(path) => {
                Ok(Self(EndorsementRule::Reference(path)))
            }
        }
    }
}

impl std::fmt::Display for EndorsementPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            EndorsementRule::Signature(policy) => policy.fmt(f),
            EndorsementRule::Reference(path) => f.write_str(path),
        }
    }
}
