//! A channel's configuration as a configuration block carries it: its organisations'
//! MSPs, its policies, and the Raft consenters of its ordering service.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use medcert_fabric_protos::common::{
    Block, ConfigEnvelope, ConfigGroup, HeaderType, ImplicitMetaPolicy, SignaturePolicyEnvelope,
    policy,
};
use medcert_fabric_protos::etcdraft::ConfigMetadata;
use medcert_fabric_protos::msp::{
    FabricMspConfig, FabricOuIdentifier, MspConfig, SerializedIdentity,
};
use medcert_fabric_protos::orderer::ConsensusType;
use prost::Message;

use super::policy::{ConfigPolicy, PolicyError, SignaturePolicy, Signer, implicit_threshold};
use crate::msp::{CaError, CertificateError, MemberError, MspTrust, NodeOus, Role};

/// The channel configuration's root group, as policy paths name it.
const ROOT: &str = "Channel";
const APPLICATION: &str = "Application";
const ORDERER: &str = "Orderer";
const MSP_VALUE: &str = "MSP";
const CONSENSUS_TYPE_VALUE: &str = "ConsensusType";
const RAFT: &str = "etcdraft";
/// `msp.MSPConfig.type` of an X.509 MSP.
const FABRIC_MSP: i32 = 0;

/// Why a configuration block cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The block is not a configuration block.
    #[error("block {number} is not a configuration block")]
    NotConfig {
        /// The block.
        number: u64,
    },
    /// Part of the block does not decode.
    #[error("malformed {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: prost::DecodeError,
    },
    /// The configuration lacks a part every channel has.
    #[error("the configuration has no {0}")]
    Incomplete(&'static str),
    /// The configuration is another channel's.
    #[error("the configuration is channel {found}'s, not {expected}'s")]
    Channel {
        /// The channel expected.
        expected: String,
        /// The channel it names.
        found: String,
    },
    /// A policy of the configuration cannot be used.
    #[error("policy {path}")]
    Policy {
        /// Its path.
        path: String,
        /// Why.
        #[source]
        source: PolicyError,
    },
    /// An organisation's MSP uses what the light client does not check.
    #[error("organisation {org}'s MSP has {what}, which the light client does not support")]
    UnsupportedMsp {
        /// The organisation's group name.
        org: String,
        /// What.
        what: String,
    },
    /// An organisation's MSP CA is not a usable trust anchor.
    #[error("organisation {org}'s MSP")]
    Ca {
        /// The organisation's group name.
        org: String,
        /// Why.
        #[source]
        source: CaError,
    },
    /// The ordering service is not a Raft one.
    #[error("ordering service type {0:?} is not supported (only {RAFT})")]
    Consensus(String),
    /// A consenter's TLS certificate cannot be read.
    #[error("consenter {index}'s TLS certificate")]
    Consenter {
        /// Its position in the consenter set.
        index: usize,
        /// Why.
        #[source]
        source: CertificateError,
    },
}

/// Why an identity is not a member of an organisation of the channel.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The identity is not an `msp.SerializedIdentity`.
    #[error("not a serialized identity")]
    Decode(#[source] prost::DecodeError),
    /// It names an MSP the channel does not have.
    #[error("MSP {0} is not an organisation of the channel")]
    UnknownMsp(String),
    /// Its certificate is not a member's of the MSP it names.
    #[error("not a member of {msp_id}")]
    Member {
        /// The MSP it names.
        msp_id: String,
        /// Why.
        #[source]
        source: MemberError,
    },
}

/// A channel's configuration: what the blocks after its configuration block are checked
/// against.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    channel: String,
    block: Block,
    number: u64,
    root: Group,
    /// Every organisation's MSP, by MSP id.
    msps: BTreeMap<String, MspTrust>,
    /// The MSP ids of the ordering organisations.
    orderer_msps: BTreeSet<String>,
    /// Subject common names of the consenters' TLS certificates.
    consenters: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct Group {
    groups: BTreeMap<String, Group>,
    policies: BTreeMap<String, ConfigPolicy>,
}

fn malformed(what: &'static str) -> impl FnOnce(prost::DecodeError) -> ConfigError {
    move |source| ConfigError::Malformed { what, source }
}

impl ChannelConfig {
    /// The configuration that configuration block `block` of `channel` sets.
    pub fn from_block(channel: &str, block: &Block) -> Result<Self, ConfigError> {
        let number = block.header.as_ref().map(|h| h.number).unwrap_or_default();
        let not_config = ConfigError::NotConfig { number };
        let [envelope] = block
            .data
            .as_ref()
            .map(|d| d.data.as_slice())
            .unwrap_or(&[])
        else {
            return Err(not_config);
        };
        let (channel_header, payload) = crate::block::open(
            &medcert_fabric_protos::common::Envelope::decode(envelope.as_slice())
                .map_err(malformed("envelope"))?,
        )
        .map_err(|e| match e {
            crate::Error::Decode { what, source } => ConfigError::Malformed { what, source },
            _ => ConfigError::Incomplete("payload header"),
        })?;
        if channel_header.r#type != HeaderType::Config as i32 {
            return Err(not_config);
        }
        if channel_header.channel_id != channel {
            return Err(ConfigError::Channel {
                expected: channel.to_owned(),
                found: channel_header.channel_id,
            });
        }
        let root = ConfigEnvelope::decode(payload.data.as_slice())
            .map_err(malformed("configuration envelope"))?
            .config
            .and_then(|c| c.channel_group)
            .ok_or(ConfigError::Incomplete("channel group"))?;
        let orderer = root
            .groups
            .get(ORDERER)
            .ok_or(ConfigError::Incomplete("Orderer group"))?;
        let mut msps = BTreeMap::new();
        let orderer_msps = read_msps(orderer, &mut msps)?;
        if orderer_msps.is_empty() {
            return Err(ConfigError::Incomplete("ordering organisation"));
        }
        if let Some(application) = root.groups.get(APPLICATION) {
            read_msps(application, &mut msps)?;
        }
        Ok(Self {
            channel: channel.to_owned(),
            block: block.clone(),
            number,
            root: Group::read(&format!("/{ROOT}"), &root)?,
            msps,
            orderer_msps,
            consenters: raft_consenters(orderer)?,
        })
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The configuration block this configuration comes from (to persist it).
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// That block's number.
    pub fn block_number(&self) -> u64 {
        self.number
    }

    /// The MSP `msp_id` of an organisation of the channel.
    pub fn msp(&self, msp_id: &str) -> Option<&MspTrust> {
        self.msps.get(msp_id)
    }

    /// The member `identity` (an `msp.SerializedIdentity`) is, valid at `at`.
    pub(crate) fn signer(&self, identity: &[u8], at: SystemTime) -> Result<Signer, IdentityError> {
        let identity = SerializedIdentity::decode(identity).map_err(IdentityError::Decode)?;
        let trust = self
            .msps
            .get(&identity.mspid)
            .ok_or_else(|| IdentityError::UnknownMsp(identity.mspid.clone()))?;
        let member = trust
            .verify_member(&identity.id_bytes, at)
            .map_err(|source| IdentityError::Member {
                msp_id: identity.mspid.clone(),
                source,
            })?;
        Ok(Signer {
            msp_id: identity.mspid,
            member,
        })
    }

    /// Whether `msp_id` is an ordering organisation.
    pub(crate) fn is_orderer_org(&self, msp_id: &str) -> bool {
        self.orderer_msps.contains(msp_id)
    }

    /// Whether a consenter's TLS certificate has the subject common name `name`.
    pub(crate) fn is_consenter(&self, name: &str) -> bool {
        self.consenters.contains(name)
    }

    /// The role an orderer of `msp_id` has as its NodeOUs are configured: orderer, or
    /// peer where no orderer OU is configured, or a plain member without NodeOUs.
    pub(crate) fn orderer_role(&self, msp_id: &str) -> Role {
        match self.msps.get(msp_id).and_then(|m| m.node_ous()) {
            None => Role::Member,
            Some(ous) if ous.orderer.is_some() => Role::Orderer,
            Some(_) => Role::Peer,
        }
    }

    /// Whether `signers` satisfy the policy at `path` (e.g. `/Channel/Orderer/BlockValidation`).
    pub(crate) fn satisfied(&self, path: &str, signers: &[Signer]) -> Result<bool, PolicyError> {
        let (group, policy) = self.policy(path)?;
        Ok(group.satisfied(policy, signers))
    }

    /// The policy at `path`, for messages.
    pub(crate) fn describe(&self, path: &str) -> String {
        self.policy(path)
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    fn policy(&self, path: &str) -> Result<(&Group, &ConfigPolicy), PolicyError> {
        let bad_path = || PolicyError::Path(path.to_owned());
        let mut parts = path
            .strip_prefix('/')
            .ok_or_else(bad_path)?
            .split('/')
            .collect::<Vec<_>>();
        let name = parts.pop().ok_or_else(bad_path)?;
        if parts.first() != Some(&ROOT) {
            return Err(bad_path());
        }
        let missing = || PolicyError::Missing(path.to_owned());
        let mut group = &self.root;
        for part in &parts[1..] {
            group = group.groups.get(*part).ok_or_else(missing)?;
        }
        let policy = group.policies.get(name).ok_or_else(missing)?;
        Ok((group, policy))
    }
}

impl Group {
    fn read(path: &str, group: &ConfigGroup) -> Result<Self, ConfigError> {
        let mut policies = BTreeMap::new();
        for (name, config_policy) in &group.policies {
            let path = format!("{path}/{name}");
            let bad = |source| ConfigError::Policy {
                path: path.clone(),
                source,
            };
            let malformed_policy = |what| move |source| PolicyError::Malformed { what, source };
            let policy = config_policy.policy.clone().unwrap_or_default();
            let compiled = if policy.r#type == policy::PolicyType::Signature as i32 {
                SignaturePolicyEnvelope::decode(policy.value.as_slice())
                    .map_err(malformed_policy("signature policy"))
                    .and_then(|envelope| SignaturePolicy::compile(&envelope))
                    .map(ConfigPolicy::Signature)
                    .map_err(bad)?
            } else if policy.r#type == policy::PolicyType::ImplicitMeta as i32 {
                ImplicitMetaPolicy::decode(policy.value.as_slice())
                    .map_err(malformed_policy("implicit meta policy"))
                    .map(|implicit| ConfigPolicy::implicit_meta(&implicit))
                    .map_err(bad)?
            } else {
                ConfigPolicy::Unsupported(policy.r#type)
            };
            policies.insert(name.clone(), compiled);
        }
        let groups = group
            .groups
            .iter()
            .map(|(name, child)| Ok((name.clone(), Group::read(&format!("{path}/{name}"), child)?)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { groups, policies })
    }

    fn satisfied(&self, policy: &ConfigPolicy, signers: &[Signer]) -> bool {
        match policy {
            ConfigPolicy::Signature(policy) => policy.satisfied_by(signers),
            ConfigPolicy::ImplicitMeta { sub_policy, rule } => {
                let met = self
                    .groups
                    .values()
                    .filter(|child| {
                        child
                            .policies
                            .get(sub_policy)
                            .is_some_and(|p| child.satisfied(p, signers))
                    })
                    .count();
                met >= implicit_threshold(*rule, self.groups.len())
            }
            ConfigPolicy::Unsupported(_) => false,
        }
    }
}

/// Reads the MSP of every organisation (child group) of `section` into `msps`; answers
/// their MSP ids.
fn read_msps(
    section: &ConfigGroup,
    msps: &mut BTreeMap<String, MspTrust>,
) -> Result<BTreeSet<String>, ConfigError> {
    let mut ids = BTreeSet::new();
    for (org, group) in &section.groups {
        let Some(value) = group.values.get(MSP_VALUE) else {
            continue;
        };
        let trust = read_msp(org, &value.value)?;
        ids.insert(trust.msp_id().to_owned());
        msps.insert(trust.msp_id().to_owned(), trust);
    }
    Ok(ids)
}

fn read_msp(org: &str, value: &[u8]) -> Result<MspTrust, ConfigError> {
    let unsupported = |what: String| ConfigError::UnsupportedMsp {
        org: org.to_owned(),
        what,
    };
    let config = MspConfig::decode(value).map_err(malformed("MSP configuration"))?;
    if config.r#type != FABRIC_MSP {
        return Err(unsupported(format!("type {} (not X.509)", config.r#type)));
    }
    let msp = FabricMspConfig::decode(config.config.as_slice())
        .map_err(malformed("Fabric MSP configuration"))?;
    if !msp.intermediate_certs.is_empty() {
        return Err(unsupported("intermediate CAs".into()));
    }
    if !msp.revocation_list.is_empty() {
        return Err(unsupported("a revocation list".into()));
    }
    let [root] = msp.root_certs.as_slice() else {
        return Err(unsupported(format!(
            "{} root CAs (it reads exactly one)",
            msp.root_certs.len()
        )));
    };
    let node_ous = match msp.fabric_node_ous.filter(|n| n.enable) {
        None => None,
        Some(ous) => {
            let ou = |id: Option<FabricOuIdentifier>| id.map(|i| i.organizational_unit_identifier);
            let (Some(client), Some(peer)) =
                (ou(ous.client_ou_identifier), ou(ous.peer_ou_identifier))
            else {
                return Err(unsupported("NodeOUs without a client and a peer OU".into()));
            };
            Some(NodeOus {
                client,
                peer,
                admin: ou(ous.admin_ou_identifier),
                orderer: ou(ous.orderer_ou_identifier),
            })
        }
    };
    Ok(MspTrust::from_pem(&msp.name, root)
        .map_err(|source| ConfigError::Ca {
            org: org.to_owned(),
            source,
        })?
        .with_node_ous(node_ous))
}

/// The common names of the Raft consenters' TLS certificates.
fn raft_consenters(orderer: &ConfigGroup) -> Result<BTreeSet<String>, ConfigError> {
    let value = orderer
        .values
        .get(CONSENSUS_TYPE_VALUE)
        .ok_or(ConfigError::Incomplete("consensus type"))?;
    let consensus =
        ConsensusType::decode(value.value.as_slice()).map_err(malformed("consensus type"))?;
    if consensus.r#type != RAFT {
        return Err(ConfigError::Consensus(consensus.r#type));
    }
    let metadata = ConfigMetadata::decode(consensus.metadata.as_slice())
        .map_err(malformed("Raft metadata"))?;
    let mut names = BTreeSet::new();
    for (index, consenter) in metadata.consenters.iter().enumerate() {
        for cert in [&consenter.server_tls_cert, &consenter.client_tls_cert] {
            let name = crate::msp::common_name(cert)
                .map_err(|source| ConfigError::Consenter { index, source })?;
            names.insert(name);
        }
    }
    if names.is_empty() {
        return Err(ConfigError::Incomplete("consenter"));
    }
    Ok(names)
}
