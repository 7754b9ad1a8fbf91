//! A call's input: its arguments, decoded by the interface's own rules, and the patient's
//! password from the transient map.

use medcert_hospital_api::args::Arguments;
use medcert_hospital_api::{MAX_PASSWORD_LEN, PASSWORD_KEY};
use zeroize::Zeroizing;

use super::{ContractError, Tx};
use crate::ledger::Ledger;

impl<L: Ledger> Tx<'_, L> {
    /// The call's arguments as `A`: their count, sizes and formats checked.
    pub(super) fn args<A: Arguments>(&self) -> Result<A, ContractError> {
        Ok(A::decode(&self.ctx.args)?)
    }

    /// The patient's password, from the transient map.
    pub(super) fn password(&self) -> Result<Zeroizing<Vec<u8>>, ContractError> {
        let password = self
            .ctx
            .transient
            .get(PASSWORD_KEY)
            .filter(|p| !p.is_empty())
            .ok_or(ContractError::MissingPassword)?;
        if password.len() > MAX_PASSWORD_LEN {
            return Err(ContractError::Oversized {
                name: "password",
                len: password.len(),
                max: MAX_PASSWORD_LEN,
            });
        }
        Ok(Zeroizing::new(password.clone()))
    }
}
