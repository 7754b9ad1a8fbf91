//! Benchmarks reproducing the paper's Figures 4–8 (§4.2) on the running network, with the
//! physical floors of every service measured in the same run.

pub mod stats;

pub use stats::Stats;
