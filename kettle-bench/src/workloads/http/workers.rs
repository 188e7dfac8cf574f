//! `http-hello --workers N` (N above 1): issue 11's multi-core comparison. The same `GET /`
//! as `http-hello`, with every server using N cores' worth of workers, all in one run.
//!
//! On a machine with as many cores as workers there is no core left for the load generator,
//! so nothing is pinned: each server's process and `wrk -tN -cC -dSs --latency` (default
//! C = 128) share the cores as the scheduler sees fit, the same way for every server. The
//! servers (the `http-server --workers N` forms, see [`super::serve_workers`]):
//!
//! * `kettle`: the Kettle web framework on N event loops (`kettle::web::run_app_workers`,
//!   one `SO_REUSEPORT` listener per loop by default); needs the `kettle-workers` feature.
//! * `kettle-1w`: the same with one worker, under the same load and the same unpinned
//!   conditions: the figure that N workers' CPU per request is held against ("no cross-core
//!   overhead").
//! * `hyper`: hyper 1.x on tokio's `multi_thread` runtime with N worker threads.
//! * `actix`: actix-web 4 with N workers.
//! * `epoll`: the floor, N raw epoll loops on N threads, each with its own `SO_REUSEPORT`
//!   listener.
//!
//! The result keys are `http-hello`'s (`server_cpu_us_per_req` counts every thread of the
//! server process; `server_cpu_util` and `client_cpu_util` may now exceed 1, up to the cores
//! used), plus `per_worker`, the requests each worker answered over the server's life (warm-up
//! included): Kettle's counted per `kettle::worker_index()`, the others' per thread that
//! answered (a worker that answered none counts as 0). `worker_imbalance` is
//! `(max - min) / mean` of those counts: 0 when perfectly even, 0.1 when the busiest worker
//! answered 10% of the mean more than the idlest.
//!
//! The `ratio` lines divide `kettle`'s medians by `actix`'s, `hyper`'s, `kettle-1w`'s and
//! `epoll`'s (without `kettle`, every other server's by `epoll`'s), and the `target` lines
//! state issue 11's goals: `kettle`'s req/s at least 1.1× actix's and 1.2× hyper's, its server
//! CPU per request at most 1.05× `kettle-1w`'s, and its median `worker_imbalance` at most 0.1.

use std::process::ExitCode;

use super::{
    exit_report, kettle_server, no_wrk_errors, print_ranks, ratio_line, wrk, Measured, Server,
    Tools,
};
use crate::harness::{self, Fields};
use crate::netbench::{self, fail, Bound, ServerProcess};

/// wrk's connections by default: the issue's `-c128`.
pub const CONNS: usize = 128;

/// One server of the comparison: a server in its multi-worker form, and with how many workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Kettle's framework on N loops.
    Kettle,
    /// Kettle's framework through the same API on one loop.
    Kettle1w,
    /// hyper on tokio `multi_thread` with N workers.
    Hyper,
    /// actix-web with N workers.
    Actix,
    /// N epoll loops.
    Epoll,
}

impl Entry {
    /// Every entry, in the order runs alternate and results print.
    pub const ALL: [Entry; 5] = [
        Entry::Kettle,
        Entry::Kettle1w,
        Entry::Hyper,
        Entry::Actix,
        Entry::Epoll,
    ];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Entry::Kettle => "kettle",
            Entry::Kettle1w => "kettle-1w",
            Entry::Hyper => "hyper",
            Entry::Actix => "actix",
            Entry::Epoll => "epoll",
        }
    }

    /// The `http-server` that serves it.
    fn server(self) -> Server {
        match self {
            Entry::Kettle | Entry::Kettle1w => Server::Kettle,
            Entry::Hyper => Server::Hyper,
            Entry::Actix => Server::Actix,
            Entry::Epoll => Server::Epoll,
        }
    }

    /// Its workers in a run with `n` workers.
    fn workers(self, n: usize) -> usize {
        match self {
            Entry::Kettle1w => 1,
            _ => n,
        }
    }

    /// Whether this build can run it: the Kettle entries need the `kettle-workers` feature.
    fn built(self) -> bool {
        kettle_server::HAS_WORKERS || self.server() != Server::Kettle
    }
}

/// The entries `--server` names: all that this build can run for `None` or `all`, else the
/// comma-separated list, in its order.
pub fn entries(list: Option<&str>) -> Result<Vec<Entry>, String> {
    let Some(list) = list.filter(|l| *l != "all") else {
        return Ok(Entry::ALL.into_iter().filter(|e| e.built()).collect());
    };
    let mut entries = Vec::new();
    for name in list.split(',') {
        let entry = Entry::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                let names = Entry::ALL.map(Entry::name).join(", ");
                format!("unknown server `{name}` for --workers; available: {names}")
            })?;
        if !entry.built() {
            return Err(format!(
                "{name} needs Kettle's multi-worker server: build kettle-bench with \
                 `--features kettle-workers`"
            ));
        }
        if entries.contains(&entry) {
            return Err(format!("server {name} named twice in --server"));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// `http-hello --workers N` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Runs per entry.
    pub runs: usize,
    /// Workers per server (above 1), and wrk's threads.
    pub workers: usize,
    /// The servers to measure.
    pub entries: Vec<Entry>,
    /// wrk's connections (`-c`).
    pub conns: usize,
    /// wrk's duration in seconds (`-d`).
    pub secs: u64,
    /// Requests per write: 1, or pipelined through the Lua script.
    pub pipeline: usize,
    /// Seconds of unmeasured wrk load before each measured run (0: none).
    pub warmup: u64,
}

impl BenchArgs {
    /// The parameters that make runs comparable, as result-line fields. `workers` is the run's
    /// (`kettle-1w` has one, as its name says).
    fn params(&self) -> Fields {
        Fields::new()
            .with("workers", self.workers)
            .with("wrk_threads", self.workers)
            .with("pipeline", self.pipeline)
            .with("conns", self.conns)
            .with("secs", self.secs)
    }
}

/// `(max - min) / mean` of the per-worker counts, `counts` padded with zeros to `workers`
/// entries (a worker that answered nothing may not have reported); NaN if none answered.
fn imbalance(counts: &[u64], workers: usize) -> f64 {
    let mut counts = counts.to_vec();
    counts.resize(counts.len().max(workers), 0);
    let (Some(&min), Some(&max)) = (counts.iter().min(), counts.iter().max()) else {
        return f64::NAN;
    };
    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    if mean == 0.0 {
        return f64::NAN;
    }
    (max - min) as f64 / mean
}

/// The `per_worker=a,b,...` value of a server's exit line.
fn parse_counts(value: &str) -> Option<Vec<u64>> {
    value.split(',').map(|c| c.parse().ok()).collect()
}

/// One run: an entry's server, unpinned, wrk against it (warm-up, then the measured run), the
/// server stopped, its counts checked.
fn measure(entry: Entry, args: &BenchArgs, tools: &Tools) -> Result<Fields, String> {
    let workers = entry.workers(args.workers);
    let server_args: Vec<String> = [
        "http-server",
        "--port",
        "0",
        "--server",
        entry.server().name(),
        "--workers",
        &workers.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let proc = ServerProcess::start(entry.name(), &server_args)?;
    let script = tools.script.as_ref().map(|s| s.path());
    let wrk_args = |secs| wrk::args(args.workers, args.conns, secs, proc.port(), script);
    let warmup = (args.warmup > 0).then(|| wrk_args(args.warmup));
    let measured = Measured::load(&proc, None, warmup.as_deref(), &wrk_args(args.secs))?;
    let tail = proc.stop()?;
    let (report, answered) = exit_report(entry.name(), &tail)?;
    // At most one batch per connection is unanswered in wrk's eyes when it stops.
    measured.check_answered(entry.name(), answered, (args.conns * args.pipeline) as u64)?;
    let counts = report
        .get("per_worker")
        .and_then(parse_counts)
        .ok_or_else(|| format!("the {} server did not report per_worker", entry.name()))?;
    let listed: Vec<String> = counts.iter().map(u64::to_string).collect();
    Ok(Fields::new()
        .with("server", entry.name())
        .with("workload", "http-hello")
        .with_all(args.params())
        .with_all(measured.fields(answered))
        .with("per_worker", listed.join(","))
        .with(
            "worker_imbalance",
            format_args!("{:.3}", imbalance(&counts, workers)),
        ))
}

/// The ratios to print, as (numerator, denominator): `kettle` over each other entry present;
/// without it, every other entry over `epoll`.
fn ratio_pairs(present: &[Entry]) -> Vec<(Entry, Entry)> {
    use Entry::*;
    let has = |e: &Entry| present.contains(e);
    if has(&Kettle) {
        [Actix, Hyper, Kettle1w, Epoll]
            .into_iter()
            .filter(has)
            .map(|other| (Kettle, other))
            .collect()
    } else if has(&Epoll) {
        [Kettle1w, Hyper, Actix]
            .into_iter()
            .filter(has)
            .map(|other| (other, Epoll))
            .collect()
    } else {
        Vec::new()
    }
}

/// Issue 11's goals, each a `target` line once its medians exist: (kettle's median key, the
/// entry it is divided by or `None` for kettle's own value, the bound).
const TARGETS: [(&str, Option<Entry>, Bound); 4] = [
    ("req_per_s", Some(Entry::Actix), Bound::AtLeast(1.1)),
    ("req_per_s", Some(Entry::Hyper), Bound::AtLeast(1.2)),
    (
        "server_cpu_us_per_req",
        Some(Entry::Kettle1w),
        Bound::AtMost(1.05),
    ),
    ("worker_imbalance", None, Bound::AtMost(0.1)),
];

/// The `ratio` and `target` lines from the medians.
fn report_lines(args: &BenchArgs, medians: &[(Entry, Fields)]) -> Vec<String> {
    let median_of = |e: Entry| medians.iter().find(|(m, _)| *m == e).map(|(_, f)| f);
    let about = Fields::new()
        .with("workload", "http-hello")
        .with_all(args.params());
    let mut lines = Vec::new();
    let present: Vec<Entry> = medians.iter().map(|(e, _)| *e).collect();
    for (a, b) in ratio_pairs(&present) {
        if let (Some(ma), Some(mb)) = (median_of(a), median_of(b)) {
            lines.push(ratio_line((a.name(), ma), (b.name(), mb), &about));
        }
    }
    let Some(kettle) = median_of(Entry::Kettle) else {
        return lines;
    };
    for (key, other, bound) in TARGETS {
        match other {
            Some(other) => {
                let Some(theirs) = median_of(other) else {
                    continue;
                };
                let ratio = harness::ratio(kettle, theirs, key);
                lines.push(format!(
                    "target kettle/{} key={key} ratio={ratio} {}",
                    other.name(),
                    bound.judge(&ratio)
                ));
            }
            None => {
                let value = kettle.get(key).unwrap_or("nan");
                lines.push(format!(
                    "target kettle key={key} value={value} {} definition=(max-min)/mean",
                    bound.judge(value)
                ));
            }
        }
    }
    lines
}

/// Runs the comparison and prints it: every run, the medians, the ratios and targets, the
/// rankings. Status 1 if a run failed, wrk saw errors or the runs disagree on parameters.
pub fn bench(args: &BenchArgs) -> ExitCode {
    if !kettle_server::HAS_WORKERS {
        eprintln!(
            "kettle-bench: kettle and kettle-1w are left out: this kettle-bench was built \
             without the `kettle-workers` feature"
        );
    }
    if args.entries.is_empty() {
        return fail("no server to measure");
    }
    match harness::allowed_cpus() {
        Ok(cpus) if cpus.len() < args.workers => eprintln!(
            "kettle-bench: warning: {} workers but only {} usable CPUs ({cpus:?})",
            args.workers,
            cpus.len()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("kettle-bench: cannot read the CPU affinity ({e}); trying anyway"),
    }
    let tools = match Tools::prepare(args.pipeline) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let lines = match netbench::alternate(
        "http-hello",
        args.runs,
        &args.entries,
        |e| {
            format!(
                "{} ({} workers, pipeline {})",
                e.name(),
                e.workers(args.workers),
                args.pipeline
            )
        },
        |e| measure(e, args, &tools),
    ) {
        Ok(lines) => lines,
        Err(e) => return fail(&e),
    };
    let medians: Vec<(Entry, Fields)> = args
        .entries
        .iter()
        .copied()
        .zip(netbench::print_with_medians(&lines))
        .collect();
    for line in report_lines(args, &medians) {
        println!("{line}");
    }
    if medians.len() > 1 {
        let named: Vec<(&str, Fields)> =
            medians.iter().map(|(e, f)| (e.name(), f.clone())).collect();
        print_ranks(&named);
    }

    let consistent = netbench::consistent(&lines);
    if no_wrk_errors(&lines) && consistent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_and_availability() {
        for e in Entry::ALL {
            assert_eq!(entries(Some(e.name())).is_ok(), e.built(), "{e:?}");
        }
        let all = entries(None).unwrap();
        assert_eq!(entries(Some("all")).unwrap(), all);
        assert_eq!(
            all.contains(&Entry::Kettle),
            kettle_server::HAS_WORKERS,
            "{all:?}"
        );
        assert!(all.ends_with(&[Entry::Hyper, Entry::Actix, Entry::Epoll]));
        assert_eq!(
            entries(Some("epoll,hyper")).unwrap(),
            [Entry::Epoll, Entry::Hyper]
        );
        for bad in ["kettle-raw", "hyper,hyper", "all,hyper", "tomcat", ""] {
            assert!(entries(Some(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(Entry::Kettle1w.workers(2), 1);
        assert_eq!(Entry::Kettle.workers(2), 2);
        assert_eq!(Entry::Kettle1w.server(), Server::Kettle);
    }

    #[test]
    fn imbalance_is_range_over_mean() {
        assert_eq!(imbalance(&[100, 100], 2), 0.0);
        // mean 100, range 20.
        assert!((imbalance(&[110, 90], 2) - 0.2).abs() < 1e-12);
        // A silent worker is a zero: mean 50, range 100.
        assert!((imbalance(&[100], 2) - 2.0).abs() < 1e-12);
        assert_eq!(imbalance(&[7], 1), 0.0);
        assert!(imbalance(&[0, 0], 2).is_nan());
        assert!(imbalance(&[], 0).is_nan());
        assert_eq!(parse_counts("3,4"), Some(vec![3, 4]));
        assert_eq!(parse_counts("3,x"), None);
    }

    #[test]
    fn ratios_and_targets() {
        use Entry::*;
        assert_eq!(
            ratio_pairs(&Entry::ALL),
            [
                (Kettle, Actix),
                (Kettle, Hyper),
                (Kettle, Kettle1w),
                (Kettle, Epoll)
            ]
        );
        assert_eq!(
            ratio_pairs(&[Hyper, Actix, Epoll]),
            [(Hyper, Epoll), (Actix, Epoll)]
        );
        assert!(ratio_pairs(&[Hyper, Actix]).is_empty());

        let args = BenchArgs {
            runs: 1,
            workers: 2,
            entries: Entry::ALL.to_vec(),
            conns: 128,
            secs: 5,
            pipeline: 1,
            warmup: 1,
        };
        let f = |s: &str| Fields::parse(s).unwrap();
        let medians = [
            (
                Kettle,
                f("req_per_s=240 server_cpu_us_per_req=4.2 p99_us=100 worker_imbalance=0.040"),
            ),
            (
                Kettle1w,
                f("req_per_s=200 server_cpu_us_per_req=4.0 p99_us=100"),
            ),
            (Hyper, f("req_per_s=200 server_cpu_us_per_req=5 p99_us=200")),
            (Actix, f("req_per_s=220 server_cpu_us_per_req=6 p99_us=50")),
        ];
        let lines = report_lines(&args, &medians);
        assert_eq!(
            lines[0],
            "ratio kettle/actix server_cpu_us_per_req=0.700 req_per_s=1.091 p99_us=2.000 \
             workload=http-hello workers=2 wrk_threads=2 pipeline=1 conns=128 secs=5"
        );
        assert_eq!(lines.len(), 3 + 4, "{lines:#?}");
        assert_eq!(
            lines[3..],
            [
                "target kettle/actix key=req_per_s ratio=1.091 at_least=1.1 met=no",
                "target kettle/hyper key=req_per_s ratio=1.200 at_least=1.2 met=yes",
                "target kettle/kettle-1w key=server_cpu_us_per_req ratio=1.050 at_most=1.05 \
                 met=yes",
                "target kettle key=worker_imbalance value=0.040 at_most=0.1 met=yes \
                 definition=(max-min)/mean",
            ]
        );
        // Without kettle: ratios over the floor only, no targets.
        let lines = report_lines(&args, &medians[2..]);
        assert!(lines.is_empty(), "{lines:?}");
    }
}
