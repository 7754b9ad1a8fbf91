//! A call's arguments, decoded by the interface's own rules.

use medcert_hospital_api::args::Arguments;

use super::{ContractError, Tx};
use crate::ledger::Ledger;

impl<L: Ledger> Tx<'_, L> {
    /// The call's arguments as `A`: their count, sizes and formats checked.
    pub(super) fn args<A: Arguments>(&self) -> Result<A, ContractError> {
        Ok(A::decode(&self.ctx.args)?)
    }
}
