//! Reading transactions out of blocks and envelopes: what the relay needs to check that
//! a transaction is valid and endorsed, and which event it carries.

use crate::Error;
use medcert_fabric_protos::common::{
    Block, BlockMetadataIndex, ChannelHeader, Envelope, Header, HeaderType, Payload,
    SignatureHeader,
};
use medcert_fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Response,
    Transaction as PbTransaction, TxValidationCode,
};
pub use medcert_fabric_protos::protos::{ChaincodeEvent as PbChaincodeEvent, Endorsement};
use prost::Message;

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|source| Error::Decode { what, source })
}

/// One endorser transaction of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockTransaction {
    /// The transaction id.
    pub tx_id: String,
    /// The channel its header names.
    pub channel: String,
    /// The committing peer's verdict, from the block's transaction filter.
    pub validation_code: TxValidationCode,
    /// The client's `msp.SerializedIdentity`.
    pub creator: Vec<u8>,
    /// The bytes every endorsement signs (followed by the endorser's identity).
    pub proposal_response_payload: Vec<u8>,
    /// The endorsers' signatures over that payload.
    pub endorsements: Vec<Endorsement>,
    /// The chaincode's response, as endorsed.
    pub response: Response,
    /// The chaincode event, as endorsed, if the transaction has one.
    pub event: Option<PbChaincodeEvent>,
}

impl BlockTransaction {
    /// The bytes endorsement `e` signs: the proposal response payload then the endorser.
    pub fn endorsement_message(&self, endorsement: &Endorsement) -> Vec<u8> {
        [
            self.proposal_response_payload.as_slice(),
            endorsement.endorser.as_slice(),
        ]
        .concat()
    }
}

/// The endorser transactions of `block` (configuration transactions are skipped).
pub fn transactions(block: &Block) -> Result<Vec<BlockTransaction>, Error> {
    let mut transactions = Vec::new();
    for (i, envelope) in envelopes(block).iter().enumerate() {
        if let Some(endorsed) = endorser_transaction(block, i, envelope)? {
            transactions.push(endorsed.transaction);
        }
    }
    Ok(transactions)
}

/// The block's envelopes, encoded.
pub(crate) fn envelopes(block: &Block) -> &[Vec<u8>] {
    block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[])
}

/// An endorser transaction with the parts that bind it together: what the light client
/// checks beyond [`BlockTransaction`].
pub(crate) struct EndorserTransaction {
    pub transaction: BlockTransaction,
    /// The signed envelope.
    pub envelope: Envelope,
    /// The payload's header, encoded parts as signed.
    pub header: Header,
    /// The decoded channel header.
    pub channel_header: ChannelHeader,
    /// The decoded signature header.
    pub signature_header: SignatureHeader,
    /// The transaction's actions (Fabric allows one).
    pub actions: usize,
    /// The first action's signature header, encoded.
    pub action_header: Vec<u8>,
    /// The proposal payload the endorsers hashed (transient data removed).
    pub chaincode_proposal_payload: Vec<u8>,
    /// The chaincode the endorsed action names.
    pub chaincode: String,
}

/// Envelope `i` of `block` (`envelope`, its bytes) if it is an endorser transaction.
pub(crate) fn endorser_transaction(
    block: &Block,
    i: usize,
    envelope: &[u8],
) -> Result<Option<EndorserTransaction>, Error> {
    let envelope: Envelope = decode("envelope", envelope)?;
    let (channel_header, payload) = open(&envelope)?;
    if channel_header.r#type != HeaderType::EndorserTransaction as i32 {
        return Ok(None);
    }
    let validation_code = block
        .metadata
        .as_ref()
        .and_then(|m| {
            m.metadata
                .get(BlockMetadataIndex::TransactionsFilter as usize)
        })
        .and_then(|filter| filter.get(i))
        .and_then(|code| TxValidationCode::try_from(i32::from(*code)).ok())
        .unwrap_or(TxValidationCode::NotValidated);
    let header = payload.header.unwrap_or_default();
    let signature_header: SignatureHeader = decode("signature header", &header.signature_header)?;
    let action = endorsed_action(&payload.data)?;
    Ok(Some(EndorserTransaction {
        transaction: BlockTransaction {
            tx_id: channel_header.tx_id.clone(),
            channel: channel_header.channel_id.clone(),
            validation_code,
            creator: signature_header.creator.clone(),
            proposal_response_payload: action.proposal_response_payload,
            endorsements: action.endorsements,
            response: action.response,
            event: action.event,
        },
        envelope,
        header,
        channel_header,
        signature_header,
        actions: action.actions,
        action_header: action.action_header,
        chaincode_proposal_payload: action.chaincode_proposal_payload,
        chaincode: action.chaincode,
    }))
}

/// The chaincode response carried by an endorsed transaction envelope.
pub(crate) fn chaincode_response(envelope: &Envelope) -> Result<Response, Error> {
    let (_, payload) = open(envelope)?;
    Ok(endorsed_action(&payload.data)?.response)
}

/// The envelope's payload and its decoded channel header.
pub(crate) fn open(envelope: &Envelope) -> Result<(ChannelHeader, Payload), Error> {
    let payload: Payload = decode("payload", &envelope.payload)?;
    let header = payload
        .header
        .as_ref()
        .ok_or(Error::Incomplete("payload without header"))?;
    let channel_header: ChannelHeader = decode("channel header", &header.channel_header)?;
    Ok((channel_header, payload))
}

struct EndorsedAction {
    actions: usize,
    action_header: Vec<u8>,
    chaincode_proposal_payload: Vec<u8>,
    proposal_response_payload: Vec<u8>,
    endorsements: Vec<Endorsement>,
    response: Response,
    event: Option<PbChaincodeEvent>,
    chaincode: String,
}

fn endorsed_action(transaction_bytes: &[u8]) -> Result<EndorsedAction, Error> {
    let transaction: PbTransaction = decode("transaction", transaction_bytes)?;
    let actions = transaction.actions.len();
    let action = transaction
        .actions
        .into_iter()
        .next()
        .ok_or(Error::Incomplete("transaction without actions"))?;
    let action_payload: ChaincodeActionPayload =
        decode("chaincode action payload", &action.payload)?;
    let endorsed = action_payload
        .action
        .ok_or(Error::Incomplete("transaction without endorsed action"))?;
    let response_payload: ProposalResponsePayload = decode(
        "proposal response payload",
        &endorsed.proposal_response_payload,
    )?;
    let chaincode_action: ChaincodeAction =
        decode("chaincode action", &response_payload.extension)?;
    let event = if chaincode_action.events.is_empty() {
        None
    } else {
        Some(decode("chaincode event", &chaincode_action.events)?)
    };
    Ok(EndorsedAction {
        actions,
        action_header: action.header,
        chaincode_proposal_payload: action_payload.chaincode_proposal_payload,
        proposal_response_payload: endorsed.proposal_response_payload,
        endorsements: endorsed.endorsements,
        response: chaincode_action.response.unwrap_or_default(),
        event,
        chaincode: chaincode_action
            .chaincode_id
            .map(|id| id.name)
            .unwrap_or_default(),
    })
}
