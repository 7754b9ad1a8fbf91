//! What an endorser transaction of a verified block proves (see the module docs).

use std::collections::BTreeSet;
use std::time::SystemTime;

use medcert_fabric_protos::common::Envelope;
use medcert_fabric_protos::protos::{ProposalResponsePayload, TxValidationCode};
use prost::Message;
use sha2::{Digest, Sha256};

use super::config::IdentityError;
use super::policy::{EndorsementPolicy, EndorsementRule, PolicyError, Signer};
use super::{LightClient, VerifiedBlock};
use crate::block::{self, BlockTransaction, EndorserTransaction};
use crate::msp::{Member, Role, SignatureError};

/// Whose endorsement a transaction needs.
#[derive(Debug, Clone, Copy)]
pub struct Endorsing<'a> {
    /// The organisation whose peers endorse it.
    pub msp_id: &'a str,
    /// The chaincode it must invoke.
    pub chaincode: &'a str,
    /// That chaincode's endorsement policy, as the channel defines it.
    pub policy: &'a EndorsementPolicy,
}

/// A transaction the light client checked in a verified block.
#[derive(Debug, Clone)]
pub struct VerifiedTransaction {
    /// The transaction as the block holds it.
    pub transaction: BlockTransaction,
    /// Its block.
    pub block_number: u64,
    /// Its channel header's timestamp, at which its certificates were judged.
    pub timestamp: SystemTime,
    /// Its distinct endorsers, each a peer of the endorsing organisation.
    pub endorsers: Vec<Member>,
}

/// Why a transaction of a verified block does not prove what it claims: each variant
/// names the check it fails.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// No transaction of the block has this id.
    #[error("transaction {tx_id} is not in block {block}")]
    NotInBlock {
        /// The transaction.
        tx_id: String,
        /// The block.
        block: u64,
    },
    /// The transaction is not an endorser (chaincode) transaction.
    #[error("transaction is not an endorser transaction")]
    NotEndorserTransaction,
    /// The transaction does not decode.
    #[error("transaction is malformed")]
    Malformed(#[source] crate::Error),
    /// The transaction names another channel.
    #[error("transaction is of channel {found}, not {expected}")]
    Channel {
        /// The channel it names.
        found: String,
        /// The light client's channel.
        expected: String,
    },
    /// No timestamp to judge certificates at.
    #[error("transaction has no timestamp to judge certificates at")]
    NoTimestamp,
    /// The id is not the one Fabric derives.
    #[error("transaction id is not the hash of its nonce and creator")]
    TxId,
    /// The creator is not a member of an organisation of the channel.
    #[error("creator")]
    Creator(#[source] IdentityError),
    /// The envelope's signature is not the creator's.
    #[error("the creator's signature over the transaction")]
    CreatorSignature(#[source] SignatureError),
    /// Fabric allows one action per endorser transaction.
    #[error("transaction has {0} actions, not one")]
    Actions(usize),
    /// The action's signature header differs from the transaction's.
    #[error("the action's signature header is not the transaction's")]
    ActionHeader,
    /// The endorsements cover another proposal than the transaction's.
    #[error("the endorsed proposal hash does not cover the transaction's header and proposal")]
    ProposalHash,
    /// The endorsed action is another chaincode's.
    #[error("the endorsed action is chaincode {found:?}'s, not {expected}'s")]
    Chaincode {
        /// The chaincode it names.
        found: String,
        /// The chaincode expected.
        expected: String,
    },
    /// No endorsement at all.
    #[error("transaction carries no endorsement")]
    NoEndorsement,
    /// An endorsement that does not count.
    #[error("endorsement {index}")]
    Endorser {
        /// Its position.
        index: usize,
        /// Why.
        #[source]
        source: Box<EndorserError>,
    },
    /// The endorsement policy cannot be evaluated.
    #[error("endorsement policy")]
    Policy(#[source] PolicyError),
    /// Too few endorsements for the policy.
    #[error(
        "too few endorsements: {} distinct peer(s) of {msp_id} ({}) do not satisfy the endorsement policy {policy}",
        .endorsers.len(), .endorsers.join(", ")
    )]
    PolicyNotSatisfied {
        /// The organisation.
        msp_id: String,
        /// The policy, as defined on the channel.
        policy: String,
        /// The endorsers that counted.
        endorsers: Vec<String>,
    },
    /// The committing peer marks the transaction invalid.
    #[error("the peer marks the transaction {0:?}, not VALID")]
    NotValid(TxValidationCode),
}

/// Why one endorsement does not count.
#[derive(Debug, thiserror::Error)]
pub enum EndorserError {
    /// The endorser is not a member of an organisation of the channel.
    #[error("endorser")]
    Identity(#[source] IdentityError),
    /// The endorser is of another organisation.
    #[error("endorser {name} is of {msp_id}, not {expected}")]
    OtherOrg {
        /// The endorser's common name.
        name: String,
        /// Its MSP.
        msp_id: String,
        /// The endorsing organisation expected.
        expected: String,
    },
    /// The endorser is not a peer.
    #[error("endorser {name} is a {role}, not a peer")]
    NotPeer {
        /// The endorser's common name.
        name: String,
        /// Its role.
        role: Role,
    },
    /// The signature is not the endorser's.
    #[error("forged endorsement of {name}")]
    Signature {
        /// The endorser's common name.
        name: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
}

impl LightClient {
    /// Checks transaction `tx_id` of `block` as the module docs say: endorsed under
    /// `endorsing`, its certificates valid at its timestamp, and marked VALID by the peer
    /// the block came from.
    pub fn transaction(
        &self,
        block: &VerifiedBlock,
        tx_id: &str,
        endorsing: &Endorsing<'_>,
    ) -> Result<VerifiedTransaction, TransactionError> {
        let found = find(block, tx_id)?;
        let EndorserTransaction {
            transaction,
            envelope,
            header,
            channel_header,
            signature_header,
            actions,
            action_header,
            chaincode_proposal_payload,
            chaincode,
        } = found;
        let channel = self.config.channel();
        if transaction.channel != channel {
            return Err(TransactionError::Channel {
                found: transaction.channel,
                expected: channel.to_owned(),
            });
        }
        let timestamp = channel_header
            .timestamp
            .and_then(|t| SystemTime::try_from(t).ok())
            .ok_or(TransactionError::NoTimestamp)?;
        let derived_id = Sha256::new()
            .chain_update(&signature_header.nonce)
            .chain_update(&signature_header.creator)
            .finalize();
        if hex::encode(derived_id) != transaction.tx_id {
            return Err(TransactionError::TxId);
        }
        let creator = self
            .config
            .signer(&signature_header.creator, timestamp)
            .map_err(TransactionError::Creator)?;
        creator
            .member
            .verify(&envelope.payload, &envelope.signature)
            .map_err(TransactionError::CreatorSignature)?;
        if actions != 1 {
            return Err(TransactionError::Actions(actions));
        }
        if action_header != header.signature_header {
            return Err(TransactionError::ActionHeader);
        }
        let response_payload =
            ProposalResponsePayload::decode(transaction.proposal_response_payload.as_slice())
                .map_err(|source| {
                    TransactionError::Malformed(crate::Error::Decode {
                        what: "proposal response payload",
                        source,
                    })
                })?;
        let proposal_hash = Sha256::new()
            .chain_update(&header.channel_header)
            .chain_update(&action_header)
            .chain_update(&chaincode_proposal_payload)
            .finalize();
        if proposal_hash.as_slice() != response_payload.proposal_hash {
            return Err(TransactionError::ProposalHash);
        }
        if chaincode != endorsing.chaincode {
            return Err(TransactionError::Chaincode {
                found: chaincode,
                expected: endorsing.chaincode.to_owned(),
            });
        }
        let endorsers = self.endorsers(&transaction, endorsing, timestamp)?;
        let satisfied = match &endorsing.policy.0 {
            EndorsementRule::Signature(policy) => policy.satisfied_by(&endorsers),
            EndorsementRule::Reference(path) => self
                .config
                .satisfied(path, &endorsers)
                .map_err(TransactionError::Policy)?,
        };
        if !satisfied {
            let policy = match &endorsing.policy.0 {
                EndorsementRule::Signature(policy) => policy.to_string(),
                EndorsementRule::Reference(path) => {
                    format!("{path} ({})", self.config.describe(path))
                }
            };
            return Err(TransactionError::PolicyNotSatisfied {
                msp_id: endorsing.msp_id.to_owned(),
                policy,
                endorsers: endorsers.into_iter().map(|s| s.member.name).collect(),
            });
        }
        if transaction.validation_code != TxValidationCode::Valid {
            return Err(TransactionError::NotValid(transaction.validation_code));
        }
        Ok(VerifiedTransaction {
            transaction,
            block_number: block.number(),
            timestamp,
            endorsers: endorsers.into_iter().map(|s| s.member).collect(),
        })
    }

    /// The distinct endorsers of `transaction`, each a peer of the endorsing organisation
    /// valid at `timestamp` whose signature verifies.
    fn endorsers(
        &self,
        transaction: &BlockTransaction,
        endorsing: &Endorsing<'_>,
        timestamp: SystemTime,
    ) -> Result<Vec<Signer>, TransactionError> {
        if transaction.endorsements.is_empty() {
            return Err(TransactionError::NoEndorsement);
        }
        let mut seen = BTreeSet::new();
        let mut endorsers = Vec::new();
        for (index, endorsement) in transaction.endorsements.iter().enumerate() {
            let bad = |source| TransactionError::Endorser {
                index,
                source: Box::new(source),
            };
            let signer = self
                .config
                .signer(&endorsement.endorser, timestamp)
                .map_err(|e| bad(EndorserError::Identity(e)))?;
            let name = signer.member.name.clone();
            if signer.msp_id != endorsing.msp_id {
                return Err(bad(EndorserError::OtherOrg {
                    name,
                    msp_id: signer.msp_id,
                    expected: endorsing.msp_id.to_owned(),
                }));
            }
            if signer.member.role != Role::Peer {
                return Err(bad(EndorserError::NotPeer {
                    name,
                    role: signer.member.role,
                }));
            }
            signer
                .member
                .verify(
                    &transaction.endorsement_message(endorsement),
                    &endorsement.signature,
                )
                .map_err(|source| bad(EndorserError::Signature { name, source }))?;
            if seen.insert(signer.member.cert_id) {
                endorsers.push(signer);
            }
        }
        Ok(endorsers)
    }
}

/// The endorser transaction `tx_id` of `block`.
fn find(block: &VerifiedBlock, tx_id: &str) -> Result<EndorserTransaction, TransactionError> {
    for (i, bytes) in block::envelopes(block.block()).iter().enumerate() {
        // Other transactions may be malformed (the peer marks them so); only this one
        // must decode.
        let Ok(envelope) = Envelope::decode(bytes.as_slice()) else {
            continue;
        };
        let Ok((channel_header, _)) = block::open(&envelope) else {
            continue;
        };
        if channel_header.tx_id != tx_id {
            continue;
        }
        return block::endorser_transaction(block.block(), i, bytes)
            .map_err(TransactionError::Malformed)?
            .ok_or(TransactionError::NotEndorserTransaction);
    }
    Err(TransactionError::NotInBlock {
        tx_id: tx_id.to_owned(),
        block: block.number(),
    })
}
