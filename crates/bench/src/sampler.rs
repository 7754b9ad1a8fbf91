//! CPU and memory of every process of the system, sampled from /proc.
//!
//! The services are found through the pid files deploy/ writes (`<run_dir>/pids/*.pid`);
//! each service counts with all its descendants and the children it has reaped (the
//! `cutime`/`cstime` fields), and services of one kind (peer1…peer10) are summed into one
//! group. This process is split by thread name: threads whose name starts with one of the
//! given prefixes (the in-process relay's runtime) form their own group.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One group's usage at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since sampling started.
    pub at_s: f64,
    /// Services of one kind, this process's threads of one name prefix, or [`MACHINE`].
    pub group: String,
    /// Percent of one core over the interval ending here (top's convention).
    pub cpu_percent: f64,
    /// Resident memory of the group, in MiB (0 for [`MACHINE`]).
    pub rss_mib: f64,
}

/// CPU time (clock ticks) and resident memory of a set of processes or threads.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    ticks: u64,
    rss_kib: u64,
}

/// Fields of /proc/<pid>/stat after the command name.
struct Stat {
    ppid: u32,
    /// utime + stime, plus cutime + cstime when asked.
    ticks: u64,
}

fn parse_stat(text: &str, with_children: bool) -> Option<Stat> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let mut ticks = number(11)? + number(12)?;
    if with_children {
        ticks += number(13)? + number(14)?;
    }
    Some(Stat {
        ppid: number(1)? as u32,
        ticks,
    })
}

fn command_name(text: &str) -> Option<&str> {
    Some(&text[text.find('(')? + 1..text.rfind(')')?])
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The group of each service named by its pid file: numbered services of one kind
/// (`peer1`…`peer10`) form one group `peer`; any other keeps its name (`s3`).
pub fn groups(names: &[String]) -> Vec<String> {
    let kind = |name: &str| {
        name.trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string()
    };
    names
        .iter()
        .map(|name| {
            let k = kind(name);
            let siblings = names.iter().filter(|n| kind(n) == k).count();
            if siblings > 1 { k } else { name.clone() }
        })
        .collect()
}

/// The services deploy/ started: (group, pid).
pub fn services(run_dir: &Path) -> Vec<(String, u32)> {
    let found = named_services(run_dir);
    let names: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
    let mut grouped: Vec<(String, u32)> = groups(&names)
        .into_iter()
        .zip(found.iter().map(|(_, pid)| *pid))
        .collect();
    grouped.sort();
    grouped
}

/// The live services deploy/ started, each by its pid file's name (`hospital1-peer0`).
fn named_services(run_dir: &Path) -> Vec<(String, u32)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("pids")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_stem()?.to_str()?.to_string();
            (path.extension()? == "pid").then_some(())?;
            let pid = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
            Path::new(&format!("/proc/{pid}"))
                .exists()
                .then_some((name, pid))
        })
        .collect()
}

/// CPU time so far, in seconds, of the services named in `names` (pid-file names), each
/// with its descendants and the children it reaped; 0 for a name with no live service.
pub fn services_cpu_s(run_dir: &Path, names: &[String]) -> f64 {
    let table = process_table();
    let me = std::process::id();
    let ticks: u64 = named_services(run_dir)
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .flat_map(|(_, root)| with_descendants(root, &table))
        .filter(|&pid| pid != me)
        .map(|pid| table.get(&pid).map_or(0, |s| s.ticks))
        .sum();
    ticks as f64 / ticks_per_s()
}

/// The kernel's clock ticks per second, in which /proc counts CPU time.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks.max(1) as f64
}

/// Every live process and its parent.
fn process_table() -> HashMap<u32, Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&text, true)?))
        })
        .collect()
}

/// A process and all its descendants.
fn with_descendants(root: u32, table: &HashMap<u32, Stat>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, stat) in table {
        children.entry(stat.ppid).or_default().push(pid);
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        if let Some(kids) = children.get(&found[next]) {
            found.extend(kids);
        }
        next += 1;
    }
    found
}

struct Config {
    services: Vec<(String, u32)>,
    self_name: String,
    thread_groups: Vec<(String, String)>,
}

fn measure(config: &Config) -> BTreeMap<String, Usage> {
    let table = process_table();
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    let me = std::process::id();
    for (group, root) in &config.services {
        let entry = usage.entry(group.clone()).or_default();
        for pid in with_descendants(*root, &table) {
            if pid == me {
                continue;
            }
            entry.ticks += table.get(&pid).map_or(0, |s| s.ticks);
            entry.rss_kib += rss_kib(pid);
        }
    }
    // This process: its reaped children (CLI tools it ran) count with its main group.
    let own = table.get(&me).map_or(0, |s| s.ticks);
    let mut threads_ticks: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(name), Some(stat)) = (command_name(&text), parse_stat(&text, false)) else {
                continue;
            };
            if let Some((_, group)) = config
                .thread_groups
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix.as_str()))
            {
                *threads_ticks.entry(group.clone()).or_default() += stat.ticks;
            }
        }
    }
    let split: u64 = threads_ticks.values().sum();
    usage.insert(
        config.self_name.clone(),
        Usage {
            ticks: own.saturating_sub(split),
            rss_kib: rss_kib(me),
        },
    );
    for (group, ticks) in threads_ticks {
        // Threads share the process's memory: their RSS is the process's.
        usage.insert(group, Usage { ticks, rss_kib: 0 });
    }
    for group in config.thread_groups.iter().map(|(_, g)| g) {
        usage.entry(group.clone()).or_default();
    }
    usage
}

/// Busy and total ticks of the whole machine, from /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// Name of the group that sums the whole machine.
pub const MACHINE: &str = "whole machine (all processes of all users)";

/// A running sampler; [`Sampler::stop`] returns what it saw.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling every `interval`: the services under `run_dir`, this process as
    /// `self_name`, and its threads named with each prefix of `thread_groups` as that
    /// group.
    pub fn start(
        run_dir: &Path,
        self_name: &str,
        thread_groups: &[(&str, &str)],
        interval: Duration,
    ) -> Self {
        let config = Config {
            services: services(run_dir),
            self_name: self_name.to_string(),
            thread_groups: thread_groups
                .iter()
                .map(|(p, g)| (p.to_string(), g.to_string()))
                .collect(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || sample_until(&config, interval, &stopping))
            .expect("the sampler thread starts");
        Self { stop, thread }
    }

    /// Stops sampling and returns every sample taken.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn sample_until(config: &Config, interval: Duration, stop: &AtomicBool) -> Vec<Sample> {
    let ticks_per_s = ticks_per_s();
    let started = Instant::now();
    let mut previous = (Instant::now(), measure(config), machine_ticks());
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(interval);
        let now = Instant::now();
        let usage = measure(config);
        let machine = machine_ticks();
        let elapsed = now.duration_since(previous.0).as_secs_f64();
        let at_s = now.duration_since(started).as_secs_f64();
        for (group, current) in &usage {
            let before = previous.1.get(group).map_or(0, |u| u.ticks);
            // A process that exited takes its ticks with it: never a negative rate.
            let ticks = current.ticks.saturating_sub(before);
            samples.push(Sample {
                at_s,
                group: group.clone(),
                cpu_percent: ticks as f64 / ticks_per_s / elapsed * 100.0,
                rss_mib: current.rss_kib as f64 / 1024.0,
            });
        }
        if let (Some((busy, _)), Some((busy_before, _))) = (machine, previous.2) {
            samples.push(Sample {
                at_s,
                group: MACHINE.to_string(),
                cpu_percent: busy.saturating_sub(busy_before) as f64 / ticks_per_s / elapsed
                    * 100.0,
                rss_mib: 0.0,
            });
        }
        previous = (now, usage, machine);
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let text =
            "42 (tokio worker) x) S 7 42 42 0 -1 4194304 100 0 0 0 150 30 4 2 20 0 1 0 100 1000 50";
        let stat = parse_stat(text, false).unwrap();
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.ticks, 180);
        assert_eq!(parse_stat(text, true).unwrap().ticks, 186);
        assert_eq!(command_name(text), Some("tokio worker) x"));
    }

    #[test]
    fn services_are_grouped_by_kind() {
        let names: Vec<String> = ["anvil", "peer1", "peer10", "s3", "chaincode1", "chaincode2"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            groups(&names),
            ["anvil", "peer", "peer", "s3", "chaincode", "chaincode"]
        );
    }

    #[test]
    fn samples_this_process_and_its_named_threads() {
        let dir = tempfile::tempdir().unwrap();
        let busy = std::thread::Builder::new()
            .name("relay-busy".into())
            .spawn(|| {
                let until = Instant::now() + Duration::from_millis(400);
                let mut x = 0u64;
                while Instant::now() < until {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
                x
            })
            .unwrap();
        let sampler = Sampler::start(
            dir.path(),
            "bench",
            &[("relay", "relay")],
            Duration::from_millis(100),
        );
        busy.join().unwrap();
        let samples = sampler.stop();
        let relay_peak = samples
            .iter()
            .filter(|s| s.group == "relay")
            .map(|s| s.cpu_percent)
            .fold(0.0, f64::max);
        // The spinning thread's CPU lands in its group; how much it got depends on what
        // else the machine runs, so only its presence is checked.
        assert!(relay_peak > 1.0, "a spinning thread shows: {relay_peak}");
        assert!(
            samples
                .iter()
                .any(|s| s.group == "bench" && s.rss_mib > 0.0)
        );
        assert!(samples.iter().any(|s| s.group == MACHINE));
    }
}
