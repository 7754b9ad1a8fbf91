//! Results on disk (one CSV per figure, summary.md) and the summary table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::BenchError;
use crate::stats::Stats;

/// A CSV file: a header and rows of already formatted fields.
#[derive(Debug, Clone)]
pub struct Csv {
    /// The header's column names.
    pub columns: Vec<&'static str>,
    /// The rows, each a field per column.
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// An empty CSV with these columns.
    pub fn new(columns: &[&'static str]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// A CSV of operations' times beside their floors: the point's own `columns`, then
    /// [`Stats::COLUMNS`], `floor_p50_ms` and `ratio_p50`.
    pub fn timings(columns: &[&'static str]) -> Self {
        Self::new(&[columns, &Stats::COLUMNS, &["floor_p50_ms", "ratio_p50"]].concat())
    }

    /// Appends a row of a [`Csv::timings`] CSV: the point's own fields, then the times and
    /// the floor (empty without one).
    pub fn push_timing(
        &mut self,
        mut point: Vec<String>,
        stats: &Stats,
        floor_p50_ms: Option<f64>,
    ) {
        point.extend(stats.fields());
        point.push(ms(floor_p50_ms));
        point.push(
            stats
                .ratio(floor_p50_ms)
                .map(|r| format!("{r:.3}"))
                .unwrap_or_default(),
        );
        self.push(point);
    }

    /// Appends a row of one field per column.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// The CSV text, fields quoted where they need it.
    pub fn render(&self) -> String {
        let mut text = self.columns.join(",");
        text.push('\n');
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(|f| field(f)).collect();
            text.push_str(&fields.join(","));
            text.push('\n');
        }
        text
    }

    /// The rows as a Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.columns.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(self.columns.len())));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|f| f.replace('|', "\\|")).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }

    /// Writes the CSV text to `path`.
    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        std::fs::write(path, self.render()).map_err(BenchError::io("cannot write CSV", path))
    }
}

/// RFC 4180 quoting where a field needs it.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Milliseconds with two decimals, or empty when not measured.
pub fn ms(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.2}")).unwrap_or_default()
}

/// One measured operation of a figure, with the physical floor it is compared to.
#[derive(Debug, Clone)]
pub struct Line {
    /// The figure, e.g. `fig4`.
    pub figure: &'static str,
    /// The operation and its point, e.g. a size or hospital count.
    pub what: String,
    /// The operation's times.
    pub stats: Stats,
    /// p50 of the floor (or sum of floors) this operation cannot beat, in ms.
    pub floor_p50_ms: Option<f64>,
}

impl Line {
    /// p50 over the floor's p50; `None` without a floor above zero.
    pub fn ratio(&self) -> Option<f64> {
        self.stats.ratio(self.floor_p50_ms)
    }
}

/// A target of the issue, checked against what was measured.
#[derive(Debug, Clone)]
pub struct Target {
    /// What the target is about.
    pub name: String,
    /// What it asks for.
    pub goal: String,
    /// What was measured, or why it was not.
    pub measured: String,
    /// `None` when the run did not measure it.
    pub met: Option<bool>,
}

impl Target {
    /// The summary's verdict: MET, MISSED or NOT MEASURED.
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "MET",
            Some(false) => "MISSED",
            None => "NOT MEASURED",
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// What the run was measured on (see [`machine`]).
    pub machine: String,
    /// Every measured operation.
    pub lines: Vec<Line>,
    /// Figures that are not latency tables (throughput, CPU), one line each.
    pub facts: Vec<String>,
    /// Tables with a title and a note on how they were measured (the floors, what the
    /// stock tools cost), each also a CSV file.
    pub tables: Vec<(String, String, Csv)>,
    /// What each sum of floors is made of, one line each.
    pub floor_sums: Vec<String>,
    /// The targets, checked against what was measured.
    pub targets: Vec<Target>,
    /// Every file the run wrote.
    pub files: Vec<PathBuf>,
    /// Figures skipped, with the reason.
    pub skipped: Vec<String>,
}

impl Summary {
    /// The summary as Markdown (summary.md): machine, operations, facts, tables, the
    /// floor sums' parts, targets, skips.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# medcert benchmark summary\n");
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        if !self.lines.is_empty() {
            let _ = writeln!(
                out,
                "| figure | operation | rounds | mean ms | p50 ms | p99 ms | floor p50 ms | ratio |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
            for line in &self.lines {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                    line.figure,
                    line.what,
                    line.stats.rounds,
                    line.stats.mean_ms,
                    line.stats.p50_ms,
                    line.stats.p99_ms,
                    line.floor_p50_ms
                        .map(|f| format!("{f:.1}"))
                        .unwrap_or_else(|| "-".into()),
                    line.ratio()
                        .map(|r| format!("{r:.2}"))
                        .unwrap_or_else(|| "-".into()),
                );
            }
            out.push('\n');
        }
        for fact in &self.facts {
            let _ = writeln!(out, "- {fact}");
        }
        if !self.facts.is_empty() {
            out.push('\n');
        }
        for (title, note, table) in &self.tables {
            let _ = writeln!(out, "## {title}\n\n{note}\n\n{}", table.to_markdown());
        }
        if !self.floor_sums.is_empty() {
            let _ = writeln!(out, "## What each sum of floors is made of\n");
            for sum in &self.floor_sums {
                let _ = writeln!(out, "- {sum}");
            }
            out.push('\n');
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "## Targets\n");
            let _ = writeln!(out, "| target | goal | measured | verdict |");
            let _ = writeln!(out, "|---|---|---|---|");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    t.name,
                    t.goal,
                    t.measured,
                    t.verdict()
                );
            }
            out.push('\n');
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "- skipped: {skipped}");
        }
        out
    }
}

/// What the figures were measured on: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kib| kib / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cpus} CPUs, {mem_gib:.0} GiB memory, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.push(vec!["plain".into(), "with, comma \"q\"".into()]);
        assert_eq!(csv.render(), "a,b\nplain,\"with, comma \"\"q\"\"\"\n");
    }

    #[test]
    fn a_timing_row_ends_with_the_times_and_the_floor() {
        let mut csv = Csv::timings(&["operation"]);
        let stats = Stats::of_ms(vec![10.0, 30.0]).unwrap();
        csv.push_timing(vec!["store".into()], &stats, Some(10.0));
        csv.push_timing(vec!["verify".into()], &stats, None);
        assert_eq!(
            csv.render(),
            "operation,rounds,mean_ms,p50_ms,p99_ms,floor_p50_ms,ratio_p50\n\
             store,2,20.000,10.000,30.000,10.00,1.000\n\
             verify,2,20.000,10.000,30.000,,\n"
        );
    }

    #[test]
    fn ratio_needs_a_floor() {
        let stats = Stats::of_ms(vec![30.0]).unwrap();
        let mut line = Line {
            figure: "fig4",
            what: "store".into(),
            stats,
            floor_p50_ms: None,
        };
        assert_eq!(line.ratio(), None);
        line.floor_p50_ms = Some(20.0);
        assert_eq!(line.ratio(), Some(1.5));
    }

    #[test]
    fn a_table_renders_as_markdown() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.push(vec!["x|y".into(), "1".into()]);
        assert_eq!(csv.to_markdown(), "| a | b |\n|---|---|\n| x\\|y | 1 |\n");
    }

    #[test]
    fn summary_shows_verdicts() {
        let summary = Summary {
            machine: "test machine".into(),
            targets: vec![
                Target {
                    name: "a".into(),
                    goal: "<= 1".into(),
                    measured: "0.5".into(),
                    met: Some(true),
                },
                Target {
                    name: "b".into(),
                    goal: "<= 1".into(),
                    measured: "2".into(),
                    met: Some(false),
                },
            ],
            ..Summary::default()
        };
        let text = summary.to_markdown();
        assert!(text.contains("| a | <= 1 | 0.5 | MET |"));
        assert!(text.contains("| b | <= 1 | 2 | MISSED |"));
    }
}
