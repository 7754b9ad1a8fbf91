//! A typed client of the hospital chaincode over the Fabric gateway.

use medcert_fabric::Contract;
use serde::de::DeserializeOwned;

use crate::args::{self, Arguments};
use crate::{
    AuditEntry, Function, PASSWORD_KEY, Record, RecordChange, RecordState, Recovery, Tombstone,
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
#[derive(Clone)]
pub struct HospitalClient {
    contract: Contract,
}

impl HospitalClient {
    /// A client of the chaincode `contract` names, e.g.
    /// `HospitalClient::new(gateway.network("hospital1").contract("hospital"))`.
    pub fn new(contract: Contract) -> Self {
        Self { contract }
    }

    /// The chaincode version.
    pub async fn version(&self) -> Result<String, ClientError> {
        let bytes = self.evaluate_raw(&args::Version).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Registers a patient; the answer is the treatment number.
    pub async fn register_patient(
        &self,
        args: &args::RegisterPatient,
        password: &[u8],
    ) -> Result<Committed<String>, ClientError> {
        let committed = self.submit_raw(args, Some(password)).await?;
        Ok(Committed {
            tx_id: committed.tx_id,
            block_number: committed.block_number,
            answer: String::from_utf8_lossy(&committed.result).into_owned(),
        })
    }

    /// Unlocks a patient (hospital admins only).
    pub async fn unlock_patient(
        &self,
        args: &args::UnlockPatient,
    ) -> Result<Committed<()>, ClientError> {
        let committed = self.submit_raw(args, None).await?;
        Ok(Committed {
            tx_id: committed.tx_id,
            block_number: committed.block_number,
            answer: (),
        })
    }

    /// Creates a record.
    pub async fn create_record(
        &self,
        args: &args::CreateRecord,
        password: &[u8],
    ) -> Result<Committed<Record>, ClientError> {
        self.submit(args, Some(password)).await
    }

    /// Reads a record, audited on the ledger.
    pub async fn query_record(
        &self,
        args: &args::QueryRecord,
        password: &[u8],
    ) -> Result<Committed<Record>, ClientError> {
        self.submit(args, Some(password)).await
    }

    /// A record's state: active, or deleted with its tombstone.
    pub async fn get_record(&self, args: &args::GetRecord) -> Result<RecordState, ClientError> {
        self.evaluate(args).await
    }

    /// A record's past writes, newest first.
    pub async fn get_record_history(
        &self,
        args: &args::GetRecordHistory,
    ) -> Result<Vec<RecordChange>, ClientError> {
        self.evaluate(args).await
    }

    /// Deletes a record at its patient's signed request.
    pub async fn delete_record(
        &self,
        args: &args::DeleteRecord,
    ) -> Result<Committed<Tombstone>, ClientError> {
        self.submit(args, None).await
    }

    /// Asks for a record's recovery; the answer holds the request's index.
    pub async fn request_recovery(
        &self,
        args: &args::RequestRecovery,
        password: &[u8],
    ) -> Result<Committed<Recovery>, ClientError> {
        self.submit(args, Some(password)).await
    }

    /// Records a served recovery (the relay only); answers what the ledger holds, which
    /// is an earlier answer if there was one.
    pub async fn complete_recovery(
        &self,
        args: &args::CompleteRecovery,
    ) -> Result<Committed<Recovery>, ClientError> {
        self.submit(args, None).await
    }

    /// Records a failed recovery (the relay only); answers what the ledger holds, which
    /// is an earlier answer if there was one.
    pub async fn fail_recovery(
        &self,
        args: &args::FailRecovery,
    ) -> Result<Committed<Recovery>, ClientError> {
        self.submit(args, None).await
    }

    /// A recovery and where it stands.
    pub async fn get_recovery_status(
        &self,
        args: &args::GetRecoveryStatus,
    ) -> Result<Recovery, ClientError> {
        self.evaluate(args).await
    }

    /// The audit trail of a record or a patient, oldest first.
    pub async fn get_audit(&self, args: &args::GetAudit) -> Result<Vec<AuditEntry>, ClientError> {
        self.evaluate(args).await
    }

    async fn evaluate<A: Arguments, T: DeserializeOwned>(
        &self,
        args: &A,
    ) -> Result<T, ClientError> {
        let bytes = self.evaluate_raw(args).await?;
        parse::<A, T>(&bytes)
    }

    async fn submit<A: Arguments, T: DeserializeOwned>(
        &self,
        args: &A,
        password: Option<&[u8]>,
    ) -> Result<Committed<T>, ClientError> {
        let committed = self.submit_raw(args, password).await?;
        Ok(Committed {
            answer: parse::<A, T>(&committed.result)?,
            tx_id: committed.tx_id,
            block_number: committed.block_number,
        })
    }

    async fn evaluate_raw<A: Arguments>(&self, args: &A) -> Result<Vec<u8>, ClientError> {
        let fabric = |source| ClientError::Fabric {
            function: A::FUNCTION,
            source,
        };
        self.contract
            .new_proposal(A::FUNCTION.name())
            .args(args.encode())
            .build()
            .map_err(fabric)?
            .evaluate()
            .await
            .map_err(fabric)
    }

    async fn submit_raw<A: Arguments>(
        &self,
        args: &A,
        password: Option<&[u8]>,
    ) -> Result<medcert_fabric::Committed, ClientError> {
        let mut proposal = self
            .contract
            .new_proposal(A::FUNCTION.name())
            .args(args.encode());
        if let Some(password) = password {
            proposal = proposal.transient(PASSWORD_KEY, password.to_vec());
        }
        proposal
            .submit()
            .await
            .map_err(|source| ClientError::Fabric {
                function: A::FUNCTION,
                source,
            })
    }
}

fn parse<A: Arguments, T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|source| ClientError::Answer {
        function: A::FUNCTION,
        source,
    })
}
