//! What to measure: the command line of `medcert-bench` (and of `medcert bench`), and the
//! plan of points it turns into.

use std::path::PathBuf;
use std::time::Duration;

/// One figure of the paper's §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Figure {
    /// Store and retrieve time by record size.
    Fig4,
    /// End-to-end recovery time by hospital count and size.
    Fig5,
    /// Recovery against a non-cross-chain baseline.
    Fig6,
    /// CPU and memory of every process during a sustained load.
    Fig7,
    /// Recoveries per second with 15 MB records by hospital count.
    Fig8,
}

impl Figure {
    /// Every figure, in order.
    pub const ALL: [Figure; 5] = [
        Figure::Fig4,
        Figure::Fig5,
        Figure::Fig6,
        Figure::Fig7,
        Figure::Fig8,
    ];

    /// The figure's name, as `--figure` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Fig4 => "fig4",
            Figure::Fig5 => "fig5",
            Figure::Fig6 => "fig6",
            Figure::Fig7 => "fig7",
            Figure::Fig8 => "fig8",
        }
    }
}

/// The command line of `medcert-bench`, flattened into `medcert bench`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Figures to measure (repeatable); all of them when none is given.
    #[arg(long = "figure", value_enum)]
    pub figures: Vec<Figure>,
    /// Measured rounds per point, after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Unmeasured rounds per point before the measured ones.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// A fast smoke run: 2 rounds, small sizes, few hospitals, a short load.
    #[arg(long)]
    pub quick: bool,
    /// Directory for the CSV files, the PNG plots and summary.md.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Length of the sustained load sampled for Figure 7, in seconds.
    #[arg(long, default_value_t = 30)]
    pub load_secs: u64,
    /// A relay already serves the hospitals: do not start one in this process.
    #[arg(long)]
    pub external_relay: bool,
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            figures: Vec::new(),
            rounds: 10,
            warmup: 1,
            quick: false,
            out: PathBuf::from("results"),
            load_secs: 30,
            external_relay: false,
        }
    }
}

const KB: u64 = 1_000;
const MB: u64 = 1_000_000;

/// The points a run measures, resolved from [`BenchArgs`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// The figures to measure, sorted, each once.
    pub figures: Vec<Figure>,
    /// Measured rounds per point, after the warm-up.
    pub rounds: usize,
    /// Unmeasured rounds per point before the measured ones.
    pub warmup: usize,
    /// Figure 4's record sizes, in bytes.
    pub store_sizes: Vec<u64>,
    /// Figures 5 and 6's record sizes, in bytes.
    pub recovery_sizes: Vec<u64>,
    /// Figure 8's record size, in bytes.
    pub throughput_size: u64,
    /// Size of the small records whose sustained recovery rate Figure 8 also measures.
    pub small_size: u64,
    /// Small-record recoveries each hospital makes back to back, at most.
    pub small_per_hospital: usize,
    /// No small-record recovery starts after this much time.
    pub small_time_limit: Duration,
    /// Hospital counts of Figures 5, 6 and 8 (capped at the network's hospitals).
    pub hospital_counts: Vec<usize>,
    /// Length of Figure 7's sustained load.
    pub load: Duration,
    /// Directory for the CSV files, the PNG plots and summary.md.
    pub out: PathBuf,
}

impl Plan {
    /// The points to measure for `args` on a network of `hospitals_in_network` hospitals.
    pub fn new(args: &BenchArgs, hospitals_in_network: usize) -> Self {
        let mut figures = if args.figures.is_empty() {
            Figure::ALL.to_vec()
        } else {
            args.figures.clone()
        };
        figures.sort();
        figures.dedup();
        let counts = if args.quick {
            vec![1, 2]
        } else {
            vec![1, 2, 4, 6, 8, 10]
        };
        let mut hospital_counts: Vec<usize> = counts
            .into_iter()
            .map(|n| n.min(hospitals_in_network.max(1)))
            .collect();
        hospital_counts.dedup();
        if args.quick {
            Self {
                figures,
                rounds: 2,
                warmup: 1,
                store_sizes: vec![10 * KB, 100 * KB],
                recovery_sizes: vec![MB],
                throughput_size: MB,
                small_size: 100 * KB,
                small_per_hospital: 2,
                small_time_limit: Duration::from_secs(20),
                hospital_counts,
                load: Duration::from_secs(args.load_secs.min(5)),
                out: args.out.clone(),
            }
        } else {
            Self {
                figures,
                rounds: args.rounds.max(1),
                warmup: args.warmup,
                store_sizes: vec![10 * KB, 100 * KB, MB, 5 * MB, 15 * MB, 50 * MB],
                recovery_sizes: vec![100 * KB, MB, 15 * MB],
                throughput_size: 15 * MB,
                small_size: 100 * KB,
                small_per_hospital: 20,
                small_time_limit: Duration::from_secs(60),
                hospital_counts,
                load: Duration::from_secs(args.load_secs.max(1)),
                out: args.out.clone(),
            }
        }
    }

    /// Whether the run measures `figure`.
    pub fn wants(&self, figure: Figure) -> bool {
        self.figures.contains(&figure)
    }

    /// The largest of the hospital counts: how many hospitals the recovery figures need.
    pub fn most_hospitals(&self) -> usize {
        self.hospital_counts.iter().copied().max().unwrap_or(1)
    }
}

/// A size as the figures label it: "10 KB", "15 MB".
pub fn size_label(bytes: u64) -> String {
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= KB && bytes.is_multiple_of(KB) {
        format!("{} KB", bytes / KB)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_plan_is_the_papers() {
        let plan = Plan::new(&BenchArgs::default(), 10);
        assert_eq!(plan.figures, Figure::ALL.to_vec());
        assert_eq!(plan.rounds, 10);
        assert_eq!(plan.store_sizes.len(), 6);
        assert_eq!(plan.hospital_counts, vec![1, 2, 4, 6, 8, 10]);
        assert_eq!(size_label(plan.throughput_size), "15 MB");
    }

    #[test]
    fn hospital_counts_are_capped_by_the_network() {
        let plan = Plan::new(&BenchArgs::default(), 4);
        assert_eq!(plan.hospital_counts, vec![1, 2, 4]);
    }

    #[test]
    fn quick_plan_is_small() {
        let args = BenchArgs {
            quick: true,
            figures: vec![Figure::Fig7, Figure::Fig4, Figure::Fig7],
            ..BenchArgs::default()
        };
        let plan = Plan::new(&args, 10);
        assert_eq!(plan.figures, vec![Figure::Fig4, Figure::Fig7]);
        assert_eq!(plan.rounds, 2);
        assert!(plan.store_sizes.iter().all(|&s| s <= 100 * KB));
        assert!(plan.load <= Duration::from_secs(5));
    }

    #[test]
    fn sizes_are_labelled_in_decimal_units() {
        assert_eq!(size_label(10_000), "10 KB");
        assert_eq!(size_label(50_000_000), "50 MB");
        assert_eq!(size_label(1_234), "1234 B");
    }
}
