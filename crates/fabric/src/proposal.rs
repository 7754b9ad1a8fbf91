//! One chaincode's calls: a proposal is built, signed, evaluated or endorsed, submitted
//! to the orderer, and awaited until it commits.

use medcert_fabric_protos::common::{Envelope, Header, HeaderType};
use medcert_fabric_protos::gateway::gateway_client::GatewayClient;
use medcert_fabric_protos::gateway::{
    CommitStatusRequest, EndorseRequest, EvaluateRequest, SignedCommitStatusRequest, SubmitRequest,
};
use medcert_fabric_protos::protos::{
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, ChaincodeSpec, Proposal as PbProposal, Response, SignedProposal,
    TxValidationCode, chaincode_spec,
};
use prost::Message;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{Error, Network, block};

/// One chaincode on one channel.
#[derive(Clone)]
pub struct Contract {
    network: Network,
    chaincode: String,
}

impl Contract {
    pub(crate) fn new(network: Network, chaincode: &str) -> Self {
        Self {
            network,
            chaincode: chaincode.to_owned(),
        }
    }

    /// A proposal to call `function`, to give arguments and transient data.
    pub fn new_proposal(&self, function: &str) -> ProposalBuilder {
        ProposalBuilder {
            contract: self.clone(),
            function: function.to_owned(),
            args: Vec::new(),
            transient: HashMap::new(),
        }
    }

    /// Runs `function` on a peer without committing, returning its result.
    pub async fn evaluate(&self, function: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
        self.new_proposal(function)
            .args(args.iter().copied())
            .build()?
            .evaluate()
            .await
    }

    /// Endorses, submits and waits for the commit of `function`, returning its result.
    pub async fn submit(&self, function: &str, args: &[&str]) -> Result<Committed, Error> {
        self.new_proposal(function)
            .args(args.iter().copied())
            .submit()
            .await
    }
}

/// A proposal being put together: arguments, transient data.
pub struct ProposalBuilder {
    contract: Contract,
    function: String,
    args: Vec<Vec<u8>>,
    transient: HashMap<String, Vec<u8>>,
}

impl ProposalBuilder {
    /// Appends arguments, in order.
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    /// Private input for the chaincode: it reaches the endorsing peers but never a block.
    pub fn transient(mut self, key: &str, value: Vec<u8>) -> Self {
        self.transient.insert(key.to_owned(), value);
        self
    }

    /// Builds, endorses, submits and waits for the commit, for callers that need no step
    /// in between.
    pub async fn submit(self) -> Result<Committed, Error> {
        self.build()?
            .endorse()
            .await?
            .submit()
            .await?
            .status()
            .await
    }

    /// Signs the proposal, with a fresh transaction id.
    pub fn build(self) -> Result<Proposal, Error> {
        let network = &self.contract.network;
        let chaincode_id = Some(ChaincodeId {
            name: self.contract.chaincode.clone(),
            ..Default::default()
        });
        let extension = ChaincodeHeaderExtension {
            chaincode_id: chaincode_id.clone(),
        }
        .encode_to_vec();
        let (channel_header, signature_header, tx_id) =
            network.headers(HeaderType::EndorserTransaction, Some(extension));
        let mut args = vec![self.function.into_bytes()];
        args.extend(self.args);
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                r#type: chaincode_spec::Type::Golang as i32,
                chaincode_id,
                input: Some(ChaincodeInput {
                    args,
                    ..Default::default()
                }),
            }),
        };
        let proposal = PbProposal {
            header: Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: signature_header.encode_to_vec(),
            }
            .encode_to_vec(),
            payload: ChaincodeProposalPayload {
                input: invocation.encode_to_vec(),
                transient_map: self.transient,
            }
            .encode_to_vec(),
            extension: Vec::new(),
        };
        let proposal_bytes = proposal.encode_to_vec();
        Ok(Proposal {
            network: network.clone(),
            tx_id,
            signed: SignedProposal {
                signature: network.identity().sign(&proposal_bytes),
                proposal_bytes,
            },
        })
    }
}

/// A signed proposal, ready to evaluate or endorse.
pub struct Proposal {
    network: Network,
    tx_id: String,
    signed: SignedProposal,
}

impl Proposal {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// Runs the proposal on a peer without committing; returns the chaincode's answer.
    pub async fn evaluate(self) -> Result<Vec<u8>, Error> {
        let request = EvaluateRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed),
        };
        let response = self
            .network
            .call("evaluation", |channel| {
                let request = request.clone();
                async move { GatewayClient::new(channel).evaluate(request).await }
            })
            .await?
            .result
            .ok_or(Error::Incomplete("evaluate response without a result"))?;
        if response.status >= 400 {
            return Err(Error::Chaincode {
                status: response.status,
                message: response.message,
            });
        }
        Ok(response.payload)
    }

    /// Has the proposal endorsed as the endorsement policy requires.
    pub async fn endorse(self) -> Result<Transaction, Error> {
        let request = EndorseRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed),
        };
        let mut attempt = 1;
        let envelope = loop {
            let endorsed = self
                .network
                .call("endorsement", |channel| {
                    let request = request.clone();
                    async move { GatewayClient::new(channel).endorse(request).await }
                })
                .await;
            match endorsed {
                // Peers of one organisation that have not yet all committed the same
                // block simulate against different states; a moment later they agree.
                Err(e) if attempt < ENDORSE_ATTEMPTS && peers_disagreed(&e) => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                    attempt += 1;
                }
                outcome => break outcome?,
            }
        }
        .prepared_transaction
        .ok_or(Error::Incomplete("endorse response without a transaction"))?;
        let response = block::chaincode_response(&envelope)?;
        Ok(Transaction {
            network: self.network,
            tx_id: self.tx_id,
            envelope,
            response,
        })
    }
}

/// How often a proposal is endorsed again when its endorsing peers disagreed.
const ENDORSE_ATTEMPTS: u64 = 6;

/// Whether endorsement failed only because the peers' simulations differed (the Gateway's
/// "ProposalResponsePayloads do not match"), as they do while one peer lags a block.
fn peers_disagreed(error: &Error) -> bool {
    matches!(
        error,
        Error::Gateway { code: tonic::Code::Aborted, details, .. }
            if details.iter().any(|d| d.contains("ProposalResponsePayloads do not match"))
    )
}

/// An endorsed transaction, ready to submit to the orderer.
pub struct Transaction {
    network: Network,
    tx_id: String,
    envelope: Envelope,
    response: Response,
}

impl Transaction {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// The chaincode's result, as endorsed.
    pub fn result(&self) -> &[u8] {
        &self.response.payload
    }

    /// Signs the endorsed transaction and hands it to the ordering service. While no
    /// gateway can (UNAVAILABLE: say, the Raft cluster is electing a new leader), it is
    /// tried again for up to 20 s.
    pub async fn submit(mut self) -> Result<Submitted, Error> {
        self.envelope.signature = self.network.identity().sign(&self.envelope.payload);
        let request = SubmitRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            prepared_transaction: Some(self.envelope),
        };
        send(&self.network, &request).await?;
        Ok(Submitted {
            network: self.network,
            tx_id: self.tx_id,
            request,
            response: self.response,
        })
    }
}

/// How long a submission is tried again while the ordering service is unavailable: well
/// beyond a Raft election (about 2.5 s as deploy/up configures it).
const SUBMIT_PATIENCE: Duration = Duration::from_secs(20);

/// How long a submitted transaction may take to commit before it is submitted again: an
/// ordering node that accepted it may have failed before the cluster took it in.
const COMMIT_PATIENCE: Duration = Duration::from_secs(20);

/// Times a transaction is submitted again after [`COMMIT_PATIENCE`] without a commit.
const RESUBMISSIONS: u32 = 2;

/// Submits `request`, trying again while the ordering service is unavailable. Submitting
/// a transaction twice is harmless: Fabric commits its id once and invalidates a
/// duplicate.
async fn send(network: &Network, request: &SubmitRequest) -> Result<(), Error> {
    let deadline = Instant::now() + SUBMIT_PATIENCE;
    let mut pause = Duration::from_millis(250);
    loop {
        let sent = network
            .call("submission", |channel| {
                let request = request.clone();
                async move { GatewayClient::new(channel).submit(request).await }
            })
            .await;
        match sent {
            Err(Error::Gateway {
                code: tonic::Code::Unavailable,
                ..
            }) if Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other.map(drop),
        }
    }
}

/// A transaction handed to the orderer.
pub struct Submitted {
    network: Network,
    tx_id: String,
    request: SubmitRequest,
    response: Response,
}

/// A committed, valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The transaction id.
    pub tx_id: String,
    /// The block it committed in.
    pub block_number: u64,
    /// The chaincode's answer.
    pub result: Vec<u8>,
}

impl Submitted {
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// Waits for the commit, submitting the transaction again each time it has not
    /// committed within 20 s (twice at most). A transaction the peer marked
    /// invalid is [`Error::NotCommitted`]; a committed refusal (status 300–399) is
    /// [`Error::Refused`]; one that never commits is [`Error::CommitTimeout`].
    pub async fn status(self) -> Result<Committed, Error> {
        let request = CommitStatusRequest {
            transaction_id: self.tx_id.clone(),
            channel_id: self.network.channel.clone(),
            identity: self.network.identity().serialized(),
        }
        .encode_to_vec();
        let signed = SignedCommitStatusRequest {
            signature: self.network.identity().sign(&request),
            request,
        };
        let mut resubmissions = 0;
        let status = loop {
            let waited = tokio::time::timeout(
                COMMIT_PATIENCE,
                self.network.call("commit status", |channel| {
                    let signed = signed.clone();
                    async move { GatewayClient::new(channel).commit_status(signed).await }
                }),
            )
            .await;
            match waited {
                Ok(status) => break status?,
                Err(_) if resubmissions < RESUBMISSIONS => {
                    resubmissions += 1;
                    send(&self.network, &self.request).await?;
                }
                Err(_) => {
                    return Err(Error::CommitTimeout {
                        tx_id: self.tx_id,
                        waited: COMMIT_PATIENCE * (RESUBMISSIONS + 1),
                    });
                }
            }
        };
        let code = TxValidationCode::try_from(status.result)
            .unwrap_or(TxValidationCode::InvalidOtherReason);
        if code != TxValidationCode::Valid {
            return Err(Error::NotCommitted {
                tx_id: self.tx_id,
                code,
                block_number: status.block_number,
            });
        }
        if self.response.status >= 300 {
            return Err(Error::Refused {
                tx_id: self.tx_id,
                status: self.response.status,
                message: self.response.message,
            });
        }
        Ok(Committed {
            tx_id: self.tx_id,
            block_number: status.block_number,
            result: self.response.payload,
        })
    }
}
