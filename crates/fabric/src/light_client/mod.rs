//! A light client of one Fabric channel: which blocks are the channel's, and what a
//! transaction in one of them proves, checked without the channel's world state.
//!
//! # Which blocks are the channel's
//!
//! The root of trust is one configuration block of the channel and one block at or after
//! it ([`LightClient::bootstrap`]), taken on first use: the caller cross-checks them
//! against what it knows out of band (medcert's relay: the hospital's MSP CA from the
//! network description must be the channel's). It then persists the client's
//! [`LightClient::head`] and configuration block, and resumes from them
//! ([`LightClient::resume`]). From there [`LightClient::verify`] accepts a block after
//! the head only when
//! 1. its number is the head's plus one and its `previous_hash` is the head's hash
//!    ([`block_hash`]: SHA-256 of the header's ASN.1 DER encoding);
//! 2. its `data_hash` is the hash of its transactions ([`data_hash`]), so its data is the
//!    data the orderers signed, and every transaction names the channel;
//! 3. the signatures in its SIGNATURES metadata, each over `metadata.value ‖
//!    signature_header ‖ header DER`, satisfy the channel's
//!    `/Channel/Orderer/BlockValidation` policy as the configuration defines it, counting
//!    only signers that are members of an ordering organisation, with its orderer NodeOU
//!    role (the peer role where the MSP configures no orderer OU), with a certificate valid
//!    at the block's time and named (subject common name) like one of the Raft consenters'
//!    TLS certificates. At least one such signature is needed whatever the policy says;
//! 4. the last-configuration index in the signed metadata names the configuration the
//!    client holds (a configuration block names itself, and its configuration governs
//!    the blocks after it).
//!
//! A block at or below the head is accepted when the hashes link it to the head.
//!
//! # What a transaction proves
//!
//! [`LightClient::transaction`] checks, in a verified block, what a committing peer's
//! validation checks of an endorser transaction and can be checked without state: the
//! creator is a member of an organisation of the channel whose signature over the
//! envelope verifies, the transaction id is the hash of nonce and creator, the one action's
//! proposal hash covers the transaction's headers and proposal, the endorsed action is the
//! expected chaincode's, and the endorsements are by distinct peers (peer NodeOU role) of
//! the expected organisation, each signature valid, enough of them to satisfy the
//! chaincode's endorsement policy as the channel defines it ([`EndorsementPolicy`]).
//!
//! What is trusted, not proven:
//! - the validation code. The TRANSACTIONS_FILTER metadata is written by the committing
//!   peer after ordering, and no orderer signature covers it (Fabric 2.x and 3.x). Whether
//!   the transaction passed the MVCC check of its reads against the world state, and that
//!   its id was not committed before, cannot be recomputed without the state. The client
//!   requires the VALID flag and takes it as the claim of the peer the block came from, so
//!   callers must fetch blocks from their own peer, never take a block a third party
//!   hands them;
//! - the endorsement policy, which the caller reads from the peer's `_lifecycle`
//!   (the committed chaincode definition); a policy that references the channel
//!   configuration is resolved in the verified configuration;
//! - the time. A Raft block carries no time of its own; certificates are judged at the
//!   channel header timestamps, which each transaction's creator sets and its endorsers
//!   sign (through the proposal hash): an endorser's at its transaction's timestamp, an
//!   orderer's at the latest timestamp in its block;
//! - the first configuration block, as said above.
//!
//! Not supported (a configuration that uses them is refused, [`ConfigError`]): BFT
//! ordering, MSPs with intermediate CAs, revocation lists or another type than X.509.

mod config;
mod header;
mod policy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod transaction;

pub use config::{ChannelConfig, ConfigError, IdentityError};
pub use header::{block_hash, data_hash};
pub use policy::{EndorsementPolicy, PolicyError};
pub use transaction::{EndorserError, Endorsing, TransactionError, VerifiedTransaction};

use std::collections::BTreeSet;
use std::time::SystemTime;

use medcert_fabric_protos::common::{
    Block, BlockHeader, BlockMetadataIndex, Envelope, HeaderType, Metadata, OrdererBlockMetadata,
    SignatureHeader,
};
use prost::Message;

use crate::msp::{Role, SignatureError};
use policy::Signer;

/// The policy every block's orderer signatures must satisfy.
pub const BLOCK_VALIDATION: &str = "/Channel/Orderer/BlockValidation";

/// The last block the client verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedHead {
    /// Its number.
    pub number: u64,
    /// Its hash ([`block_hash`]).
    pub hash: [u8; 32],
}

/// A block the light client accepted as the channel's.
#[derive(Debug, Clone)]
pub struct VerifiedBlock(Block);

impl VerifiedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.0
    }

    /// Its number.
    pub fn number(&self) -> u64 {
        self.0.header.as_ref().map(|h| h.number).unwrap_or_default()
    }
}

/// Why a block is not accepted as the channel's: each variant names the check it fails.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The block has no header.
    #[error("a block without a header")]
    NoHeader,
    /// The block does not decode.
    #[error("block {number} is malformed")]
    Malformed {
        /// The block.
        number: u64,
        /// Why.
        #[source]
        source: crate::Error,
    },
    /// The first block given is past the one after the head.
    #[error("block {found} does not follow the verified head, block {head}")]
    Gap {
        /// The head's number.
        head: u64,
        /// The block given.
        found: u64,
    },
    /// Blocks given out of order.
    #[error("block {found} given after block {previous}")]
    OutOfOrder {
        /// The block before.
        previous: u64,
        /// The block given.
        found: u64,
    },
    /// The header's previous hash is not the hash of the block before: a broken chain.
    #[error(
        "broken hash chain: block {number}'s previous hash {} is not block {}'s hash {}",
        hex::encode(.found), .number.saturating_sub(1), hex::encode(.expected)
    )]
    PreviousHash {
        /// The block.
        number: u64,
        /// The hash of the block before.
        expected: [u8; 32],
        /// The previous hash its header names.
        found: Vec<u8>,
    },
    /// The header's data hash is not the hash of the block's transactions.
    #[error("block {number}'s data hash does not match its transactions")]
    DataHash {
        /// The block.
        number: u64,
    },
    /// A block with the head's number but another hash.
    #[error("block {number} is not the verified block {number} (its hash differs)")]
    NotOnChain {
        /// The block.
        number: u64,
    },
    /// Blocks below the head that stop before it, so nothing links them to it.
    #[error("blocks up to {last} stop before the verified head, block {head}")]
    ShortOfHead {
        /// The last block given.
        last: u64,
        /// The head's number.
        head: u64,
    },
    /// A transaction of another channel.
    #[error("block {number} holds a transaction of channel {found}, not {expected}")]
    Channel {
        /// The block.
        number: u64,
        /// The channel expected.
        expected: String,
        /// The channel named.
        found: String,
    },
    /// No timestamp to judge the orderers' certificates at.
    #[error("block {number} holds no timestamp to judge certificates at")]
    NoTime {
        /// The block.
        number: u64,
    },
    /// The signed metadata names another configuration than the client's.
    #[error(
        "block {number}'s signed metadata names configuration block {claimed}, but the verified configuration is block {known}"
    )]
    LastConfig {
        /// The block.
        number: u64,
        /// The configuration block it names.
        claimed: u64,
        /// The configuration block the client holds.
        known: u64,
    },
    /// The orderer signatures do not satisfy the block validation policy; why each one
    /// was not counted.
    #[error(
        "block {number}: the orderer signatures do not satisfy {BLOCK_VALIDATION} ({rule}); {}",
        rejections(.counted, .rejected)
    )]
    Signatures {
        /// The block.
        number: u64,
        /// The policy as the configuration defines it.
        rule: String,
        /// How many distinct signers counted.
        counted: usize,
        /// The signatures that did not count, by position, and why.
        rejected: Vec<(usize, SignerError)>,
    },
    /// The block validation policy cannot be evaluated.
    #[error("block {number}: {BLOCK_VALIDATION}")]
    Policy {
        /// The block.
        number: u64,
        /// Why.
        #[source]
        source: PolicyError,
    },
    /// A configuration block whose configuration cannot be used.
    #[error("configuration block {number}")]
    Config {
        /// The block.
        number: u64,
        /// Why.
        #[source]
        source: ConfigError,
    },
}

/// Why one orderer signature does not count.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// Its signature header does not decode.
    #[error("its signature header does not decode")]
    Header(#[source] prost::DecodeError),
    /// A BFT orderer's identifier header.
    #[error("it names its signer by a BFT identifier (only Raft ordering is supported)")]
    IdentifierHeader,
    /// The signer is not a member of an organisation of the channel.
    #[error("signer")]
    Identity(#[source] IdentityError),
    /// The signer is of an application organisation.
    #[error("{name} of {msp_id} is not of an ordering organisation")]
    NotOrdering {
        /// The signer's common name.
        name: String,
        /// Its MSP.
        msp_id: String,
    },
    /// The signer does not have the orderer role.
    #[error("{name} is a {role}, not an orderer ({expected} role)")]
    Role {
        /// The signer's common name.
        name: String,
        /// Its role.
        role: Role,
        /// The role its MSP gives orderers.
        expected: Role,
    },
    /// The signer is not one of the channel's consenters.
    #[error("{name} is not a consenter of the channel")]
    NotConsenter {
        /// The signer's common name.
        name: String,
    },
    /// The signature is not the signer's.
    #[error("forged signature of {name}")]
    Signature {
        /// The signer's common name.
        name: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
}

/// The configuration block `block`'s signed metadata names as in force at its height,
/// if it names one: where a client that trusts `block` finds the configuration to check
/// it with.
pub fn last_config(block: &Block) -> Option<u64> {
    let metadata = block
        .metadata
        .as_ref()?
        .metadata
        .get(BlockMetadataIndex::Signatures as usize)?;
    let metadata = Metadata::decode(metadata.as_slice()).ok()?;
    OrdererBlockMetadata::decode(metadata.value.as_slice())
        .ok()?
        .last_config
        .map(|c| c.index)
}

/// `error: source: source`, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn rejections(counted: &usize, rejected: &[(usize, SignerError)]) -> String {
    let mut text = format!("{counted} signer(s) counted");
    for (index, reason) in rejected {
        text.push_str(&format!("; signature {index}: {}", chain(reason)));
    }
    text
}

/// A light client of one channel (see the module docs): its verified head and the
/// configuration in force after it.
#[derive(Debug, Clone)]
pub struct LightClient {
    config: ChannelConfig,
    head: TrustedHead,
}

/// What checking a block's transactions told.
struct Contents {
    /// The latest channel header timestamp.
    time: Option<SystemTime>,
    /// Whether it is a configuration block.
    config: bool,
}

impl LightClient {
    /// Trusts `config_block` (the channel's latest configuration block) and `head` (that
    /// block or a later one), checking that `head` is signed as that configuration
    /// requires and names it as its configuration.
    pub fn bootstrap(
        channel: &str,
        config_block: &Block,
        head: &Block,
    ) -> Result<Self, BlockError> {
        let config_header = config_block.header.as_ref().ok_or(BlockError::NoHeader)?;
        let number = config_header.number;
        check_data_hash(config_block, config_header)?;
        let config = ChannelConfig::from_block(channel, config_block)
            .map_err(|source| BlockError::Config { number, source })?;
        let mut client = Self {
            config,
            head: TrustedHead {
                number,
                hash: block_hash(config_header),
            },
        };
        let header = head.header.as_ref().ok_or(BlockError::NoHeader)?;
        if header.number < number {
            return Err(BlockError::OutOfOrder {
                previous: number,
                found: header.number,
            });
        }
        if header.number == number {
            if block_hash(header) != client.head.hash {
                return Err(BlockError::NotOnChain { number });
            }
            return Ok(client);
        }
        check_data_hash(head, header)?;
        let contents = client.check(head, header)?;
        client.advance(head, header, &contents)?;
        Ok(client)
    }

    /// Resumes from a persisted head and the configuration block in force after it
    /// (both as [`LightClient::head`] and [`ChannelConfig::block`] gave them).
    pub fn resume(
        channel: &str,
        config_block: &Block,
        head: TrustedHead,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            config: ChannelConfig::from_block(channel, config_block)?,
            head,
        })
    }

    /// The last block verified.
    pub fn head(&self) -> TrustedHead {
        self.head
    }

    /// The configuration in force after the head.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Verifies consecutive `blocks`, in ascending order from any block up to the one
    /// after the head: those at or below the head by their hash links to it, those after
    /// it by every check of the module docs, advancing the head one block at a time (on
    /// an error, the head is the last block that passed).
    pub fn verify(
        &mut self,
        blocks: impl IntoIterator<Item = Block>,
    ) -> Result<Vec<VerifiedBlock>, BlockError> {
        let mut verified = Vec::new();
        let mut below_head = Vec::new();
        let mut previous: Option<(u64, [u8; 32])> = None;
        for block in blocks {
            let header = block.header.as_ref().ok_or(BlockError::NoHeader)?;
            let number = header.number;
            let hash = block_hash(header);
            let (previous_number, previous_hash) = match previous {
                Some(previous) => previous,
                None if number > self.head.number + 1 => {
                    return Err(BlockError::Gap {
                        head: self.head.number,
                        found: number,
                    });
                }
                None => (self.head.number, self.head.hash),
            };
            // The first block at or below the head has nothing before it to link to: the
            // blocks after it link it to the head.
            if previous.is_some() || number == self.head.number + 1 {
                if number != previous_number + 1 {
                    return Err(BlockError::OutOfOrder {
                        previous: previous_number,
                        found: number,
                    });
                }
                if header.previous_hash != previous_hash {
                    return Err(BlockError::PreviousHash {
                        number,
                        expected: previous_hash,
                        found: header.previous_hash.clone(),
                    });
                }
            }
            check_data_hash(&block, header)?;
            previous = Some((number, hash));
            if number < self.head.number {
                below_head.push(VerifiedBlock(block));
                continue;
            }
            if number == self.head.number {
                if hash != self.head.hash {
                    return Err(BlockError::NotOnChain { number });
                }
                verified.append(&mut below_head);
                verified.push(VerifiedBlock(block));
                continue;
            }
            let contents = self.check(&block, header)?;
            self.advance(&block, header, &contents)?;
            verified.push(VerifiedBlock(block));
        }
        if let Some(last) = below_head.last() {
            return Err(BlockError::ShortOfHead {
                last: last.number(),
                head: self.head.number,
            });
        }
        Ok(verified)
    }

    /// Makes `block` (checked) the head, and its configuration the client's if it is a
    /// configuration block.
    fn advance(
        &mut self,
        block: &Block,
        header: &BlockHeader,
        contents: &Contents,
    ) -> Result<(), BlockError> {
        let number = header.number;
        if contents.config {
            self.config = ChannelConfig::from_block(self.config.channel(), block)
                .map_err(|source| BlockError::Config { number, source })?;
        }
        self.head = TrustedHead {
            number,
            hash: block_hash(header),
        };
        Ok(())
    }

    /// Checks a block after the head (its data hash already checked): its transactions'
    /// channel, its orderer signatures and the configuration it names.
    fn check(&self, block: &Block, header: &BlockHeader) -> Result<Contents, BlockError> {
        let number = header.number;
        let contents = self.contents(block, number)?;
        let malformed = |source| BlockError::Malformed { number, source };
        let decode = |what| move |source| malformed(crate::Error::Decode { what, source });
        let metadata = block
            .metadata
            .as_ref()
            .and_then(|m| m.metadata.get(BlockMetadataIndex::Signatures as usize))
            .ok_or(malformed(crate::Error::Incomplete(
                "no SIGNATURES metadata",
            )))?;
        let metadata =
            Metadata::decode(metadata.as_slice()).map_err(decode("SIGNATURES metadata"))?;
        let signed = OrdererBlockMetadata::decode(metadata.value.as_slice())
            .map_err(decode("orderer block metadata"))?;
        let claimed = signed.last_config.map(|c| c.index).unwrap_or_default();
        let known = if contents.config {
            number
        } else {
            self.config.block_number()
        };
        if claimed != known {
            return Err(BlockError::LastConfig {
                number,
                claimed,
                known,
            });
        }
        let time = contents.time.ok_or(BlockError::NoTime { number })?;
        let header_bytes = header::header_bytes(header);
        let mut signers: Vec<Signer> = Vec::new();
        let mut counted = BTreeSet::new();
        let mut rejected = Vec::new();
        for (index, signature) in metadata.signatures.iter().enumerate() {
            let message = [
                metadata.value.as_slice(),
                &signature.signature_header,
                &header_bytes,
            ]
            .concat();
            let outcome = if signature.signature_header.is_empty()
                && !signature.identifier_header.is_empty()
            {
                Err(SignerError::IdentifierHeader)
            } else {
                self.orderer(
                    &signature.signature_header,
                    &message,
                    &signature.signature,
                    time,
                )
            };
            match outcome {
                Ok(signer) => {
                    if counted.insert(signer.member.cert_id) {
                        signers.push(signer);
                    }
                }
                Err(reason) => rejected.push((index, reason)),
            }
        }
        let satisfied = self
            .config
            .satisfied(BLOCK_VALIDATION, &signers)
            .map_err(|source| BlockError::Policy { number, source })?;
        if signers.is_empty() || !satisfied {
            return Err(BlockError::Signatures {
                number,
                rule: self.config.describe(BLOCK_VALIDATION),
                counted: signers.len(),
                rejected,
            });
        }
        Ok(contents)
    }

    /// The signer of one orderer signature, if it counts.
    fn orderer(
        &self,
        signature_header: &[u8],
        message: &[u8],
        signature: &[u8],
        time: SystemTime,
    ) -> Result<Signer, SignerError> {
        let header = SignatureHeader::decode(signature_header).map_err(SignerError::Header)?;
        let signer = self
            .config
            .signer(&header.creator, time)
            .map_err(SignerError::Identity)?;
        let name = signer.member.name.clone();
        if !self.config.is_orderer_org(&signer.msp_id) {
            return Err(SignerError::NotOrdering {
                name,
                msp_id: signer.msp_id,
            });
        }
        let expected = self.config.orderer_role(&signer.msp_id);
        if expected != Role::Member && signer.member.role != expected {
            return Err(SignerError::Role {
                name,
                role: signer.member.role,
                expected,
            });
        }
        if !self.config.is_consenter(&name) {
            return Err(SignerError::NotConsenter { name });
        }
        signer
            .member
            .verify(message, signature)
            .map_err(|source| SignerError::Signature { name, source })?;
        Ok(signer)
    }

    /// The block's latest transaction time and whether it is a configuration block,
    /// checking every transaction names the channel.
    fn contents(&self, block: &Block, number: u64) -> Result<Contents, BlockError> {
        let mut contents = Contents {
            time: None,
            config: false,
        };
        for envelope in crate::block::envelopes(block) {
            let malformed = |source| BlockError::Malformed { number, source };
            let envelope = Envelope::decode(envelope.as_slice()).map_err(|source| {
                malformed(crate::Error::Decode {
                    what: "envelope",
                    source,
                })
            })?;
            let (channel_header, _) = crate::block::open(&envelope).map_err(malformed)?;
            if channel_header.channel_id != self.config.channel() {
                return Err(BlockError::Channel {
                    number,
                    expected: self.config.channel().to_owned(),
                    found: channel_header.channel_id,
                });
            }
            contents.config |= channel_header.r#type == HeaderType::Config as i32;
            let time = channel_header
                .timestamp
                .and_then(|t| SystemTime::try_from(t).ok());
            contents.time = contents.time.max(time);
        }
        Ok(contents)
    }
}

fn check_data_hash(block: &Block, header: &BlockHeader) -> Result<(), BlockError> {
    let hash = match &block.data {
        Some(data) => data_hash(data),
        None => data_hash(&Default::default()),
    };
    if hash != header.data_hash.as_slice() {
        return Err(BlockError::DataHash {
            number: header.number,
        });
    }
    Ok(())
}
