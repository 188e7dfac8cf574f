//! The measuring machinery shared by every workload: runtimes, result lines, child processes,
//! CPU pinning, peak RSS and medians. (The network benchmarks add their server processes and
//! option parsing in [`crate::netbench`].)
//!
//! Each measurement runs in a fresh child process (this same executable, re-run with the hidden
//! `--child-run RUNTIME` flag) so that the peak RSS it reports belongs to one runtime and one run
//! alone: a process's high-water mark never goes down, so two runtimes measured in one process
//! would blur together, and allocator state left by one run would flatter the next.

use std::fmt;
use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The hidden flag that turns the program into a single-measurement child.
pub const CHILD_FLAG: &str = "--child-run";

/// Keys whose values are expected to differ from run to run (times, memory). Every other key in
/// a result line is a parameter or a checksum, which must be identical across runs and across
/// runtimes; a difference means one runtime computed something else and the timing is void.
pub const MEASURED_KEYS: &[&str] = &[
    "elapsed_s",
    "ns_per_rt",
    "peak_rss_mb",
    // echo: round trips in a fixed time vary, and so does everything derived from them.
    "round_trips",
    "rt_per_s",
    "p50_us",
    "p99_us",
    "server_cpu_us_per_rt",
    "server_cpu_util",
    "client_cpu_util",
    // http-hello: the same for requests, plus what wrk reports as going wrong.
    "requests",
    "req_per_s",
    "server_cpu_us_per_req",
    "uncounted",
    "wrk_errors",
    // https-hello: the server's handshake count (warm-up included) varies with the requests
    // in handshake mode, and so do the handshake names of its figures.
    "tls_handshakes",
    "handshakes_per_s",
    "server_cpu_us_per_handshake",
    // client-get: the client's cost per request (its requests differ between Rust and Python
    // clients by design, so `requests` above is not a parameter there either).
    "client_cpu_us_per_req",
    // http-hello with --workers: the requests each worker answered (a list, so it has no
    // median), and how unevenly.
    "per_worker",
    "worker_imbalance",
    // ws-echo: messages instead of round trips, and the load generator's cost per message.
    "messages",
    "msg_per_s",
    "server_cpu_us_per_msg",
    "client_cpu_us_per_msg",
];

/// Measured keys whose value is a list per run (`a,b,...`), so they have no median: median
/// lines leave them out, even when a list has one element.
pub const LIST_KEYS: &[&str] = &["per_worker"];

/// Keys that name what was measured (the runtime, the server of a network benchmark, or
/// `client-get`'s client). They differ between the groups of a comparison by design, so they
/// are not checked for agreement.
pub const IDENTITY_KEYS: &[&str] = &["runtime", "server", "client"];

/// A runtime under test: an async runtime, a green-thread or coroutine library, or a Python
/// interpreter. Each workload runs on some of them ([`crate::workloads::Workload::runtimes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Kettle's event loop, through `kettle::run` (and in `gen-switch`, where there is no loop,
    /// its generators).
    Kettle,
    /// tokio's `current_thread` runtime: the single-threaded configuration comparable to Kettle.
    Tokio,
    /// Kettle's green threads (`kettle::green`) on its event loop.
    KettleGreen,
    /// corosensei's bare stackful coroutines: a context switch with no scheduler, the floor.
    Corosensei,
    /// The `may` crate's stackful coroutines, with one worker thread.
    May,
    /// CPython 3 (`python3` on `PATH`), running `kettle-bench/python/kettle_bench.py`.
    Python,
    /// CPython 3 with gevent's greenlets, running the same script.
    PythonGevent,
    /// CPython 3 with the `greenlet` package (gevent's switching core), the same script.
    PythonGreenlet,
}

impl Runtime {
    /// Every runtime, in the order of their names in messages.
    pub const ALL: [Runtime; 8] = [
        Runtime::Kettle,
        Runtime::Tokio,
        Runtime::KettleGreen,
        Runtime::Corosensei,
        Runtime::May,
        Runtime::Python,
        Runtime::PythonGevent,
        Runtime::PythonGreenlet,
    ];

    /// The name used on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Kettle => "kettle",
            Runtime::Tokio => "tokio",
            Runtime::KettleGreen => "kettle-green",
            Runtime::Corosensei => "corosensei",
            Runtime::May => "may",
            Runtime::Python => "python",
            Runtime::PythonGevent => "python-gevent",
            Runtime::PythonGreenlet => "python-greenlet",
        }
    }

    /// The inverse of [`name`](Self::name).
    pub fn from_name(s: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|rt| rt.name() == s)
    }

    /// Why this runtime cannot run on this machine, or `None` if it can. Only the Python
    /// anchors depend on the machine (an interpreter, and gevent); a benchmark skips them
    /// with this message rather than failing, since they are optional anchors.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Runtime::Python => crate::python::missing(None),
            Runtime::PythonGevent => crate::python::missing(Some("gevent")),
            Runtime::PythonGreenlet => crate::python::missing(Some("greenlet")),
            _ => None,
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// tokio's single-threaded runtime with the timer enabled, the configuration every tokio side
/// uses (I/O is enabled too by workloads that need sockets).
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("failed to build tokio's current_thread runtime")
}

/// Configures may as the one-thread anchor it stands for: one worker, and no pinning of its
/// own (the process is already pinned, and may's pinning would pick a core by itself). may
/// also starts a timer thread, which shares the core. The configuration only takes effect
/// before may's scheduler first starts, which is the first call in a measuring child. The
/// workloads then spawn from the main thread, as may's own examples do: the worker runs the
/// coroutines while the main thread spawns and joins.
pub fn may_configure() {
    may::config().set_workers(1);
    may::config().set_worker_pin(false);
}

/// An ordered list of `key=value` pairs: one result line. Order is kept so that lines read the
/// same way every time (parameters, then measurements, then checksums, then memory).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// An empty line.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Appends `key=value` with the value's `Display` form.
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> Fields {
        self.push(key, value);
        self
    }

    /// Appends `elapsed_s=` in seconds with microsecond resolution.
    pub fn elapsed(self, d: Duration) -> Fields {
        self.with("elapsed_s", format_args!("{:.6}", d.as_secs_f64()))
    }

    /// Appends `key=value`.
    pub fn push(&mut self, key: &str, value: impl fmt::Display) {
        self.0.push((key.to_string(), value.to_string()));
    }

    /// Appends every pair of `other`.
    pub fn with_all(mut self, other: Fields) -> Fields {
        self.0.extend(other.0);
        self
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a line printed by [`Display`](fmt::Display); `None` if a word is not `key=value`.
    pub fn parse(line: &str) -> Option<Fields> {
        let mut fields = Fields::new();
        for word in line.split_whitespace() {
            let (k, v) = word.split_once('=')?;
            if k.is_empty() {
                return None;
            }
            fields.push(k, v);
        }
        (!fields.0.is_empty()).then_some(fields)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The CPUs this process may run on, so a bad `--cpu` is a usage error in the parent instead of
/// a failure in every child.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zeroes is a valid (empty) set, and
    // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Ok((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// Pins the calling process to one CPU, so the scheduler cannot move a measurement between cores
/// (cold caches) and two runtimes are compared on the same core.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CPU number too large",
        ));
    }
    // SAFETY: as in allowed_cpus; CPU_SET is given an index checked against the set's size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// This process's peak resident set size in MiB, from `VmHWM` in `/proc/self/status` (the kernel
/// keeps the high-water mark, so no sampling is needed).
pub fn peak_rss_mib() -> io::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmHWM in status"))?;
    Ok(kib as f64 / 1024.0)
}

/// Runs one measurement in a child process pinned to `cpu` and returns its result line.
/// `workload_args` are the workload name and its own arguments, passed through unchanged so the
/// child parses exactly what the parent did.
pub fn run_child(runtime: Runtime, cpu: usize, workload_args: &[String]) -> Result<Fields, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let output = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(runtime.name())
        .arg("--cpu")
        .arg(cpu.to_string())
        .args(workload_args)
        .stdin(Stdio::null())
        // stderr is inherited so a child's panic message reaches the terminal as it happens.
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the {runtime} child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the {runtime} child failed ({}); its output: {}",
            output.status,
            stdout.trim()
        ));
    }
    // The result is the last line; anything a workload printed before it is ignored.
    last_line(&stdout)
        .ok_or_else(|| format!("the {runtime} child printed no result line: {stdout:?}"))
}

/// The last non-empty line of a child's stdout as a result line.
pub fn last_line(stdout: &str) -> Option<Fields> {
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(Fields::parse)
}

/// The median of each measured key over `runs` (all lines of one runtime). Non-measured keys are
/// taken from the first run; [`inconsistencies`] reports any that differ. For an even number of
/// runs the lower of the two middle values is used, so the median is always a value that was
/// actually observed. The [`LIST_KEYS`] have no median and are left out.
pub fn median(runs: &[Fields]) -> Fields {
    let Some(first) = runs.first() else {
        return Fields::new();
    };
    let mut out = Fields::new();
    for (key, value) in first.iter() {
        if IDENTITY_KEYS.contains(&key) || key == "workload" {
            out.push(key, value);
            if key == "workload" {
                // After the identity, before the numbers: what kind of line this is.
                out.push("stat", "median");
                out.push("runs", runs.len());
            }
            continue;
        }
        if LIST_KEYS.contains(&key) {
            continue;
        }
        if !MEASURED_KEYS.contains(&key) {
            out.push(key, value);
            continue;
        }
        let mut values: Vec<(f64, &str)> = runs
            .iter()
            .filter_map(|r| r.get(key))
            .filter_map(|v| v.parse::<f64>().ok().map(|x| (x, v)))
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        match values.get((values.len().max(1) - 1) / 2) {
            // The observed text, so the median keeps the precision the workload chose.
            Some((_, text)) => out.push(key, text),
            None => out.push(key, "nan"),
        }
    }
    out
}

/// Keys that should be equal across `lines` (parameters and checksums) but are not, as
/// human-readable descriptions. The [`IDENTITY_KEYS`] are excluded because they differ by
/// design.
pub fn inconsistencies(lines: &[&Fields]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(first) = lines.first() else {
        return problems;
    };
    let who = |line: &Fields| {
        IDENTITY_KEYS
            .iter()
            .find_map(|k| line.get(k))
            .unwrap_or("?")
            .to_string()
    };
    for (key, value) in first.iter() {
        if IDENTITY_KEYS.contains(&key) || MEASURED_KEYS.contains(&key) {
            continue;
        }
        for other in &lines[1..] {
            let theirs = other.get(key).unwrap_or("<missing>");
            if theirs != value {
                problems.push(format!(
                    "{key}: {}={value} but {}={theirs}",
                    who(first),
                    who(other)
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// `value_a / value_b` for a measured key of two median lines, with three decimals.
pub fn ratio(a: &Fields, b: &Fields, key: &str) -> String {
    let num = a.get(key).and_then(|v| v.parse::<f64>().ok());
    let den = b.get(key).and_then(|v| v.parse::<f64>().ok());
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.3}", n / d),
        _ => "nan".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Fields {
        Fields::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        let s = "runtime=kettle workload=spawn n=10 elapsed_s=0.100000 sum=45";
        assert_eq!(line(s).to_string(), s);
        assert!(Fields::parse("ratio kettle/tokio").is_none());
        assert!(Fields::parse("").is_none());
    }

    #[test]
    fn median_picks_observed_middle_values() {
        let runs = [
            line("runtime=tokio workload=spawn n=3 elapsed_s=0.3 sum=3 peak_rss_mb=9.0"),
            line("runtime=tokio workload=spawn n=3 elapsed_s=0.1 sum=3 peak_rss_mb=7.0"),
            line("runtime=tokio workload=spawn n=3 elapsed_s=0.2 sum=3 peak_rss_mb=8.0"),
            line("runtime=tokio workload=spawn n=3 elapsed_s=0.9 sum=3 peak_rss_mb=1.0"),
        ];
        assert_eq!(
            median(&runs).to_string(),
            "runtime=tokio workload=spawn stat=median runs=4 n=3 elapsed_s=0.2 sum=3 \
             peak_rss_mb=7.0"
        );
    }

    #[test]
    fn a_list_has_no_median() {
        let runs = [
            line("server=kettle workload=w per_worker=5,7 worker_imbalance=0.333"),
            line("server=kettle workload=w per_worker=6,6 worker_imbalance=0.000"),
        ];
        assert_eq!(
            median(&runs).to_string(),
            "server=kettle workload=w stat=median runs=2 worker_imbalance=0.000"
        );
        // One worker's list is a single number, and still no median.
        let one = [line("server=k per_worker=9 worker_imbalance=0.000")];
        assert_eq!(median(&one).to_string(), "server=k worker_imbalance=0.000");
    }

    #[test]
    fn checksums_must_agree_across_runtimes() {
        let k = line("runtime=kettle workload=spawn n=3 elapsed_s=0.1 sum=3");
        let t = line("runtime=tokio workload=spawn n=3 elapsed_s=0.5 sum=4");
        assert_eq!(
            inconsistencies(&[&k, &t]),
            ["sum: kettle=3 but tokio=4".to_string()]
        );
        let t2 = line("runtime=tokio workload=spawn n=3 elapsed_s=0.5 sum=3");
        assert!(inconsistencies(&[&k, &t2]).is_empty());
    }

    #[test]
    fn servers_are_identities_too() {
        let a = line("server=hyper workload=w pipeline=1 req_per_s=5");
        let b = line("server=epoll workload=w pipeline=16 req_per_s=9");
        assert_eq!(
            inconsistencies(&[&a, &b]),
            ["pipeline: hyper=1 but epoll=16".to_string()]
        );
        assert_eq!(
            median(&[a]).to_string(),
            "server=hyper workload=w stat=median runs=1 pipeline=1 req_per_s=5"
        );
    }

    #[test]
    fn last_line_skips_blank_lines() {
        assert_eq!(last_line("noise\na=1 b=2\n\n"), Fields::parse("a=1 b=2"));
        assert_eq!(last_line(""), None);
    }

    #[test]
    fn ratio_of_medians() {
        let k = line("elapsed_s=0.5 peak_rss_mb=10.0");
        let t = line("elapsed_s=1.0 peak_rss_mb=0");
        assert_eq!(ratio(&k, &t, "elapsed_s"), "0.500");
        assert_eq!(ratio(&k, &t, "peak_rss_mb"), "nan");
    }

    #[test]
    fn peak_rss_is_readable() {
        assert!(peak_rss_mib().unwrap() > 0.0);
    }
}
