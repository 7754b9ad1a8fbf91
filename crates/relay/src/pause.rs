//! Where the binary can be made to stop, for the crash tests.

/// A step at which the binary can be made to stop (crash tests): after committing the
/// status that the step's side effect produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseStep {
    /// A request was read, proven and admitted.
    ReadEvent,
    /// `serveRecovery` was signed (or found sent) and its hash recorded, not yet sent.
    EthSent,
    /// `serveRecovery` was sent, not yet mined (or not yet seen mined).
    EthBroadcast,
    /// The receipt was confirmed, proven and recorded.
    EthReceipt,
    /// The channel holds the answer (not yet recorded as answered).
    FabricSubmitted,
}

impl std::str::FromStr for PauseStep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "read_event" => Self::ReadEvent,
            "eth_sent" => Self::EthSent,
            "eth_broadcast" => Self::EthBroadcast,
            "eth_receipt" => Self::EthReceipt,
            "fabric_submitted" => Self::FabricSubmitted,
            other => {
                return Err(format!(
                    "unknown pause step {other:?}: use read_event, eth_sent, eth_broadcast, eth_receipt or fabric_submitted"
                ));
            }
        })
    }
}

impl std::fmt::Display for PauseStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ReadEvent => "read_event",
            Self::EthSent => "eth_sent",
            Self::EthBroadcast => "eth_broadcast",
            Self::EthReceipt => "eth_receipt",
            Self::FabricSubmitted => "fabric_submitted",
        })
    }
}
