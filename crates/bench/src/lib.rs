//! Benchmarks reproducing the paper's Figures 4–8 (§4.2) on the running network, with the
//! physical floors of every service measured in the same run.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

// Dependencies of the binaries (medcert-bench, large-documents), not of the library.
use {anyhow as _, medcert_eip712 as _, serde as _, serde_json as _, tracing_subscriber as _};

mod anvil;
pub mod config;
pub mod error;
pub mod fig4;
pub mod fig5;
pub mod fig7;
pub mod fig8;
pub mod fixtures;
pub mod floors;
pub mod plot;
pub mod recovery;
pub mod relay;
pub mod report;
mod run;
pub mod sampler;
pub mod stats;
pub mod stock;
pub mod sums;

pub use config::{BenchArgs, Figure, Plan};
pub use error::BenchError;
pub use report::Summary;
pub use run::run;
pub use stats::Stats;
