//! A typed client of the hospital chaincode over the Fabric gateway.

use medcert_fabric::Contract;

use crate::args::{self, Arguments};
use crate::{
    AuditEntry, Function, KeyService, Record, RecordChange, RecordState, Recovery, Tombstone,
};

/// Why a call to the hospital chaincode failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway, a peer, the orderer or the chaincode refused or failed the call.
    #[error("calling {function}")]
    Fabric {
        /// The function called.
        function: Function,
        /// What went wrong.
        #[source]
        source: medcert_fabric::Error,
    },
    /// The chaincode's answer is not the function's answer type.
    #[error("the {function} answer is malformed")]
    Answer {
        /// The function called.
        function: Function,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// The answer of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    /// The transaction.
    pub tx_id: String,
    /// The block it committed in.
    pub block_number: u64,
    /// The chaincode's answer.
    pub answer: T,
}

/// The hospital chaincode on one channel, one method per function. Reads that leave no
/// trace are evaluated on a peer; everything else (audited reads included) is endorsed,
/// submitted and awaited until it commits.
///
/// A password-gated call (create, query, request recovery) carries the key service's
/// ticket in its arguments; a refused ticket comes back as [`ClientError::Fabric`] with
/// the refusal, which the chain has recorded.
#[derive(Clone)]
pub struct HospitalClient {
    contract: Contract,
}

/// Declares one client method per function: its arguments' type, whether it is
/// evaluated (the answer) or submitted (the committed answer), and the answer's type.
macro_rules! methods {
    (
        evaluate { $($(#[doc = $edoc:literal])* $eval:ident($eargs:ident) -> $eanswer:ty;)* }
        submit { $($(#[doc = $sdoc:literal])* $submit:ident($sargs:ident) -> $sanswer:ty;)* }
    ) => {
        impl HospitalClient {
            $(
                $(#[doc = $edoc])*
                pub async fn $eval(&self, args: &args::$eargs) -> Result<$eanswer, ClientError> {
                    self.evaluate(args).await
                }
            )*
            $(
                $(#[doc = $sdoc])*
                pub async fn $submit(
                    &self,
                    args: &args::$sargs,
                ) -> Result<Committed<$sanswer>, ClientError> {
                    self.submit(args).await
                }
            )*
        }
    };
}

methods! {
    evaluate {
        /// A record's state: active, or deleted with its tombstone.
        get_record(GetRecord) -> RecordState;
        /// A record's past writes, newest first.
        get_record_history(GetRecordHistory) -> Vec<RecordChange>;
        /// A recovery and where it stands.
        get_recovery_status(GetRecoveryStatus) -> Recovery;
        /// The audit trail of a record or a patient, oldest first.
        get_audit(GetAudit) -> Vec<AuditEntry>;
    }
    submit {
        /// Registers (or replaces) the key service's ticket key (hospital admins only);
        /// the answer is the registration.
        set_key_service(SetKeyService) -> KeyService;
        /// Registers a patient; the answer is the treatment number.
        register_patient(RegisterPatient) -> String;
        /// Creates a record, with the key service's ticket for it.
        create_record(CreateRecord) -> Record;
        /// Reads a record, audited on the ledger, with the key service's ticket for it.
        query_record(QueryRecord) -> Record;
        /// Deletes a record at its patient's signed request.
        delete_record(DeleteRecord) -> Tombstone;
        /// Asks for a record's recovery, with the key service's ticket for it; the answer
        /// holds the request's index.
        request_recovery(RequestRecovery) -> Recovery;
        /// Records a served recovery (the relay only); answers what the ledger holds,
        /// which is an earlier answer if there was one.
        complete_recovery(CompleteRecovery) -> Recovery;
        /// Records a failed recovery (the relay only); answers what the ledger holds,
        /// which is an earlier answer if there was one.
        fail_recovery(FailRecovery) -> Recovery;
    }
}

impl HospitalClient {
    /// A client of the chaincode `contract` names, e.g.
    /// `HospitalClient::new(gateway.network("hospital1").contract("hospital"))`.
    pub fn new(contract: Contract) -> Self {
        Self { contract }
    }

    /// The chaincode version.
    pub async fn version(&self) -> Result<String, ClientError> {
        self.evaluate(&args::Version {}).await
    }

    /// The key service registered on the channel, if any.
    pub async fn get_key_service(&self) -> Result<Option<KeyService>, ClientError> {
        self.evaluate(&args::GetKeyService {}).await
    }

    async fn evaluate<A: Arguments, T: Answer>(&self, args: &A) -> Result<T, ClientError> {
        let proposal = self
            .contract
            .new_proposal(A::FUNCTION.name())
            .args(args.encode())
            .build()
            .map_err(fabric::<A>)?;
        let bytes = proposal.evaluate().await.map_err(fabric::<A>)?;
        parse::<A, T>(&bytes)
    }

    async fn submit<A: Arguments, T: Answer>(&self, args: &A) -> Result<Committed<T>, ClientError> {
        let committed = self
            .contract
            .new_proposal(A::FUNCTION.name())
            .args(args.encode())
            .submit()
            .await
            .map_err(fabric::<A>)?;
        Ok(Committed {
            answer: parse::<A, T>(&committed.result)?,
            tx_id: committed.tx_id,
            block_number: committed.block_number,
        })
    }
}

/// How a function's answer reads: JSON, except the plain-text answers.
trait Answer: Sized {
    fn read(bytes: &[u8]) -> Result<Self, serde_json::Error>;
}

/// `Version` and `RegisterPatient` answer plain text.
impl Answer for String {
    fn read(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

macro_rules! json_answers {
    ($($answer:ty),*) => {$(
        impl Answer for $answer {
            fn read(bytes: &[u8]) -> Result<Self, serde_json::Error> {
                serde_json::from_slice(bytes)
            }
        }
    )*};
}

json_answers!(
    KeyService,
    Option<KeyService>,
    Record,
    RecordState,
    Vec<RecordChange>,
    Tombstone,
    Recovery,
    Vec<AuditEntry>
);

fn fabric<A: Arguments>(source: medcert_fabric::Error) -> ClientError {
    ClientError::Fabric {
        function: A::FUNCTION,
        source,
    }
}

fn parse<A: Arguments, T: Answer>(bytes: &[u8]) -> Result<T, ClientError> {
    T::read(bytes).map_err(|source| ClientError::Answer {
        function: A::FUNCTION,
        source,
    })
}
