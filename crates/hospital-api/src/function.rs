//! The chaincode's functions and their names on the wire.

use std::fmt;

/// A function of the hospital chaincode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// The chaincode's version (anyone).
    Version,
    /// A hospital admin registers (or replaces) the key service's ticket key.
    SetKeyService,
    /// A hospital member reads the registered ticket key.
    GetKeyService,
    /// A doctor registers a patient (the key service enrolls the password).
    RegisterPatient,
    /// A doctor creates a record, with a password ticket; audited.
    CreateRecord,
    /// A doctor reads a record, with a password ticket; audited.
    QueryRecord,
    /// A hospital member reads a record's state (active or deleted).
    GetRecord,
    /// A hospital member reads the past writes of a record.
    GetRecordHistory,
    /// The patient's signed request deletes a record, leaving a tombstone.
    DeleteRecord,
    /// A doctor asks, with a password ticket, for a record to be recovered from the
    /// certificate chain.
    RequestRecovery,
    /// The relay records a served recovery.
    CompleteRecovery,
    /// The relay records a failed recovery.
    FailRecovery,
    /// A hospital member or the relay reads a recovery.
    GetRecoveryStatus,
    /// A hospital member reads the audit trail of a record or a patient.
    GetAudit,
}

impl Function {
    /// Every function, in the order the chaincode lists them.
    pub const ALL: [Function; 14] = [
        Self::Version,
        Self::SetKeyService,
        Self::GetKeyService,
        Self::RegisterPatient,
        Self::CreateRecord,
        Self::QueryRecord,
        Self::GetRecord,
        Self::GetRecordHistory,
        Self::DeleteRecord,
        Self::RequestRecovery,
        Self::CompleteRecovery,
        Self::FailRecovery,
        Self::GetRecoveryStatus,
        Self::GetAudit,
    ];

    /// The name a proposal carries.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Version => "Version",
            Self::SetKeyService => "SetKeyService",
            Self::GetKeyService => "GetKeyService",
            Self::RegisterPatient => "RegisterPatient",
            Self::CreateRecord => "CreateRecord",
            Self::QueryRecord => "QueryRecord",
            Self::GetRecord => "GetRecord",
            Self::GetRecordHistory => "GetRecordHistory",
            Self::DeleteRecord => "DeleteRecord",
            Self::RequestRecovery => "RequestRecovery",
            Self::CompleteRecovery => "CompleteRecovery",
            Self::FailRecovery => "FailRecovery",
            Self::GetRecoveryStatus => "GetRecoveryStatus",
            Self::GetAudit => "GetAudit",
        }
    }

    /// The function a proposal names, if the chaincode has it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for function in Function::ALL {
            assert_eq!(Function::from_name(function.name()), Some(function));
        }
        assert_eq!(Function::from_name("version"), None);
    }
}
